package kernels

// Dense GEMM with tokens in the vector lanes (AVX-512), used for prefill
// batches: see gemmt_512 in asmgen/gen_amd64.py.

// gemmTile returns the token tile of the tokens-in-lanes dense GEMM for n
// tokens of dtype dt, or 0 where the 4×4 reduction-in-lanes kernels are
// used: other levels; fewer than 32 tokens, where padding a tile wastes too
// much; bf16 with VDPBF16PS, whose two products per lane beat it (figures:
// docs/benchmarks.md, "Kernel design choices").
func gemmTile(dt DType, n int) int {
	switch {
	case level != AVX512 || n < 32 || !useGemmT || (dt == BF16 && useBF16Dot):
		return 0
	case n >= 48:
		return 64
	}
	return 32
}

// gemmTKC is the column strip of gemmTRows: 512 columns × 64 tokens × 4 B
// = 128 KiB of transposed tokens stay in L2 while the rows stream past.
var gemmTKC = 512

// gemmTRows computes outs[r*tile+t] = Σ_{c<cols} w[r,c]·xt[c*tile+t] for
// r < rows, t < tile (added to outs when acc). xt holds cols × tile
// transposed tokens.
func gemmTRows(outs []float32, w wview, rows, cols int, xt []float32, tile int, acc bool) {
	_ = outs[rows*tile-1]
	_ = xt[cols*tile-1]
	kc := cols &^ 15
	ti := tile / 64
	for k0 := 0; k0 < kc; k0 += gemmTKC {
		kw := min(gemmTKC, kc-k0)
		a := 0
		if acc || k0 > 0 {
			a = 1
		}
		xp := &xt[k0*tile]
		for r0, m := 0, 0; r0 < rows; r0 += m {
			m = min(gemmTMR, rows-r0)
			if rows-r0 == gemmTMR+1 || rows-r0 == gemmTMR+2 {
				m = 4 // 4+3 or 4+4 rows rather than 6+1 or 6+2
			}
			op := &outs[r0*tile]
			switch w.dt {
			case F32:
				gemmTF32[ti][m](&w.f32[r0*w.ld+k0], w.ld, xp, op, kw, a)
			case F16:
				gemmTU16[0][ti][m](&w.u16[r0*w.ld+k0], w.ld, xp, op, kw, a)
			default:
				gemmTU16[1][ti][m](&w.u16[r0*w.ld+k0], w.ld, xp, op, kw, a)
			}
		}
	}
	if kc == 0 && !acc {
		clear(outs[:rows*tile])
	}
	for r := 0; r < rows; r++ {
		o := outs[r*tile : (r+1)*tile]
		for c := kc; c < cols; c++ {
			Axpy(w.at(r, c), xt[c*tile:(c+1)*tile], o)
		}
	}
}

// gemmXT computes y[t*ldy+r] = Σ_c w[r,c]·x[t,c] for r < rows, t < n,
// from the tokens transposed by transposeTiles(xt, x, ·, cols, n, tile).
func gemmXT(y []float32, ldy int, w wview, rows, cols int, xt []float32, n, tile int) {
	if rows <= 0 || n <= 0 {
		return
	}
	bp := f32Scratch.Get().(*[]float32)
	outs := growF32(bp, rows*tile)
	for t0 := 0; t0 < n; t0 += tile {
		nt := min(tile, n-t0)
		xb := xt[t0*cols : (t0+tile)*cols]
		if w.pw == 0 {
			gemmTRows(outs, w, rows, cols, xb, tile, false)
		} else {
			// Panels: column c of the tile is at xb[c*tile:]; the first
			// panel writes outs, the others add to it.
			for p := 0; p < w.npanels(); p++ {
				pv, c0, pw := w.panel(p)
				gemmTRows(outs, pv, rows, pw, xb[c0*tile:(c0+pw)*tile], tile, p > 0)
			}
		}
		untransposeTile(y[t0*ldy:], ldy, outs, rows, nt, tile)
	}
	f32Scratch.Put(bp)
}

// untransposeTile writes y[t*ldy+r] = outs[r*tile+t] for r < rows, t < nt.
func untransposeTile(y []float32, ldy int, outs []float32, rows, nt, tile int) {
	transposeBlock(y, ldy, outs, tile, rows, nt)
}

// gemmTF32[tile/64][m] is the m-row kernel for a tile of 32 or 64 tokens.
var gemmTF32 = [2][7]func(*float32, int, *float32, *float32, int, int){
	{nil, gemmT1x32F32_512, gemmT2x32F32_512, gemmT3x32F32_512, gemmT4x32F32_512, gemmT5x32F32_512, gemmT6x32F32_512},
	{nil, gemmT1x64F32_512, gemmT2x64F32_512, gemmT3x64F32_512, gemmT4x64F32_512, gemmT5x64F32_512, gemmT6x64F32_512},
}

// gemmTU16[bf16][tile/64][m]: f16 (0) and bf16 (1) weights.
var gemmTU16 = [2][2][7]func(*uint16, int, *float32, *float32, int, int){
	{
		{nil, gemmT1x32F16_512, gemmT2x32F16_512, gemmT3x32F16_512, gemmT4x32F16_512, gemmT5x32F16_512, gemmT6x32F16_512},
		{nil, gemmT1x64F16_512, gemmT2x64F16_512, gemmT3x64F16_512, gemmT4x64F16_512, gemmT5x64F16_512, gemmT6x64F16_512},
	},
	{
		{nil, gemmT1x32BF16_512, gemmT2x32BF16_512, gemmT3x32BF16_512, gemmT4x32BF16_512, gemmT5x32BF16_512, gemmT6x32BF16_512},
		{nil, gemmT1x64BF16_512, gemmT2x64BF16_512, gemmT3x64BF16_512, gemmT4x64BF16_512, gemmT5x64BF16_512, gemmT6x64BF16_512},
	},
}
