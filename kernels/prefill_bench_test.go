package kernels

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
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

// TestPrefillCompare (ARMOR_PREFILL_COMPARE=1) times the prefill variants
// alternately, repeat times each, and prints the fastest time of each with
// its ratio to the dense tokens-in-lanes GEMM: on a shared machine other
// load only slows a run down, and alternating exposes every variant to it
// alike.
func TestPrefillCompare(t *testing.T) {
	if os.Getenv("ARMOR_PREFILL_COMPARE") == "" {
		t.Skip("set ARMOR_PREFILL_COMPARE=1 to time prefill variants")
	}
	defer SetThreads(Threads())
	SetThreads(2)
	if v, err := strconv.Atoi(os.Getenv("ARMOR_BENCH_THREADS")); err == nil {
		SetThreads(v)
	}
	const repeat = 15
	kinds := []string{"gemm4x4", "gemmT", "sparse24", "sparse24r4", "armor", "armorR4", "armorOld"}
	shapes := [][3]int{{2048, 2048, 512}, {512, 2048, 512}, {8192, 2048, 512}, {2048, 8192, 512}, {2048, 2048, 64}, {2048, 2048, 16}}
	if e := os.Getenv("ARMOR_COMPARE_SHAPES"); e != "" { // rows×cols×tokens,...
		shapes = nil
		for _, f := range strings.Split(e, ",") {
			var sh [3]int
			if _, err := fmt.Sscanf(f, "%dx%dx%d", &sh[0], &sh[1], &sh[2]); err != nil {
				t.Fatalf("ARMOR_COMPARE_SHAPES: %q: %v", f, err)
			}
			shapes = append(shapes, sh)
		}
	}
	for _, sh := range shapes {
		rows, cols, n := sh[0], sh[1], sh[2]
		for _, dt := range benchDTypes() {
			ls := benchLayers(&testing.B{}, dt, rows, cols)
			x, y := make([]float32, n*cols), make([]float32, n*rows)
			r := rand.New(rand.NewPCG(3, 4))
			for i := range x {
				x[i] = r.Float32() - 0.5
			}
			best := make([]time.Duration, len(kinds))
			for rep := 0; rep < repeat; rep++ {
				for k, kind := range kinds {
					m := ls[kind]
					switch kind {
					case "gemm4x4", "gemmT":
						m = ls["dense"]
					case "armorOld", "armorR4":
						m = ls["armor"]
					case "sparse24r4":
						m = ls["sparse24"]
					}
					useGemmT = kind != "gemm4x4" && kind != "armorOld"
					useSp24T6 = kind != "sparse24r4" && kind != "armorR4"
					start := time.Now()
					m.MatMul(y, x, n)
					if d := time.Since(start); rep == 0 || d < best[k] {
						best[k] = d
					}
				}
			}
			useGemmT, useSp24T6 = true, true
			line := fmt.Sprintf("%v %dx%d n=%d:", dt, rows, cols, n)
			for k, kind := range kinds {
				gf := 2 * float64(rows*cols*n) / best[k].Seconds() / 1e9
				line += fmt.Sprintf("  %s %.0f GF/s %.2f×", kind, gf, float64(best[1])/float64(best[k]))
			}
			t.Log(line)
		}
	}
}
