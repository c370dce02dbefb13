package convert

import (
	"context"
	"errors"
	"math"
	"testing"
)

// Gradients of section 4 against central finite differences of the loss, on
// a perturbed state with ragged blocks (12 rows, 24 columns, b = 8... and a
// 4-row last block).
func TestGradientsFiniteDifferences(t *testing.T) {
	st := testState(t, 1, 12, 24, 8)
	n, m := st.n, st.m
	What, T, GX := checkGradients(t, st)
	for k := range st.X {
		if st.M[k] != 1 && GX[k] != 0 {
			t.Fatalf("X gradient off the mask at %d: %v", k, GX[k])
		}
	}
	// G_S is the same product without the mask and the 1/Z.
	GS := make([]float64, n*m)
	st.sparseGradient(What, make([]float64, n*m), T, GS)
	for k := range GS {
		if st.M[k] == 1 && relErr(GS[k]/st.z, GX[k]) > 1e-9 && math.Abs(GX[k]) > 1e-12 {
			t.Fatalf("G_S[%d]/Z = %v, dL/dX = %v", k, GS[k]/st.z, GX[k])
		}
	}
}

// The parallel sparse-core step lowers the loss by exactly the sum of the
// per-tile predictions, keeps a valid 2:4 mask, and updates P and Ŵ in place
// correctly.
func TestSparseStepPrediction(t *testing.T) {
	for _, sz := range [][3]int{{12, 24, 8}, {40, 24, 16}, {20, 36, 16}} {
		st := testState(t, 2, sz[0], sz[1], sz[2])
		n, m := st.n, st.m
		P, What := make([]float64, n*m), make([]float64, n*m)
		rng := newRng(3)
		nt := (len(st.rb) - 1) * (len(st.cb) - 1)
		us, deltas := make([]float64, nt), make([]float64, nt)
		for round := 0; round < 20; round++ {
			st.forwardP(P)
			st.forwardW(P, What)
			before := st.lossOf(What)
			GS := make([]float64, n*m)
			st.sparseGradient(What, make([]float64, n*m), make([]float64, n*m), GS)
			for k := range us {
				us[k] = rng.Float64()
			}
			st.sparseStep(What, P, GS, us, deltas)
			sum := 0.0
			for _, d := range deltas {
				if d > 1e-12*st.z {
					t.Fatalf("tile prediction %v is an increase", d)
				}
				sum += d
			}
			after := st.loss()
			if got, want := after-before, sum/st.z; math.Abs(got-want) > 1e-11*before {
				t.Fatalf("%v round %d: loss changed by %v, predicted %v", sz, round, got, want)
			}
			if inc := st.lossOf(What); relErr(inc, after) > 1e-10 {
				t.Fatalf("incremental Ŵ gives %v, fresh forward %v", inc, after)
			}
			if err := checkMask24(n, m, st.M, nil); err != nil {
				t.Fatal(err)
			}
			if round == 0 && !(sum < 0) {
				t.Fatalf("%v: first sparse step predicted no decrease (%v)", sz, sum)
			}
		}
	}
}

