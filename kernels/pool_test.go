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
