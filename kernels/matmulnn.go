package kernels

import "fmt"

// MatMulNNF32 computes C = A·B on row-major f32 matrices with arbitrary row
// strides: c[i*ldc+j] = Σ_{p<k} a[i*lda+p]·b[p*ldb+j] for i < m, j < n,
// added to c's current values when acc. Nothing of c outside the m×n window
// is written. It runs on the calling goroutine (callers parallelize), needs
// no transposed copy of either operand, and panics if a stride is smaller
// than its row (lda < k, ldb < n or ldc < n) or a slice is too short.
//
// On AVX-512 it runs the strided tokens-in-lanes kernels (gemmS*, see
// gemms_512 in asmgen/gen_amd64.py); elsewhere one AxpyRows per row of C.
func MatMulNNF32(c []float32, ldc int, a []float32, lda, m, k int, b []float32, ldb, n int, acc bool) {
	matMulNN(c, ldc, a, lda, m, k, b, ldb, n, acc, false)
}

// MatMulTNF32 is MatMulNNF32 with A given transposed: c[i*ldc+j] (+)=
// Σ_{p<k} a[p*lda+i]·b[p*ldb+j], A stored as k rows of m (lda ≥ m).
func MatMulTNF32(c []float32, ldc int, a []float32, lda, m, k int, b []float32, ldb, n int, acc bool) {
	matMulNN(c, ldc, a, lda, m, k, b, ldb, n, acc, true)
}

// gemmSKC is the k strip of MatMulNNF32 on AVX-512: 512 rows of B × 64
// columns × 4 B = 128 KiB of a B panel stay in L2 while A's rows stream
// past (gemmTKC's reasoning, with B in place of the transposed tokens).
// (Declared here for the tests on every GOARCH.)
var gemmSKC = 512

func matMulNN(c []float32, ldc int, a []float32, lda, m, k int, b []float32, ldb, n int, acc, trans bool) {
	if m <= 0 || n <= 0 {
		return
	}
	aw := k // the stored width of A's rows
	if trans {
		aw = m
	}
	// The assembly addresses rows from the strides; a stride below the row
	// width (or negative) would let it reach outside the checked slices.
	if lda < aw || ldb < n || ldc < n {
		name := "MatMulNNF32"
		if trans {
			name = "MatMulTNF32"
		}
		panic(fmt.Sprintf("kernels: %s %d×%d·%d×%d: strides lda %d, ldb %d, ldc %d below the row widths %d, %d, %d",
			name, m, k, k, n, lda, ldb, ldc, aw, n, n))
	}
	_ = c[(m-1)*ldc+n-1]
	if k <= 0 {
		if !acc {
			for i := 0; i < m; i++ {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	if trans {
		_ = a[(k-1)*lda+m-1]
	} else {
		_ = a[(m-1)*lda+k-1]
	}
	_ = b[(k-1)*ldb+n-1]
	if matMulNNArch(c, ldc, a, lda, m, k, b, ldb, n, acc, trans) {
		return
	}
	// Row i of C is the weighted sum of B's rows, weights row i of A.
	var col []float32
	var bp *[]float32
	if trans {
		bp = xtScratch.Get().(*[]float32)
		col = growF32(bp, k)
	}
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		if !acc {
			clear(ci)
		}
		if trans {
			for p := range col {
				col[p] = a[p*lda+i]
			}
			AxpyRows(ci, col, b, ldb)
		} else {
			AxpyRows(ci, a[i*lda:i*lda+k], b, ldb)
		}
	}
	if bp != nil {
		xtScratch.Put(bp)
	}
}
