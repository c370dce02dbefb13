#!/usr/bin/env python3
"""Generates ../kernels_amd64.s: the AVX2 and AVX-512 kernels of package kernels.

`go generate ./kernels/...` runs it (see ../generate.go) and writes
../kernels_amd64.s and its Go declarations, ../kernels_decl_amd64.go.
`python3 gen_amd64.py --help` lists the tuning parameters; their defaults are
the committed choice, and CI checks that the committed files are what the
defaults generate.
The kernels come in variants per weight dtype that differ only in how a vector
of weights is loaded and widened to f32, so they are written once here.

Go's assembler (as of Go 1.26) lacks the AVX512-BF16 instructions; VDPBF16PS
is emitted as bytes. The encodings were produced with GNU as
(`vdpbf16ps %zmmX, %zmmY, %zmmZ`) and are checked by the bf16 GEMM tests.
"""

out = []

import goout

# Tuning parameters. Each is a command-line flag of this generator (see
# PARAMS and main); the defaults are the values chosen on the development
# machine, and `go generate` uses them. The measurements behind them are in
# docs/benchmarks.md ("Kernel design choices").
#
# PF_DIST: software prefetch distance, in bytes ahead of the weight stream,
# of the GEMV kernels. The hardware prefetcher alone leaves DRAM bandwidth
# unused when a loop spends several instructions per cache line.
PF_DIST = 4096
# PF_INSN: the prefetch instruction of the GEMV kernels. PREFETCHT2 (into
# L2) decoded the 1B shape 1-7 % faster than PREFETCHT0 in 7 of 8 alternating
# pairs (docs/benchmarks.md, "Decode per core"); a T0 prefetch holds one of
# the core's L1 fill buffers until its line arrives, which may be what capped
# our per-core stream in the state issue 17 reports.
PF_INSN = "PREFETCHT2"
# G4_PF_DIST: the prefetch distance of the 4-row dense GEMV of wide rows,
# shorter so that 4 streams' lines in flight do not evict x, which nearly
# fills L1 at 11008 columns.
G4_PF_DIST = 1536
# DENSE_PF_ROWS: an experimental rows-ahead prefetch for dense GEMV (0: off,
# PF_DIST bytes ahead instead).
DENSE_PF_ROWS = 0
# SP_PF_ROWS: whether the 2:4 GEMV kernels take a rows-ahead prefetch
# argument (the distance itself is set per call: at least 2 rows and 8 KiB;
# 0 removes the prefetch).
SP_PF_ROWS = 2
# SP_T6_PF: the 6-row tokens-in-lanes 2:4 kernel prefetches the next 6-row
# block's values and index words at the same columns (1) or leaves that to
# the hardware (0); it pays once the weights no longer fit in L2.
SP_T6_PF = 1
# GEMM_PF: the 4-row × 4-token dense GEMM kernels prefetch the same columns
# of the next 4 rows (the next register block) while they compute (1), or
# leave the weight stream to the hardware prefetcher (0). Small batches
# (decode steps of a few sequences) read each weight once per 4 tokens, so
# the kernel runs at the memory's pace, not the FMAs'.
GEMM_PF = 1
# SP_GEMM_PF: the 4-row × 4-token 2:4 GEMM kernels prefetch each row's values
# this many bytes ahead (and its index words a quarter of that), or not (0).
# A decode step of 8 sequences of the 1B shape's 2:4 file: 120–149 ms at
# 1024, 142–147 at 512, 160–163 at 2048 and 161–166 without (alternating).
SP_GEMM_PF = 1024

# SP_GEMM_XREG: the 4-row × 4-token 2:4 GEMM kernels load each token's
# 32-column x window into registers once per step and permute copies of it
# for the 4 rows (1), or reload the window for every (row, token) pair (0):
# two loads per FMA, which bounds the kernel at about one FMA a cycle.
SP_GEMM_XREG = 1
# REDUCE_NET: the 4×4 GEMM kernels sum their 16 accumulators with one
# shuffle-and-add network over all of them (1: 30 shuffles and 15 adds,
# every lane doing work), or fold each to xmm and finish with VHADDPS per
# token (0: about 100 operations). It matters where the reduction is a
# large part of a call: the 128-column blocks of the ARMOR transforms at a
# few tokens.
REDUCE_NET = 1

_DEFAULTS = {k: v for k, v in dict(globals()).items() if k.isupper()}

# name, type, help: the flags that set the parameters above.
PARAMS = [
    ("PF_DIST", int, "GEMV software prefetch distance in bytes"),
    ("PF_INSN", str, "prefetch instruction"),
    ("G4_PF_DIST", int, "prefetch distance in bytes of the 4-row dense GEMV of wide rows"),
    ("DENSE_PF_ROWS", int, "dense GEMV prefetch in rows ahead (0: PF_DIST bytes ahead)"),
    ("SP_PF_ROWS", int, "2:4 GEMV rows-ahead prefetch (0: none)"),
    ("SP_T6_PF", int, "6-row tokens-in-lanes 2:4 kernel prefetches the next block (1) or not (0)"),
    ("GEMM_PF", int, "4x4 dense GEMM kernels prefetch the next 4 rows (1) or not (0)"),
    ("SP_GEMM_PF", int, "4x4 2:4 GEMM kernels' prefetch distance in bytes of values (0: none)"),
    ("SP_GEMM_XREG", int, "4x4 2:4 GEMM kernels keep the x windows in registers (1) or reload them per row (0)"),
    ("REDUCE_NET", int, "4x4 GEMM kernels reduce with one shuffle network (1) or per token with VHADDPS (0)"),
]


def emit(s=""):
    out.append(s)


# Every kernel is declared (declare: its Go signature, emitted as a comment)
# right before its TEXT line (text: the argument size computed from that
# signature); main writes the declarations to the Go file.
declare, text, decls = goout.kernel_decls(emit)


# ------------------------------------------------------- horizontal sums
def hsum(r, wide, t=1, op="ADD"):
    """Folds the 16 (wide: Z{r}) or 8 (Y{r}) f32 lanes of register r into
    lane 0 of X{r} with op (ADD or MAX); X{t} is scratch."""
    if wide:
        emit(f"\tVEXTRACTF64X4 $1, Z{r}, Y{t}")
        emit(f"\tV{op}PS Y{t}, Y{r}, Y{r}")
    emit(f"\tVEXTRACTF128 $1, Y{r}, X{t}")
    emit(f"\tV{op}PS X{t}, X{r}, X{r}")
    emit(f"\tVMOVHLPS X{r}, X{r}, X{t}")
    emit(f"\tV{op}PS X{t}, X{r}, X{r}")
    emit(f"\tVMOVSHDUP X{r}, X{t}")
    emit(f"\tV{op}SS X{t}, X{r}, X{r}")


def hsum4(a, wide, t):
    """Sums each of the four accumulators a[0..3] (zmm if wide, else ymm)
    and leaves the four sums in X{a[0]}, lane k holding a[k]'s: fold each to
    xmm, then three VHADDPS. X{t} is scratch (t ≥ 16 needs the EVEX
    extract)."""
    if wide:
        for i in a:
            emit(f"\tVEXTRACTF64X4 $1, Z{i}, Y{t}")
            emit(f"\tVADDPS Y{t}, Y{i}, Y{i}")
    ext = "VEXTRACTF32X4" if t >= 16 else "VEXTRACTF128"
    for i in a:
        emit(f"\t{ext} $1, Y{i}, X{t}")
        emit(f"\tVADDPS X{t}, X{i}, X{i}")
    emit(f"\tVHADDPS X{a[1]}, X{a[0]}, X{a[0]}")
    emit(f"\tVHADDPS X{a[3]}, X{a[2]}, X{a[2]}")
    emit(f"\tVHADDPS X{a[2]}, X{a[0]}, X{a[0]}")


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
    declare(name, f"(w *{gotype(dt)}, ldw int, x *float32, y *float32, rows, cols int)")
    text(name)
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
    if DENSE_PF_ROWS:
        emit(f"\tLEAQ (SI)(R8*{DENSE_PF_ROWS}), R10")
    emit(f"{name}_loop4:")
    emit("\tCMPQ AX, R9")
    emit(f"\tJGE {name}_loop1")
    if DENSE_PF_ROWS:
        for line in range(0, 4 * V * es, 64):
            emit(f"\t{PF_INSN} {line}(R10)(AX*{es})")
    elif PF_DIST:
        for line in range(0, 4 * V * es, 64):
            emit(f"\t{PF_INSN} {PF_DIST+line}(SI)(AX*{es})")
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
    hsum(0, wide)
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
    emit("\tMOVQ y+32(FP), DX")
    emit("\tMOVQ ldy+40(FP), CX")
    emit("\tSHLQ $2, CX")
    emit("\tMOVQ acc+56(FP), BX")
    reduce_body(name, acc_of)


def reduce_net(acc_of):
    """Sums each of the 16 zmm accumulators acc_of(r, t) (r, t < 4) and
    leaves the sums of token t in 128-bit lane t of Z{acc_of(0, 0)}, row r
    in element r. Three levels of shuffle-and-add, each pairing registers
    so that every lane of every add does useful work:
      1. tokens t, t+1 of a row: 256-bit halves of both → [t folded to 8 | t+1 folded to 8];
      2. the two pairs of a row → 128-bit lane t holds 4 partial sums of (r, t);
      3. the four rows, within 128-bit lanes → element r of lane t is the sum of (r, t).
    Z16–Z31 are scratch."""
    tmp = [16]

    def t_():
        z = tmp[0]
        tmp[0] = 16 + (tmp[0] - 15) % 16
        return z

    def shuf_add(op, imm_lo, imm_hi, a, b, dst):
        p, q = t_(), t_()
        emit(f"\t{op} ${imm_lo:#x}, Z{b}, Z{a}, Z{p}")
        emit(f"\t{op} ${imm_hi:#x}, Z{b}, Z{a}, Z{q}")
        emit(f"\tVADDPS Z{q}, Z{p}, Z{dst}")

    for r in range(4):
        for t in (0, 2):
            # [a.L0, a.L1, b.L0, b.L1] + [a.L2, a.L3, b.L2, b.L3]
            shuf_add("VSHUFF64X2", 0x44, 0xEE, acc_of(r, t), acc_of(r, t + 1), acc_of(r, t))
        # [s01.L0, s01.L2, s23.L0, s23.L2] + [s01.L1, s01.L3, s23.L1, s23.L3]
        shuf_add("VSHUFF32X4", 0x88, 0xDD, acc_of(r, 0), acc_of(r, 2), acc_of(r, 0))
    for r in (0, 2):
        # per 128-bit lane: [a.0, a.1, b.0, b.1] + [a.2, a.3, b.2, b.3]
        shuf_add("VSHUFPS", 0x44, 0xEE, acc_of(r, 0), acc_of(r + 1, 0), acc_of(r, 0))
    # per 128-bit lane: [u.0, u.2, v.0, v.2] + [u.1, u.3, v.1, v.3]
    shuf_add("VSHUFPS", 0x88, 0xDD, acc_of(0, 0), acc_of(2, 0), acc_of(0, 0))


