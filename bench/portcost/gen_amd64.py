#!/usr/bin/env python3
"""Writes portcost_amd64.s and loops_amd64.go: AVX-512 loop bodies that
run on operands in registers and L1, so that the core's execution ports,
not memory, set their speed. They measure what bounds a 2:4 product at a
few tokens on a given core (docs/benchmarks.md, "Serving"):

- op pairs, 12 independent chains each: an FMA alone, an FMA fed by a
  permute (VPERMPS), by an in-lane permute (VPERMILPS) and by an f16→f32
  conversion (VCVTPH2PS);
- the inner step of the dense 4×4 f16 GEMM kernel (4 rows × 4 tokens ×
  16 columns: 4 conversions, 4 x loads, 16 FMAs) and of the 2:4 4×4 f16
  kernel (4 rows × 4 tokens × 32 columns: per row a 3-op index build and a
  conversion, per row and token a two-table permute and an FMA), taken
  from kernels/asmgen/gen_amd64.py as it generates them, without their
  prefetches;
- the same 2:4 layout with 4 rows × 8 tokens over 16 columns, two rows
  sharing each register (lanes 0–7 and 8–15), so that one single-table
  VPERMPS per token feeds two rows: the pairing (a masked index broadcast,
  an insert of the second row's values) costs what it saves;
- the inner step of a 2:4 layout the project does not use, rows stored in
  interleaved pairs so that one in-lane VPERMILPS picks both rows'
  activations (2 row pairs × 8 tokens × 16 columns), with f16 and with
  f32 weights;
- a shuffle-free 2:4 step for 8 tokens (activations laid out per group for
  every index nibble, kept values broadcast as f32 pairs): two loads and
  two scalar operations per FMA instead of a shuffle, slower than dense.

Run: python3 gen_amd64.py (go generate ./bench/portcost)."""

import importlib.util
import os
import sys

# The kernels' generator, for the project's own loop bodies (kernel_step).
_asmgen = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "kernels", "asmgen")
sys.path.insert(0, _asmgen)  # its goout module
_spec = importlib.util.spec_from_file_location("kernels_gen_amd64", os.path.join(_asmgen, "gen_amd64.py"))
kgen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kgen)

UNITS = {}  # name -> (body lines, dense-equivalent multiply-adds per pass, doc)


def pairs(first):
    out = []
    for i in range(12):
        if first:
            out.append(first(i))
        src = f"Z{16 + i % 4}" if first else "Z21"
        out.append(f"VFMADD231PS Z20, {src}, Z{i}")
    return out


# Op pairs: 12 accumulators (Z0–Z11) so that FMA latency does not bound them.
UNITS["fma"] = (pairs(None), 12 * 16, "12 FMAs")
UNITS["permFMA"] = (pairs(lambda i: f"VPERMPS Z22, Z{28 + i % 2}, Z{16 + i % 4}"), 12 * 16, "12 × (VPERMPS, FMA)")
UNITS["permilFMA"] = (pairs(lambda i: f"VPERMILPS Z{28 + i % 2}, Z22, Z{16 + i % 4}"), 12 * 16, "12 × (VPERMILPS, FMA)")
UNITS["cvtFMA"] = (pairs(lambda i: f"VCVTPH2PS {32 * (i % 4)}(SI), Z{16 + i % 4}"), 12 * 16, "12 × (VCVTPH2PS from memory, FMA)")


def kernel_step(fn, name):
    """The loop body of the project's kernel fn(\"F16\") as
    kernels/asmgen/gen_amd64.py writes it: the lines between the loop's
    exit test and its index step, prefetches left out. The harness points
    every register it addresses into the buffer and keeps AX (the column
    index) at 0."""
    kgen.out.clear()
    fn("F16")
    lines = [l.strip() for l in kgen.out]
    first = lines.index(f"JGE {name}_sum") + 1
    last = lines.index("ADDQ $16, AX", first)
    return [l for l in lines[first:last] if not l.startswith("PREFETCH")]


UNITS["dense4x4"] = (kernel_step(kgen.gemm4x4_512, "gemm4x4F16_512"), 4 * 4 * 16, "dense 4×4 f16 GEMM step (the project's kernel)")
UNITS["sp24x4x4"] = (kernel_step(kgen.sp24gemm4x4_512, "sp24Gemm4x4F16_512"), 4 * 4 * 32, "2:4 4×4 f16 GEMM step (the project's kernel)")


def rows_x8(setup, permute):
    """2 register rows (zi: lane indices, zw: values, set up by setup(p, zi,
    zw)) × 8 tokens, each token's 16-column window in Z16+t, one permute
    (permute(zi, t, zt)) and one FMA per register row and token."""
    b = [f"VMOVUPS {64 * t}(DI), Z{16 + t}" for t in range(8)]
    tmp = 0
    for p in range(2):
        zi, zw = 24 + 2 * p, 25 + 2 * p
        b += setup(p, zi, zw)
        for t in range(8):
            zt = 28 + tmp % 2
            tmp += 1
            b += [permute(zi, t, zt), f"VFMADD231PS Z{zw}, Z{zt}, Z{8 * p + t}"]
    return b


def pairs2x8(cvt):
    """Rows stored in interleaved pairs: a pair's index word broadcast and
    shifted is already the in-lane VPERMILPS control."""
    return rows_x8(lambda p, zi, zw: [
        f"VPBROADCASTD {4 * p}(R8), Z{zi}",
        f"VPSRLVD Z31, Z{zi}, Z{zi}",
        f"VCVTPH2PS {32 * p}(SI), Z{zw}" if cvt else f"VMOVUPS {64 * p}(SI), Z{zw}"],
        lambda zi, t, zt: f"VPERMILPS Z{zi}, Z{16 + t}, Z{zt}")


