package convert

import (
	"math"
	"slices"
	"testing"
)

// gradNorms returns ‖dL/dA‖², ‖dL/dB‖² and ‖M ⊙ dL/dX‖² at the state.
func gradNorms(st *state) (ga, gb, gx float64) {
	n, m := st.n, st.m
	P, What := make([]float64, n*m), make([]float64, n*m)
	st.forwardP(P)
	st.forwardW(P, What)
	G, Q, T, GX := make([]float64, n*m), make([]float64, n*m), make([]float64, n*m), make([]float64, n*m)
	gA, gB := zerosLike(st.A), zerosLike(st.B)
	st.lossGradient(What, G)
	st.gradients(P, G, Q, T, GX, gA, gB)
	for _, b := range gA {
		ga += dot(b, b)
	}
	for _, b := range gB {
		gb += dot(b, b)
	}
	return ga, gb, dot(GX, GX)
}

// Each closed-form update must not raise the loss, and must actually reach
// the optimum of its block: the gradient with respect to what it solved for
// vanishes afterwards, to 1e-6 of its size before (so the accept test cannot
// hide a wrong formula).
func TestClosedFormUpdates(t *testing.T) {
	for _, sz := range [][3]int{{12, 24, 8}, {40, 24, 16}, {20, 36, 16}} {
		st := testState(t, 5, sz[0], sz[1], sz[2])
		n, m := st.n, st.m
		P, s1, s2 := make([]float64, n*m), make([]float64, n*m), make([]float64, n*m)
		prev := st.loss()
		for sweep := 0; sweep < 3; sweep++ {
			ga0, _, _ := gradNorms(st)
			st.forwardP(P)
			st.updateA(P)
			l := st.loss()
			if l > prev*(1+1e-12) {
				t.Fatalf("%v: A update raised the loss %v -> %v", sz, prev, l)
			}
			prev = l
			if ga, _, _ := gradNorms(st); ga > 1e-12*ga0+1e-24 {
				t.Fatalf("%v: ‖dL/dA‖² = %v after the A update (was %v)", sz, ga, ga0)
			}

			_, gb0, _ := gradNorms(st)
			st.updateB(s1)
			l = st.loss()
			if l > prev*(1+1e-12) {
				t.Fatalf("%v: B update raised the loss %v -> %v", sz, prev, l)
			}
			prev = l
			if _, gb, _ := gradNorms(st); gb > 1e-12*gb0+1e-24 {
				t.Fatalf("%v: ‖dL/dB‖² = %v after the B update (was %v)", sz, gb, gb0)
			}

			_, _, gx0 := gradNorms(st)
			st.updateS(s1, s2, 400, false)
			l = st.loss()
			if l > prev*(1+1e-12) {
				t.Fatalf("%v: CG on S raised the loss %v -> %v", sz, prev, l)
			}
			prev = l
			if _, _, gx := gradNorms(st); gx > 1e-12*gx0+1e-24 {
				t.Fatalf("%v: ‖M⊙dL/dX‖² = %v after CG (was %v)", sz, gx, gx0)
			}

			st.updateS(s1, s2, 0, true)
			l = st.loss()
			if l > prev*(1+1e-12) {
				t.Fatalf("%v: group pass raised the loss %v -> %v", sz, prev, l)
			}
			if err := checkMask24(n, m, st.M, nil); err != nil {
				t.Fatal(err)
			}
			if sweep == 0 && !(l < prev) {
				t.Fatalf("%v: the group pass did not lower the loss (%v)", sz, l)
			}
			prev = l
		}
	}
}

