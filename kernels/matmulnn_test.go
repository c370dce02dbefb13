package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestMatMulNNF32 checks MatMulNNF32 and MatMulTNF32 against float64 on
// every level: sizes on both sides of the 6-row blocks, the 16/32/64-column
// tiles and the 4-column k groups, strides larger than the rows, acc on and
// off, and NaN padding around the m×n window of C that must survive.
func TestMatMulNNF32(t *testing.T) {
	sizes := []int{1, 5, 6, 7, 13, 16, 17, 31, 32, 33, 64, 65, 100, 128, 130}
	ns := append(sizes, 48, 96) // last tiles of 64 with 16 columns zero, of exactly 32
	ks := []int{1, 2, 3, 4, 5, 6, 7, 13, 16, 17, 31, 32, 33, 64, 65, 100, 128, 130}
	forLevels(t, func(t *testing.T) {
		skipNoBF16Dot(t)
		r := newRand(t)
		for _, trans := range []bool{false, true} {
			for _, m := range sizes {
				for _, k := range ks {
					for _, n := range ns {
						checkNN(t, r, m, k, n, trans, r.IntN(2) == 1)
					}
				}
			}
		}
	})
}

// TestMatMulNNF32Strips covers k beyond one k strip of the AVX-512 path
// (gemmSKC), where later strips add to the first one's results.
func TestMatMulNNF32Strips(t *testing.T) {
	defer func(v int) { gemmSKC = v }(gemmSKC)
	forLevels(t, func(t *testing.T) {
		r := newRand(t)
		for _, kc := range []int{16, 512} {
			gemmSKC = kc
			for _, trans := range []bool{false, true} {
				for _, acc := range []bool{false, true} {
					checkNN(t, r, 13, 1037, 70, trans, acc)
					checkNN(t, r, 7, 35, 100, trans, acc)
				}
			}
		}
	})
}

// TestMatMulNNF32Empty: k = 0 clears the window (or leaves it with acc);
// m = 0 or n = 0 touch nothing.
func TestMatMulNNF32Empty(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := newRand(t)
		for _, trans := range []bool{false, true} {
			for _, acc := range []bool{false, true} {
				checkNN(t, r, 5, 0, 17, trans, acc)
			}
		}
		c := poisoned(8)
		MatMulNNF32(c, 4, nil, 0, 0, 3, nil, 4, 4, false)
		MatMulTNF32(c, 4, nil, 2, 2, 3, nil, 0, 0, false)
		for i, v := range c {
			if !math.IsNaN(float64(v)) {
				t.Fatalf("empty product wrote c[%d] = %v", i, v)
			}
		}
	})
}

// TestMatMulNNF32BadStride: a stride below its row width is refused
// before any kernel reads past the checked slices.
func TestMatMulNNF32BadStride(t *testing.T) {
	for _, tc := range []struct {
		name          string
		lda, ldb, ldc int
		trans         bool
	}{
		{"lda<k", 3, 8, 8, false},
		{"lda<m", 5, 8, 8, true},
		{"ldb<n", 8, 7, 8, false},
		{"ldc<n", 8, 8, -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			a, b, c := make([]float32, 64), make([]float32, 64), make([]float32, 64)
			if tc.trans {
				MatMulTNF32(c, tc.ldc, a, tc.lda, 6, 4, b, tc.ldb, 8, false)
			} else {
				MatMulNNF32(c, tc.ldc, a, tc.lda, 6, 4, b, tc.ldb, 8, false)
			}
		})
	}
}

// skipNoBF16Dot skips forLevels' extra AVX-512 run without VDPBF16PS:
// these f32 products take the same path in it.
func skipNoBF16Dot(t *testing.T) {
	if level == AVX512 && hasBF16Dot && !useBF16Dot {
		t.Skip("f32 only: the same path as avx512")
	}
}

