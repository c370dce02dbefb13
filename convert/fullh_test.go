package convert

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randHessian returns XXᵀ/N of N random correlated inputs (m×m).
func randHessian(rng *rand.Rand, m, N int) []float64 {
	mix := make([]float64, m*m)
	for k := range mix {
		mix[k] = rng.NormFloat64()
	}
	H := make([]float64, m*m)
	x, u := make([]float64, m), make([]float64, m)
	for t := 0; t < N; t++ {
		for j := range u {
			u[j] = rng.NormFloat64() * math.Exp(rng.NormFloat64())
		}
		for i := range x {
			x[i] = dot(mix[i*m:(i+1)*m], u)
		}
		for i := range x {
			for j := range x {
				H[i*m+j] += x[i] * x[j] / float64(N)
			}
		}
	}
	return H
}

// FullHLoss against a direct float64 evaluation of
// tr(ΔW Hd ΔWᵀ)/tr(W Hd Wᵀ), Hd = H + 1 % of its mean diagonal.
func TestFullHLossReference(t *testing.T) {
	rng := newRng(11)
	for _, sz := range [][2]int{{7, 12}, {16, 20}} {
		n, m := sz[0], sz[1]
		w, _ := randLayer(rng, n, m)
		H := randHessian(rng, m, 50)
		approx := make([]float64, n*m)
		for k := range approx {
			approx[k] = w.Data[k] * (1 + 0.3*rng.NormFloat64())
		}
		mean := 0.0
		for j := 0; j < m; j++ {
			mean += H[j*m+j] / float64(m)
		}
		quad := func(v []float64) float64 {
			s := 0.0
			for i := 0; i < n; i++ {
				for j := 0; j < m; j++ {
					for k := 0; k < m; k++ {
						hd := H[j*m+k]
						if j == k {
							hd += 0.01 * mean
						}
						s += v[i*m+j] * hd * v[i*m+k]
					}
				}
			}
			return s
		}
		d := make([]float64, n*m)
		for k := range d {
			d[k] = approx[k] - w.Data[k]
		}
		want := quad(d) / quad(w.Data)
		got, err := FullHLoss(w, H, approx)
		if err != nil {
			t.Fatal(err)
		}
		if relErr(got, want) > 1e-10 {
			t.Fatalf("%dx%d: FullHLoss %v, reference %v", n, m, got, want)
		}
	}
}

// Gradients of the full-Hessian loss against finite differences (ragged
// blocks), through the same gradient code as the diagonal proxy.
func TestFullHGradients(t *testing.T) {
	rng := newRng(5)
	st := testState(t, 4, 12, 24, 8)
	r, c := make([]float64, st.n), make([]float64, st.m)
	for i := range r {
		r[i] = math.Exp(0.3 * rng.NormFloat64())
	}
	for j := range c {
		c[j] = math.Exp(0.3 * rng.NormFloat64())
	}
	var err error
	if st.full, err = newFullLoss(st.wbar, r, c, randHessian(rng, st.m, 40), st.n, st.m); err != nil {
		t.Fatal(err)
	}
	checkGradients(t, st)
}

// RefineFullH lowers the full-Hessian loss from its starting point, keeps
// the mask, reports the loss of what it returns, and leaves its input alone.
func TestRefineFullH(t *testing.T) {
	rng := newRng(9)
	for _, sz := range [][3]int{{24, 32, 8}, {20, 36, 16}} {
		w, h := randLayer(rng, sz[0], sz[1])
		H := randHessian(rng, sz[1], 200)
		f, err := ArmorFast(w, h, Options{Block: sz[2], Iters: 5})
		if err != nil {
			t.Fatal(err)
		}
		before := append([]float64(nil), f.X...)
		g := refineChecked(t, f, w, H, 1e-9)
		for k := range f.Mask {
			if f.Mask[k] != g.Mask[k] || f.X[k] != before[k] {
				t.Fatal("RefineFullH changed the mask or its input")
			}
		}
		if err := checkMask24(g.Rows, g.Cols, g.Mask, nil); err != nil {
			t.Fatal(err)
		}
		for k, pt := range g.History[1:] {
			if pt.Loss > g.History[k].Loss {
				t.Fatalf("loss rose in round %d: %v → %v", k+1, g.History[k].Loss, pt.Loss)
			}
		}
	}
}

// On the f32 path (blocks of fastMinBlock or more) the full-Hessian loss
// runs on f32 products: it matches the float64 loss and gradient to f32
// accuracy, and RefineFullH still lowers the loss and reports it truly.
func TestRefineFullHF32(t *testing.T) {
	rng := newRng(12)
	w, h := randLayer(rng, 80, 96)
	H := randHessian(rng, 96, 300)
	f, err := ArmorFast(w, h, Options{Block: 32, Iters: 4})
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.stateOf(h)
	if err != nil {
		t.Fatal(err)
	}
	if st.full, err = newFullLoss(st.wbar, f.R, f.C, H, st.n, st.m); err != nil {
		t.Fatal(err)
	}
	What := make([]float64, st.n*st.m)
	for k := range What {
		What[k] = st.wbar[k] + 0.1*rng.NormFloat64()
	}
	G64, G32 := make([]float64, len(What)), make([]float64, len(What))
	st.exact = true
	l64 := st.full.loss(st, What, G64)
	st.exact = false
	l32 := st.full.loss(st, What, G32)
	if relErr(l32, l64) > 1e-5 {
		t.Fatalf("f32 full loss %v, float64 %v", l32, l64)
	}
	var num, den float64
	for k := range G64 {
		num += (G32[k] - G64[k]) * (G32[k] - G64[k])
		den += G64[k] * G64[k]
	}
	if math.Sqrt(num/den) > 1e-5 {
		t.Fatalf("f32 full-loss gradient differs by %g (relative)", math.Sqrt(num/den))
	}
	refineChecked(t, f, w, H, 1e-5)
}

// refineChecked runs RefineFullH (5 rounds, 2 threads) from f and checks
// that the losses it reports are the recomputed full-Hessian losses within
// tol (relative) and that it lowered the loss by at least 5 %.
func refineChecked(t *testing.T, f *Factorization, w Matrix, H []float64, tol float64) *Factorization {
	t.Helper()
	start, _ := FullHLoss(w, H, f.Dense())
	g, err := RefineFullH(f, w, H, Options{Iters: 5, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := FullHLoss(w, H, g.Dense())
	if relErr(g.InitLoss, start) > tol || relErr(g.BestLoss, got) > tol {
		t.Fatalf("reported losses %v → %v, recomputed %v → %v", g.InitLoss, g.BestLoss, start, got)
	}
	if !(got < 0.95*start) {
		t.Fatalf("full-Hessian loss %v → %v: no real improvement", start, got)
	}
	return g
}
