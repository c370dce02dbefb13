package convert

// NoWagP is NoWag-P (section 3): normalize W (section 1), score
// s_ij = W̄²_ij · h_j, keep the top 2 per group of 4. Under the proxy loss of
// section 2 this is the exact best plain 2:4 matrix, since the loss is a sum of
// independent per-entry terms h_j W̄²_ij over the pruned entries. The kept
// values de-normalize back to the original W_ij.
func NoWagP(w Matrix, h []float64) (*Sparse24, error) {
	if err := w.check24(); err != nil {
		return nil, err
	}
	hs, err := SanitizeH(h, w.Cols)
	if err != nil {
		return nil, err
	}
	wbar, _, _ := normalize(w)
	return applyMask(w, nowagMask(w.Rows, w.Cols, wbar, hs)), nil
}

func nowagMask(rows, cols int, wbar, h []float64) []uint8 {
	return top2Mask(rows, cols, func(i, j int) float64 {
		v := wbar[i*cols+j]
		return v * v * h[j]
	})
}