// checkNN runs one m×k by k×n product (A transposed with trans) on
// operands whose strides exceed their rows by 1 to 4 and compares it with
// float64. C sits in a NaN-filled buffer with room before and after; the
// window holds random values with acc and NaNs without (so a kernel that
// adds when it should store, or stores when it should add, fails), and
// everything outside it must still be NaN afterwards.
func checkNN(t *testing.T, r *rand.Rand, m, k, n int, trans, acc bool) {
	t.Helper()
	aRows, aw := m, k
	if trans {
		aRows, aw = k, m
	}
	lda, ldb, ldc := aw+1+r.IntN(4), n+1+r.IntN(4), n+1+r.IntN(4)
	a := randVec(r, max(0, (aRows-1)*lda+aw))
	b := randVec(r, max(0, (k-1)*ldb+n))
	const pre, post = 16, 64
	buf := poisoned(pre + (m-1)*ldc + n + post)
	c := buf[pre:]
	init := randVec(r, m*n)
	if acc {
		for i := 0; i < m; i++ {
			copy(c[i*ldc:i*ldc+n], init[i*n:])
		}
	}
	if trans {
		MatMulTNF32(c, ldc, a, lda, m, k, b, ldb, n, acc)
	} else {
		MatMulNNF32(c, ldc, a, lda, m, k, b, ldb, n, acc)
	}
	what := fmt.Sprintf("trans=%v %dx%d·%dx%d acc=%v lda=%d ldb=%d ldc=%d", trans, m, k, k, n, acc, lda, ldb, ldc)
	want, abs, got := make([]float64, m*n), make([]float64, m*n), make([]float32, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, sa float64
			if acc {
				s, sa = float64(init[i*n+j]), math.Abs(float64(init[i*n+j]))
			}
			for p := 0; p < k; p++ {
				var av float32
				if trans {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				v := float64(av) * float64(b[p*ldb+j])
				s += v
				sa += math.Abs(v)
			}
			want[i*n+j], abs[i*n+j] = s, sa
			got[i*n+j] = c[i*ldc+j]
		}
	}
	checkClose(t, what, got, want, abs, k+1)
	for o, v := range buf {
		i, j := (o-pre)/ldc, (o-pre)%ldc
		if o >= pre && i < m && j < n {
			continue
		}
		if !math.IsNaN(float64(v)) {
			t.Fatalf("%s: wrote %v outside the window at c[%d]", what, v, o-pre)
		}
	}
}

// BenchmarkMatMulNN reports GFLOP/s (2·m·k·n per call, one goroutine) of
// C = A·B and C = Aᵀ·B on row-major operands: "nn" and "tn" are
// MatMulNNF32 and MatMulTNF32; "f32+T" is what a caller does without them,
// Transpose B (and, for Aᵀ·B, A) and call MatMulF32 (which transposes A
// into token tiles and the results back); "f32" is MatMulF32 alone with
// Bᵀ given, the cost of the arithmetic and its internal transposes.
func BenchmarkMatMulNN(b *testing.B) {
	for _, sh := range [][3]int{{128, 128, 128}, {128, 128, 512}, {512, 128, 128}, {4096, 128, 128}, {128, 128, 4096}} {
		m, k, n := sh[0], sh[1], sh[2]
		r := rand.New(rand.NewPCG(5, 6))
		a, at, bm := randVec(r, m*k), randVec(r, k*m), randVec(r, k*n)
		bt, att, c := make([]float32, n*k), make([]float32, m*k), make([]float32, m*n)
		Transpose(bt, k, bm, n, k, n)
		run := func(name string, f func()) {
			b.Run(fmt.Sprintf("%s/%dx%dx%d", name, m, k, n), func(b *testing.B) {
				for b.Loop() {
					f()
				}
				b.ReportMetric(2*float64(m*k*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
		run("nn", func() { MatMulNNF32(c, n, a, k, m, k, bm, n, n, false) })
		run("f32+T", func() {
			Transpose(bt, k, bm, n, k, n)
			MatMulF32(c, n, bt, k, n, k, a, k, m)
		})
		run("f32", func() { MatMulF32(c, n, bt, k, n, k, a, k, m) })
		run("tn", func() { MatMulTNF32(c, n, at, m, m, k, bm, n, n, false) })
		run("tn-f32+T", func() {
			Transpose(bt, k, bm, n, k, n)
			Transpose(att, k, at, m, k, m)
			MatMulF32(c, n, bt, k, n, k, att, k, m)
		})
	}
}
