package kernels

import (
	"fmt"
	"testing"
)

// TestGemmTRows checks the tokens-in-lanes kernels directly for every row
// count of a block (1–6 and the 4+3 / 4+4 splits), both tiles, all dtypes,
// with and without accumulation, against a float64 reference.
func TestGemmTRows(t *testing.T) {
	if DetectedISA() != AVX512 {
		t.Skip("no AVX-512 on this machine")
	}
	defer SetISA(ISA())
	if err := SetISA(AVX512); err != nil {
		t.Fatal(err)
	}
	r := newRand(t)
	for _, dt := range []DType{F32, F16, BF16} {
		for _, tile := range []int{32, 64} {
			for rows := 1; rows <= 14; rows++ {
				for _, cols := range []int{16, 37, 528} {
					m := randDense(r, dt, rows, cols)
					xt := randVec(r, cols*tile)
					init := randVec(r, rows*tile)
					for _, acc := range []bool{false, true} {
						outs := append([]float32(nil), init...)
						gemmTRows(outs, m.view(), rows, cols, xt, tile, acc)
						want, abs := make([]float64, rows*tile), make([]float64, rows*tile)
						for i := 0; i < rows; i++ {
							for tk := 0; tk < tile; tk++ {
								if acc {
									want[i*tile+tk] = float64(init[i*tile+tk])
									abs[i*tile+tk] = abs64(float64(init[i*tile+tk]))
								}
								for c := 0; c < cols; c++ {
									p := at64(dt, m.F32, m.U16, i*cols+c) * float64(xt[c*tile+tk])
									want[i*tile+tk] += p
									abs[i*tile+tk] += abs64(p)
								}
							}
						}
						checkClose(t, fmt.Sprintf("%v tile %d %dx%d acc=%v", dt, tile, rows, cols, acc), outs, want, abs, cols+1)
					}
				}
			}
		}
	}
}

func abs64(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}