def reduce_body(name, acc_of, toks=4, rows=4):
    """Sums each zmm accumulator and stores y[t*ldy + r] (adding to it when
    acc != 0). With REDUCE_NET, one shuffle network (reduce_net) leaves
    token t's 4 row sums in 128-bit lane t of one register; otherwise the
    accumulators of one token are folded to xmm and three VHADDPS give the
    4 row sums in one xmm. Expects DX = &y[0], CX = ldy in bytes, BX = acc."""
    if REDUCE_NET and toks == 4 and rows == 4:
        reduce_net(acc_of)
        z0 = acc_of(0, 0)
        # Lanes 1–3 go to low registers (summed already; the VEX forms
        # below take them) before the VEX add on X{z0} zeroes Z{z0}'s
        # upper lanes.
        xs = [z0] + [acc_of(1, t) for t in range(1, toks)]
        for t in range(1, toks):
            emit(f"\tVEXTRACTF32X4 ${t}, Z{z0}, X{xs[t]}")
        for t in range(toks):
            x = xs[t]
            emit("\tTESTQ BX, BX")
            emit(f"\tJZ {name}_st{t}")
            emit(f"\tVADDPS (DX), X{x}, X{x}")
            emit(f"{name}_st{t}:")
            emit(f"\tVMOVUPS X{x}, (DX)")
            if t != toks - 1:
                emit("\tADDQ CX, DX")
        return
    for t in range(toks):
        a = [acc_of(r, t) for r in range(rows)]
        hsum4(a, True, 16)
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
    declare(name, f"(w *{gotype(dt)}, ldw int, x *float32, ldx int, y *float32, ldy int, cols, acc int)")
    text(name)
    ptr_setup(4, es.bit_length() - 1, 4)
    pf = ["DX", "CX", "R15", "R14"]
    if GEMM_PF:
        # Rows 4..7 (the next register block); prefetches past the end of
        # the matrix are harmless hints. DX and CX are reloaded for the
        # stores, R14/R15 are free once the pointers are set.
        emit("\tLEAQ (R10)(R14*1), DX")
        emit("\tLEAQ (DX)(R14*1), CX")
        emit("\tLEAQ (CX)(R14*1), R15")
        emit("\tLEAQ (R15)(R14*1), R14")
    emit("\tMOVQ cols+48(FP), BX")
    emit("\tANDQ $-16, BX")
    for i in range(16):
        emit(f"\tVXORPS Z{i}, Z{i}, Z{i}")
    emit("\tXORQ AX, AX")
    emit(f"{name}_loop:")
    emit("\tCMPQ AX, BX")
    emit(f"\tJGE {name}_sum")
    if GEMM_PF:
        for r in pf:
            # Into L1: the next block is used a few hundred cycles later.
            emit(f"\tPREFETCHT0 ({r})(AX*{es})")
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
    declare(name, "(w *uint16, ldw int, x *uint16, ldx int, y *float32, ldy int, cols, acc int)")
    text(name)
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



# ------------------------------------------------------------ 2:4 sparse
# Layout (see docs/sparse24-kernels.md): per row, cols/2 kept values; kept value k sits
# in group k/2 (x columns 4(k/2)..4(k/2)+3) at in-group position p_k, the
# 2-bit field at bits 2(k%4) of index byte k/4 of the row.


def sp24_consts():
    emit("// sp24 AVX-512: per-lane shift of the broadcast 32-bit index word,")
    emit("// base x index of each kept value's group (4·(lane/2)), and the 2-bit mask.")
    for i in range(16):
        emit(f"DATA sp24shift512<>+{4*i}(SB)/4, ${2*i}")
    emit("GLOBL sp24shift512<>(SB), RODATA|NOPTR, $64")
    for i in range(16):
        emit(f"DATA sp24base512<>+{4*i}(SB)/4, ${4*(i//2)}")
    emit("GLOBL sp24base512<>(SB), RODATA|NOPTR, $64")
    emit("DATA sp24three<>+0(SB)/4, $3")
    emit("GLOBL sp24three<>(SB), RODATA|NOPTR, $4")
    emit("// sp24 AVX2: per-lane shift of the broadcast 16-bit index word.")
    for i in range(8):
        emit(f"DATA sp24shift256<>+{4*i}(SB)/4, ${2*i}")
    emit("GLOBL sp24shift256<>(SB), RODATA|NOPTR, $32")
    emit()


def sp24_idx512(mem, z):
    """z = x index (0..31 within the 32-column window) of 16 kept values."""
    emit(f"\tVPBROADCASTD {mem}, {z}")
    emit(f"\tVPSRLVD Z31, {z}, {z}")
    emit(f"\tVPTERNLOGD $0xEA, Z30, Z29, {z}")  # (z & 3) | base


def sp24_load_consts512():
    emit("\tVMOVDQU32 sp24shift512<>(SB), Z31")
    emit("\tVMOVDQU32 sp24base512<>(SB), Z30")
    emit("\tVPBROADCASTD sp24three<>(SB), Z29")


def sp24rows_512(dt):
    """func sp24Rows<dt>_512(val *T, ldv int, idx *uint8, ldi int, x *float32, y *float32, rows, kept, pfrows int)
    y[r] = Σ_{k<kept'} val[r,k]·x[4(k/2)+p(r,k)], kept' = kept rounded down to
    16. Per 16 kept values: one 32-bit index word becomes 16 lane indices
    (broadcast, variable shift, ternary-logic and/or with the group base)
    and VPERMI2PS picks the matching x values out of two zmm (32 columns)."""
    name = f"sp24Rows{dt}_512"
    es = esize(dt)
    ld = load512(dt)
    declare(name, f"(val *{gotype(dt)}, ldv int, idx *uint8, ldi int, x *float32, y *float32, rows, kept, pfrows int)")
    text(name)
    emit("\tMOVQ val+0(FP), SI")
    emit("\tMOVQ ldv+8(FP), R8")
    emit(f"\tSHLQ ${es.bit_length()-1}, R8")
    emit("\tMOVQ idx+16(FP), R10")
    emit("\tMOVQ ldi+24(FP), R11")
    emit("\tMOVQ x+32(FP), DI")
    emit("\tMOVQ y+40(FP), DX")
    emit("\tMOVQ rows+48(FP), CX")
    emit("\tMOVQ kept+56(FP), BX")
    emit("\tANDQ $-16, BX")
    emit("\tMOVQ BX, R9")
    emit("\tANDQ $-64, R9")
    if SP_PF_ROWS:
        # R12, R14: the values and indices pfrows rows ahead; they advance
        # with SI and R10.
        emit("\tMOVQ pfrows+64(FP), R12")
        emit("\tIMULQ R8, R12")
        emit("\tADDQ SI, R12")
        emit("\tMOVQ pfrows+64(FP), R14")
        emit("\tIMULQ R11, R14")
        emit("\tADDQ R10, R14")
    sp24_load_consts512()
    emit(f"{name}_row:")
    emit("\tTESTQ CX, CX")
    emit(f"\tJZ {name}_done")
    for i in range(4):
        emit(f"\tVXORPS Z{i}, Z{i}, Z{i}")
    emit("\tXORQ AX, AX")
    emit("\tXORQ R13, R13")

    emit(f"{name}_loop4:")
    emit("\tCMPQ AX, R9")
    emit(f"\tJGE {name}_loop1")
    if SP_PF_ROWS:
        # Prefetch the same columns SP_PF_ROWS rows ahead: right for whole
        # rows (rows are contiguous) and for the column strips of wide
        # matrices (the next rows of the strip are what comes next).
        for line in range(0, 64 * es, 64):
            emit(f"\t{PF_INSN} {line}(R12)(AX*{es})")
        emit(f"\t{PF_INSN} (R14)(R13*1)")
    for i in range(4):
        sp24_idx512(f"{4*i}(R10)(R13*1)", f"Z{4+i}")
        emit(f"\tVMOVUPS {128*i}(DI)(AX*8), Z{8+i}")
        emit(f"\tVPERMI2PS {128*i+64}(DI)(AX*8), Z{8+i}, Z{4+i}")
        for s_ in ld(f"{16*es*i}(SI)(AX*{es})", f"Z{12+i}"):
            emit("\t" + s_)
        emit(f"\tVFMADD231PS Z{12+i}, Z{4+i}, Z{i}")
    emit("\tADDQ $64, AX")
    emit("\tADDQ $16, R13")
    emit(f"\tJMP {name}_loop4")
    emit(f"{name}_loop1:")
    emit("\tCMPQ AX, BX")
    emit(f"\tJGE {name}_sum")
    sp24_idx512("(R10)(R13*1)", "Z4")
    emit("\tVMOVUPS (DI)(AX*8), Z8")
    emit("\tVPERMI2PS 64(DI)(AX*8), Z8, Z4")
    for s_ in ld(f"(SI)(AX*{es})", "Z12"):
        emit("\t" + s_)
    emit("\tVFMADD231PS Z12, Z4, Z0")
    emit("\tADDQ $16, AX")
    emit("\tADDQ $4, R13")
    emit(f"\tJMP {name}_loop1")
    emit(f"{name}_sum:")
    emit("\tVADDPS Z1, Z0, Z0")
    emit("\tVADDPS Z3, Z2, Z2")
    emit("\tVADDPS Z2, Z0, Z0")
    hsum(0, True)
    emit("\tVMOVSS X0, (DX)")
    emit("\tADDQ $4, DX")
    emit("\tADDQ R8, SI")
    emit("\tADDQ R11, R10")
    if SP_PF_ROWS:
        emit("\tADDQ R8, R12")
        emit("\tADDQ R11, R14")
    emit("\tDECQ CX")
    emit(f"\tJMP {name}_row")
    emit(f"{name}_done:")
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()


def sp24rows_256(dt):
    """func sp24Rows<dt>_256(val *T, ldv int, idx *uint8, ldi int, x *float32, y *float32, rows, kept int)
    AVX2 version, 8 kept values (16 columns, groups g0..g3) per step. AVX2
    has no two-table permute, so x is loaded as A = [g0 | g2] and B = [g1 | g3]
    (one 128-bit lane per group); the kept values of the even groups sit in
    lanes 0,1,4,5 and those of the odd groups in lanes 2,3,6,7, so one
    in-lane VPERMILPS of A and one of B (which use only the low 2 bits of
    each index, the in-group position) and a constant blend select them."""
    name = f"sp24Rows{dt}_256"
    es = esize(dt)
    ld = load256(dt)
    declare(name, f"(val *{gotype(dt)}, ldv int, idx *uint8, ldi int, x *float32, y *float32, rows, kept, pfrows int)")
    text(name)
    emit("\tMOVQ val+0(FP), SI")
    emit("\tMOVQ ldv+8(FP), R8")
    emit(f"\tSHLQ ${es.bit_length()-1}, R8")
    emit("\tMOVQ idx+16(FP), R10")
    emit("\tMOVQ ldi+24(FP), R11")
    emit("\tMOVQ x+32(FP), DI")
    emit("\tMOVQ y+40(FP), DX")
    emit("\tMOVQ rows+48(FP), CX")
    emit("\tMOVQ kept+56(FP), BX")
    emit("\tANDQ $-8, BX")
    emit("\tMOVQ BX, R9")
    emit("\tANDQ $-16, R9")
    if SP_PF_ROWS:
        emit("\tMOVQ pfrows+64(FP), R12")
        emit("\tIMULQ R8, R12")
        emit("\tADDQ SI, R12")
        emit("\tMOVQ pfrows+64(FP), R14")
        emit("\tIMULQ R11, R14")
        emit("\tADDQ R10, R14")
    emit("\tVMOVDQU sp24shift256<>(SB), Y15")
    emit(f"{name}_row:")
    emit("\tTESTQ CX, CX")
    emit(f"\tJZ {name}_done")
    for i in range(2):
        emit(f"\tVXORPS Y{i}, Y{i}, Y{i}")
    emit("\tXORQ AX, AX")
    emit("\tXORQ R13, R13")

    def unit(i, xo, io, wo, acc):
        b = 4 + 4 * i
        emit(f"\tVPBROADCASTW {io}(R10)(R13*1), Y{b}")
        emit(f"\tVPSRLVD Y15, Y{b}, Y{b}")
        emit(f"\tVMOVUPS {xo}(DI)(AX*8), X{b+1}")
        emit(f"\tVINSERTF128 $1, {xo+32}(DI)(AX*8), Y{b+1}, Y{b+1}")
        emit(f"\tVMOVUPS {xo+16}(DI)(AX*8), X{b+2}")
        emit(f"\tVINSERTF128 $1, {xo+48}(DI)(AX*8), Y{b+2}, Y{b+2}")
        emit(f"\tVPERMILPS Y{b}, Y{b+1}, Y{b+1}")
        emit(f"\tVPERMILPS Y{b}, Y{b+2}, Y{b+2}")
        emit(f"\tVBLENDPS $0xCC, Y{b+2}, Y{b+1}, Y{b+1}")
        for s_ in ld(f"{wo}(SI)(AX*{es})", f"Y{b+3}"):
            emit("\t" + s_)
        emit(f"\tVFMADD231PS Y{b+3}, Y{b+1}, Y{acc}")

    emit(f"{name}_loop2:")
    emit("\tCMPQ AX, R9")
    emit(f"\tJGE {name}_loop1")
    if SP_PF_ROWS:
        for line in range(0, 16 * es, 64):
            emit(f"\t{PF_INSN} {line}(R12)(AX*{es})")
        emit(f"\t{PF_INSN} (R14)(R13*1)")
    unit(0, 0, 0, 0, 0)
    unit(1, 64, 2, 8 * es, 1)
    emit("\tADDQ $16, AX")
    emit("\tADDQ $4, R13")
    emit(f"\tJMP {name}_loop2")
    emit(f"{name}_loop1:")
    emit("\tCMPQ AX, BX")
    emit(f"\tJGE {name}_sum")
    unit(0, 0, 0, 0, 0)
    emit("\tADDQ $8, AX")
    emit("\tADDQ $2, R13")
    emit(f"\tJMP {name}_loop1")
    emit(f"{name}_sum:")
    emit("\tVADDPS Y1, Y0, Y0")
    hsum(0, False)
    emit("\tVMOVSS X0, (DX)")
    emit("\tADDQ $4, DX")
    emit("\tADDQ R8, SI")
    emit("\tADDQ R11, R10")
    if SP_PF_ROWS:
        emit("\tADDQ R8, R12")
        emit("\tADDQ R11, R14")
    emit("\tDECQ CX")
    emit(f"\tJMP {name}_row")
    emit(f"{name}_done:")
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()


