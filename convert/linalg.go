package convert

import (
	"errors"
	"math"
)

var errNotPD = errors.New("matrix is not positive definite")

// cholesky factors the symmetric n×n matrix a = L Lᵀ in place (L in the lower
// triangle, the upper triangle zeroed). It fails on a non-positive pivot.
func cholesky(a []float64, n int) error {
	for j := 0; j < n; j++ {
		rj := a[j*n : j*n+j]
		d := a[j*n+j]
		for _, v := range rj {
			d -= v * v
		}
		if !(d > 0) || math.IsInf(d, 0) {
			return errNotPD
		}
		d = math.Sqrt(d)
		a[j*n+j] = d
		for i := j + 1; i < n; i++ {
			ri := a[i*n : i*n+j]
			s := a[i*n+j]
			for k, v := range ri {
				s -= v * rj[k]
			}
			a[i*n+j] = s / d
		}
		for k := j + 1; k < n; k++ {
			a[j*n+k] = 0
		}
	}
	return nil
}

// cholSolveInPlace solves (L Lᵀ) x = b for one right-hand side, overwriting b.
func cholSolveInPlace(l []float64, n int, b []float64) {
	for i := 0; i < n; i++ {
		s := b[i]
		for k := 0; k < i; k++ {
			s -= l[i*n+k] * b[k]
		}
		b[i] = s / l[i*n+i]
	}
	for i := n - 1; i >= 0; i-- {
		s := b[i]
		for k := i + 1; k < n; k++ {
			s -= l[k*n+i] * b[k]
		}
		b[i] = s / l[i*n+i]
	}
}

// cholInverse returns (L Lᵀ)⁻¹ given the Cholesky factor L.
func cholInverse(l []float64, n int) []float64 {
	inv := make([]float64, n*n)
	col := make([]float64, n)
	for j := 0; j < n; j++ {
		clear(col)
		col[j] = 1
		cholSolveInPlace(l, n, col)
		for i := 0; i < n; i++ {
			inv[i*n+j] = col[i]
		}
	}
	// Symmetrize away rounding so the next factorization sees an exactly
	// symmetric matrix.
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			v := 0.5 * (inv[i*n+j] + inv[j*n+i])
			inv[i*n+j], inv[j*n+i] = v, v
		}
	}
	return inv
}

// spdFactor factors a symmetric positive semi-definite Gram matrix g (n×n),
// adding a ridge that grows from 1e-12 of the mean diagonal until the
// factorization succeeds: a rank-deficient Gram (a row of S that is all zero,
// say) then still gives the minimum-norm-like regularized solution instead of
// failing. It returns the factor (g is left untouched).
func spdFactor(g []float64, n int) ([]float64, bool) {
	tr := 0.0
	for i := 0; i < n; i++ {
		tr += g[i*n+i]
	}
	scale := tr / float64(n)
	if !(scale > 0) || math.IsInf(scale, 0) {
		scale = 1
	}
	l := make([]float64, n*n)
	for ridge := 1e-12; ridge <= 1; ridge *= 100 {
		copy(l, g)
		for i := 0; i < n; i++ {
			l[i*n+i] += ridge * scale
		}
		if cholesky(l, n) == nil {
			return l, true
		}
	}
	return nil, false
}
