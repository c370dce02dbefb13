package kernels

import (
	"sync/atomic"
	"testing"
)

// Every index is covered exactly once, chunks start on multiples of align,
// for any thread count, including nested calls (which run inline).
func TestParallelFor(t *testing.T) {
	defer SetThreads(Threads())
	for _, th := range []int{1, 2, 3, 8} {
		SetThreads(th)
		for _, n := range []int{0, 1, 2, 15, 16, 17, 100, 1000, 4097} {
			for _, align := range []int{0, 1, 4, 16, 128} {
				hits := make([]atomic.Int32, n)
				bad := atomic.Bool{}
				ParallelFor(n, align, func(lo, hi int) {
					if a := max(align, 1); lo%a != 0 || lo >= hi || hi > n {
						bad.Store(true)
					}
					for i := lo; i < hi; i++ {
						hits[i].Add(1)
					}
					// A nested call runs inline and must also cover its range.
					var inner atomic.Int32
					ParallelFor(3, 1, func(lo, hi int) { inner.Add(int32(hi - lo)) })
					if inner.Load() != 3 {
						bad.Store(true)
					}
				})
				if bad.Load() {
					t.Errorf("threads %d, n %d, align %d: bad chunk", th, n, align)
				}
				for i := range hits {
					if h := hits[i].Load(); h != 1 {
						t.Fatalf("threads %d, n %d, align %d: index %d run %d times", th, n, align, i, h)
					}
				}
			}
		}
	}
}

func TestISALevels(t *testing.T) {
	orig := ISA()
	defer SetISA(orig)
	ls := Levels()
	if ls[0] != Generic || ls[len(ls)-1] != DetectedISA() {
		t.Errorf("Levels() = %v, detected %v", ls, DetectedISA())
	}
	for _, l := range ls {
		if err := SetISA(l); err != nil || ISA() != l {
			t.Errorf("SetISA(%v): %v, ISA() = %v", l, err, ISA())
		}
		if p, err := ParseLevel(l.String()); err != nil || p != l {
			t.Errorf("ParseLevel(%q) = %v, %v", l.String(), p, err)
		}
	}
	for _, l := range []Level{AVX2, AVX512, NEON} {
		ok := false
		for _, m := range ls {
			ok = ok || m == l
		}
		if !ok && SetISA(l) == nil {
			t.Errorf("SetISA(%v) accepted on a CPU without it", l)
		}
	}
	if _, err := ParseLevel("sse9"); err == nil {
		t.Error("ParseLevel accepted sse9")
	}
}

// TestTaskWork checks the work estimates that decide whether a product runs
// in parallel: a 4096×11008 2:4 GEMV is 22M multiply-adds, not 4096.
func TestTaskWork(t *testing.T) {
	s := &Sparse24{DType: F16, Rows: 4096, Cols: 11008}
	d := &Dense{DType: F16, Rows: 4096, Cols: 11008}
	cases := []struct {
		name string
		t    task
		n    int
		want int
	}{
		{"spmv", task{op: opSpmv, s: s.view()}, 4096, 4096 * 5504},
		{"spmm", task{op: opSpmm, s: s.view(), n: 64}, 4096, 4096 * 5504 * 64},
		{"spmmXT", task{op: opSpmmXT, s: s.view(), n: 64}, 4096, 4096 * 5504 * 64},
		{"gemv", task{op: opGemv, w: d.view(), cols: 11008}, 4096, 4096 * 11008},
		{"gemm", task{op: opGemm, w: d.view(), cols: 11008, n: 8}, 4096, 4096 * 11008 * 8},
		{"blockdiag", task{op: opBlockDiag, bd: &BlockDiag{B: 128}, n: 3}, 4096, 4096 * 128 * 3},
		{"transpose", task{op: opTranspose, n: 512}, 2048, 2048 * 512},
	}
	for _, c := range cases {
		if got := c.t.work(c.n); got != c.want {
			t.Errorf("%s: work %d, want %d", c.name, got, c.want)
		}
	}
}
