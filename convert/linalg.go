package convert

import (
	"errors"
	"math"

	"github.com/armor-llm/armor/kernels"
)

var errNotPD = errors.New("matrix is not positive definite")

// cholesky factors the symmetric n×n matrix a = L Lᵀ in place (L in the lower
// triangle, the upper triangle zeroed). It fails on a non-positive pivot.
//
// From cholRowsMin on it runs on the float64 row kernel (choleskyRows);
// smaller matrices (the b×b blocks of small ARMOR blocks) keep the scalar
// loop, whose rounding the quality tables were measured with.
func cholesky(a []float64, n int) error {
	if n >= cholRowsMin {
		return choleskyRows(a, n)
	}
	return choleskyCols(a, n)
}

// choleskyCols is cholesky column by column, one scalar inner product per
// entry.
func choleskyCols(a []float64, n int) error {
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

// cholRowsMin is the size from which cholesky runs on the row kernel.
const cholRowsMin = 32

// choleskyRows is cholesky as the upper factor U = Lᵀ, row by row: row j of
// U is (a[j, j:] − Σ_{k<j} U[k, j]·U[k, j:]) / U[j, j], one weighted sum of
// the rows above on the float64 SIMD kernel, where the column form's inner
// products ran one scalar multiply-add at a time (a b = 128 block's
// factorizations were a tenth of an armor-fast sweep). U is built in a's
// upper triangle, then moved to the lower one.
func choleskyRows(a []float64, n int) error {
	coef := make([]float64, n)
	for j := 0; j < n; j++ {
		c := coef[:j]
		for k := range c {
			c[k] = -a[k*n+j]
		}
		row := a[j*n+j : (j+1)*n]
		if j > 0 {
			kernels.AxpyRowsF64(row, c, a[j:], n)
		}
		d := row[0]
		if !(d > 0) || math.IsInf(d, 0) {
			return errNotPD
		}
		d = math.Sqrt(d)
		row[0] = d
		for k := 1; k < len(row); k++ {
			row[k] /= d
		}
	}
	for j := 0; j < n; j++ {
		for i := j + 1; i < n; i++ {
			a[i*n+j], a[j*n+i] = a[j*n+i], 0
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
