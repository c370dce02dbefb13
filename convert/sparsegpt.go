package convert

import (
	"fmt"
	"math"
)

// SparseGPT prunes W to 2:4 with the full input Hessian H = XXᵀ/N (Cols×Cols,
// row-major), following the SparseGPT reference (Frantar & Alistarh 2023,
// fasterprune with prunen=2, prunem=4): OBS-style column-by-column pruning in
// which the error of every pruned column is spread onto the columns not yet
// visited, through the upper Cholesky factor of H⁻¹. Dead inputs (H_jj = 0)
// are zeroed; the dampening is λ = 1 % of the mean diagonal. blocksize (a
// multiple of 4; 0 means 128) is the lazy-batch width: it changes the order of
// the floating-point operations, not the result.
func SparseGPT(w Matrix, hess []float64, blocksize int) (*Sparse24, error) {
	if err := w.check24(); err != nil {
		return nil, err
	}
	n, m := w.Rows, w.Cols
	if len(hess) != m*m {
		return nil, fmt.Errorf("convert: Hessian has %d values, want %d×%d for a weight with %d input columns", len(hess), m, m, m)
	}
	if blocksize == 0 {
		blocksize = 128
	}
	if blocksize < 4 || blocksize%4 != 0 {
		return nil, fmt.Errorf("convert: SparseGPT block size %d is not a positive multiple of 4", blocksize)
	}
	for k, v := range hess {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("convert: Hessian entry [%d,%d] is %v", k/m, k%m, v)
		}
	}
	H := append([]float64(nil), hess...)
	W := append([]float64(nil), w.Data...)
	// Dead inputs carry no signal: their weights can go, and a unit diagonal
	// keeps H invertible.
	for j := 0; j < m; j++ {
		if H[j*m+j] <= 0 {
			for k := 0; k < m; k++ {
				H[j*m+k], H[k*m+j] = 0, 0
			}
			H[j*m+j] = 1
			for i := 0; i < n; i++ {
				W[i*m+j] = 0
			}
		}
	}
	mean := 0.0
	for j := 0; j < m; j++ {
		mean += H[j*m+j]
	}
	damp := 0.01 * mean / float64(m)
	for j := 0; j < m; j++ {
		H[j*m+j] += damp
	}
	if err := cholesky(H, m); err != nil {
		return nil, fmt.Errorf("convert: SparseGPT: dampened Hessian: %w", err)
	}
	Hinv := cholInverse(H, m)
	if err := cholesky(Hinv, m); err != nil {
		return nil, fmt.Errorf("convert: SparseGPT: inverse Hessian: %w", err)
	}
	// U = Lᵀ is the upper factor with H⁻¹ = UᵀU that the reference uses.
	U := make([]float64, m*m)
	for i := 0; i < m; i++ {
		for j := 0; j <= i; j++ {
			U[j*m+i] = Hinv[i*m+j]
		}
	}

	mask := make([]uint8, n*m)
	for i := range mask {
		mask[i] = 1
	}
	err1 := make([]float64, n*blocksize)
	for i1 := 0; i1 < m; i1 += blocksize {
		i2 := min(i1+blocksize, m)
		cnt := i2 - i1
		for i := 0; i < cnt; i++ {
			col := i1 + i
			d := U[col*m+col]
			if i%4 == 0 {
				// Choose the group's mask from the OBS saliency w²/[H⁻¹]_qq²
				// of the current (already updated) weights: prune the 2 smallest.
				for r := 0; r < n; r++ {
					var s [4]float64
					for q := 0; q < 4; q++ {
						c := col + q
						dq := U[c*m+c]
						v := W[r*m+c]
						s[q] = v * v / (dq * dq)
					}
					a, b := top2(s)
					for q := 0; q < 4; q++ {
						if q != a && q != b {
							mask[r*m+col+q] = 0
						}
					}
				}
			}
			for r := 0; r < n; r++ {
				wv := W[r*m+col]
				q := wv
				if mask[r*m+col] == 0 {
					q = 0
				}
				e := (wv - q) / d
				W[r*m+col] = q
				err1[r*blocksize+i] = e
				if e != 0 {
					row := W[r*m : (r+1)*m]
					urow := U[col*m : (col+1)*m]
					for k := col + 1; k < i2; k++ {
						row[k] -= e * urow[k]
					}
				}
			}
		}
		// Lazy batch: propagate this block's errors to the later columns.
		if i2 < m {
			for r := 0; r < n; r++ {
				row := W[r*m : (r+1)*m]
				for i := 0; i < cnt; i++ {
					e := err1[r*blocksize+i]
					if e == 0 {
						continue
					}
					urow := U[(i1+i)*m : (i1+i+1)*m]
					for k := i2; k < m; k++ {
						row[k] -= e * urow[k]
					}
				}
			}
		}
	}
	for k := range W {
		if mask[k] == 0 {
			W[k] = 0
		}
	}
	return &Sparse24{Rows: n, Cols: m, W: W, Mask: mask}, nil
}
