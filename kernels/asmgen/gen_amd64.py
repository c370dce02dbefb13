#!/usr/bin/env python3
"""Generates ../kernels_amd64.s: the AVX2 and AVX-512 kernels of package kernels.

Run from this directory: python3 gen_amd64.py > ../kernels_amd64.s
The kernels come in variants per weight dtype that differ only in how a vector
of weights is loaded and widened to f32, so they are written once here.

Go's assembler (as of Go 1.26) lacks the AVX512-BF16 instructions; VDPBF16PS
is emitted as bytes. The encodings were produced with GNU as
(`vdpbf16ps %zmmX, %zmmY, %zmmZ`) and are checked by the bf16 GEMM tests.
"""

out = []


def emit(s=""):
    out.append(s)


# ---------------------------------------------------------------- weight loads
# load(mem, dst) returns instructions putting 16 (zmm) or 8 (ymm) widened
# weights from mem into register dst.
def load512(dt):
    if dt == "F32":
        return lambda m, d: [f"VMOVUPS {m}, {d}"]
    if dt == "F16":
        return lambda m, d: [f"VCVTPH2PS {m}, {d}"]
    return lambda m, d: [f"VPMOVZXWD {m}, {d}", f"VPSLLD $16, {d}, {d}"]


def load256(dt):
    if dt == "F32":
        return lambda m, d: [f"VMOVUPS {m}, {d}"]
    if dt == "F16":
        return lambda m, d: [f"VCVTPH2PS {m}, {d}"]
    return lambda m, d: [f"VPMOVZXWD {m}, {d}", f"VPSLLD $16, {d}, {d}"]


def esize(dt):
    return 4 if dt == "F32" else 2


def gotype(dt):
    return "float32" if dt == "F32" else "uint16"


# ------------------------------------------------------------------ dot rows
def dotrows(dt, isa):
    """func dotRows<dt>_<isa>(w *T, ldw int, x *float32, y *float32, rows, cols int)
    y[r] = Σ_{j<cols'} w[r*ldw+j]·x[j], cols' = cols rounded down to the
    vector width; four accumulators of four vectors hide the FMA latency."""
    wide = isa == "512"
    V = 16 if wide else 8
    R = "Z" if wide else "Y"
    ld = load512(dt) if wide else load256(dt)
    es = esize(dt)
    name = f"dotRows{dt}_{isa}"
    emit(f"// func {name}(w *{gotype(dt)}, ldw int, x *float32, y *float32, rows, cols int)")
    emit(f"TEXT ·{name}(SB), NOSPLIT, $0-48")
    emit("\tMOVQ w+0(FP), SI")
    emit("\tMOVQ ldw+8(FP), R8")
    emit(f"\tSHLQ ${es.bit_length()-1}, R8")
    emit("\tMOVQ x+16(FP), DI")
    emit("\tMOVQ y+24(FP), DX")
    emit("\tMOVQ rows+32(FP), CX")
    emit("\tMOVQ cols+40(FP), BX")
    emit(f"\tANDQ ${-V}, BX")
    emit("\tMOVQ BX, R9")
    emit(f"\tANDQ ${-4*V}, R9")
    emit(f"{name}_row:")
    emit("\tTESTQ CX, CX")
    emit(f"\tJZ {name}_done")
    for i in range(4):
        emit(f"\tVXORPS {R}{i}, {R}{i}, {R}{i}")
    emit("\tXORQ AX, AX")
    emit(f"{name}_loop4:")
    emit("\tCMPQ AX, R9")
    emit(f"\tJGE {name}_loop1")
    for i in range(4):
        for s in ld(f"{i*V*es}(SI)(AX*{es})", f"{R}{4+i}"):
            emit("\t" + s)
    for i in range(4):
        emit(f"\tVFMADD231PS {i*V*4}(DI)(AX*4), {R}{4+i}, {R}{i}")
    emit(f"\tADDQ ${4*V}, AX")
    emit(f"\tJMP {name}_loop4")
    emit(f"{name}_loop1:")
    emit("\tCMPQ AX, BX")
    emit(f"\tJGE {name}_sum")
    for s in ld(f"(SI)(AX*{es})", f"{R}4"):
        emit("\t" + s)
    emit(f"\tVFMADD231PS (DI)(AX*4), {R}4, {R}0")
    emit(f"\tADDQ ${V}, AX")
    emit(f"\tJMP {name}_loop1")
    emit(f"{name}_sum:")
    emit(f"\tVADDPS {R}1, {R}0, {R}0")
    emit(f"\tVADDPS {R}3, {R}2, {R}2")
    emit(f"\tVADDPS {R}2, {R}0, {R}0")
    if wide:
        emit("\tVEXTRACTF64X4 $1, Z0, Y1")
        emit("\tVADDPS Y1, Y0, Y0")
    emit("\tVEXTRACTF128 $1, Y0, X1")
    emit("\tVADDPS X1, X0, X0")
    emit("\tVMOVHLPS X0, X0, X1")
    emit("\tVADDPS X1, X0, X0")
    emit("\tVMOVSHDUP X0, X1")
    emit("\tVADDSS X1, X0, X0")
    emit("\tVMOVSS X0, (DX)")
    emit("\tADDQ $4, DX")
    emit("\tADDQ R8, SI")
    emit("\tDECQ CX")
    emit(f"\tJMP {name}_row")
    emit(f"{name}_done:")
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()


