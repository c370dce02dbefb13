//go:build amd64

package kernels

// Declarations of the tokens-in-lanes dense GEMM kernels (gemmT*, kernels_amd64.s)
// and their tables by tile and row count.

//go:noescape
func gemmT1x32F32_512(w *float32, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT2x32F32_512(w *float32, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT3x32F32_512(w *float32, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT4x32F32_512(w *float32, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT5x32F32_512(w *float32, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT6x32F32_512(w *float32, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT1x64F32_512(w *float32, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT2x64F32_512(w *float32, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT3x64F32_512(w *float32, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT4x64F32_512(w *float32, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT5x64F32_512(w *float32, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT6x64F32_512(w *float32, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT1x32F16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT2x32F16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT3x32F16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT4x32F16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT5x32F16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT6x32F16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT1x64F16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT2x64F16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT3x64F16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT4x64F16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT5x64F16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT6x64F16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT1x32BF16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT2x32BF16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT3x32BF16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT4x32BF16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT5x32BF16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT6x32BF16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT1x64BF16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT2x64BF16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT3x64BF16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT4x64BF16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT5x64BF16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

//go:noescape
func gemmT6x64BF16_512(w *uint16, ldw int, xt *float32, out *float32, cols, acc int)

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
