package kernels

import (
	"math"
	"testing"
)

func TestSum(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := newRand(t)
		for _, n := range []int{0, 1, 127, 128, 1000, 1 << 16, 3<<16 + 77} {
			x := randVec(r, n)
			var want, abs float64
			for _, v := range x {
				want += float64(v)
				abs += math.Abs(float64(v))
			}
			if got := float64(Sum(x)); !(math.Abs(got-want) <= accTol(n, abs)) {
				t.Errorf("n=%d: Sum = %v, want %v", n, got, want)
			}
			if got := float64(SumPrefetch(x)); !(math.Abs(got-want) <= accTol(n, abs)) {
				t.Errorf("n=%d: SumPrefetch = %v, want %v", n, got, want)
			}
		}
	})
}