// A weight that is already 2:4 is reproduced exactly by NoWag-P, Armor and
// ArmorFast (loss 0 and Dense() == W).
func TestAlready24Reproduced(t *testing.T) {
	w, h := randLayer(newRng(6), 24, 40)
	mag, _ := Magnitude(w)
	w24 := Matrix{Rows: w.Rows, Cols: w.Cols, Data: mag.W}
	now, err := NoWagP(w24, h)
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := ProxyLoss(w24, h, now.W); l > 1e-28 {
		t.Fatalf("NoWag-P loss %v on a 2:4 weight", l)
	}
	for name, run := range map[string]func(Matrix, []float64, Options) (*Factorization, error){"armor": Armor, "armor-fast": ArmorFast} {
		f, err := run(w24, h, Options{Block: 16, Iters: 20})
		if err != nil {
			t.Fatal(err)
		}
		if f.BestLoss > 1e-20 || f.Loss(h) > 1e-20 {
			t.Fatalf("%s: loss %v (recomputed %v) on a 2:4 weight", name, f.BestLoss, f.Loss(h))
		}
		d := f.Dense()
		for k := range d {
			if math.Abs(d[k]-w24.Data[k]) > 1e-9*math.Abs(w24.Data[k])+1e-15 {
				t.Fatalf("%s: Dense()[%d] = %v, want %v", name, k, d[k], w24.Data[k])
			}
		}
	}
}

// Both ARMOR variants end at or below NoWag-P's loss (strictly below on
// random layers), the reported losses are the true ones, and the deployed
// form computes the same product as Dense().
func TestArmorBeatsNoWagP(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	for _, sz := range [][3]int{{64, 172, 16}, {172, 64, 16}, {40, 24, 16}} {
		w, h := randLayer(newRng(uint64(sz[0]*1000+sz[1])), sz[0], sz[1])
		now, _ := NoWagP(w, h)
		nowLoss, _ := ProxyLoss(w, h, now.W)
		for name, run := range map[string]func(Matrix, []float64, Options) (*Factorization, error){"armor": Armor, "armor-fast": ArmorFast} {
			iters := 150
			if name == "armor-fast" {
				iters = 10
			}
			calls := 0
			f, err := run(w, h, Options{Block: sz[2], Iters: iters, Seed: 1, Progress: func(int, float64) { calls++ }})
			if err != nil {
				t.Fatal(err)
			}
			if relErr(f.InitLoss, nowLoss) > 1e-9 {
				t.Fatalf("%s %v: initial loss %v, NoWag-P %v", name, sz, f.InitLoss, nowLoss)
			}
			if !(f.BestLoss < nowLoss) {
				t.Fatalf("%s %v: loss %v not below NoWag-P %v", name, sz, f.BestLoss, nowLoss)
			}
			if calls != f.Iters || len(f.History) != f.Iters+1 || f.MulAdds <= 0 {
				t.Fatalf("%s: %d progress calls, %d history points for %d iterations, %d multiply-adds", name, calls, len(f.History), f.Iters, f.MulAdds)
			}
			if l := f.Loss(h); relErr(l, f.BestLoss) > 1e-9 {
				t.Fatalf("%s: Loss() = %v, reported %v", name, l, f.BestLoss)
			}
			d := f.Dense()
			if l, _ := ProxyLoss(w, h, d); relErr(l, f.BestLoss) > 1e-9 {
				t.Fatalf("%s: ProxyLoss(Dense()) = %v, reported %v", name, l, f.BestLoss)
			}
			if err := checkMask24(f.Rows, f.Cols, f.Mask, nil); err != nil {
				t.Fatal(err)
			}
			dep := f.Deployed()
			if err := checkMask24(dep.Rows, dep.Cols, dep.Mask, dep.S); err != nil {
				t.Fatal(err)
			}
			x := make([]float64, sz[1])
			rng := newRng(8)
			for j := range x {
				x[j] = rng.NormFloat64()
			}
			y, ref := dep.Apply(x), matVec(d, sz[0], sz[1], x)
			for i := range y {
				if math.Abs(y[i]-ref[i]) > 1e-10*(1+math.Abs(ref[i])) {
					t.Fatalf("%s: deployed y[%d] = %v, dense %v", name, i, y[i], ref[i])
				}
			}
			t.Logf("%s %dx%d b=%d: NoWag-P %.5f -> %.5f in %d iterations, %.3g multiply-adds", name, sz[0], sz[1], sz[2], nowLoss, f.BestLoss, f.Iters, float64(f.MulAdds))
		}
	}
}

