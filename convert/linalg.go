package convert

import (
	"errors"
	"math"

	"github.com/armor-llm/armor/kernels"
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

// cholSolveCols solves (L Lᵀ) X = B for the nrhs columns of the n×nrhs
// matrix z (row-major, row stride nrhs), overwriting it. Row by row the
// substitutions are weighted sums of the rows already solved, which run on
// the float64 SIMD kernel: all right-hand sides move together, so the
// arithmetic is the same as n solves of one column but vectorized across
// them.
func cholSolveCols(l []float64, n int, z []float64, nrhs int) {
	coef := make([]float64, n)
	for i := 0; i < n; i++ {
		a := coef[:i]
		for k := range a {
			a[k] = -l[i*n+k]
		}
		zi := z[i*nrhs : (i+1)*nrhs]
		kernels.AxpyRowsF64(zi, a, z, nrhs)
		d := l[i*n+i]
		for j := range zi {
			zi[j] /= d
		}
	}
	for i := n - 1; i >= 0; i-- {
		a := coef[:n-1-i]
		for k := range a {
			a[k] = -l[(i+1+k)*n+i]
		}
		zi := z[i*nrhs : (i+1)*nrhs]
		kernels.AxpyRowsF64(zi, a, z[(i+1)*nrhs:], nrhs)
		d := l[i*n+i]
		for j := range zi {
			zi[j] /= d
		}
	}
}

// cholInverse returns (L Lᵀ)⁻¹ given the Cholesky factor L.
func cholInverse(l []float64, n int) []float64 {
	inv := make([]float64, n*n)
	for j := 0; j < n; j++ {
		inv[j*n+j] = 1
	}
	cholSolveCols(l, n, inv, n)
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
