package convert

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randSPD returns a random symmetric positive definite n×n matrix M Mᵀ + εI,
// with condition numbers like those of the b×b Gram blocks.
func randSPD(r *rand.Rand, n int) []float64 {
	m := make([]float64, n*n)
	for i := range m {
		m[i] = r.NormFloat64()
	}
	a := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			s := 0.0
			for k := 0; k < n; k++ {
				s += m[i*n+k] * m[j*n+k]
			}
			a[i*n+j], a[j*n+i] = s, s
		}
		a[i*n+i] += 1e-3
	}
	return a
}

// TestCholeskyForms checks both forms of cholesky against the definition
// (L lower triangular, zero above, L Lᵀ = A, computed in float64) on sizes
// around the switch and with odd tails, and that they agree.
func TestCholeskyForms(t *testing.T) {
	r := newRng(7)
	for _, n := range []int{1, 2, 7, 31, 32, 33, 47, 64, 100, 129} {
		a := randSPD(r, n)
		scale := 0.0
		for i := 0; i < n; i++ {
			scale = max(scale, a[i*n+i])
		}
		var ls [2][]float64
		for f, fn := range []func([]float64, int) error{choleskyCols, choleskyRows} {
			l := append([]float64(nil), a...)
			if err := fn(l, n); err != nil {
				t.Fatalf("n=%d form %d: %v", n, f, err)
			}
			for i := 0; i < n; i++ {
				for j := i + 1; j < n; j++ {
					if l[i*n+j] != 0 {
						t.Fatalf("n=%d form %d: L[%d,%d] = %g above the diagonal", n, f, i, j, l[i*n+j])
					}
				}
			}
			for i := 0; i < n; i++ {
				for j := 0; j <= i; j++ {
					s := 0.0
					for k := 0; k <= j; k++ {
						s += l[i*n+k] * l[j*n+k]
					}
					if d := math.Abs(s - a[i*n+j]); d > 1e-12*scale*float64(n) {
						t.Fatalf("n=%d form %d: (L Lᵀ)[%d,%d] = %g, A has %g", n, f, i, j, s, a[i*n+j])
					}
				}
			}
			ls[f] = l
		}
		for k := range ls[0] {
			if d := math.Abs(ls[0][k] - ls[1][k]); d > 1e-9*math.Sqrt(scale) {
				t.Fatalf("n=%d: the forms differ at %d: %g and %g", n, k, ls[0][k], ls[1][k])
			}
		}
	}
}

// TestCholeskyNotPD: both forms reject a matrix with a non-positive pivot,
// a NaN and an infinity, wherever it shows up.
func TestCholeskyNotPD(t *testing.T) {
	r := newRng(8)
	for _, n := range []int{5, 40} {
		for _, bad := range []struct {
			name string
			set  func(a []float64)
		}{
			{"negative eigenvalue", func(a []float64) {
				for i := 0; i < n; i++ {
					a[(n-1)*n+i], a[i*n+n-1] = 0, 0
				}
				a[(n-1)*n+n-1] = -1
			}},
			{"NaN", func(a []float64) { a[(n/2)*n+n/2] = math.NaN() }},
			{"Inf", func(a []float64) { a[0] = math.Inf(1) }},
		} {
			for f, fn := range []func([]float64, int) error{choleskyCols, choleskyRows} {
				a := randSPD(r, n)
				bad.set(a)
				if fn(a, n) == nil {
					t.Errorf("n=%d form %d: %s accepted", n, f, bad.name)
				}
			}
		}
	}
}