SPV = ["SI", "R8", "R9", "R10"]   # value row pointers
SPI = ["R11", "R12", "R13", "R14"]  # index row pointers
SPX = ["DI", "R15", "DX", "CX"]   # token pointers


def sp24gemm4x4_512(dt):
    """func sp24Gemm4x4<dt>_512(val *T, ldv int, idx *uint8, ldi int, x *float32, ldx int, y *float32, ldy int, kept, acc int)
    4 rows × 4 tokens. Each row's 16 lane indices are built once per step and
    reused for the 4 tokens; per (row, token) one VPERMT2PS (the x window is
    reloaded, it is overwritten) feeds one FMA, against two FMAs of the dense
    kernel over the same 32 columns."""
    name = f"sp24Gemm4x4{dt}_512"
    es = esize(dt)
    ld = load512(dt)
    declare(name, f"(val *{gotype(dt)}, ldv int, idx *uint8, ldi int, x *float32, ldx int, y *float32, ldy int, kept, acc int)")
    text(name)
    emit("\tMOVQ ldv+8(FP), AX")
    emit(f"\tSHLQ ${es.bit_length()-1}, AX")
    emit("\tMOVQ val+0(FP), SI")
    for i in range(1, 4):
        emit(f"\tLEAQ ({SPV[i-1]})(AX*1), {SPV[i]}")
    emit("\tMOVQ ldi+24(FP), AX")
    emit("\tMOVQ idx+16(FP), R11")
    for i in range(1, 4):
        emit(f"\tLEAQ ({SPI[i-1]})(AX*1), {SPI[i]}")
    emit("\tMOVQ ldx+40(FP), AX")
    emit("\tSHLQ $2, AX")
    emit("\tMOVQ x+32(FP), DI")
    for i in range(1, 4):
        emit(f"\tLEAQ ({SPX[i-1]})(AX*1), {SPX[i]}")
    emit("\tMOVQ kept+64(FP), BX")
    emit("\tANDQ $-16, BX")
    sp24_load_consts512()
    for i in range(16):
        emit(f"\tVXORPS Z{i}, Z{i}, Z{i}")
    emit("\tXORQ AX, AX")
    emit(f"{name}_loop:")
    emit("\tCMPQ AX, BX")
    emit(f"\tJGE {name}_sum")
    if SP_GEMM_PF:
        for r in range(4):
            emit(f"\tPREFETCHT0 {SP_GEMM_PF}({SPV[r]})(AX*{es})")
            emit(f"\tPREFETCHT0 {SP_GEMM_PF//(8//es)}({SPI[r]})")
    if SP_GEMM_XREG:
        # Z16–Z23: the 4 tokens' windows (lo, hi); per row one index and
        # one value register (Z24/Z26 and Z25/Z27 alternate between rows),
        # Z28 the permuted copy.
        for t in range(4):
            emit(f"\tVMOVUPS ({SPX[t]})(AX*8), Z{16+2*t}")
            emit(f"\tVMOVUPS 64({SPX[t]})(AX*8), Z{17+2*t}")
        for r in range(4):
            zi, zv = 24 + 2 * (r % 2), 25 + 2 * (r % 2)
            sp24_idx512(f"({SPI[r]})", f"Z{zi}")
            for s_ in ld(f"({SPV[r]})(AX*{es})", f"Z{zv}"):
                emit("\t" + s_)
            for t in range(4):
                emit(f"\tVMOVAPS Z{zi}, Z28")
                emit(f"\tVPERMI2PS Z{17+2*t}, Z{16+2*t}, Z28")
                emit(f"\tVFMADD231PS Z{zv}, Z28, Z{4*t+r}")
    else:
        for r in range(4):
            sp24_idx512(f"({SPI[r]})", f"Z{16+r}")
        for r in range(4):
            for s_ in ld(f"({SPV[r]})(AX*{es})", f"Z{20+r}"):
                emit("\t" + s_)
        tmp = 0
        for t in range(4):
            for r in range(4):
                z = 24 + tmp % 5
                tmp += 1
                emit(f"\tVMOVUPS ({SPX[t]})(AX*8), Z{z}")
                emit(f"\tVPERMT2PS 64({SPX[t]})(AX*8), Z{16+r}, Z{z}")
                emit(f"\tVFMADD231PS Z{20+r}, Z{z}, Z{4*t+r}")
    emit("\tADDQ $16, AX")
    for r in range(4):
        emit(f"\tADDQ $4, {SPI[r]}")
    emit(f"\tJMP {name}_loop")
    emit(f"{name}_sum:")
    emit("\tMOVQ y+48(FP), DX")
    emit("\tMOVQ ldy+56(FP), CX")
    emit("\tSHLQ $2, CX")
    emit("\tMOVQ acc+72(FP), BX")
    reduce_body(name, lambda r, t: 4 * t + r)
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()



def sum_kernel(isa, pf=False):
    """func sumF32_<isa>(x *float32, n int) float32: Σ x[i] over n rounded
    down to 8 vectors; the memory-read bandwidth probe (8 independent
    accumulators, one load per vector, nothing else)."""
    wide = isa == "512"
    V = 16 if wide else 8
    R = "Z" if wide else "Y"
    name = f"sumF32{'PF' if pf else ''}_{isa}"
    declare(name, "(x *float32, n int) float32")
    text(name)
    emit("\tMOVQ x+0(FP), SI")
    emit("\tMOVQ n+8(FP), BX")
    emit(f"\tANDQ ${-8*V}, BX")
    for i in range(8):
        emit(f"\tVXORPS {R}{i}, {R}{i}, {R}{i}")
    emit("\tXORQ AX, AX")
    emit(f"{name}_loop:")
    emit("\tCMPQ AX, BX")
    emit(f"\tJGE {name}_sum")
    if pf:
        for line in range(0, 8 * V * 4, 64):
            # The probe keeps the instruction it was calibrated with.
            emit(f"\tPREFETCHT0 {PF_DIST+line}(SI)(AX*4)")
    for i in range(8):
        emit(f"\tVADDPS {i*V*4}(SI)(AX*4), {R}{i}, {R}{i}")
    emit(f"\tADDQ ${8*V}, AX")
    emit(f"\tJMP {name}_loop")
    emit(f"{name}_sum:")
    for i in range(0, 8, 2):
        emit(f"\tVADDPS {R}{i+1}, {R}{i}, {R}{i}")
    emit(f"\tVADDPS {R}2, {R}0, {R}0")
    emit(f"\tVADDPS {R}6, {R}4, {R}4")
    emit(f"\tVADDPS {R}4, {R}0, {R}0")
    hsum(0, wide)
    emit("\tVMOVSS X0, ret+16(FP)")
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()



def sp24t_weight(dt, src, k, r, R, nacc, n):
    """Emits the broadcast of kept value k of row r (row values at src, the
    first of the 4 values k&~3..k|3) for the tokens-in-lanes 2:4 kernels and
    returns the register holding it. Every 4th value puts the row's next 4
    weights, widened, into each 128-bit lane of Z(nacc+r): f32 with
    VBROADCASTF32X4; f16/bf16 by broadcasting their 8 bytes to every qword
    of a ymm and widening that (VCVTPH2PS, or zero-extend and shift), which
    needs no store to a stack tile and reload. VSHUFPS then picks value k%4
    within the lanes. A VBROADCASTSS from memory per value instead costs a
    load slot as a 512-bit load does, and with the x operands of the FMAs
    the loads were the limit: a throwaway L1-resident copy of the 6-row
    kernel's inner loop ran at 0.155 vs 0.132 ns per FMA (2 FMAs per cycle:
    0.122)."""
    zq = nacc + r
    zw = nacc + R + (n - 1) % (32 - nacc - R)
    if k % 4 == 0:
        if dt == "F32":
            emit(f"\tVBROADCASTF32X4 {src}, Z{zq}")
        elif dt == "F16":
            emit(f"\tVPBROADCASTQ {src}, Y{zq}")
            emit(f"\tVCVTPH2PS Y{zq}, Z{zq}")
        else:
            emit(f"\tVPBROADCASTQ {src}, Y{zq}")
            emit(f"\tVPMOVZXWD Y{zq}, Z{zq}")
            emit(f"\tVPSLLD $16, Z{zq}, Z{zq}")
    emit(f"\tVSHUFPS ${(k % 4) * 0x55}, Z{zq}, Z{zq}, Z{zw}")
    return zw