UNITS["pairs2x8"] = (pairs2x8(True), 2 * 2 * 8 * 16, "2:4 in row pairs, 2 pairs × 8 tokens, f16")
UNITS["pairs2x8F32"] = (pairs2x8(False), 2 * 2 * 8 * 16, "the same with f32 weights (no conversion)")


def sp24x4x8():
    """4 rows × 8 tokens over a 16-column window, the project's 2:4 layout:
    rows in pairs, lanes 0–7 one row's 8 kept values and 8–15 the next
    row's, so that one single-table VPERMPS per token feeds both."""
    return rows_x8(lambda p, zi, zw: [
        f"VPBROADCASTW {4 * p}(R8), Z{zi}",
        f"VPBROADCASTW {4 * p + 64}(R8), K1, Z{zi}",
        f"VPSRLVD Z30, Z{zi}, Z{zi}",
        f"VPTERNLOGD.BCST $0xEC, (R8), Z31, Z{zi}",
        f"VMOVDQU32 {32 * p}(SI), X{zw}",
        f"VINSERTI32X4 $1, {32 * p + 256}(SI), Y{zw}, Y{zw}",
        f"VCVTPH2PS Y{zw}, Z{zw}"],
        lambda zi, t, zt: f"VPERMPS Z{16 + t}, Z{zi}, Z{zt}")


UNITS["sp24x4x8"] = (sp24x4x8(), 4 * 8 * 16, "2:4 4×8 f16 step, 16 columns, the project's layout with rows paired in the lanes")


def pairsT8():
    """A shuffle-free 2:4 step for 8 tokens (not in the project): the
    activations of each 4-column group are laid out once per call for all
    16 index nibbles, 8 tokens × the nibble's 2 columns interleaved (64 B,
    1 KiB a group); the kept values are converted to an f32 copy once per
    call (one VCVTPH2PS and store per 16 here). Per row and group: the
    nibble ×64 from the row's index word (RORX, AND), the row's 2 values
    broadcast as one 64-bit pair (VBROADCASTSD, a load) and one FMA reading
    the matching 64 B. 8 rows × 8 groups (32 columns) a pass."""
    W = ["CX", "R9", "R10", "R11", "R12", "R13", "R14", "R15"]
    b = [f"MOVL {4 * r}(R8), {W[r]}" for r in range(8)]
    for i in range(8):
        b += [f"VCVTPH2PS {32 * i}(SI), Z24", f"VMOVUPS Z24, {512 + 64 * i}(SI)"]
    n = 0
    for g in range(8):
        for r in range(8):
            tmp = ["AX", "DX"][n % 2]
            zw = 16 + n % 8
            n += 1
            rot = (4 * g - 6) % 32
            b += [f"RORXL ${rot}, {W[r]}, {tmp}",
                  f"ANDL $0x3c0, {tmp}",
                  f"VBROADCASTSD {8 * g + 64 * r}(SI), Z{zw}",
                  f"VFMADD231PS {1024 * g}(DI)({tmp}*1), Z{zw}, Z{r}"]
    return b


UNITS["pairsT8"] = (pairsT8(), 8 * 8 * 4 * 8, "2:4, 8 tokens in lanes with column pairs: no shuffle per FMA")


def main():
    s = ["// Code generated by gen_amd64.py; DO NOT EDIT.", "", '#include "textflag.h"', ""]
    g = ["// Code generated by gen_amd64.py; DO NOT EDIT.", "", "package portcost", "",
         "// units are the loop bodies, in the order the benchmark runs them.",
         "var units = []unit{"]
    for name, (lines, macs, doc) in UNITS.items():
        s.append(f"// func {name}(n int, p *float32)")
        s.append(f"TEXT ·{name}(SB), NOSPLIT, $0-16")
        s.append("\tMOVQ n+0(FP), BX")  # BX: the pass count (the kernels' bodies leave it alone)
        s.append("\tMOVQ p+8(FP), SI")  # weights
        s.append("\tLEAQ 1024(SI), DI")  # activations
        s.append("\tLEAQ 2048(SI), R8")  # 2:4 index words (zero: every kept value from column 0 of its group)
        # The other rows' weights, index words and tokens the kernels'
        # bodies address (the kernels' R8 is a row of weights).
        for off, r in zip((256, 512, 768, 1280, 1536, 1792, 2304, 2560, 2816), ("R9", "R10", "R11", "R12", "R13", "R14", "R15", "DX", "CX")):
            s.append(f"\tLEAQ {off}(SI), {r}")
        for z in (29, 30, 31):
            s.append(f"\tVPXORD Z{z}, Z{z}, Z{z}")
        s.append("\tMOVL $0xffff0000, AX")  # K1: the upper 16 words (sp24x4x8's second row)
        s.append("\tKMOVD AX, K1")
        s.append("\tXORL AX, AX")  # the kernels' column index
        s.append(f"{name}_loop:")
        s += ["\t" + l for l in lines]
        s.append("\tDECQ BX")
        s.append(f"\tJNZ {name}_loop")
        s.append("\tVZEROUPPER")
        s.append("\tRET")
        s.append("")
        g.append(f'\t{{"{name}", {name}, {macs}, "{doc}"}},')
    g.append("}")
    g.append("")
    for name in UNITS:
        g += ["//go:noescape", f"func {name}(n int, p *float32)", ""]
    open("portcost_amd64.s", "w").write("\n".join(s))
    open("loops_amd64.go", "w").write("\n".join(g))


if __name__ == "__main__":
    main()