# ------------------------------------------------------------ dense GEMM
# Row/token pointer registers shared by the GEMM micro-kernels.
WPTR = ["SI", "R8", "R9", "R10"]
XPTR = ["DI", "R11", "R12", "R13"]


def ptr_setup(nw, wsize_shift, nx):
    """Loads w/ldw/x/ldx and sets up nw row pointers and nx token pointers."""
    emit("\tMOVQ w+0(FP), SI")
    emit("\tMOVQ ldw+8(FP), R14")
    emit(f"\tSHLQ ${wsize_shift}, R14")
    for i in range(1, nw):
        emit(f"\tLEAQ (%s)(R14*1), %s" % (WPTR[i - 1], WPTR[i]))
    emit("\tMOVQ x+16(FP), DI")
    emit("\tMOVQ ldx+24(FP), R15")
    emit("\tSHLQ $2, R15")
    for i in range(1, nx):
        emit(f"\tLEAQ (%s)(R15*1), %s" % (XPTR[i - 1], XPTR[i]))


def reduce_store_512(name, toks, rows, acc_of):
    """Sums each zmm accumulator and stores y[t*ldy + r] (adding to it when
    acc != 0). Accumulators of one token are 4 consecutive registers, so
    after folding to xmm, three VHADDPS give the 4 row sums in one xmm."""
    emit("\tMOVQ y+32(FP), DX")
    emit("\tMOVQ ldy+40(FP), CX")
    emit("\tSHLQ $2, CX")
    emit("\tMOVQ acc+56(FP), BX")
    for t in range(toks):
        a = [acc_of(r, t) for r in range(rows)]
        for i in a:
            emit(f"\tVEXTRACTF64X4 $1, Z{i}, Y16")
            emit(f"\tVADDPS Y16, Y{i}, Y{i}")
        for i in a:
            emit(f"\tVEXTRACTF32X4 $1, Y{i}, X16")
            emit(f"\tVADDPS X16, X{i}, X{i}")
        emit(f"\tVHADDPS X{a[1]}, X{a[0]}, X{a[0]}")
        emit(f"\tVHADDPS X{a[3]}, X{a[2]}, X{a[2]}")
        emit(f"\tVHADDPS X{a[2]}, X{a[0]}, X{a[0]}")
        emit("\tTESTQ BX, BX")
        emit(f"\tJZ {name}_st{t}")
        emit(f"\tVADDPS (DX), X{a[0]}, X{a[0]}")
        emit(f"{name}_st{t}:")
        emit(f"\tVMOVUPS X{a[0]}, (DX)")
        if t != toks - 1:
            emit("\tADDQ CX, DX")


def gemm4x4_512(dt):
    """func gemm4x4<dt>_512(w *T, ldw int, x *float32, ldx int, y *float32, ldy int, cols, acc int)
    4 rows × 4 tokens register block: 16 zmm accumulators; per 16 columns 4
    weight vectors and 4 x vectors feed 16 FMAs."""
    name = f"gemm4x4{dt}_512"
    es = esize(dt)
    ld = load512(dt)
    emit(f"// func {name}(w *{gotype(dt)}, ldw int, x *float32, ldx int, y *float32, ldy int, cols, acc int)")
    emit(f"TEXT ·{name}(SB), NOSPLIT, $0-64")
    ptr_setup(4, es.bit_length() - 1, 4)
    emit("\tMOVQ cols+48(FP), BX")
    emit("\tANDQ $-16, BX")
    for i in range(16):
        emit(f"\tVXORPS Z{i}, Z{i}, Z{i}")
    emit("\tXORQ AX, AX")
    emit(f"{name}_loop:")
    emit("\tCMPQ AX, BX")
    emit(f"\tJGE {name}_sum")
    for r in range(4):
        for s in ld(f"({WPTR[r]})(AX*{es})", f"Z{16+r}"):
            emit("\t" + s)
    for t in range(4):
        emit(f"\tVMOVUPS ({XPTR[t]})(AX*4), Z{20+t}")
        for r in range(4):
            emit(f"\tVFMADD231PS Z{20+t}, Z{16+r}, Z{4*t+r}")
    emit("\tADDQ $16, AX")
    emit(f"\tJMP {name}_loop")
    emit(f"{name}_sum:")
    reduce_store_512(name, 4, 4, lambda r, t: 4 * t + r)
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()


