//go:build !amd64

package kernels

// The strided NN/TN GEMM kernels are AVX-512 only: the portable path of
// matMulNN runs everywhere else.
func matMulNNArch(c []float32, ldc int, a []float32, lda, m, k int, b []float32, ldb, n int, acc, trans bool) bool {
	return false
}
