package convert

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// Matrix is a dense row-major float64 matrix (Rows×Cols values in Data).
type Matrix struct {
	Rows, Cols int
	Data       []float64
}

// maxElems bounds the sizes accepted before anything is allocated, so that a
// corrupt shape gives an error instead of an out-of-memory crash.
const maxElems = 1 << 34

// check validates the shape and the values of a weight matrix.
func (w Matrix) check() error {
	if w.Rows <= 0 || w.Cols <= 0 {
		return fmt.Errorf("convert: weight has invalid shape %d×%d", w.Rows, w.Cols)
	}
	if w.Rows > maxElems/w.Cols {
		return fmt.Errorf("convert: weight shape %d×%d is too large", w.Rows, w.Cols)
	}
	if len(w.Data) != w.Rows*w.Cols {
		return fmt.Errorf("convert: weight is %d×%d but has %d values", w.Rows, w.Cols, len(w.Data))
	}
	for k, v := range w.Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("convert: weight value [%d,%d] is %v", k/w.Cols, k%w.Cols, v)
		}
	}
	return nil
}

// check24 additionally requires whole groups of 4 along the input dimension.
func (w Matrix) check24() error {
	if err := w.check(); err != nil {
		return err
	}
	if w.Cols%4 != 0 {
		return fmt.Errorf("convert: 2:4 pruning needs the input dimension to be a multiple of 4, weight is %d×%d", w.Rows, w.Cols)
	}
	return nil
}

// ErrNoValidStats is returned when no entry of h is finite and positive.
var ErrNoValidStats = errors.New("convert: input statistics have no finite positive entry")

// SanitizeH returns a copy of the diagonal statistics h (h_j = mean of x_j²)
// in which non-finite or non-positive entries are replaced by the mean of the
// valid ones (section 2): a dead input channel must not get zero weight, or
// every method would be free to put anything there.
func SanitizeH(h []float64, cols int) ([]float64, error) {
	if len(h) != cols {
		return nil, fmt.Errorf("convert: input statistics have %d entries, the weight has %d input columns", len(h), cols)
	}
	out := make([]float64, cols)
	sum, n := 0.0, 0
	for _, v := range h {
		if v > 0 && !math.IsInf(v, 0) && !math.IsNaN(v) {
			sum += v
			n++
		}
	}
	if n == 0 {
		return nil, ErrNoValidStats
	}
	mean := sum / float64(n)
	for j, v := range h {
		if v > 0 && !math.IsInf(v, 0) && !math.IsNaN(v) {
			out[j] = v
		} else {
			out[j] = mean
		}
	}
	return out, nil
}

// normalize computes the NoWag normalization of section 1:
// c_j = ‖W[:,j]‖ + 1e-5, W₁ = W diag(c)⁻¹, r_i = ‖W₁[i,:]‖ + 1e-5,
// W̄ = diag(r)⁻¹ W₁. It returns W̄, r and c.
func normalize(w Matrix) (wbar, r, c []float64) {
	n, m := w.Rows, w.Cols
	c = make([]float64, m)
	for i := 0; i < n; i++ {
		row := w.Data[i*m : (i+1)*m]
		for j, v := range row {
			c[j] += v * v
		}
	}
	for j := range c {
		c[j] = math.Sqrt(c[j]) + 1e-5
	}
	wbar = make([]float64, n*m)
	r = make([]float64, n)
	for i := 0; i < n; i++ {
		row := w.Data[i*m : (i+1)*m]
		out := wbar[i*m : (i+1)*m]
		s := 0.0
		for j, v := range row {
			out[j] = v / c[j]
			s += out[j] * out[j]
		}
		r[i] = math.Sqrt(s) + 1e-5
		for j := range out {
			out[j] /= r[i]
		}
	}
	return wbar, r, c
}

// blockBounds splits [0, d) into blocks of b (the last one may be smaller:
// "ragged"); block J is [bounds[J], bounds[J+1]).
func blockBounds(d, b int) []int {
	nb := (d + b - 1) / b
	out := make([]int, nb+1)
	for J := 0; J <= nb; J++ {
		out[J] = min(J*b, d)
	}
	return out
}