// Results depend on the seed only, not on the thread count.
func TestDeterministic(t *testing.T) {
	w, h := randLayer(newRng(9), 40, 48)
	for name, run := range map[string]func(Matrix, []float64, Options) (*Factorization, error){"armor": Armor, "armor-fast": ArmorFast} {
		a, _ := run(w, h, Options{Block: 16, Iters: 30, Seed: 5, Threads: 1})
		b, _ := run(w, h, Options{Block: 16, Iters: 30, Seed: 5, Threads: 3})
		if a.BestLoss != b.BestLoss {
			t.Fatalf("%s: 1 thread %v, 3 threads %v", name, a.BestLoss, b.BestLoss)
		}
		for k := range a.X {
			if a.X[k] != b.X[k] || a.Mask[k] != b.Mask[k] {
				t.Fatalf("%s: results differ at %d", name, k)
			}
		}
	}
	a, _ := Armor(w, h, Options{Block: 16, Iters: 30, Seed: 5})
	c, _ := Armor(w, h, Options{Block: 16, Iters: 30, Seed: 6})
	if a.BestLoss == c.BestLoss {
		t.Fatal("Armor: different seeds gave identical losses: is the sampling used?")
	}
}

// The joint L-BFGS steps lower the loss, report it truly and keep P and Ŵ
// current; the extrapolation and L-BFGS options of ArmorFast keep every
// guarantee of the plain sweep.
func TestLBFGSAndOptions(t *testing.T) {
	st := testState(t, 10, 20, 36, 16)
	n, m := st.n, st.m
	P, What := make([]float64, n*m), make([]float64, n*m)
	before := st.loss()
	lb := &lbfgs{mem: 5}
	got := lb.run(st, 15, P, What)
	if !(got < 0.9*before) {
		t.Fatalf("15 L-BFGS steps: loss %v -> %v", before, got)
	}
	if fresh := st.loss(); relErr(fresh, got) > 1e-12 {
		t.Fatalf("L-BFGS reports %v, the state's loss is %v", got, fresh)
	}
	if inc := st.lossOf(What); relErr(inc, got) > 1e-12 {
		t.Fatalf("L-BFGS left Ŵ stale: %v vs %v", inc, got)
	}
	w, h := randLayer(newRng(11), 40, 56)
	now, _ := NoWagP(w, h)
	nowLoss, _ := ProxyLoss(w, h, now.W)
	for _, opt := range []Options{
		{Block: 8, Iters: 15},
		{Block: 8, Iters: 15, NoExtrapolate: true},
		{Block: 8, Iters: 15, LBFGSSteps: 3, LBFGSSwitch: -1},
		{Block: 8, Iters: 15, LBFGSSteps: -1},
		{Block: 8, Iters: 15, CGSteps: -1},
	} {
		var seen []float64
		opt.Progress = func(_ int, l float64) { seen = append(seen, l) }
		f, err := ArmorFast(w, h, opt)
		if err != nil {
			t.Fatal(err)
		}
		for k := 1; k < len(seen); k++ {
			if seen[k] > seen[k-1] {
				t.Fatalf("%+v: best loss went up at sweep %d", opt, k+1)
			}
		}
		if !(f.BestLoss < nowLoss) || relErr(f.Loss(h), f.BestLoss) > 1e-9 {
			t.Fatalf("%+v: loss %v (recomputed %v), NoWag-P %v", opt, f.BestLoss, f.Loss(h), nowLoss)
		}
		if err := checkMask24(f.Rows, f.Cols, f.Mask, nil); err != nil {
			t.Fatal(err)
		}
		t.Logf("cg %d, no-extrapolate %v, lbfgs %d: %.5f -> %.5f, %.3g multiply-adds", opt.CGSteps, opt.NoExtrapolate, opt.LBFGSSteps, nowLoss, f.BestLoss, float64(f.MulAdds))
	}
}

