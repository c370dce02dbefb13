package kernels

// gemmS[trans][tile/64][m] is the m-row strided kernel for a full tile of
// 32 or 64 columns of B and C (A row-major, or transposed with trans).
var gemmS = [2][2][7]func(w *float32, ldw int, x *float32, ldx int, out *float32, ldo int, cols, acc int){
	{
		{nil, gemmS1x32F32_512, gemmS2x32F32_512, gemmS3x32F32_512, gemmS4x32F32_512, gemmS5x32F32_512, gemmS6x32F32_512},
		{nil, gemmS1x64F32_512, gemmS2x64F32_512, gemmS3x64F32_512, gemmS4x64F32_512, gemmS5x64F32_512, gemmS6x64F32_512},
	},
	{
		{nil, gemmST1x32F32_512, gemmST2x32F32_512, gemmST3x32F32_512, gemmST4x32F32_512, gemmST5x32F32_512, gemmST6x32F32_512},
		{nil, gemmST1x64F32_512, gemmST2x64F32_512, gemmST3x64F32_512, gemmST4x64F32_512, gemmST5x64F32_512, gemmST6x64F32_512},
	},
}

// gemmSM[trans][tile/32][m] is the masked kernel for the partial tile at
// the right edge: a tile of 16, 32 or 64 columns of which more than half
// are in the matrix (see gemms_512 in asmgen/gen_amd64.py).
var gemmSM = [2][3][7]func(w *float32, ldw int, x *float32, ldx int, out *float32, ldo int, cols, acc, mask int){
	{
		{nil, gemmS1x16MF32_512, gemmS2x16MF32_512, gemmS3x16MF32_512, gemmS4x16MF32_512, gemmS5x16MF32_512, gemmS6x16MF32_512},
		{nil, gemmS1x32MF32_512, gemmS2x32MF32_512, gemmS3x32MF32_512, gemmS4x32MF32_512, gemmS5x32MF32_512, gemmS6x32MF32_512},
		{nil, gemmS1x64MF32_512, gemmS2x64MF32_512, gemmS3x64MF32_512, gemmS4x64MF32_512, gemmS5x64MF32_512, gemmS6x64MF32_512},
	},
	{
		{nil, gemmST1x16MF32_512, gemmST2x16MF32_512, gemmST3x16MF32_512, gemmST4x16MF32_512, gemmST5x16MF32_512, gemmST6x16MF32_512},
		{nil, gemmST1x32MF32_512, gemmST2x32MF32_512, gemmST3x32MF32_512, gemmST4x32MF32_512, gemmST5x32MF32_512, gemmST6x32MF32_512},
		{nil, gemmST1x64MF32_512, gemmST2x64MF32_512, gemmST3x64MF32_512, gemmST4x64MF32_512, gemmST5x64MF32_512, gemmST6x64MF32_512},
	},
}

// matMulNNArch runs MatMulNNF32 (MatMulTNF32 with trans) on the strided
// kernels at AVX-512: for each k strip, each tile of up to 64 columns of B
// and C, each block of up to 6 rows of A and C. Full tiles of 64 (or a
// last one of exactly 32) take the unmasked kernels; any other last tile
// the narrowest masked one that holds it (16, 32 or 64 columns), so no
// column is left to scalar code and nothing past column n is touched. The
// arguments are checked by matMulNN.
func matMulNNArch(c []float32, ldc int, a []float32, lda, m, k int, b []float32, ldb, n int, acc, trans bool) bool {
	if level != AVX512 {
		return false
	}
	tr := 0
	if trans {
		tr = 1
	}
	for k0 := 0; k0 < k; k0 += gemmSKC {
		kw := min(gemmSKC, k-k0)
		ac := 0
		if acc || k0 > 0 {
			ac = 1
		}
		for j0 := 0; j0 < n; j0 += 64 {
			nt := min(64, n-j0)
			bp := &b[k0*ldb+j0]
			for r0, mr := 0, 0; r0 < m; r0 += mr {
				mr = min(gemmTMR, m-r0)
				if m-r0 == gemmTMR+1 || m-r0 == gemmTMR+2 {
					mr = 4 // 4+3 or 4+4 rows rather than 6+1 or 6+2
				}
				var ap *float32
				if trans {
					ap = &a[k0*lda+r0]
				} else {
					ap = &a[r0*lda+k0]
				}
				cp := &c[r0*ldc+j0]
				if nt == 64 || nt == 32 {
					gemmS[tr][nt/64][mr](ap, lda, bp, ldb, cp, ldc, kw, ac)
				} else {
					gemmSM[tr][min(2, (nt-1)/16)][mr](ap, lda, bp, ldb, cp, ldc, kw, ac, 1<<nt-1)
				}
			}
		}
	}
	return true
}
