#!/usr/bin/env python3
"""Generates ../kernels_arm64.s: the NEON kernels of package kernels.

`go generate ./kernels/...` runs it (see ../generate.go) and writes
../kernels_arm64.s and its Go declarations, ../kernels_decl_arm64.go.
Go's arm64 assembler (as of Go 1.26) lacks FCVTL/FCVTL2 (f16 → f32), SHLL/
SHLL2 (bf16 → f32 by a 16-bit shift), FADD/FADDP (vector); they are emitted
as WORDs. The encodings follow the Arm ARM and were checked against
`llvm-mc -triple=aarch64 -show-encoding`; the NEON tests under qemu check
them again.
"""

import goout

out = []


def emit(s=""):
    out.append(s)


# See gen_amd64.py: declare records a kernel's Go signature, text emits its
# TEXT line with the argument size computed from it.
declare, text, decls = goout.kernel_decls(emit)


def fcvtl(d, n, hi=False):  # FCVTL{2} Vd.4S, Vn.{4,8}H
    return (0x4E217800 if hi else 0x0E217800) | n << 5 | d


def shll16(d, n, hi=False):  # SHLL{2} Vd.4S, Vn.{4,8}H, #16
    return (0x6E613800 if hi else 0x2E613800) | n << 5 | d


def fadd4s(d, n, m):  # FADD Vd.4S, Vn.4S, Vm.4S
    return 0x4E20D400 | m << 16 | n << 5 | d


def faddp4s(d, n, m):  # FADDP Vd.4S, Vn.4S, Vm.4S
    return 0x6E20D400 | m << 16 | n << 5 | d


def faddp2s(d, n):  # FADDP Sd, Vn.2S
    return 0x7E30D800 | n << 5 | d


def word(v, comment):
    emit(f"\tWORD ${v:#010x} // {comment}")


def dotrows(dt):
    """func dotRows<dt>_neon(w *T, ldw int, x *float32, y *float32, rows, cols int)
    y[r] = Σ_{j<cols'} w[r*ldw+j]·x[j], cols' = cols rounded down to 16;
    four 4-lane accumulators."""
    name = f"dotRows{dt}_neon"
    es = 4 if dt == "F32" else 2
    ty = "float32" if dt == "F32" else "uint16"
    declare(name, f"(w *{ty}, ldw int, x *float32, y *float32, rows, cols int)")
    text(name)
    emit("\tMOVD w+0(FP), R0")
    emit("\tMOVD ldw+8(FP), R1")
    emit(f"\tLSL ${es.bit_length()-1}, R1, R1")
    emit("\tMOVD x+16(FP), R2")
    emit("\tMOVD y+24(FP), R3")
    emit("\tMOVD rows+32(FP), R4")
    emit("\tMOVD cols+40(FP), R5")
    emit("\tAND $~15, R5, R5")
    emit(f"{name}_row:")
    emit(f"\tCBZ R4, {name}_done")
    emit("\tMOVD R0, R6")
    emit("\tMOVD R2, R7")
    emit("\tMOVD R5, R8")
    for i in range(16, 20):
        emit(f"\tVEOR V{i}.B16, V{i}.B16, V{i}.B16")
    emit(f"{name}_loop:")
    emit(f"\tCBZ R8, {name}_sum")
    if dt == "F32":
        emit("\tVLD1.P 64(R6), [V0.S4, V1.S4, V2.S4, V3.S4]")
        wregs = [0, 1, 2, 3]
    else:
        emit("\tVLD1.P 32(R6), [V0.H8, V1.H8]")
        f = fcvtl if dt == "F16" else shll16
        what = "FCVTL" if dt == "F16" else "SHLL"
        word(f(20, 0), f"{what} V20.4S, V0.4H")
        word(f(21, 0, True), f"{what}2 V21.4S, V0.8H")
        word(f(22, 1), f"{what} V22.4S, V1.4H")
        word(f(23, 1, True), f"{what}2 V23.4S, V1.8H")
        wregs = [20, 21, 22, 23]
    emit("\tVLD1.P 64(R7), [V4.S4, V5.S4, V6.S4, V7.S4]")
    for i in range(4):
        emit(f"\tVFMLA V{wregs[i]}.S4, V{4+i}.S4, V{16+i}.S4")
    emit("\tSUB $16, R8, R8")
    emit(f"\tB {name}_loop")
    emit(f"{name}_sum:")
    word(fadd4s(16, 16, 17), "FADD V16.4S, V16.4S, V17.4S")
    word(fadd4s(18, 18, 19), "FADD V18.4S, V18.4S, V19.4S")
    word(fadd4s(16, 16, 18), "FADD V16.4S, V16.4S, V18.4S")
    word(faddp4s(16, 16, 16), "FADDP V16.4S, V16.4S, V16.4S")
    word(faddp2s(16, 16), "FADDP S16, V16.2S")
    emit("\tFMOVS F16, (R3)")
    emit("\tADD $4, R3, R3")
    emit("\tADD R1, R0, R0")
    emit("\tSUB $1, R4, R4")
    emit(f"\tB {name}_row")
    emit(f"{name}_done:")
    emit("\tRET")
    emit()