// parallelFor runs fn(0..n-1) on up to threads goroutines. Each index must
// write only its own outputs, so results never depend on the thread count.
func parallelFor(threads, n int, fn func(i int)) {
	if threads <= 1 || n <= 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for t := 0; t < min(threads, n); t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// parallelRows runs fn(lo, hi) over [0, n) in chunks of rowChunk, spread
// over threads: for the elementwise passes over a layer's n×m matrices,
// which on big layers take a noticeable share of a sweep on one thread.
func parallelRows(threads, n int, fn func(lo, hi int)) {
	parallelFor(threads, (n+rowChunk-1)/rowChunk, func(c int) {
		fn(c*rowChunk, min((c+1)*rowChunk, n))
	})
}

// rowChunk is parallelRows' chunk: enough rows to amortize the dispatch.
const rowChunk = 16

func defaultThreads(t int) int {
	if t > 0 {
		return t
	}
	return runtime.GOMAXPROCS(0)
}

// Sparse24 is a 2:4-pruned weight: W holds the kept values and zeros
// elsewhere, Mask is 1 where a value is kept. Every row has exactly two kept
// entries in each group of 4 consecutive columns.
type Sparse24 struct {
	Rows, Cols int
	W          []float64
	Mask       []uint8
}

// Valid reports an error if the mask is not exactly 2:4 or W is non-zero off
// the mask.
func (s *Sparse24) Valid() error {
	return checkMask24(s.Rows, s.Cols, s.Mask, s.W)
}

func checkMask24(rows, cols int, mask []uint8, vals []float64) error {
	if cols%4 != 0 || len(mask) != rows*cols || (vals != nil && len(vals) != rows*cols) {
		return fmt.Errorf("convert: 2:4 matrix %d×%d has %d mask entries", rows, cols, len(mask))
	}
	for i := 0; i < rows; i++ {
		for g := 0; g < cols; g += 4 {
			k := 0
			for q := 0; q < 4; q++ {
				idx := i*cols + g + q
				switch mask[idx] {
				case 1:
					k++
				case 0:
					if vals != nil && vals[idx] != 0 {
						return fmt.Errorf("convert: pruned entry [%d,%d] is %v, not 0", i, g+q, vals[idx])
					}
				default:
					return fmt.Errorf("convert: mask entry [%d,%d] is %d", i, g+q, mask[idx])
				}
			}
			if k != 2 {
				return fmt.Errorf("convert: row %d group at column %d keeps %d of 4", i, g, k)
			}
		}
	}
	return nil
}

// top2Mask keeps, in every row and group of 4 columns, the two largest
// scores. Ties go to the lower column so the result is deterministic.
func top2Mask(rows, cols int, score func(i, j int) float64) []uint8 {
	mask := make([]uint8, rows*cols)
	for i := 0; i < rows; i++ {
		for g := 0; g < cols; g += 4 {
			var s [4]float64
			for q := range s {
				s[q] = score(i, g+q)
			}
			a, b := top2(s)
			mask[i*cols+g+a] = 1
			mask[i*cols+g+b] = 1
		}
	}
	return mask
}

// top2 returns the indices of the two largest of four values (lowest index
// first among equals).
func top2(s [4]float64) (int, int) {
	a := 0
	for q := 1; q < 4; q++ {
		if s[q] > s[a] {
			a = q
		}
	}
	b := -1
	for q := 0; q < 4; q++ {
		if q != a && (b < 0 || s[q] > s[b]) {
			b = q
		}
	}
	return a, b
}

// applyMask builds a Sparse24 from W and a mask.
func applyMask(w Matrix, mask []uint8) *Sparse24 {
	out := &Sparse24{Rows: w.Rows, Cols: w.Cols, W: make([]float64, len(w.Data)), Mask: mask}
	for k, v := range w.Data {
		if mask[k] == 1 {
			out.W[k] = v
		}
	}
	return out
}

// ProxyLoss is the normalized proxy loss of section 2 for any approximation
// What of W (both in the original space, Rows×Cols):
// Σ h_j (Ŵ̄ − W̄)²_ij / Σ h_j W̄²_ij with both normalized by the NoWag norms
// of W. It is how every method's result is compared on the same scale.
func ProxyLoss(w Matrix, h []float64, approx []float64) (float64, error) {
	if err := w.check(); err != nil {
		return 0, err
	}
	if len(approx) != len(w.Data) {
		return 0, fmt.Errorf("convert: approximation has %d values, weight is %d×%d", len(approx), w.Rows, w.Cols)
	}
	hs, err := SanitizeH(h, w.Cols)
	if err != nil {
		return 0, err
	}
	wbar, r, c := normalize(w)
	num, den := 0.0, 0.0
	m := w.Cols
	for i := 0; i < w.Rows; i++ {
		for j := 0; j < m; j++ {
			d := approx[i*m+j]/(r[i]*c[j]) - wbar[i*m+j]
			num += hs[j] * d * d
			den += hs[j] * wbar[i*m+j] * wbar[i*m+j]
		}
	}
	if den == 0 {
		return 0, nil
	}
	return num / den, nil
}
