package convert

import (
	"math"
	"testing"
)

func TestSanitizeH(t *testing.T) {
	h, err := SanitizeH([]float64{1, math.NaN(), -2, 3, math.Inf(1), 0}, 6)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1, 2, 2, 3, 2, 2}
	for j := range want {
		if h[j] != want[j] {
			t.Fatalf("h = %v, want %v", h, want)
		}
	}
	if _, err := SanitizeH([]float64{0, math.NaN()}, 2); err == nil {
		t.Fatal("no valid entry: want an error")
	}
	if _, err := SanitizeH([]float64{1}, 2); err == nil {
		t.Fatal("wrong length: want an error")
	}
}

func TestBaselinesValid24(t *testing.T) {
	for _, sz := range [][2]int{{1, 4}, {7, 12}, {33, 64}} {
		w, h := randLayer(newRng(uint64(sz[0])), sz[0], sz[1])
		hess := gram(newRng(9), sz[1], 3*sz[1])
		mag, err := Magnitude(w)
		if err != nil {
			t.Fatal(err)
		}
		wan, err := Wanda(w, h)
		if err != nil {
			t.Fatal(err)
		}
		now, err := NoWagP(w, h)
		if err != nil {
			t.Fatal(err)
		}
		sg, err := SparseGPT(w, hess, 0)
		if err != nil {
			t.Fatal(err)
		}
		for name, s := range map[string]*Sparse24{"magnitude": mag, "wanda": wan, "nowag-p": now, "sparsegpt": sg} {
			if err := s.Valid(); err != nil {
				t.Fatalf("%s %v: %v", name, sz, err)
			}
		}
		// Independent check of the selection rules, group by group.
		m := w.Cols
		wbar, _, _ := normalize(w)
		for i := 0; i < w.Rows; i++ {
			for g := 0; g < m; g += 4 {
				for q := 0; q < 4; q++ {
					k := i*m + g + q
					// A kept entry must not be beaten by two pruned ones.
					for _, c := range []struct {
						name  string
						s     *Sparse24
						score func(j int) float64
					}{
						{"magnitude", mag, func(j int) float64 { return math.Abs(w.Data[i*m+j]) }},
						{"wanda", wan, func(j int) float64 { return math.Abs(w.Data[i*m+j]) * math.Sqrt(h[j]) }},
						{"nowag-p", now, func(j int) float64 { return wbar[i*m+j] * wbar[i*m+j] * h[j] }},
					} {
						if c.s.Mask[k] == 0 {
							continue
						}
						if c.s.W[k] != w.Data[k] {
							t.Fatalf("%s changed kept value [%d,%d]", c.name, i, g+q)
						}
						beaten := 0
						for r := 0; r < 4; r++ {
							if c.s.Mask[i*m+g+r] == 0 && c.score(g+r) > c.score(g+q) {
								beaten++
							}
						}
						if beaten > 0 {
							t.Fatalf("%s kept [%d,%d] over a larger score", c.name, i, g+q)
						}
					}
				}
			}
		}
	}
}

// NoWag-P is the exact best plain 2:4 matrix under the proxy loss: check it
// against every other choice of supports, enumerated, on a small layer.
func TestNoWagPOptimal(t *testing.T) {
	w, h := randLayer(newRng(3), 5, 8)
	now, err := NoWagP(w, h)
	if err != nil {
		t.Fatal(err)
	}
	best, err := ProxyLoss(w, h, now.W)
	if err != nil {
		t.Fatal(err)
	}
	if !(best > 0) {
		t.Fatalf("NoWag-P loss %v on a dense random layer", best)
	}
	// Per row and group, try all 6 supports in one position while keeping
	// NoWag-P's choice elsewhere: none may be lower.
	for i := 0; i < w.Rows; i++ {
		for g := 0; g < w.Cols; g += 4 {
			for _, pr := range pairs {
				trial := append([]float64(nil), now.W...)
				for q := 0; q < 4; q++ {
					k := i*w.Cols + g + q
					trial[k] = 0
					if q == pr[0] || q == pr[1] {
						trial[k] = w.Data[k]
					}
				}
				l, _ := ProxyLoss(w, h, trial)
				if l < best*(1-1e-12) {
					t.Fatalf("support %v at row %d group %d: loss %v < NoWag-P %v", pr, i, g, l, best)
				}
			}
		}
	}
	mag, _ := Magnitude(w)
	if l, _ := ProxyLoss(w, h, mag.W); l < best {
		t.Fatalf("magnitude %v beats NoWag-P %v", l, best)
	}
}

func TestBaselinesBadInput(t *testing.T) {
	w, h := randLayer(newRng(1), 4, 8)
	if _, err := Magnitude(Matrix{Rows: 4, Cols: 6, Data: make([]float64, 24)}); err == nil {
		t.Fatal("6 columns: want an error")
	}
	if _, err := Magnitude(Matrix{Rows: 4, Cols: 8, Data: make([]float64, 31)}); err == nil {
		t.Fatal("short data: want an error")
	}
	bad := Matrix{Rows: 4, Cols: 8, Data: append([]float64(nil), w.Data...)}
	bad.Data[5] = math.NaN()
	if _, err := NoWagP(bad, h); err == nil {
		t.Fatal("NaN weight: want an error")
	}
	if _, err := Wanda(w, h[:7]); err == nil {
		t.Fatal("short h: want an error")
	}
	if _, err := SparseGPT(w, make([]float64, 63), 0); err == nil {
		t.Fatal("short Hessian: want an error")
	}
	if _, err := SparseGPT(w, gram(newRng(2), 8, 20), 6); err == nil {
		t.Fatal("block size 6: want an error")
	}
}
