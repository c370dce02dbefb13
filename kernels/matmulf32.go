package kernels

// MatMulF32 computes y[t*ldy+r] = Σ_{c<cols} w[r*ldw+c]·x[t*ldx+c] for
// r < rows, t < n: a product of f32 matrices with arbitrary row strides, on
// the calling goroutine. It is for callers that run many small independent
// products in parallel themselves (attention over heads and query blocks);
// where the level has the tokens-in-lanes GEMM and n is large enough, x is
// transposed into token tiles and that kernel runs, otherwise the 4×4
// kernels or the portable loops.
func MatMulF32(y []float32, ldy int, w []float32, ldw, rows, cols int, x []float32, ldx, n int) {
	if rows <= 0 || n <= 0 {
		return
	}
	_ = y[(n-1)*ldy+rows-1]
	if cols <= 0 {
		for t := 0; t < n; t++ {
			clear(y[t*ldy : t*ldy+rows])
		}
		return
	}
	_ = w[(rows-1)*ldw+cols-1]
	_ = x[(n-1)*ldx+cols-1]
	wv := wview{dt: F32, f32: w, ld: ldw}
	if tile := gemmTile(F32, n); tile > 0 && cols >= 16 {
		bp := xtScratch.Get().(*[]float32)
		xt := growF32(bp, cols*tile)
		for t0 := 0; t0 < n; t0 += tile {
			nt := min(tile, n-t0)
			transposeTile(xt, x[t0*ldx:], ldx, 0, cols, nt, tile)
			gemmXT(y[t0*ldy:], ldy, wv, rows, cols, xt, nt, tile)
		}
		xtScratch.Put(bp)
		return
	}
	gemm(y, ldy, wv, rows, cols, x, ldx, n)
}

// Transpose writes dst[j*ldd+i] = src[i*lds+j] for i < rows, j < cols, on
// the calling goroutine.
func Transpose(dst []float32, ldd int, src []float32, lds int, rows, cols int) {
	transposeBlock(dst, ldd, src, lds, rows, cols)
}
