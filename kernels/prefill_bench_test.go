package kernels

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkPrefill reports dense-equivalent GFLOP/s of prefill-sized
// products on 2 threads ($ARMOR_BENCH_THREADS to change): dense with the tokens-in-lanes GEMM (gemmT) and
// with the 4×4 kernels (gemm4x4), and ARMOR b=128. Run with -count to
// alternate the variants.
func BenchmarkPrefill(b *testing.B) {
	defer SetThreads(Threads())
	SetThreads(2)
	if v, err := strconv.Atoi(os.Getenv("ARMOR_BENCH_THREADS")); err == nil {
		SetThreads(v)
	}
	for _, sh := range [][3]int{{2048, 2048, 512}, {8192, 2048, 512}, {2048, 2048, 64}, {2048, 8192, 128}} {
		rows, cols, n := sh[0], sh[1], sh[2]
		for _, dt := range benchDTypes() {
			ls := benchLayers(b, dt, rows, cols)
			x, y := make([]float32, n*cols), make([]float32, n*rows)
			r := rand.New(rand.NewPCG(3, 4))
			for i := range x {
				x[i] = r.Float32() - 0.5
			}
			for _, kind := range []string{"gemm4x4", "gemmT", "sparse24", "armor"} {
				m := ls[kind]
				switch kind {
				case "gemm4x4", "gemmT":
					m = ls["dense"]
				}
				b.Run(fmt.Sprintf("%s/%v/%dx%d/n=%d", kind, dt, rows, cols, n), func(b *testing.B) {
					defer func() { useGemmT = true }()
					useGemmT = kind != "gemm4x4"
					for b.Loop() {
						m.MatMul(y, x, n)
					}
					b.ReportMetric(2*float64(rows*cols*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// benchDTypes is f16 unless $ARMOR_BENCH_DTYPES lists others (f32,bf16).
func benchDTypes() []DType {
	var dts []DType
	for _, s := range strings.Split(os.Getenv("ARMOR_BENCH_DTYPES"), ",") {
		switch s {
		case "f32":
			dts = append(dts, F32)
		case "f16":
			dts = append(dts, F16)
		case "bf16":
			dts = append(dts, BF16)
		}
	}
	if len(dts) == 0 {
		dts = []DType{F16}
	}
	return dts
}
