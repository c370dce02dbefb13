//go:build !amd64

package kernels

// Kernels that exist only for amd64 (AVX2/AVX-512): on other architectures
// these report "not handled" and the portable or per-token paths run. Shared
// by arm64 (which has its own GEMV kernels) and every other GOARCH.

func spmmArch(y []float32, ldy int, v sview, rows int, x []float32, ldx, n int) bool { return false }

func sumArch(x []float32, pf bool) (float32, int) { return 0, 0 }

func spmmTile(n int) int { return 0 }

func spmmXT(y []float32, ldy int, v sview, rows int, x []float32, ldx, n int, xt []float32, tile int) {
	spmm(y, ldy, v, rows, x, ldx, n)
}

func axpyArch(a float32, x, y []float32) int { return 0 }

func axpyRowsArch(y, a, w []float32, ld int) int { return 0 }

func axpyRowsF16Arch(y, a []float32, w []uint16, ld int) int { return 0 }

func axpyRowsF64Arch(y, a, w []float64, ld int) int { return 0 }

func fromF16Arch(dst []float32, src []uint16) int { return 0 }

func toF16Arch(dst []uint16, src []float32) int { return 0 }

func gemmTile(dt DType, n int) int { return 0 }

func gemmXT(y []float32, ldy int, w wview, rows, cols int, xt []float32, n, tile int) {
	panic("kernels: gemmXT without a tokens-in-lanes kernel")
}

func armorTile(n int) int { return 0 }

func (a *Armor) matMulT(y, x []float32, n, tile int) {
	panic("kernels: Armor.matMulT without tokens-in-lanes kernels")
}

func transpose16Arch(dst []float32, ldd int, src []float32, lds int, rows, cols int) bool {
	return false
}

func siluMulArch(gate, up []float32) int { return 0 }

func expSubArch(x []float32, m float32) (float32, int) { return 0, 0 }

func maxArch(x []float32) (float32, int) { return 0, 0 }

func scaleArch(x []float32, a float32) int { return 0 }

func gemmPad(n int) int { return n }

func spmmPad(n int) int { return n }

func group24RowArch(tr, srow []float32, mrow []uint8, gs []Group24, gb []float32, ldg int, aa, ia float64) (changed, ok bool) {
	return false, false
}
