//go:build !amd64 && !arm64

package kernels

func gemvArch(y []float32, w wview, rows, cols int, x []float32) int { return 0 }

func gemmArch(y []float32, ldy int, w wview, rows, cols int, x []float32, ldx, n int) bool {
	return false
}

func spmvArch(y []float32, v sview, rows int, x []float32) int { return 0 }
