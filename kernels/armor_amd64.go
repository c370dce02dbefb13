package kernels

// armorTile returns the token tile of the transposed ARMOR GEMM for n
// tokens, or 0 where Armor.MatMul uses the row-major path. The wrappers'
// tokens-in-lanes GEMMs (gemmTRows) take tiles of 32 and 64 tokens only;
// below that the row-major path runs the core with the 2:4 tile.
func armorTile(n int) int {
	if level != AVX512 || !useGemmT {
		return 0
	}
	if t := spmmTile(n); t >= 32 {
		return t
	}
	return 0
}

// matMulT is Armor.MatMul for n ≥ 20 tokens on AVX-512 (armorTile), kept
// in the transposed domain from input to output: x is transposed once into
// token tiles (column c of a tile at xt[c*tile]); Pre's blocks map those tiles to
// transposed tiles of Pre·x with the tokens-in-lanes GEMM; each thread then
// takes whole Post blocks and, per tile, computes the block's core rows
// (tokens-in-lanes 2:4, into a block × tile buffer hot in L1/L2), applies
// the Post block to that buffer (tokens-in-lanes GEMM again) and writes the
// result, transposed back, into y. Only x and y are transposed; the
// row-major path transposed Pre·x, wrote the core rows to an n × Out
// buffer and ran the 128-wide Post blocks with the 4×4 kernels.
// Called with armorScratch locked.
func (a *Armor) matMulT(y, x []float32, n, tile int) {
	in, out := a.In(), a.Out()
	a.xt = growScratch(&armorScratch.xt, xtLen(in, n, tile))
	a.t = growScratch(&armorScratch.t, xtLen(in, n, tile))
	transposeTiles(a.xt, x, in, in, n, tile)
	a.x, a.y, a.n, a.tile = x[:n*in], y[:n*out], n, tile
	if a.preT == nil {
		a.preT = a.preTiles
		a.ppT = a.corePostT
	}
	par := parallel
	if in*out/2*n < minParallelWork {
		par = func(n, _ int, fn ranger) { fn.run(0, n) }
	}
	par(in, a.Pre.B, funcRanger(a.preT))
	par(out, a.Post.B, funcRanger(a.ppT))
}

// preTiles computes rows [lo, hi) of the transposed tiles of Pre·x.
func (a *Armor) preTiles(lo, hi int) {
	in, tile := a.In(), a.tile
	for t0 := 0; t0 < a.n; t0 += tile {
		xt, tt := a.xt[t0*in:(t0+tile)*in], a.t[t0*in:(t0+tile)*in]
		for i := lo; i < hi; {
			r0, s, w := a.Pre.block(i / a.Pre.B)
			end := min(hi, r0+s)
			gemmTRows(tt[i*tile:], w.sub(i-r0), end-i, s, xt[r0*tile:], tile, false)
			i = end
		}
	}
}

// armorTileGroup is how many token tiles share one pass over the core's
// weights in corePostT (see spmmTRowsN).
const armorTileGroup = 2

// corePostT computes output rows [lo, hi) (whole Post blocks) for all
// tokens from the transposed tiles of Pre·x. Per tile, the core rows of the
// whole range are computed first, strip by strip as in Sparse24.MatMul (a
// strip of the tile stays in L2 while all rows pass; block by block, each
// 128-row block swept the whole tile again), then each Post block is
// applied to its slice and written out.
func (a *Armor) corePostT(lo, hi int) {
	in, out, n, tile, B := a.In(), a.Out(), a.n, a.tile, a.Post.B
	core := a.Core.view().sub(lo)
	tiles := (n + tile - 1) / tile
	group := min(armorTileGroup, tiles)
	bp := f32Scratch.Get().(*[]float32)
	buf := growF32(bp, (group*(hi-lo)+B)*tile)
	u, v := buf[:group*(hi-lo)*tile], buf[group*(hi-lo)*tile:]
	for g0 := 0; g0 < tiles; g0 += group {
		ng := min(group, tiles-g0)
		spmmTRowsN(u, core, hi-lo, a.t[g0*tile*in:], tile*in, tile, ng)
		for j := 0; j < ng; j++ {
			t0 := (g0 + j) * tile
			nt := min(tile, n-t0)
			uj := u[j*(hi-lo)*tile:]
			for i := lo; i < hi; {
				r0, s, w := a.Post.block(i / B)
				gemmTRows(v, w, s, s, uj[(r0-lo)*tile:], tile, false)
				untransposeTile(a.y[t0*out+r0:], out, v, s, nt, tile)
				if a.Bias != nil {
					for t := t0; t < t0+nt; t++ {
						Axpy(1, a.Bias[r0:r0+s], a.y[t*out+r0:t*out+r0+s])
					}
				}
				i = r0 + s
			}
		}
	}
	f32Scratch.Put(bp)
}
