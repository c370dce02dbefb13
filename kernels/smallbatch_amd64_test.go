package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkSmallBatchL1 times the AVX-512 small-batch GEMM kernels on
// weights that stay in L1/L2 (64 rows × 512 columns, f16), so that their
// arithmetic, not the memory, sets the pace: the dense and 2:4 4×4
// kernels at 8 and 16 tokens and the 16-token tokens-in-lanes 2:4 kernel.
// ns/denseMAC is the time per dense-equivalent multiply-add (rows × cols
// × tokens), so the kinds compare directly. Run on one core:
//
//	taskset -c 0 go test ./kernels -run X -bench SmallBatchL1
func BenchmarkSmallBatchL1(b *testing.B) {
	if DetectedISA() != AVX512 {
		b.Skip("no AVX-512 on this machine")
	}
	const rows, cols = 64, 512
	r := rand.New(rand.NewPCG(1, 1))
	w := make([]uint16, rows*cols)
	for i := range w {
		w[i] = F32ToF16(r.Float32() - 0.5)
	}
	s, err := Pack24(rand24(r, rows, cols), rows, cols, F16)
	if err != nil {
		b.Fatal(err)
	}
	v := s.view()
	val, idx, kept, ldi := v.u16, v.idx, v.ldv, v.ldi
	report := func(b *testing.B, tokens int) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(rows*cols*tokens), "ns/denseMAC")
	}
	for _, tokens := range []int{8, 16} {
		x := make([]float32, tokens*cols)
		y := make([]float32, tokens*rows)
		b.Run(fmt.Sprintf("dense4x4/tokens=%d", tokens), func(b *testing.B) {
			for range b.N {
				for r0 := 0; r0 < rows; r0 += 4 {
					for t0 := 0; t0 < tokens; t0 += 4 {
						gemm4x4F16_512(&w[r0*cols], cols, &x[t0*cols], cols, &y[t0*rows+r0], rows, cols, 0)
					}
				}
			}
			report(b, tokens)
		})
		b.Run(fmt.Sprintf("sp24_4x4/tokens=%d", tokens), func(b *testing.B) {
			for range b.N {
				for r0 := 0; r0 < rows; r0 += 4 {
					for t0 := 0; t0 < tokens; t0 += 4 {
						sp24Gemm4x4F16_512(&val[r0*kept], kept, &idx[r0*ldi], ldi, &x[t0*cols], cols, &y[t0*rows+r0], rows, kept, 0)
					}
				}
			}
			report(b, tokens)
		})
	}
	xt := make([]float32, cols*16)
	out := make([]float32, rows*16)
	b.Run("sp24T4x16/tokens=16", func(b *testing.B) {
		for range b.N {
			for r0 := 0; r0 < rows; r0 += 4 {
				sp24T4x16F16_512(&val[r0*kept], kept, &idx[r0*ldi], ldi, &xt[0], &out[r0*16], kept, 0)
			}
		}
		report(b, 16)
	})
}
