package convert

import "math"

// Magnitude keeps the two largest |W_ij| of every group of 4 (section 7): the
// baseline that ignores the calibration data.
func Magnitude(w Matrix) (*Sparse24, error) {
	if err := w.check24(); err != nil {
		return nil, err
	}
	m := w.Cols
	mask := top2Mask(w.Rows, m, func(i, j int) float64 { return math.Abs(w.Data[i*m+j]) })
	return applyMask(w, mask), nil
}
