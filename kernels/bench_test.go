package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

type matmuler interface{ MatMul(y, x []float32, n int) }

// benchLayers builds dense, 2:4 and ARMOR (b=128) layers of one shape.
func benchLayers(b *testing.B, dt DType, rows, cols int) map[string]matmuler {
	r := rand.New(rand.NewPCG(1, 2))
	s, err := Pack24(rand24(r, rows, cols), rows, cols, dt)
	if err != nil {
		b.Fatal(err)
	}
	return map[string]matmuler{
		"dense":    randDense(r, dt, rows, cols),
		"sparse24": s,
		"armor":    &Armor{Pre: randBlockDiag(r, dt, cols, 128), Core: s, Post: randBlockDiag(r, dt, rows, 128)},
	}
}

func bytesOf(m matmuler) int64 {
	switch m := m.(type) {
	case *Dense:
		return m.Bytes()
	case *Sparse24:
		return m.Bytes()
	case *Armor:
		return m.Bytes()
	}
	return 0
}

// BenchmarkMatVec reports weight GB/s on one thread; the 1024×1024 shape
// fits in L2/L3 and shows the kernels' compute rate, 4096×4096 their
// streaming rate (use armor-bench kernels for the full table).
func BenchmarkMatVec(b *testing.B) {
	defer SetThreads(Threads())
	SetThreads(1)
	for _, sh := range [][2]int{{1024, 1024}, {4096, 4096}} {
		for _, dt := range []DType{F32, F16, BF16} {
			ls := benchLayers(b, dt, sh[0], sh[1])
			for _, kind := range []string{"dense", "sparse24", "armor"} {
				m := ls[kind]
				b.Run(fmt.Sprintf("%s/%v/%dx%d", kind, dt, sh[0], sh[1]), func(b *testing.B) {
					x, y := make([]float32, sh[1]), make([]float32, sh[0])
					b.SetBytes(bytesOf(m))
					for b.Loop() {
						m.MatMul(y, x, 1)
					}
				})
			}
		}
	}
}

// BenchmarkMatMul reports dense-equivalent GFLOP/s for 64 tokens, one thread.
func BenchmarkMatMul(b *testing.B) {
	defer SetThreads(Threads())
	SetThreads(1)
	const n = 64
	rows, cols := 1024, 1024
	for _, dt := range []DType{F32, F16, BF16} {
		ls := benchLayers(b, dt, rows, cols)
		for _, kind := range []string{"dense", "sparse24", "armor"} {
			m := ls[kind]
			b.Run(fmt.Sprintf("%s/%v/%dx%d/n=%d", kind, dt, rows, cols, n), func(b *testing.B) {
				x, y := make([]float32, n*cols), make([]float32, n*rows)
				for b.Loop() {
					m.MatMul(y, x, n)
				}
				b.ReportMetric(2*float64(rows*cols*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkArmorSmallBatch times an ARMOR layer (2048×2048, f16, b = 128)
// at the token counts of a few decoding sequences, beside its 2:4 core and
// one of its block-diagonal transforms alone: the transforms' 128-column
// blocks are where the 4×4 kernels' final reduction is a large part of a
// call (REDUCE_NET in asmgen/gen_amd64.py). The weights (4.5 MiB) stay
// partly in cache, so this shows the arithmetic more than the memory.
func BenchmarkArmorSmallBatch(b *testing.B) {
	ls := benchLayers(b, F16, 2048, 2048)
	a := ls["armor"].(*Armor)
	kinds := []struct {
		name string
		m    matmuler
	}{{"sparse24", ls["sparse24"]}, {"armor", a}, {"blockdiag", a.Pre}}
	for _, n := range []int{4, 8} {
		for _, k := range kinds {
			b.Run(fmt.Sprintf("%s/tokens=%d", k.name, n), func(b *testing.B) {
				x, y := make([]float32, n*2048), make([]float32, n*2048)
				for i := range x {
					x[i] = float32(i%7) - 3
				}
				for b.Loop() {
					k.m.MatMul(y, x, n)
				}
			})
		}
	}
}
