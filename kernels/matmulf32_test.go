package kernels

import (
	"fmt"
	"testing"
)

// TestMatMulF32 checks the strided f32 product against float64 on every
// level, across the token counts where it switches between the 4×4 kernels
// and the tokens-in-lanes tiles (with partial tiles), columns with and
// without a 16-wide tail, and row strides larger than the rows.
func TestMatMulF32(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := newRand(t)
		for _, rows := range []int{1, 5, 6, 13, 64} {
			for _, cols := range []int{1, 8, 16, 33, 64, 130} {
				for _, n := range []int{1, 3, 4, 31, 32, 47, 48, 64, 65, 130} {
					ldw, ldx, ldy := cols+r.IntN(5), cols+r.IntN(5), rows+r.IntN(5)
					w := randVec(r, (rows-1)*ldw+cols)
					x := randVec(r, (n-1)*ldx+cols)
					y := poisoned((n-1)*ldy + rows)
					MatMulF32(y, ldy, w, ldw, rows, cols, x, ldx, n)
					// Compact x for the reference (it reads x[t*cols+j]).
					xc := make([]float32, n*cols)
					for tt := 0; tt < n; tt++ {
						copy(xc[tt*cols:(tt+1)*cols], x[tt*ldx:])
					}
					want, abs := refGemm(func(i, j int) float64 { return float64(w[i*ldw+j]) }, rows, cols, xc, n)
					got := make([]float32, n*rows)
					for tt := 0; tt < n; tt++ {
						copy(got[tt*rows:(tt+1)*rows], y[tt*ldy:])
					}
					checkClose(t, fmt.Sprintf("MatMulF32 %dx%d n=%d", rows, cols, n), got, want, abs, cols)
				}
			}
		}
	})
}

func TestTranspose(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := newRand(t)
		for _, rows := range []int{1, 15, 16, 17, 40} {
			for _, cols := range []int{1, 16, 33} {
				lds, ldd := cols+r.IntN(4), rows+r.IntN(4)
				src := randVec(r, (rows-1)*lds+cols)
				dst := poisoned((cols-1)*ldd + rows)
				Transpose(dst, ldd, src, lds, rows, cols)
				for i := 0; i < rows; i++ {
					for j := 0; j < cols; j++ {
						if dst[j*ldd+i] != src[i*lds+j] {
							t.Fatalf("Transpose %dx%d: dst[%d,%d] = %v, want %v", rows, cols, j, i, dst[j*ldd+i], src[i*lds+j])
						}
					}
				}
			}
		}
	})
}