VDPBF16PS = {}  # (dst, src1, src2) -> bytes, from GNU as
_enc = """
62 b2 7e 40 52 c4 0 16 20
62 b2 76 40 52 cc 1 17 20
62 b2 6e 40 52 d4 2 18 20
62 b2 66 40 52 dc 3 19 20
62 b2 7e 40 52 e5 4 16 21
62 b2 76 40 52 ed 5 17 21
62 b2 6e 40 52 f5 6 18 21
62 b2 66 40 52 fd 7 19 21
62 32 7e 40 52 c6 8 16 22
62 32 76 40 52 ce 9 17 22
62 32 6e 40 52 d6 10 18 22
62 32 66 40 52 de 11 19 22
62 32 7e 40 52 e7 12 16 23
62 32 76 40 52 ef 13 17 23
62 32 6e 40 52 f7 14 18 23
62 32 66 40 52 ff 15 19 23
"""
for line in _enc.strip().splitlines():
    f = line.split()
    VDPBF16PS[(int(f[6]), int(f[7]), int(f[8]))] = f[:6]


def gemm4x4_bf16dp_512():
    """func gemm4x4BF16DP_512(w *uint16, ldw int, x *uint16, ldx int, y *float32, ldy int, cols, acc int)
    bf16 weights × bf16 activations with VDPBF16PS (AVX512-BF16): each
    instruction does 32 products into 16 f32 lanes, twice the work of an FMA."""
    name = "gemm4x4BF16DP_512"
    emit(f"// func {name}(w *uint16, ldw int, x *uint16, ldx int, y *float32, ldy int, cols, acc int)")
    emit(f"TEXT ·{name}(SB), NOSPLIT, $0-64")
    emit("\tMOVQ w+0(FP), SI")
    emit("\tMOVQ ldw+8(FP), R14")
    emit("\tSHLQ $1, R14")
    for i in range(1, 4):
        emit(f"\tLEAQ ({WPTR[i-1]})(R14*1), {WPTR[i]}")
    emit("\tMOVQ x+16(FP), DI")
    emit("\tMOVQ ldx+24(FP), R15")
    emit("\tSHLQ $1, R15")
    for i in range(1, 4):
        emit(f"\tLEAQ ({XPTR[i-1]})(R15*1), {XPTR[i]}")
    emit("\tMOVQ cols+48(FP), BX")
    emit("\tANDQ $-32, BX")
    for i in range(16):
        emit(f"\tVXORPS Z{i}, Z{i}, Z{i}")
    emit("\tXORQ AX, AX")
    emit(f"{name}_loop:")
    emit("\tCMPQ AX, BX")
    emit(f"\tJGE {name}_sum")
    for r in range(4):
        emit(f"\tVMOVDQU16 ({WPTR[r]})(AX*2), Z{16+r}")
    for t in range(4):
        emit(f"\tVMOVDQU16 ({XPTR[t]})(AX*2), Z{20+t}")
    for t in range(4):
        for r in range(4):
            b = VDPBF16PS[(4 * t + r, 16 + r, 20 + t)]
            emit("\t" + "; ".join(f"BYTE $0x{x}" for x in b) + f" // VDPBF16PS Z{20+t}, Z{16+r}, Z{4*t+r}")
    emit("\tADDQ $32, AX")
    emit(f"\tJMP {name}_loop")
    emit(f"{name}_sum:")
    reduce_store_512(name, 4, 4, lambda r, t: 4 * t + r)
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()


def main():
    emit("// Code generated by asmgen/gen_amd64.py; DO NOT EDIT.")
    emit()
    emit('#include "textflag.h"')
    emit()
    for dt in ("F32", "F16", "BF16"):
        dotrows(dt, "512")
        dotrows(dt, "256")
    for dt in ("F32", "F16", "BF16"):
        gemm4x4_512(dt)
    gemm4x4_bf16dp_512()
    print("\n".join(out))


main()
