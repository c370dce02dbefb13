package convert

import "math"

// Wanda keeps, per group of 4, the two largest scores |W_ij|·‖X_j‖₂
// (section 7). h_j is the mean of x_j² over N tokens, so ‖X_j‖₂ = √(N h_j);
// the common factor √N does not change the ranking and is left out.
func Wanda(w Matrix, h []float64) (*Sparse24, error) {
	if err := w.check24(); err != nil {
		return nil, err
	}
	hs, err := SanitizeH(h, w.Cols)
	if err != nil {
		return nil, err
	}
	m := w.Cols
	norm := make([]float64, m)
	for j := range norm {
		norm[j] = math.Sqrt(hs[j])
	}
	mask := top2Mask(w.Rows, m, func(i, j int) float64 { return math.Abs(w.Data[i*m+j]) * norm[j] })
	return applyMask(w, mask), nil
}