def sp24t_512(dt, tile, R=4):
    """func sp24T4x<tile><dt>_512(val *T, ldv int, idx *uint8, ldi int, xt *float32, out *float32, kept, acc int)
    2:4 GEMM with tokens in the vector lanes, 4 rows × tile (16, 32 or 64)
    tokens. xt holds a tile of tokens transposed (column c at xt[tile·c]),
    out gets the 4×tile results (row-major; added to when acc != 0, so a
    caller can walk column strips that keep xt in L1). Per kept value: the
    in-group position, rotated out of the row's 32-bit index word (RORX,
    BMI2) and masked to p·16, picks the x column by address (scale 8 →
    p·128 bytes = 32 tokens; for 64 tokens the mask keeps p·32); the weight
    is broadcast once and tile/16 FMAs cover the tokens. No permutes: a 2:4
    row costs half the FMAs of a dense one. f16/bf16 weights are widened 16
    at a time into a stack tile first.
    Measured variants (1024×2048, 64 tokens, one thread, dense-equivalent
    GFLOP/s; 280 as generated): 2 rows × 128 tokens halves the speed (each
    4-column group of x is then read from L2 for 2 rows instead of 4);
    without the index decode 312, without the x loads (FMAs on registers)
    390: the x loads, one per FMA, are what limits this kernel; strips of
    16–256 KiB of xt made no difference."""
    # A tile of 16 tokens (one register a row) gives each row two
    # accumulators, for even and odd kept values, summed at the end: with
    # one, each FMA would wait for the previous one of its row (4 chains
    # against the 8 that 2 FMA pipes of latency 4 need).
    nz = tile // 16
    ns = 2 if tile == 16 else 1
    name = f"sp24T{R}x{tile}{dt}_512"
    es = esize(dt)
    V = ["SI", "R12", "R13", "R14"][:R]
    W = ["BX", "R8", "R9", "R11"][:R]  # index words of the R rows
    T = ["CX", "DX"]
    frame = 0
    colb = 4 * tile  # bytes per xt column
    declare(name, f"(val *{gotype(dt)}, ldv int, idx *uint8, ldi int, xt *float32, out *float32, kept, acc int)")
    text(name, frame)
    emit("\tMOVQ ldv+8(FP), AX")
    emit(f"\tSHLQ ${es.bit_length()-1}, AX")
    emit("\tMOVQ val+0(FP), SI")
    for i in range(1, R):
        emit(f"\tLEAQ ({V[i-1]})(AX*1), {V[i]}")
    emit("\tMOVQ idx+16(FP), R10")
    emit("\tMOVQ ldi+24(FP), R15")
    emit("\tMOVQ xt+32(FP), DI")
    emit("\tMOVQ kept+48(FP), AX")
    emit("\tSHRQ $4, AX")
    emit("\tMOVQ out+40(FP), BX")
    emit("\tCMPQ acc+56(FP), $0")
    emit(f"\tJNE {name}_load")
    for i in range(R * nz * ns):
        emit(f"\tVXORPS Z{i}, Z{i}, Z{i}")
    emit(f"\tJMP {name}_loop")
    emit(f"{name}_load:")
    for i in range(R * nz):
        emit(f"\tVMOVUPS {64*i}(BX), Z{i}")
    for i in range(R * nz, R * nz * ns):
        emit(f"\tVXORPS Z{i}, Z{i}, Z{i}")
    emit(f"{name}_loop:")
    emit("\tTESTQ AX, AX")
    emit(f"\tJZ {name}_done")
    emit("\tMOVL (R10), BX")
    if R > 1:
        emit("\tMOVL (R10)(R15*1), R8")
    if R > 2:
        emit("\tMOVL (R10)(R15*2), R9")
    if R > 3:
        emit("\tLEAQ (R10)(R15*2), CX")
        emit("\tMOVL (CX)(R15*1), R11")
    # position p·16 (scale 8 → p·128 bytes) for 32 tokens, p·32 for 64.
    sh = {16: 3, 32: 4, 64: 5, 128: 6}[tile]
    mask = 3 << sh
    n = 0
    for k in range(16):
        rot = (2 * k - sh) % 32
        for r in range(R):
            t = T[n % 2]
            n += 1
            emit(f"\tRORXL ${rot}, {W[r]}, {t}")
            emit(f"\tANDL ${mask:#x}, {t}")
            zw = sp24t_weight(dt, f"{es*(k & ~3)}({V[r]})", k, r, R, R * nz * ns, n)
            off = (k // 2) * 4 * colb
            for z in range(nz):
                acc = nz * r + z + (R * nz if ns == 2 and k % 2 else 0)
                emit(f"\tVFMADD231PS {off+64*z}(DI)({t}*8), Z{zw}, Z{acc}")
    for r in range(R):
        emit(f"\tADDQ ${16*es}, {V[r]}")
    emit("\tADDQ $4, R10")
    emit(f"\tADDQ ${32*colb}, DI")
    emit("\tDECQ AX")
    emit(f"\tJMP {name}_loop")
    emit(f"{name}_done:")
    emit("\tMOVQ out+40(FP), DX")
    for i in range(R * nz):
        if ns == 2:
            emit(f"\tVADDPS Z{i + R*nz}, Z{i}, Z{i}")
        emit(f"\tVMOVUPS Z{i}, {64*i}(DX)")
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()



def sp24t6_512(dt, tile=64):
    """func sp24T6x<tile><dt>_512(val *T, ldv int, idx *uint8, ldi int, xt *float32, out *float32, kept, acc int)
    sp24t_512 with 6 rows (24 accumulators for 64 tokens): each 4-column
    group of the x tile, fetched from L2 into L1 once, serves 6 rows instead
    of 4. Rows are addressed from two bases (row r at base + (r%3)·stride),
    the loop count lives in the frame: 14 general registers hold 6 index
    words, 4 bases, the two strides, xt and the position temporary."""
    R = 6
    nz = tile // 16
    name = f"sp24T{R}x{tile}{dt}_512"
    es = esize(dt)
    W = ["BX", "R8", "R9", "R11", "R14", "DX"]
    sc = ["", "(AX*1)", "(AX*2)"]
    isc = ["", "(R15*1)", "(R15*2)"]

    def vrow(r):
        return ("SI" if r < 3 else "R12"), sc[r % 3]

    def irow(r):
        return ("R10" if r < 3 else "R13"), isc[r % 3]
    cnt = 0  # frame offset of the loop count
    frame = cnt + 8 + (32 if SP_T6_PF else 0)
    colb = 4 * tile
    declare(name, f"(val *{gotype(dt)}, ldv int, idx *uint8, ldi int, xt *float32, out *float32, kept, acc int)")
    text(name, frame)
    emit("\tMOVQ ldv+8(FP), AX")
    emit(f"\tSHLQ ${es.bit_length()-1}, AX")
    emit("\tMOVQ val+0(FP), SI")
    emit("\tLEAQ (AX)(AX*2), R12")
    emit("\tADDQ SI, R12")
    emit("\tMOVQ idx+16(FP), R10")
    emit("\tMOVQ ldi+24(FP), R15")
    emit("\tLEAQ (R15)(R15*2), R13")
    emit("\tADDQ R10, R13")
    emit("\tMOVQ xt+32(FP), DI")
    emit("\tMOVQ kept+48(FP), CX")
    emit("\tSHRQ $4, CX")
    emit(f"\tMOVQ CX, {cnt}(SP)")
    if SP_T6_PF:
        # Prefetch bases of the next 6-row block: values of rows 6-8 and
        # 9-11, indices of rows 6-8 and 9-11 (frame 8..32).
        emit("\tLEAQ (AX)(AX*2), CX")
        emit("\tLEAQ (R12)(CX*1), CX")
        emit("\tMOVQ CX, 8(SP)")
        emit("\tLEAQ (AX)(AX*2), CX")
        emit("\tLEAQ (CX)(CX*1), CX")
        emit("\tADDQ R12, CX")
        emit("\tMOVQ CX, 16(SP)")
        emit("\tLEAQ (R15)(R15*2), CX")
        emit("\tADDQ R13, CX")
        emit("\tMOVQ CX, 24(SP)")
        emit("\tLEAQ (R15)(R15*2), CX")
        emit("\tLEAQ (CX)(CX*1), CX")
        emit("\tADDQ R13, CX")
        emit("\tMOVQ CX, 32(SP)")
    emit("\tMOVQ out+40(FP), BX")
    emit("\tCMPQ acc+56(FP), $0")
    emit(f"\tJNE {name}_load")
    for i in range(R * nz):
        emit(f"\tVXORPS Z{i}, Z{i}, Z{i}")
    emit(f"\tJMP {name}_loop")
    emit(f"{name}_load:")
    for i in range(R * nz):
        emit(f"\tVMOVUPS {64*i}(BX), Z{i}")
    emit(f"{name}_loop:")
    emit(f"\tCMPQ {cnt}(SP), $0")
    emit(f"\tJEQ {name}_done")
    if SP_T6_PF:
        for o, sc_ in ((8, "AX"), (16, "AX"), (24, "R15"), (32, "R15")):
            # Into L1, as measured (see SP_T6_PF): the next block is
            # used within the step.
            emit(f"\tMOVQ {o}(SP), CX")
            emit(f"\tPREFETCHT0 (CX)")
            emit(f"\tPREFETCHT0 (CX)({sc_}*1)")
            emit(f"\tPREFETCHT0 (CX)({sc_}*2)")
    for r in range(R):
        b, m = irow(r)
        emit(f"\tMOVL ({b}){m}, {W[r]}")
    sh = {32: 4, 64: 5}[tile]
    mask = 3 << sh
    n = 0
    for k in range(16):
        rot = (2 * k - sh) % 32
        for r in range(R):
            n += 1
            emit(f"\tRORXL ${rot}, {W[r]}, CX")
            emit(f"\tANDL ${mask:#x}, CX")
            b, m = vrow(r)
            zw = sp24t_weight(dt, f"{es*(k & ~3)}({b}){m}", k, r, R, R * nz, n)
            off = (k // 2) * 4 * colb
            for z in range(nz):
                emit(f"\tVFMADD231PS {off+64*z}(DI)(CX*8), Z{zw}, Z{nz*r+z}")
    emit(f"\tADDQ ${16*es}, SI")
    emit(f"\tADDQ ${16*es}, R12")
    emit("\tADDQ $4, R10")
    emit("\tADDQ $4, R13")
    emit(f"\tADDQ ${32*colb}, DI")
    if SP_T6_PF:
        emit(f"\tADDQ ${16*es}, 8(SP)")
        emit(f"\tADDQ ${16*es}, 16(SP)")
        emit("\tADDQ $4, 24(SP)")
        emit("\tADDQ $4, 32(SP)")
    emit(f"\tDECQ {cnt}(SP)")
    emit(f"\tJMP {name}_loop")
    emit(f"{name}_done:")
    emit("\tMOVQ out+40(FP), DX")
    for i in range(R * nz):
        emit(f"\tVMOVUPS Z{i}, {64*i}(DX)")
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()


def gemmt_512(dt, m, tile):
    """func gemmT<m>x<tile><dt>_512(w *T, ldw int, xt *float32, out *float32, cols, acc int)
    Dense GEMM with tokens in the vector lanes: m ≤ 6 rows × tile (32 or 64)
    tokens, m·tile/16 zmm accumulators (24 for 6×64: the register file
    holds them, the tile/16 x vectors and 4 broadcast temporaries). xt is a
    transposed token tile (column c at xt[tile·c]); out gets the m×tile
    results row-major (added to when acc != 0). Per column: tile/16 x loads
    and m weight broadcasts feed m·tile/16 FMAs, so the loop is FMA-bound
    (the 4×4 reduction-in-lanes kernel needed 8 loads, 4 of them widening,
    per 16 FMAs). f16/bf16 weights are widened 16 columns at a time into a
    stack tile and broadcast from there: each widened weight serves
    tile/16 FMAs."""
    nz = tile // 16
    name = f"gemmT{m}x{tile}{dt}_512"
    es = esize(dt)
    ld = load512(dt)
    V = ["SI", "R8", "R9", "R10", "R11", "R12"][:m]
    frame = 0 if dt == "F32" else 64 * m
    colb = 4 * tile  # bytes per xt column
    declare(name, f"(w *{gotype(dt)}, ldw int, xt *float32, out *float32, cols, acc int)")
    text(name, frame)
    emit("\tMOVQ ldw+8(FP), AX")
    emit(f"\tSHLQ ${es.bit_length()-1}, AX")
    emit("\tMOVQ w+0(FP), SI")
    for i in range(1, m):
        emit(f"\tLEAQ ({V[i-1]})(AX*1), {V[i]}")
    emit("\tMOVQ xt+16(FP), DI")
    emit("\tMOVQ cols+32(FP), CX")
    emit("\tSHRQ $4, CX")
    emit("\tMOVQ out+24(FP), DX")
    emit("\tCMPQ acc+40(FP), $0")
    emit(f"\tJNE {name}_load")
    for i in range(m * nz):
        emit(f"\tVXORPS Z{i}, Z{i}, Z{i}")
    emit(f"\tJMP {name}_loop")
    emit(f"{name}_load:")
    for i in range(m * nz):
        emit(f"\tVMOVUPS {64*i}(DX), Z{i}")
    emit(f"{name}_loop:")
    emit("\tTESTQ CX, CX")
    emit(f"\tJZ {name}_done")
    if dt != "F32":
        for r in range(m):
            for s_ in ld(f"({V[r]})", f"Z{28+r%4}"):
                emit("\t" + s_)
            emit(f"\tVMOVUPS Z{28+r%4}, {64*r}(SP)")
    nb = 0
    for k in range(16):
        for z in range(nz):
            emit(f"\tVMOVUPS {k*colb+64*z}(DI), Z{24+z}")
        for r in range(m):
            src = f"{64*r+4*k}(SP)" if dt != "F32" else f"{4*k}({V[r]})"
            zb = 28 + nb % 4
            nb += 1
            emit(f"\tVBROADCASTSS {src}, Z{zb}")
            for z in range(nz):
                emit(f"\tVFMADD231PS Z{24+z}, Z{zb}, Z{nz*r+z}")
    for r in range(m):
        emit(f"\tADDQ ${16*es}, {V[r]}")
    emit(f"\tADDQ ${16*colb}, DI")
    emit("\tDECQ CX")
    emit(f"\tJMP {name}_loop")
    emit(f"{name}_done:")
    for i in range(m * nz):
        emit(f"\tVMOVUPS Z{i}, {64*i}(DX)")
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()


def gemms_512(m, tile, trans, masked):
    """func gemmS<T><m>x<tile><M>F32_512(w *float32, ldw int, x *float32, ldx int, out *float32, ldo int, cols, acc int[, mask int])
    gemmt_512's register block on strided row-major operands, so that the
    strided f32 GEMMs need no transposes: out[r·ldo+t] (+)= Σ_{c<cols}
    W(r,c)·x[c·ldx+t] for r < m, t < tile (added to out when acc != 0),
    where W(r,c) = w[r·ldw+c], or w[c·ldw+r] with trans ("T": W given
    transposed; the m broadcasts of a column are then consecutive floats).
    cols is any count: 4 columns per iteration, the last 0–3 one by one.

    The masked variant ("M") is for the partial tile at the right edge of
    the matrix: lane t takes part where bit t of mask is set (16 bits per
    zmm, in K1..K4), out is read and written with those masks and so are
    the x vectors of the upper half of the tile (all of a 16-column tile),
    with zeroing. The lower half's x loads are not masked: the caller uses
    a tile only for more than tile/2 columns. With every x load masked the
    6×64 kernel ran at 210 GFLOP/s against 245 unmasked (one core, operands
    in L1, alternating runs), so full tiles take the unmasked variant."""
    nz = tile // 16
    name = f"gemmS{'T' if trans else ''}{m}x{tile}{'M' if masked else ''}F32_512"
    V = ["SI", "R8", "R9", "R10", "R11", "R12"][:m]
    sig = "(w *float32, ldw int, x *float32, ldx int, out *float32, ldo int, cols, acc int"
    declare(name, sig + (", mask int)" if masked else ")"))
    text(name)
    # mk(z): the mask operand of zmm z of a row, or "" where unmasked.
    def mk(z):
        return f"K{1+z}, " if masked else ""
    if masked:
        emit("\tMOVQ mask+64(FP), AX")
        for z in range(nz):
            emit(f"\tKMOVW AX, K{1+z}")
            if z != nz - 1:
                emit("\tSHRQ $16, AX")
    z0 = ".Z" if masked else ""
    emit("\tMOVQ w+0(FP), SI")
    emit("\tMOVQ ldw+8(FP), R15")
    emit("\tSHLQ $2, R15")
    if trans:
        # Column c's weights at SI + c·ldw: SI, +R15, +2·R15, +BX.
        emit("\tLEAQ (R15)(R15*2), BX")
        wsrc = ["(SI)", "(SI)(R15*1)", "(SI)(R15*2)", "(SI)(BX*1)"]
        P, LDO = "R9", "R8"  # out row pointer, ldo in bytes
    else:
        # Row r's pointer in V[r]; AX is the column offset in bytes.
        for i in range(1, m):
            emit(f"\tLEAQ ({V[i-1]})(R15*1), {V[i]}")
        P, LDO = "R15", "BX"
    emit("\tMOVQ x+16(FP), DI")
    emit("\tMOVQ ldx+24(FP), R13")
    emit("\tSHLQ $2, R13")
    emit("\tLEAQ (R13)(R13*2), R14")
    xsrc = ["(DI)", "(DI)(R13*1)", "(DI)(R13*2)", "(DI)(R14*1)"]
    emit("\tMOVQ out+32(FP), DX")
    emit(f"\tMOVQ ldo+40(FP), {LDO}")
    emit(f"\tSHLQ $2, {LDO}")
    emit("\tCMPQ acc+56(FP), $0")
    emit(f"\tJNE {name}_load")
    for i in range(m * nz):
        emit(f"\tVXORPS Z{i}, Z{i}, Z{i}")
    emit(f"\tJMP {name}_start")
    emit(f"{name}_load:")
    emit(f"\tMOVQ DX, {P}")
    for r in range(m):
        for z in range(nz):
            emit(f"\tVMOVUPS{z0} {64*z}({P}), {mk(z)}Z{nz*r+z}")
        if r != m - 1:
            emit(f"\tADDQ {LDO}, {P}")
    emit(f"{name}_start:")
    if not trans:
        emit("\tXORQ AX, AX")
    emit("\tMOVQ cols+48(FP), CX")
    emit("\tSHRQ $2, CX")
    nb = 0

    def column(k, xs):
        nonlocal nb
        for z in range(nz):
            if masked and z >= nz // 2:
                emit(f"\tVMOVUPS.Z {64*z if z else ''}{xs}, K{1+z}, Z{24+z}")
            else:
                emit(f"\tVMOVUPS {64*z if z else ''}{xs}, Z{24+z}")
        for r in range(m):
            if trans:
                src = f"{4*r if r else ''}{wsrc[k]}"
            else:
                src = f"{4*k if k else ''}({V[r]})(AX*1)"
            zb = 28 + nb % 4
            nb += 1
            emit(f"\tVBROADCASTSS {src}, Z{zb}")
            for z in range(nz):
                emit(f"\tVFMADD231PS Z{24+z}, Z{zb}, Z{nz*r+z}")

    emit(f"{name}_loop4:")
    emit("\tTESTQ CX, CX")
    emit(f"\tJZ {name}_tail")
    for k in range(4):
        column(k, xsrc[k])
    if trans:
        emit("\tLEAQ (SI)(R15*4), SI")
    else:
        emit("\tADDQ $16, AX")
    emit("\tLEAQ (DI)(R13*4), DI")
    emit("\tDECQ CX")
    emit(f"\tJMP {name}_loop4")
    emit(f"{name}_tail:")
    emit("\tMOVQ cols+48(FP), CX")
    emit("\tANDQ $3, CX")
    emit(f"{name}_loop1:")
    emit("\tTESTQ CX, CX")
    emit(f"\tJZ {name}_done")
    column(0, "(DI)")
    if trans:
        emit("\tADDQ R15, SI")
    else:
        emit("\tADDQ $4, AX")
    emit("\tADDQ R13, DI")
    emit("\tDECQ CX")
    emit(f"\tJMP {name}_loop1")
    emit(f"{name}_done:")
    for r in range(m):
        for z in range(nz):
            emit(f"\tVMOVUPS Z{nz*r+z}, {mk(z)}{64*z}(DX)")
        if r != m - 1:
            emit(f"\tADDQ {LDO}, DX")
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()

def transpose16_512():
    """func transpose16_512(src *float32, lds int, dst *float32, ldd int, nblk, sstep, dstep int)
    Transposes nblk 16×16 blocks in registers (4 rounds of 16 shuffles)
    instead of one strided store per element: dst[j·ldd + i] = src[i·lds + j]
    for i, j < 16, then src advances by sstep and dst by dstep bytes. Used
    to turn token rows into the transposed tiles of the tokens-in-lanes
    kernels and their results back."""
    name = "transpose16_512"
    declare("transpose16_512", "(src *float32, lds int, dst *float32, ldd int, nblk, sstep, dstep int)")
    text(name)
    emit("\tMOVQ src+0(FP), SI")
    emit("\tMOVQ lds+8(FP), AX")
    emit("\tSHLQ $2, AX")
    emit("\tMOVQ dst+16(FP), DI")
    emit("\tMOVQ ldd+24(FP), BX")
    emit("\tSHLQ $2, BX")
    emit("\tMOVQ nblk+32(FP), CX")
    emit("\tLEAQ (AX)(AX*2), DX")  # 3·lds
    emit("\tLEAQ (BX)(BX*2), R8")  # 3·ldd
    emit(f"{name}_loop:")
    emit("\tTESTQ CX, CX")
    emit(f"\tJZ {name}_done")
    # rows i at SI + i·lds: bases SI, SI+4lds, SI+8lds, SI+12lds
    emit("\tMOVQ SI, R9")
    for q in range(4):
        for k, m in enumerate(["", "(AX*1)", "(AX*2)", "(DX*1)"]):
            i = 4 * q + k
            emit(f"\tVMOVUPS (R9){m}, Z{i}")
        if q < 3:
            emit("\tLEAQ (R9)(AX*4), R9")
    r = [f"Z{i}" for i in range(16)]
    t = [f"Z{16+i}" for i in range(16)]
    for i in range(0, 16, 2):
        emit(f"\tVUNPCKLPS {r[i+1]}, {r[i]}, {t[i]}")
        emit(f"\tVUNPCKHPS {r[i+1]}, {r[i]}, {t[i+1]}")
    for g in range(0, 16, 4):
        emit(f"\tVUNPCKLPD {t[g+2]}, {t[g]}, {r[g]}")
        emit(f"\tVUNPCKHPD {t[g+2]}, {t[g]}, {r[g+1]}")
        emit(f"\tVUNPCKLPD {t[g+3]}, {t[g+1]}, {r[g+2]}")
        emit(f"\tVUNPCKHPD {t[g+3]}, {t[g+1]}, {r[g+3]}")
    for h in (0, 8):
        for k in range(4):
            emit(f"\tVSHUFF32X4 $0x88, {r[h+4+k]}, {r[h+k]}, {t[h+k]}")
            emit(f"\tVSHUFF32X4 $0xdd, {r[h+4+k]}, {r[h+k]}, {t[h+4+k]}")
    for k in range(8):
        emit(f"\tVSHUFF32X4 $0x88, {t[8+k]}, {t[k]}, {r[k]}")
        emit(f"\tVSHUFF32X4 $0xdd, {t[8+k]}, {t[k]}, {r[8+k]}")
    emit("\tMOVQ DI, R9")
    for q in range(4):
        for k, m in enumerate(["", "(BX*1)", "(BX*2)", "(R8*1)"]):
            j = 4 * q + k
            emit(f"\tVMOVUPS Z{j}, (R9){m}")
        if q < 3:
            emit("\tLEAQ (R9)(BX*4), R9")
    emit("\tADDQ sstep+40(FP), SI")
    emit("\tADDQ dstep+48(FP), DI")
    emit("\tDECQ CX")
    emit(f"\tJMP {name}_loop")
    emit(f"{name}_done:")
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()



# ------------------------------------------------------------ 2:4 group update
# Offsets of kernels.Group24's fields (group24.go; TestGroup24Layout checks
# them): Q, P (6 supports × q00, q01, q11, 1/det), QT (Q transposed), PT
# (P transposed, 8 lanes).
G24_P, G24_QT, G24_PT, G24_SIZE = 128, 320, 448, 704
G24_PAIRS = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]


def group24_consts():
    emit("// group24: per-support lane indices of fa and fb, the support index of")
    emit("// each lane, ~7, the largest int64, the f64 sign bit, and per support k")
    emit("// the f64 lane indices (a, b, a, b), the lane masks 1<<a and 1<<b and the")
    emit("// 4 mask bytes (1 at a and b).")
    idx_a = [a for a, _ in G24_PAIRS] + [0, 0]
    idx_b = [b for _, b in G24_PAIRS] + [0, 0]
    for i in range(8):
        emit(f"DATA g24idxa<>+{8*i}(SB)/8, ${idx_a[i]}")
        emit(f"DATA g24idxb<>+{8*i}(SB)/8, ${idx_b[i]}")
        emit(f"DATA g24lane<>+{8*i}(SB)/8, ${i}")
    emit("GLOBL g24idxa<>(SB), RODATA|NOPTR, $64")
    emit("GLOBL g24idxb<>(SB), RODATA|NOPTR, $64")
    emit("GLOBL g24lane<>(SB), RODATA|NOPTR, $64")
    emit("DATA g24not7<>+0(SB)/8, $-8")
    emit("GLOBL g24not7<>(SB), RODATA|NOPTR, $8")
    emit("DATA g24maxint<>+0(SB)/8, $0x7fffffffffffffff")
    emit("GLOBL g24maxint<>(SB), RODATA|NOPTR, $8")
    emit("DATA g24sign<>+0(SB)/8, $0x8000000000000000")
    emit("GLOBL g24sign<>(SB), RODATA|NOPTR, $8")
    for k, (a, b) in enumerate(G24_PAIRS):
        for j, v in enumerate((a, b, a, b)):
            emit(f"DATA g24pair<>+{32*k+8*j}(SB)/8, ${v}")
        emit(f"DATA g24ka<>+{k}(SB)/1, ${1 << a}")
        emit(f"DATA g24kb<>+{k}(SB)/1, ${1 << b}")
        emit(f"DATA g24mask<>+{4*k}(SB)/4, ${(1 << 8*a) | (1 << 8*b)}")
    emit("GLOBL g24pair<>(SB), RODATA|NOPTR, $192")
    emit("GLOBL g24ka<>(SB), RODATA|NOPTR, $8")
    emit("GLOBL g24kb<>(SB), RODATA|NOPTR, $8")
    emit("GLOBL g24mask<>(SB), RODATA|NOPTR, $24")
    for p in range(4):
        emit(f"DATA g24lane32<>+{4*p}(SB)/4, ${p}")
    emit("GLOBL g24lane32<>(SB), RODATA|NOPTR, $16")
    emit()


def group24row_512():
    """func group24Row_512(tr, srow *float32, mrow *uint8, gs *Group24, gb *float32, ldg, n int, aa, ia float64, aa32 float32) int
    One row's exact 2:4 group updates (kernels.Group24Row; its Go loop and
    Group24.update are the reference): the same float64 operations in the
    same order, with the 4 values of a group in the lanes of a ymm and the 6
    supports in the lanes of a zmm, and the update of T's row with the
    arithmetic of axpyRows_512, so the results are the same bits. Returns 1
    if any group changed. n is a multiple of 16."""
    name = "group24Row_512"
    declare(name, "(tr, srow *float32, mrow *uint8, gs *Group24, gb *float32, ldg, n int, aa, ia float64, aa32 float32) int")
    text(name)
    e = emit
    e("\tMOVQ tr+0(FP), DI")
    e("\tMOVQ srow+8(FP), SI")
    e("\tMOVQ mrow+16(FP), DX")
    e("\tMOVQ gs+24(FP), R8")
    e("\tMOVQ gb+32(FP), R9")
    e("\tMOVQ ldg+40(FP), R10")
    e("\tSHLQ $2, R10")  # bytes a row of G_B
    e("\tMOVQ n+48(FP), R11")
    e("\tVBROADCASTSD aa+56(FP), Y31")
    e("\tVMOVSD ia+64(FP), X30")
    e("\tVBROADCASTSS aa32+72(FP), X29")
    e("\tVMOVDQU64 g24idxa<>(SB), Z28")
    e("\tVMOVDQU64 g24idxb<>(SB), Z27")
    e("\tVPBROADCASTQ g24not7<>(SB), Z26")
    e("\tVMOVDQU64 g24lane<>(SB), Z25")
    e("\tVPBROADCASTQ g24maxint<>(SB), Z24")
    e("\tVPBROADCASTQ g24sign<>(SB), Z23")
    for p in range(4):
        e(f"\tVPBROADCASTD g24lane32<>+{4*p}(SB), Z{22-p}")  # Z22..Z19: lane p
    e("\tMOVQ $0xC0, AX")
    e("\tKMOVB AX, K1")  # lanes 6, 7: no support
    e("\tXORQ BX, BX")  # changed
    e("\tXORQ R12, R12")  # g: the group's first column
    e(f"{name}_group:")
    e("\tCMPQ R12, R11")
    e(f"\tJGE {name}_done")
    e("\tVCVTPS2PD (DI)(R12*4), Y0")  # t
    e("\tVCVTPS2PD (SI)(R12*4), Y1")  # s_old

    def qmul(v, out, tmp1, tmp2):
        """out = Q·v, row p of Q in lane p, summed left to right."""
        for r, imm in enumerate(("$0x00", "$0x55", "$0xAA", "$0xFF")):
            e(f"\tVPERMPD {imm}, {v}, {tmp1}")
            if r == 0:
                e(f"\tVMULPD {G24_QT + 32*r}(R8), {tmp1}, {out}")
            else:
                e(f"\tVMULPD {G24_QT + 32*r}(R8), {tmp1}, {tmp2}")
                e(f"\tVADDPD {tmp2}, {out}, {out}")

    # f = t − aa·(Q s_old)
    qmul("Y1", "Y3", "Y2", "Y4")
    e("\tVMULPD Y31, Y3, Y3")
    e("\tVSUBPD Y3, Y0, Y2")  # f (upper half of Z2 zero)
    # The 6 supports' costs −(fa(c2 fa − c1 fb) + fb(c0 fb − c1 fa))·c3.
    e("\tVPERMPD Z2, Z28, Z5")  # fa
    e("\tVPERMPD Z2, Z27, Z6")  # fb
    pt = lambda c: f"{G24_PT + 64*c}(R8)"
    e(f"\tVMULPD {pt(2)}, Z5, Z7")
    e(f"\tVMULPD {pt(1)}, Z6, Z8")
    e("\tVSUBPD Z8, Z7, Z7")
    e("\tVMULPD Z7, Z5, Z7")
    e(f"\tVMULPD {pt(0)}, Z6, Z8")
    e(f"\tVMULPD {pt(1)}, Z5, Z9")
    e("\tVSUBPD Z9, Z8, Z8")
    e("\tVMULPD Z8, Z6, Z8")
    e("\tVADDPD Z8, Z7, Z7")
    e(f"\tVMULPD {pt(3)}, Z7, Z7")
    e("\tVPXORQ Z23, Z7, Z7")  # −(sum·c3), the same bits as (−sum)·c3
    # supportKey: order-preserving int64, the support in the low 3 bits.
    e("\tVPSRAQ $63, Z7, Z8")
    e("\tVPSRLQ $1, Z8, Z8")
    e("\tVPXORQ Z8, Z7, Z7")
    e("\tVPANDQ Z26, Z7, Z7")
    e("\tVPORQ Z25, Z7, Z7")
    e("\tVMOVDQA64 Z24, K1, Z7")
    e("\tVEXTRACTI64X4 $1, Z7, Y8")
    e("\tVPMINSQ Y8, Y7, Y7")
    e("\tVEXTRACTI128 $1, Y7, X8")
    e("\tVPMINSQ X8, X7, X7")
    e("\tVPSHUFD $0x4E, X7, X8")
    e("\tVPMINSQ X8, X7, X7")
    e("\tVMOVQ X7, CX")
    e("\tANDQ $7, CX")  # k, the cheapest support
    e("\tMOVQ CX, R13")
    e("\tSHLQ $5, R13")  # k·32: P[k] and g24pair's row k
    e("\tVXORPD X10, X10, X10")  # s_new
    e(f"\tVMOVSD {G24_P + 24}(R8)(R13*1), X9")  # 1/det
    e("\tVUCOMISD X10, X9")
    e(f"\tJEQ {name}_solved")  # 1/det = 0: both values stay 0
    e("\tLEAQ g24pair<>(SB), R14")
    e("\tVMOVDQU (R14)(R13*1), Y12")
    e("\tVPERMPD Y2, Y12, Y11")  # fa, fb
    e("\tVUNPCKHPD X11, X11, X12")  # fb
    # s_a = (q11 fa − q01 fb)·inv·ia, s_b = (q00 fb − q01 fa)·inv·ia
    e(f"\tVMULSD {G24_P + 16}(R8)(R13*1), X11, X13")
    e(f"\tVMULSD {G24_P + 8}(R8)(R13*1), X12, X14")
    e("\tVSUBSD X14, X13, X13")
    e("\tVMULSD X9, X13, X13")
    e("\tVMULSD X30, X13, X13")
    e(f"\tVMULSD {G24_P}(R8)(R13*1), X12, X14")
    e(f"\tVMULSD {G24_P + 8}(R8)(R13*1), X11, X15")
    e("\tVSUBSD X15, X14, X14")
    e("\tVMULSD X9, X14, X14")
    e("\tVMULSD X30, X14, X14")
    e("\tLEAQ g24ka<>(SB), R14")
    e("\tMOVBLZX (R14)(CX*1), R15")
    e("\tKMOVB R15, K2")
    e("\tLEAQ g24kb<>(SB), R14")
    e("\tMOVBLZX (R14)(CX*1), R15")
    e("\tKMOVB R15, K3")
    e("\tVBROADCASTSD X13, K2, Y10")
    e("\tVBROADCASTSD X14, K3, Y10")
    e(f"{name}_solved:")
    # δ = s_new − s_old; delta = Σ_p (2δ_p)t_p + (aa δ_p)(Qδ)_p, in p order.
    e("\tVSUBPD Y1, Y10, Y11")
    qmul("Y11", "Y13", "Y12", "Y14")
    e("\tVADDPD Y11, Y11, Y12")
    e("\tVMULPD Y0, Y12, Y12")
    e("\tVMULPD Y31, Y11, Y14")
    e("\tVMULPD Y13, Y14, Y14")
    e("\tVADDPD Y14, Y12, Y12")
    e("\tVEXTRACTF128 $1, Y12, X13")
    e("\tVUNPCKHPD X12, X12, X14")
    e("\tVADDSD X14, X12, X15")
    e("\tVADDSD X13, X15, X15")
    e("\tVUNPCKHPD X13, X13, X14")
    e("\tVADDSD X14, X15, X15")
    e("\tVXORPD X14, X14, X14")
    e("\tVUCOMISD X15, X14")
    e(f"\tJLS {name}_next")  # not (0 > delta): no change (NaN included)
    # Take it: coef = aa32·(float32(s_new) − s), S and the mask.
    e("\tVCVTPD2PSY Y10, X12")
    e("\tVSUBPS (SI)(R12*4), X12, X13")
    e("\tVMULPS X29, X13, X13")
    e("\tVMOVUPS X12, (SI)(R12*4)")
    e("\tLEAQ g24mask<>(SB), R14")
    e("\tMOVL (R14)(CX*4), R15")
    e("\tMOVL R15, (DX)(R12*1)")
    e("\tMOVQ $1, BX")
    # T's row += Σ_p coef_p · G_B[g+p, :], as axpyRows_512 sums it.
    for p in range(4):
        e(f"\tVPERMPS Z13, Z{22-p}, Z{14+p}")
    e("\tXORQ R14, R14")
    e(f"{name}_axpy:")
    e("\tVMOVUPS (DI)(R14*4), Z18")
    e("\tVXORPS Z12, Z12, Z12")
    e("\tLEAQ (R9)(R14*4), R13")
    e("\tVFMADD231PS (R13), Z14, Z18")
    e("\tVFMADD231PS (R13)(R10*1), Z15, Z12")
    e("\tLEAQ (R13)(R10*2), R13")
    e("\tVFMADD231PS (R13), Z16, Z18")
    e("\tVFMADD231PS (R13)(R10*1), Z17, Z12")
    e("\tVADDPS Z12, Z18, Z18")
    e("\tVMOVUPS Z18, (DI)(R14*4)")
    e("\tADDQ $16, R14")
    e("\tCMPQ R14, R11")
    e(f"\tJLT {name}_axpy")
    e(f"{name}_next:")
    e("\tADDQ $4, R12")
    e(f"\tADDQ ${G24_SIZE}, R8")
    e("\tLEAQ (R9)(R10*4), R9")
    e(f"\tJMP {name}_group")
    e(f"{name}_done:")
    e("\tMOVQ BX, ret+80(FP)")
    e("\tVZEROUPPER")
    e("\tRET")
    e()

# ------------------------------------------------------------------ exp
# exp(x) as in Cephes expf: n = round(x·log2 e), r = x − n·ln 2 (two-part
# ln 2, Cody–Waite), e^r by a degree-7 polynomial, then VSCALEFPS multiplies
# by 2^n (overflow to +Inf and underflow to 0 come out right). x is first
# clamped to [-104, 89] so that ±Inf inputs give 0 and +Inf, not NaN.
EXP_CONSTS = [
    ("explo", -104.0), ("exphi", 89.0), ("explog2e", 1.44269504088896341),
    ("expc1", 0.693359375), ("expc2", -2.12194440e-4),
    ("expp0", 1.9875691500e-4), ("expp1", 1.3981999507e-3), ("expp2", 8.3334519073e-3),
    ("expp3", 4.1665795894e-2), ("expp4", 1.6666665459e-1), ("expp5", 5.0000001201e-1),
    ("expone", 1.0),
]


def exp_consts():
    import struct
    emit("// exp constants (see exp512).")
    for name, v in EXP_CONSTS:
        bits = struct.unpack("<I", struct.pack("<f", v))[0]
        emit(f"DATA {name}<>+0(SB)/4, ${bits:#x}")
        emit(f"GLOBL {name}<>(SB), RODATA|NOPTR, $4")
    emit()


def exp_load_consts512():
    """Broadcasts the exp constants into Z16..Z27."""
    for i, (name, _) in enumerate(EXP_CONSTS):
        emit(f"\tVBROADCASTSS {name}<>(SB), Z{16+i}")


def exp512(x, out, t):
    """out = exp(x) (x is clobbered; t a temporary); constants in Z16..Z27."""
    lo, hi, l2e, c1, c2, p0, p1, p2, p3, p4, p5, one = [f"Z{16+i}" for i in range(12)]
    emit(f"\tVMAXPS {lo}, {x}, {x}")
    emit(f"\tVMINPS {hi}, {x}, {x}")
    emit(f"\tVMULPS {l2e}, {x}, {t}")
    emit(f"\tVRNDSCALEPS $0, {t}, {t}")
    emit(f"\tVFNMADD231PS {c1}, {t}, {x}")
    emit(f"\tVFNMADD231PS {c2}, {t}, {x}")
    emit(f"\tVMOVAPS {p0}, {out}")
    for p in (p1, p2, p3, p4, p5):
        emit(f"\tVFMADD213PS {p}, {x}, {out}")
    emit(f"\tVMULPS {x}, {out}, {out}")  # p·r
    emit(f"\tVFMADD213PS {x}, {x}, {out}")  # p·r·r + r
    emit(f"\tVADDPS {one}, {out}, {out}")
    emit(f"\tVSCALEFPS {t}, {out}, {out}")


def silumul_512():
    """func siluMul_512(gate, up *float32, n int): gate = gate/(1+exp(-gate))·up
    over n rounded down to 16."""
    name = "siluMul_512"
    declare("siluMul_512", "(gate, up *float32, n int)")
    text(name)
    emit("\tMOVQ gate+0(FP), SI")
    emit("\tMOVQ up+8(FP), DI")
    emit("\tMOVQ n+16(FP), CX")
    emit("\tSHRQ $4, CX")
    exp_load_consts512()
    emit("\tVXORPS Z28, Z28, Z28")
    emit(f"{name}_loop:")
    emit("\tTESTQ CX, CX")
    emit(f"\tJZ {name}_done")
    emit("\tVMOVUPS (SI), Z0")
    emit("\tVSUBPS Z0, Z28, Z1")
    exp512("Z1", "Z2", "Z3")
    emit("\tVADDPS Z27, Z2, Z2")
    emit("\tVDIVPS Z2, Z0, Z0")
    emit("\tVMULPS (DI), Z0, Z0")
    emit("\tVMOVUPS Z0, (SI)")
    emit("\tADDQ $64, SI")
    emit("\tADDQ $64, DI")
    emit("\tDECQ CX")
    emit(f"\tJMP {name}_loop")
    emit(f"{name}_done:")
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()


def expsub_512():
    """func expSub_512(x *float32, n int, m float32) float32: x = exp(x - m)
    over n rounded down to 16; returns the sum of those values."""
    name = "expSub_512"
    declare("expSub_512", "(x *float32, n int, m float32) float32")
    text(name)
    emit("\tMOVQ x+0(FP), SI")
    emit("\tMOVQ n+8(FP), CX")
    emit("\tSHRQ $4, CX")
    emit("\tVBROADCASTSS m+16(FP), Z28")
    exp_load_consts512()
    emit("\tVXORPS Z4, Z4, Z4")
    emit(f"{name}_loop:")
    emit("\tTESTQ CX, CX")
    emit(f"\tJZ {name}_done")
    emit("\tVMOVUPS (SI), Z0")
    emit("\tVSUBPS Z28, Z0, Z0")
    exp512("Z0", "Z1", "Z2")
    emit("\tVMOVUPS Z1, (SI)")
    emit("\tVADDPS Z1, Z4, Z4")
    emit("\tADDQ $64, SI")
    emit("\tDECQ CX")
    emit(f"\tJMP {name}_loop")
    emit(f"{name}_done:")
    hsum(4, True)
    emit("\tVMOVSS X4, ret+24(FP)")
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()


def max_scale_512():
    """func maxF32_512(x *float32, n int) float32: max over n (a multiple of
    16, > 0). func scaleF32_512(x *float32, n int, a float32): x *= a over n
    rounded down to 16. The rest of Softmax next to expSub_512."""
    declare("maxF32_512", "(x *float32, n int) float32")
    text("maxF32_512")
    emit("\tMOVQ x+0(FP), SI")
    emit("\tMOVQ n+8(FP), CX")
    emit("\tSHRQ $4, CX")
    emit("\tVMOVUPS (SI), Z0")
    emit("maxF32_512_loop:")
    emit("\tVMAXPS (SI), Z0, Z0")
    emit("\tADDQ $64, SI")
    emit("\tDECQ CX")
    emit("\tJNZ maxF32_512_loop")
    hsum(0, True, op="MAX")
    emit("\tVMOVSS X0, ret+16(FP)")
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()
    declare("scaleF32_512", "(x *float32, n int, a float32)")
    text("scaleF32_512")
    emit("\tMOVQ x+0(FP), SI")
    emit("\tMOVQ n+8(FP), CX")
    emit("\tSHRQ $4, CX")
    emit("\tVBROADCASTSS a+16(FP), Z1")
    emit("scaleF32_512_loop:")
    emit("\tTESTQ CX, CX")
    emit("\tJZ scaleF32_512_done")
    emit("\tVMULPS (SI), Z1, Z0")
    emit("\tVMOVUPS Z0, (SI)")
    emit("\tADDQ $64, SI")
    emit("\tDECQ CX")
    emit("\tJMP scaleF32_512_loop")
    emit("scaleF32_512_done:")
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()


def axpy(isa):
    """func axpy_<isa>(a float32, x *float32, y *float32, n int): y += a·x
    over n rounded down to the vector width."""
    wide = isa == "512"
    V = 16 if wide else 8
    R = "Z" if wide else "Y"
    name = f"axpy_{isa}"
    declare(name, "(a float32, x *float32, y *float32, n int)")
    text(name)
    emit(f"\tVBROADCASTSS a+0(FP), {R}1")
    emit("\tMOVQ x+8(FP), SI")
    emit("\tMOVQ y+16(FP), DI")
    emit("\tMOVQ n+24(FP), BX")
    emit(f"\tANDQ ${-V}, BX")
    emit("\tXORQ AX, AX")
    emit(f"{name}_loop:")
    emit("\tCMPQ AX, BX")
    emit(f"\tJGE {name}_done")
    emit(f"\tVMOVUPS (SI)(AX*4), {R}2")
    emit(f"\tVFMADD213PS (DI)(AX*4), {R}1, {R}2")
    emit(f"\tVMOVUPS {R}2, (DI)(AX*4)")
    emit(f"\tADDQ ${V}, AX")
    emit(f"\tJMP {name}_loop")
    emit(f"{name}_done:")
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()



def convert16(isa, to16):
    """func fromF16_<isa>(dst *float32, src *uint16, n int): dst = f32(src)
    (an f16 KV cache widened for the blocked prompt attention), or with
    to16 func toF16_<isa>(dst *uint16, src *float32, n int): dst = f16(src)
    rounded to nearest even as F32ToF16 (rows stored into the cache); over
    n rounded down to the vector width."""
    wide = isa == "512"
    V = 16 if wide else 8
    R = "Z" if wide else "Y"
    name, dst, src = (f"toF16_{isa}", "uint16", "float32") if to16 else (f"fromF16_{isa}", "float32", "uint16")
    declare(name, f"(dst *{dst}, src *{src}, n int)")
    text(name)
    emit("\tMOVQ dst+0(FP), DI")
    emit("\tMOVQ src+8(FP), SI")
    emit("\tMOVQ n+16(FP), BX")
    emit(f"\tANDQ ${-V}, BX")
    emit("\tXORQ AX, AX")
    emit(f"{name}_loop:")
    emit("\tCMPQ AX, BX")
    emit(f"\tJGE {name}_done")
    if to16:
        emit(f"\tVMOVUPS (SI)(AX*4), {R}0")
        emit(f"\tVCVTPS2PH $0, {R}0, (DI)(AX*2)")
    else:
        emit(f"\tVCVTPH2PS (SI)(AX*2), {R}0")
        emit(f"\tVMOVUPS {R}0, (DI)(AX*4)")
    emit(f"\tADDQ ${V}, AX")
    emit(f"\tJMP {name}_loop")
    emit(f"{name}_done:")
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()


def gemm4x3_256(dt):
    """func gemm4x3<dt>_256(w *T, ldw int, x *float32, ldx int, y *float32, ldy int, cols, acc int)
    AVX2 register block of 4 rows × 3 tokens: 12 ymm accumulators, 3 x
    vectors and one weight vector fill the 16 registers."""
    name = f"gemm4x3{dt}_256"
    es = esize(dt)
    ld = load256(dt)
    declare(name, f"(w *{gotype(dt)}, ldw int, x *float32, ldx int, y *float32, ldy int, cols, acc int)")
    text(name)
    ptr_setup(4, es.bit_length() - 1, 3)
    emit("\tMOVQ cols+48(FP), BX")
    emit("\tANDQ $-8, BX")
    for i in range(12):
        emit(f"\tVXORPS Y{i}, Y{i}, Y{i}")
    emit("\tXORQ AX, AX")
    emit(f"{name}_loop:")
    emit("\tCMPQ AX, BX")
    emit(f"\tJGE {name}_sum")
    for t in range(3):
        emit(f"\tVMOVUPS ({XPTR[t]})(AX*4), Y{12+t}")
    for r in range(4):
        for s_ in ld(f"({WPTR[r]})(AX*{es})", "Y15"):
            emit("\t" + s_)
        for t in range(3):
            emit(f"\tVFMADD231PS Y{12+t}, Y15, Y{4*t+r}")
    emit("\tADDQ $8, AX")
    emit(f"\tJMP {name}_loop")
    emit(f"{name}_sum:")
    emit("\tMOVQ y+32(FP), DX")
    emit("\tMOVQ ldy+40(FP), CX")
    emit("\tSHLQ $2, CX")
    emit("\tMOVQ acc+56(FP), BX")
    for t in range(3):
        a = [4 * t + r for r in range(4)]
        hsum4(a, False, 12)
        emit("\tTESTQ BX, BX")
        emit(f"\tJZ {name}_st{t}")
        emit(f"\tVADDPS (DX), X{a[0]}, X{a[0]}")
        emit(f"{name}_st{t}:")
        emit(f"\tVMOVUPS X{a[0]}, (DX)")
        if t != 2:
            emit("\tADDQ CX, DX")
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()



def gemv4_512(dt):
    """func gemv4<dt>_512(w *T, ldw int, x *float32, y *float32, rows, cols int)
    Dense GEMV, 4 rows at a time (rows rounded down to 4, cols to 16): each
    x vector is loaded once for 4 rows, so x traffic does not compete with
    the weight streams when x does not fit in L1 (d_in = 11008: 44 KiB)."""
    name = f"gemv4{dt}_512"
    es = esize(dt)
    ld = load512(dt)
    W = ["SI", "R8", "R9", "R10"]
    declare(name, f"(w *{gotype(dt)}, ldw int, x *float32, y *float32, rows, cols int)")
    text(name)
    emit("\tMOVQ w+0(FP), SI")
    emit("\tMOVQ ldw+8(FP), R11")
    emit(f"\tSHLQ ${es.bit_length()-1}, R11")
    emit("\tMOVQ x+16(FP), DI")
    emit("\tMOVQ y+24(FP), DX")
    emit("\tMOVQ rows+32(FP), CX")
    emit("\tSHRQ $2, CX")
    emit("\tMOVQ cols+40(FP), BX")
    emit("\tANDQ $-16, BX")
    emit("\tMOVQ BX, R12")
    emit("\tANDQ $-32, R12")
    emit(f"{name}_group:")
    emit("\tTESTQ CX, CX")
    emit(f"\tJZ {name}_done")
    for i in range(1, 4):
        emit(f"\tLEAQ ({W[i-1]})(R11*1), {W[i]}")
    for i in range(8):
        emit(f"\tVXORPS Z{i}, Z{i}, Z{i}")
    emit("\tXORQ AX, AX")
    emit(f"{name}_loop2:")
    emit("\tCMPQ AX, R12")
    emit(f"\tJGE {name}_loop1")
    if G4_PF_DIST:
        for r in range(4):
            for line in range(0, 32 * es, 64):
                emit(f"\t{PF_INSN} {G4_PF_DIST+line}({W[r]})(AX*{es})")
    emit("\tVMOVUPS (DI)(AX*4), Z24")
    emit("\tVMOVUPS 64(DI)(AX*4), Z25")
    for r in range(4):
        for s_ in ld(f"({W[r]})(AX*{es})", f"Z{16+r}"):
            emit("\t" + s_)
        for s_ in ld(f"{16*es}({W[r]})(AX*{es})", f"Z{20+r}"):
            emit("\t" + s_)
        emit(f"\tVFMADD231PS Z24, Z{16+r}, Z{r}")
        emit(f"\tVFMADD231PS Z25, Z{20+r}, Z{4+r}")
    emit("\tADDQ $32, AX")
    emit(f"\tJMP {name}_loop2")
    emit(f"{name}_loop1:")
    emit("\tCMPQ AX, BX")
    emit(f"\tJGE {name}_sum")
    emit("\tVMOVUPS (DI)(AX*4), Z24")
    for r in range(4):
        for s_ in ld(f"({W[r]})(AX*{es})", f"Z{16+r}"):
            emit("\t" + s_)
        emit(f"\tVFMADD231PS Z24, Z{16+r}, Z{r}")
    emit("\tADDQ $16, AX")
    emit(f"\tJMP {name}_loop1")
    emit(f"{name}_sum:")
    for r in range(4):
        emit(f"\tVADDPS Z{4+r}, Z{r}, Z{r}")
    hsum4([0, 1, 2, 3], True, 16)
    emit("\tVMOVUPS X0, (DX)")
    emit("\tADDQ $16, DX")
    emit("\tLEAQ (R10)(R11*1), SI")
    emit("\tDECQ CX")
    emit(f"\tJMP {name}_group")
    emit(f"{name}_done:")
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()


def sp24t2_256(dt):
    """func sp24T2x32<dt>_256(val *T, ldv int, idx *uint8, ldi int, xt *float32, out *float32, kept, acc int)
    AVX2 version of sp24T4x32: 2 rows × 32 tokens (8 ymm accumulators, 4
    per row), same xt tile and out layout (2 rows × 32)."""
    name = f"sp24T2x32{dt}_256"
    es = esize(dt)
    V = ["SI", "R12"]
    I = ["R10", "R15"]
    W = ["BX", "R8"]
    T = ["CX", "DX"]
    frame = 0 if dt == "F32" else 128
    declare(name, f"(val *{gotype(dt)}, ldv int, idx *uint8, ldi int, xt *float32, out *float32, kept, acc int)")
    text(name, frame)
    emit("\tMOVQ ldv+8(FP), AX")
    emit(f"\tSHLQ ${es.bit_length()-1}, AX")
    emit("\tMOVQ val+0(FP), SI")
    emit("\tLEAQ (SI)(AX*1), R12")
    emit("\tMOVQ idx+16(FP), R10")
    emit("\tMOVQ ldi+24(FP), AX")
    emit("\tLEAQ (R10)(AX*1), R15")
    emit("\tMOVQ xt+32(FP), DI")
    emit("\tMOVQ kept+48(FP), AX")
    emit("\tSHRQ $4, AX")
    emit("\tMOVQ out+40(FP), BX")
    emit("\tCMPQ acc+56(FP), $0")
    emit(f"\tJNE {name}_load")
    for i in range(8):
        emit(f"\tVXORPS Y{i}, Y{i}, Y{i}")
    emit(f"\tJMP {name}_loop")
    emit(f"{name}_load:")
    for i in range(8):
        emit(f"\tVMOVUPS {32*i}(BX), Y{i}")
    emit(f"{name}_loop:")
    emit("\tTESTQ AX, AX")
    emit(f"\tJZ {name}_done")
    emit("\tMOVL (R10), BX")
    emit("\tMOVL (R15), R8")
    if dt != "F32":
        for r in range(2):
            for h in range(2):
                if dt == "F16":
                    emit(f"\tVCVTPH2PS {16*h}({V[r]}), Y8")
                else:
                    emit(f"\tVPMOVZXWD {16*h}({V[r]}), Y8")
                    emit("\tVPSLLD $16, Y8, Y8")
                emit(f"\tVMOVUPS Y8, {64*r+32*h}(SP)")
    n = 0
    for k in range(16):
        rot = (2 * k - 4) % 32
        for r in range(2):
            t = T[n % 2]
            n += 1
            emit(f"\tRORXL ${rot}, {W[r]}, {t}")
            emit(f"\tANDL $0x30, {t}")
            src = f"{64*r+4*k}(SP)" if dt != "F32" else f"{4*k}({V[r]})"
            yw = 8 + (k % 4) * 2 + r
            emit(f"\tVBROADCASTSS {src}, Y{yw}")
            off = (k // 2) * 512
            for z in range(4):
                emit(f"\tVFMADD231PS {off+32*z}(DI)({t}*8), Y{yw}, Y{4*r+z}")
    for r in range(2):
        emit(f"\tADDQ ${16*es}, {V[r]}")
        emit(f"\tADDQ $4, {I[r]}")
    emit("\tADDQ $4096, DI")
    emit("\tDECQ AX")
    emit(f"\tJMP {name}_loop")
    emit(f"{name}_done:")
    emit("\tMOVQ out+40(FP), DX")
    for i in range(8):
        emit(f"\tVMOVUPS Y{i}, {32*i}(DX)")
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()



def axpyrows(isa, dt="F32"):
    """func axpyRows<F16|F64>_<isa>(y *T, a *T, w *T, ld, rows, cols int)
    y[j] += Σ_{r<rows} a[r]·w[r·ld+j] for j < cols (rounded down to the
    vector width): attention's weighted sum of V rows (f32, or f16 for an
    f16 KV cache, widened with VCVTPH2PS), and in float64 the converter's
    triangular solves and objectives on b×b blocks (convert/linalg.go),
    where float32 would not do. A block of 4 vectors of y stays in
    registers while all rows stream past; two sets of accumulators (even
    and odd rows) hide the FMA latency."""
    wide = isa == "512"
    f64 = dt == "F64"
    V = (8 if wide else 4) if f64 else (16 if wide else 8)
    R = "Z" if wide else "Y"
    es = 8 if f64 else esize(dt)  # bytes of a w element
    ys = 8 if f64 else 4  # bytes of a y (and a) element
    P = "PD" if f64 else "PS"
    bcast = "VBROADCASTSD" if f64 else "VBROADCASTSS"
    sfx = "" if dt == "F32" else dt
    name = f"axpyRows{sfx}_{isa}"

    def fma(mem, b, acc, tmp):
        if dt in ("F32", "F64"):
            emit(f"\tVFMADD231{P} {mem}, {R}{b}, {R}{acc}")
        else:
            emit(f"\tVCVTPH2PS {mem}, {R}{tmp}")
            emit(f"\tVFMADD231PS {R}{tmp}, {R}{b}, {R}{acc}")

    yt = "float64" if f64 else "float32"
    wt = "float64" if f64 else gotype(dt)
    declare(name, f"(y *{yt}, a *{yt}, w *{wt}, ld, rows, cols int)")
    text(name)
    emit("\tMOVQ y+0(FP), DI")
    emit("\tMOVQ a+8(FP), SI")
    emit("\tMOVQ w+16(FP), DX")
    emit("\tMOVQ ld+24(FP), R8")
    emit(f"\tSHLQ ${es.bit_length()-1}, R8")
    emit("\tMOVQ rows+32(FP), CX")
    emit("\tMOVQ cols+40(FP), BX")
    emit(f"\tANDQ ${-V}, BX")
    emit("\tXORQ AX, AX")  # column index
    for blk, nv in (("4", 4), ("1", 1)):
        emit(f"{name}_blk{blk}:")
        emit("\tMOVQ BX, R9")
        emit("\tSUBQ AX, R9")
        emit(f"\tCMPQ R9, ${nv*V}")
        emit(f"\tJLT {name}_next{blk}")
        for i in range(nv):
            emit(f"\tVMOVUP{P[1]} {i*V*ys}(DI)(AX*{ys}), {R}{i}")
            emit(f"\tVXOR{P} {R}{8+i}, {R}{8+i}, {R}{8+i}")
        emit(f"\tLEAQ (DX)(AX*{es}), R10")  # &w[0*ld + j0]
        emit("\tXORQ R11, R11")         # row
        emit(f"{name}_rows2_{blk}:")
        emit("\tLEAQ 1(R11), R12")
        emit("\tCMPQ R12, CX")
        emit(f"\tJGE {name}_rows1_{blk}")
        emit(f"\t{bcast} (SI)(R11*{ys}), {R}4")
        emit(f"\t{bcast} {ys}(SI)(R11*{ys}), {R}5")
        for i in range(nv):
            fma(f"{i*V*es}(R10)", 4, i, 12 + i)
        for i in range(nv):
            fma(f"{i*V*es}(R10)(R8*1)", 5, 8 + i, 12 + i)
        emit("\tLEAQ (R10)(R8*2), R10")
        emit("\tADDQ $2, R11")
        emit(f"\tJMP {name}_rows2_{blk}")
        emit(f"{name}_rows1_{blk}:")
        emit("\tCMPQ R11, CX")
        emit(f"\tJGE {name}_store{blk}")
        emit(f"\t{bcast} (SI)(R11*{ys}), {R}4")
        for i in range(nv):
            fma(f"{i*V*es}(R10)", 4, i, 12 + i)
        emit(f"{name}_store{blk}:")
        for i in range(nv):
            emit(f"\tVADD{P} {R}{8+i}, {R}{i}, {R}{i}")
            emit(f"\tVMOVUP{P[1]} {R}{i}, {i*V*ys}(DI)(AX*{ys})")
        emit(f"\tADDQ ${nv*V}, AX")
        emit(f"\tJMP {name}_blk{blk}")
        emit(f"{name}_next{blk}:")
    emit("\tVZEROUPPER")
    emit("\tRET")
    emit()


def main():
    args = goout.parse_args(__doc__, "kernels_amd64.s", "kernels_decl_amd64.go", PARAMS, globals())
    emit("// Code generated by asmgen/gen_amd64.py; DO NOT EDIT.")
    for line in goout.non_defaults(args, PARAMS, _DEFAULTS):
        emit(line)
    emit()
    emit('#include "textflag.h"')
    emit()
    for dt in ("F32", "F16", "BF16"):
        gemv4_512(dt)
    for dt in ("F32", "F16", "BF16"):
        dotrows(dt, "512")
        dotrows(dt, "256")
    for dt in ("F32", "F16", "BF16"):
        gemm4x4_512(dt)
    gemm4x4_bf16dp_512()
    for dt in ("F32", "F16", "BF16"):
        gemm4x3_256(dt)
    sum_kernel("512")
    sum_kernel("512", True)
    axpy("512")
    axpyrows("512")
    axpyrows("256")
    axpyrows("512", "F16")
    axpyrows("256", "F16")
    axpyrows("512", "F64")
    axpyrows("256", "F64")
    for to16 in (False, True):
        convert16("512", to16)
        convert16("256", to16)
    axpy("256")
    sum_kernel("256")
    transpose16_512()
    group24_consts()
    group24row_512()
    exp_consts()
    silumul_512()
    expsub_512()
    max_scale_512()
    sp24_consts()
    for dt in ("F32", "F16", "BF16"):
        sp24rows_512(dt)
        sp24rows_256(dt)
        sp24gemm4x4_512(dt)
        sp24t_512(dt, 16)
        sp24t_512(dt, 32)
        sp24t_512(dt, 64)
        sp24t_512(dt, 64, 2)
        sp24t6_512(dt)
        sp24t2_256(dt)
        for tile in (32, 64):
            for m in range(1, 7):
                gemmt_512(dt, m, tile)
    for trans in (False, True):
        for masked, tiles in ((False, (32, 64)), (True, (16, 32, 64))):
            for tile in tiles:
                for m in range(1, 7):
                    gemms_512(m, tile, trans, masked)
    goout.write(args, out, decls, "gen_amd64.py", """// Declarations of the assembly kernels of kernels_amd64.s. Each handles the
// columns up to a multiple of its vector width; the callers add the rest.""")


if __name__ == "__main__":
    main()