// With blocks of fastMinBlock or more, L-BFGS joins the sweeps only while it
// gains more per multiply-add than plain sweeps. The choice counts
// multiply-adds, so it is deterministic (shards rely on it); it never lets
// the loss rise; and once tried, L-BFGS runs at least lbWarm sweeps in a row
// before being judged.
func TestArmorFastAdaptiveLBFGS(t *testing.T) {
	rng := newRng(3)
	w, h := randLayer(rng, 96, 128)
	// L-BFGS and CG are off by default at b ≥ fastMinBlock; set, they run.
	opt := Options{Block: 32, Iters: 60, Patience: 1000, LBFGSSwitch: 0.02, Threads: 2, CGSteps: 8, LBFGSSteps: 10}
	a, err := ArmorFast(w, h, opt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ArmorFast(w, h, opt)
	if err != nil {
		t.Fatal(err)
	}
	if a.BestLoss != b.BestLoss || a.MulAdds != b.MulAdds || !slices.Equal(a.X, b.X) {
		t.Fatalf("two runs differ: loss %v vs %v, %d vs %d multiply-adds", a.BestLoss, b.BestLoss, a.MulAdds, b.MulAdds)
	}
	plain := a.History[1].MulAdds - a.History[0].MulAdds
	run, stints, lbSweeps := 0, 0, 0
	for i := 1; i < len(a.History); i++ {
		if a.History[i].Loss > a.History[i-1].Loss {
			t.Fatalf("loss rose at sweep %d: %v -> %v", i, a.History[i-1].Loss, a.History[i].Loss)
		}
		withLB := a.History[i].MulAdds-a.History[i-1].MulAdds > 2*plain
		if withLB {
			run++
			lbSweeps++
			continue
		}
		if run > 0 {
			stints++
			if run < lbWarm {
				t.Errorf("an L-BFGS stint ended after %d sweeps (before sweep %d), under lbWarm = %d", run, i, lbWarm)
			}
		}
		run = 0
	}
	if lbSweeps == 0 {
		t.Fatalf("L-BFGS never joined the sweeps (loss %v after %d sweeps)", a.BestLoss, a.Iters)
	}
	if stints == 0 {
		t.Errorf("plain sweeps never took over again from L-BFGS on a layer where they gain more per multiply-add")
	}
	t.Logf("%d of %d sweeps with L-BFGS, %d stints that ended; loss %.5f from %.5f", lbSweeps, a.Iters, stints, a.BestLoss, a.InitLoss)
}

// TestArmorFastLargeBlockDefaults: blocks of fastMinBlock or more run
// neither CG nor L-BFGS by default (largeBlockDefaults), smaller ones run
// both: the defaults give the same iterate as those settings spelled out,
// and not the same as the others.
func TestArmorFastLargeBlockDefaults(t *testing.T) {
	w, h := randLayer(newRng(5), 64, 96)
	run := func(block, cg, lb int) *Factorization {
		f, err := ArmorFast(w, h, Options{Block: block, Iters: 40, Patience: 1000, LBFGSSwitch: 0.05, Threads: 2, CGSteps: cg, LBFGSSteps: lb})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	same := func(a, b *Factorization) bool { return a.BestLoss == b.BestLoss && slices.Equal(a.X, b.X) }
	for _, c := range []struct {
		block          int
		cg, lb, oc, ol int // the defaults spelled out, and the other settings
	}{{fastMinBlock, -1, -1, 8, 10}, {8, 8, 10, -1, -1}} {
		def := run(c.block, 0, 0)
		if !same(def, run(c.block, c.cg, c.lb)) {
			t.Errorf("b = %d: the defaults are not CGSteps %d, LBFGSSteps %d", c.block, c.cg, c.lb)
		}
		if same(def, run(c.block, c.oc, c.ol)) {
			t.Errorf("b = %d: CGSteps %d, LBFGSSteps %d give the defaults' result too: the test cannot tell them apart", c.block, c.oc, c.ol)
		}
	}
}

// TestProductGFLOPS: the f32 path times its product kernels (a positive,
// finite rate); the float64 path has none to time.
func TestProductGFLOPS(t *testing.T) {
	w, h := randLayer(newRng(6), 64, 96)
	for _, c := range []struct {
		block int
		exact bool
		want  bool
	}{{fastMinBlock, false, true}, {fastMinBlock, true, false}, {8, false, false}} {
		f, err := ArmorFast(w, h, Options{Block: c.block, Iters: 3, Threads: 2, Exact: c.exact})
		if err != nil {
			t.Fatal(err)
		}
		got := f.ProductGFLOPS
		if ok := got > 0 && !math.IsInf(got, 0); ok != c.want || (!c.want && got != 0) {
			t.Errorf("b = %d, exact %v: ProductGFLOPS %v", c.block, c.exact, got)
		}
	}
}