def sp24rows(dt):
    """func sp24Rows<dt>_neon(val *T, ldv int, idx *uint8, ldi int, x *float32, y *float32, rows, kept int, tbl *[256][16]byte)
    2:4 GEMV, 16 kept values (32 columns, 8 x registers) per step. Each
    index byte covers 4 kept values of 2 groups; it selects a 16-byte row of
    tbl, the byte indices of the 4 matching x values in the two x registers
    of those groups, and one two-register TBL gathers them. No gathers from
    memory; the table is 4 KiB and stays in L1."""
    name = f"sp24Rows{dt}_neon"
    es = 4 if dt == "F32" else 2
    ty = "float32" if dt == "F32" else "uint16"
    declare(name, f"(val *{ty}, ldv int, idx *uint8, ldi int, x *float32, y *float32, rows, kept int, tbl *[256][16]byte)")
    text(name)
    emit("\tMOVD val+0(FP), R0")
    emit("\tMOVD ldv+8(FP), R1")
    emit(f"\tLSL ${es.bit_length()-1}, R1, R1")
    emit("\tMOVD idx+16(FP), R2")
    emit("\tMOVD ldi+24(FP), R3")
    emit("\tMOVD x+32(FP), R4")
    emit("\tMOVD y+40(FP), R5")
    emit("\tMOVD rows+48(FP), R6")
    emit("\tMOVD kept+56(FP), R7")
    emit("\tAND $~15, R7, R7")
    emit("\tMOVD tbl+64(FP), R8")
    emit(f"{name}_row:")
    emit(f"\tCBZ R6, {name}_done")
    emit("\tMOVD R0, R9")   # values
    emit("\tMOVD R2, R10")  # indices
    emit("\tMOVD R4, R11")  # x
    emit("\tMOVD R7, R12")  # kept left
    for i in range(16, 20):
        emit(f"\tVEOR V{i}.B16, V{i}.B16, V{i}.B16")
    emit(f"{name}_loop:")
    emit(f"\tCBZ R12, {name}_sum")
    emit("\tVLD1.P 64(R11), [V0.S4, V1.S4, V2.S4, V3.S4]")
    emit("\tVLD1.P 64(R11), [V4.S4, V5.S4, V6.S4, V7.S4]")
    for b in range(4):
        emit("\tMOVBU.P 1(R10), R13")
        emit("\tADD R13<<4, R8, R14")
        emit(f"\tVLD1 (R14), [V{20+b}.B16]")
        emit(f"\tVTBL V{20+b}.B16, [V{2*b}.B16, V{2*b+1}.B16], V{24+b}.B16")
        if dt == "F32":
            emit(f"\tVLD1.P 16(R9), [V{28+b}.S4]")
        else:
            emit(f"\tVLD1.P 8(R9), [V{28+b}.H4]")
            f = fcvtl if dt == "F16" else shll16
            what = "FCVTL" if dt == "F16" else "SHLL"
            word(f(28 + b, 28 + b), f"{what} V{28+b}.4S, V{28+b}.4H")
        emit(f"\tVFMLA V{28+b}.S4, V{24+b}.S4, V{16+b}.S4")
    emit("\tSUB $16, R12, R12")
    emit(f"\tB {name}_loop")
    emit(f"{name}_sum:")
    word(fadd4s(16, 16, 17), "FADD V16.4S, V16.4S, V17.4S")
    word(fadd4s(18, 18, 19), "FADD V18.4S, V18.4S, V19.4S")
    word(fadd4s(16, 16, 18), "FADD V16.4S, V16.4S, V18.4S")
    word(faddp4s(16, 16, 16), "FADDP V16.4S, V16.4S, V16.4S")
    word(faddp2s(16, 16), "FADDP S16, V16.2S")
    emit("\tFMOVS F16, (R5)")
    emit("\tADD $4, R5, R5")
    emit("\tADD R1, R0, R0")
    emit("\tADD R3, R2, R2")
    emit("\tSUB $1, R6, R6")
    emit(f"\tB {name}_row")
    emit(f"{name}_done:")
    emit("\tRET")
    emit()


def main():
    args = goout.parse_args(__doc__, "kernels_arm64.s", "kernels_decl_arm64.go", [], globals())
    emit("// Code generated by asmgen/gen_arm64.py; DO NOT EDIT.")
    emit()
    emit('#include "textflag.h"')
    emit()
    for dt in ("F32", "F16", "BF16"):
        dotrows(dt)
        sp24rows(dt)
    goout.write(args, out, decls, "gen_arm64.py", "// Declarations of the NEON kernels of kernels_arm64.s.")


main()