// groupUpdate is the exact minimizer over one group: brute force over the 6
// supports with a direct 2×2 solve of the true loss.
func TestGroupUpdateExact(t *testing.T) {
	rng := newRng(4)
	for trial := 0; trial < 200; trial++ {
		var t4, sOld [4]float64
		var q [16]float64
		var bt [4][6]float64 // B̃: 4×6
		for p := range bt {
			for c := range bt[p] {
				bt[p][c] = rng.NormFloat64()
			}
		}
		for p := 0; p < 4; p++ {
			for r := 0; r < 4; r++ {
				for c := 0; c < 6; c++ {
					q[p*4+r] += bt[p][c] * bt[r][c]
				}
			}
			t4[p] = rng.NormFloat64()
		}
		sOld[0], sOld[2] = rng.NormFloat64(), rng.NormFloat64()
		aa := 0.5 + rng.Float64()
		// Loss change as a function of the new values s.
		change := func(s [4]float64) float64 {
			v := 0.0
			for p := 0; p < 4; p++ {
				d := s[p] - sOld[p]
				qd := 0.0
				for r := 0; r < 4; r++ {
					qd += q[p*4+r] * (s[r] - sOld[r])
				}
				v += 2*d*t4[p] + aa*d*qd
			}
			return v
		}
		sNew, keep, delta := groupUpdate(t4, aa, &q, sOld)
		if relErr(delta, change(sNew)) > 1e-9 {
			t.Fatalf("predicted %v, actual %v", delta, change(sNew))
		}
		for p := 0; p < 4; p++ {
			if p != keep[0] && p != keep[1] && sNew[p] != 0 {
				t.Fatal("value off the support")
			}
		}
		for _, pr := range pairs {
			// Minimize change over the support pr by Newton (it is quadratic).
			var s [4]float64
			var g [2]float64
			var hm [2][2]float64
			for a, pa := range pr {
				g[a] = 0
				for b, pb := range pr {
					hm[a][b] = 2 * aa * q[pa*4+pb]
				}
				// gradient at s = 0
				gv := 2 * t4[pa]
				for r := 0; r < 4; r++ {
					gv -= 2 * aa * q[pa*4+r] * sOld[r]
				}
				g[a] = gv
			}
			det := hm[0][0]*hm[1][1] - hm[0][1]*hm[1][0]
			s[pr[0]] = -(hm[1][1]*g[0] - hm[0][1]*g[1]) / det
			s[pr[1]] = -(hm[0][0]*g[1] - hm[1][0]*g[0]) / det
			if change(s) < delta-1e-9*math.Abs(delta) {
				t.Fatalf("support %v reaches %v < chosen %v", pr, change(s), delta)
			}
		}
	}
}

func TestArmorBadInput(t *testing.T) {
	w, h := randLayer(newRng(1), 8, 16)
	for _, b := range []int{-4, 2, 6, 10} {
		if _, err := Armor(w, h, Options{Block: b, Iters: 1}); err == nil {
			t.Fatalf("block %d: want an error", b)
		}
		if _, err := ArmorFast(w, h, Options{Block: b, Iters: 1}); err == nil {
			t.Fatalf("block %d: want an error", b)
		}
	}
	if _, err := Armor(Matrix{Rows: 8, Cols: 14, Data: make([]float64, 8*14)}, h[:14], Options{}); err == nil {
		t.Fatal("14 columns: want an error")
	}
	if _, err := ArmorFast(w, h[:15], Options{}); err == nil {
		t.Fatal("short h: want an error")
	}
}

// A cancelled context stops both optimizers with its error (Ctrl-C in the
// CLI), and a malformed factorization gives NaN / nil instead of a panic.
func TestCancelAndMalformed(t *testing.T) {
	w, h := randLayer(newRng(12), 16, 32)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Armor(w, h, Options{Block: 8, Ctx: ctx}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Armor: err = %v, want context.Canceled", err)
	}
	if _, err := ArmorFast(w, h, Options{Block: 8, Ctx: ctx}); !errors.Is(err, context.Canceled) {
		t.Fatalf("ArmorFast: err = %v, want context.Canceled", err)
	}
	f, err := ArmorFast(w, h, Options{Block: 8, Iters: 2})
	if err != nil {
		t.Fatal(err)
	}
	bad := *f
	bad.A = bad.A[:1]
	if l := bad.Loss(h); !math.IsNaN(l) {
		t.Fatalf("Loss of a factorization missing A blocks = %v, want NaN", l)
	}
	if d := bad.Dense(); d != nil {
		t.Fatal("Dense of a malformed factorization: want nil")
	}
	if l := f.Loss(h[:5]); !math.IsNaN(l) {
		t.Fatalf("Loss with a short h = %v, want NaN", l)
	}
}
