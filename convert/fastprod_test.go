package convert

import (
	"fmt"
	"math"
	"testing"
)

// twin returns a copy of st that computes in float64 (exact) and st itself
// forced onto the f32 path, over the same parameters.
func twin(st *state) (exact, fast *state) {
	e := &state{n: st.n, m: st.m, b: st.b, rb: st.rb, cb: st.cb, wbar: st.wbar, h: st.h, z: st.z,
		A: cloneBlocks(st.A), B: cloneBlocks(st.B), X: append([]float64(nil), st.X...), M: append([]uint8(nil), st.M...),
		threads: st.threads, exact: true}
	return e, st
}

// closeRel checks that got matches want to within tol of want's largest
// magnitude (f32 products are accurate relative to the operands' scale).
func closeRel(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	scale := 0.0
	for _, v := range want {
		scale = math.Max(scale, math.Abs(v))
	}
	if scale == 0 {
		scale = 1
	}
	for k := range want {
		if d := math.Abs(got[k] - want[k]); !(d <= tol*scale) {
			t.Fatalf("%s: [%d] = %v, want %v (|diff| %.3g > %.3g of scale %.3g)", what, k, got[k], want[k], d, tol, scale)
		}
	}
}

// TestFastProducts checks every f32 product of the state against its float64
// form, on ragged shapes (a last block smaller than b, lengths that are not
// multiples of the chunk or of 16) and perturbed parameters.
func TestFastProducts(t *testing.T) {
	for _, sh := range [][3]int{{96, 160, 32}, {100, 1100, 48}, {600, 72, 32}, {64, 64, 64}} {
		n, m, b := sh[0], sh[1], sh[2]
		t.Run(fmt.Sprintf("%dx%d_b%d", n, m, b), func(t *testing.T) {
			st := testState(t, uint64(n*m+b), n, m, b)
			if !st.fast() {
				t.Fatal("state is not on the fast path")
			}
			ex, fs := twin(st)
			const tol = 2e-5
			P1, P2 := make([]float64, n*m), make([]float64, n*m)
			ex.forwardP(P1)
			fs.forwardP(P2)
			closeRel(t, "forwardP", P2, P1, tol)
			W1, W2 := make([]float64, n*m), make([]float64, n*m)
			ex.forwardW(P1, W1)
			fs.forwardW(P1, W2)
			closeRel(t, "forwardW", W2, W1, tol)
			if l1, l2 := ex.lossOf(W1), fs.lossOf(W2); relErr(l1, l2) > 1e-5 {
				t.Fatalf("loss %v (f32 products) vs %v", l2, l1)
			}

			G := make([]float64, n*m)
			ex.lossGradient(W1, G)
			T1, T2 := make([]float64, n*m), make([]float64, n*m)
			ex.blockTimesBT(G, T1)
			fs.blockTimesBT(G, T2)
			closeRel(t, "blockTimesBT", T2, T1, tol)
			for _, masked := range []bool{false, true} {
				O1, O2 := make([]float64, n*m), make([]float64, n*m)
				ex.aTransposeTimes(T1, O1, masked)
				fs.aTransposeTimes(T1, O2, masked)
				closeRel(t, fmt.Sprintf("aTransposeTimes masked=%v", masked), O2, O1, tol)
			}

			Q1, Q2 := make([]float64, n*m), make([]float64, n*m)
			T1, T2 = make([]float64, n*m), make([]float64, n*m)
			GX1, GX2 := make([]float64, n*m), make([]float64, n*m)
			gA1, gB1 := zerosLike(ex.A), zerosLike(ex.B)
			gA2, gB2 := zerosLike(ex.A), zerosLike(ex.B)
			ex.gradients(P1, G, Q1, T1, GX1, gA1, gB1)
			fs.gradients(P1, G, Q2, T2, GX2, gA2, gB2)
			closeRel(t, "gradient X", GX2, GX1, tol)
			closeRel(t, "A·S", Q2, Q1, tol)
			for J := range gA1 {
				closeRel(t, fmt.Sprintf("gradient A[%d]", J), gA2[J], gA1[J], 1e-4)
			}
			for K := range gB1 {
				closeRel(t, fmt.Sprintf("gradient B[%d]", K), gB2[K], gB1[K], 1e-4)
			}

			// The closed-form A and B updates solve the same b×b systems
			// from f32 Grams. Where a system is ill-conditioned (a block as
			// wide as the layer) the solutions differ along directions the
			// loss hardly sees, so compare the losses they reach (to 1e-4
			// of the loss before: f32 resolution, not the solution's own
			// scale, which can be 0 when one block fits the layer exactly);
			// each must also keep the loss monotone.
			l0 := ex.loss()
			ex.updateA(P1)
			fs.updateA(P1)
			la, lfa := ex.loss(), fs.loss()
			if !(lfa <= l0) || math.Abs(la-lfa) > 1e-4*l0 {
				t.Fatalf("updateA: loss %v -> %v on the f32 path, %v in float64", l0, lfa, la)
			}
			ex.A = cloneBlocks(fs.A)
			Q := make([]float64, n*m)
			ex.updateB(Q)
			fs.updateB(Q)
			lb, lfb := ex.loss(), fs.loss()
			if !(lfb <= lfa) || math.Abs(lb-lfb) > 1e-4*l0 {
				t.Fatalf("updateB: loss %v -> %v on the f32 path, %v in float64", lfa, lfb, lb)
			}
			ex.B = cloneBlocks(fs.B)
			l1 := fs.loss()
			Y, R := make([]float64, n*m), make([]float64, n*m)
			fs.updateS(Y, R, 8, true)
			if l2 := fs.loss(); !(l2 <= l1+1e-6*l0) {
				t.Fatalf("f32 updateS raised the loss: %v -> %v", l1, l2)
			}
			ex.updateS(Y, R, 8, true)
			if le, lf := ex.loss(), fs.loss(); math.Abs(le-lf) > 1e-3*l1+1e-6*l0 {
				t.Fatalf("updateS: loss %v on the f32 path vs %v in float64", lf, le)
			}
			if err := checkMask24(n, m, fs.M, nil); err != nil {
				t.Fatalf("f32 updateS broke the 2:4 mask: %v", err)
			}
		})
	}
}

// TestArmorFastF32MatchesExact runs whole ArmorFast conversions on both
// paths: the f32 products must reach the float64 loss within 0.5 %.
func TestArmorFastF32MatchesExact(t *testing.T) {
	for _, sh := range [][3]int{{128, 256, 32}, {96, 200, 64}} {
		rng := newRng(uint64(sh[0] + sh[1]))
		w, h := randLayer(rng, sh[0], sh[1])
		opt := Options{Block: sh[2], Iters: 30, Threads: 2}
		f32, err := ArmorFast(w, h, opt)
		if err != nil {
			t.Fatal(err)
		}
		opt.Exact = true
		f64, err := ArmorFast(w, h, opt)
		if err != nil {
			t.Fatal(err)
		}
		exactLoss := f32.Loss(h)
		t.Logf("%dx%d b=%d: f32 path %.6f (recomputed exactly %.6f, %d sweeps), float64 %.6f (%d sweeps), NoWag-P %.6f",
			sh[0], sh[1], sh[2], f32.BestLoss, exactLoss, f32.Iters, f64.BestLoss, f64.Iters, f64.InitLoss)
		if relErr(exactLoss, f32.BestLoss) > 1e-4 {
			t.Errorf("f32 path reports loss %v, exactly %v", f32.BestLoss, exactLoss)
		}
		if exactLoss > f64.BestLoss*1.005 {
			t.Errorf("f32 path loss %v is more than 0.5 %% above float64's %v", exactLoss, f64.BestLoss)
		}
		if !(exactLoss < f32.InitLoss) {
			t.Errorf("f32 path did not improve on NoWag-P: %v vs %v", exactLoss, f32.InitLoss)
		}
	}
}

// BenchmarkArmorFastSweepShapes times one ArmorFast sweep (the closed-form A and B
// updates, 8 CG steps and the group pass per tile, the extrapolation) on a
// random layer, in f32 products and in float64, and reports the rate in
// multiply-adds of the algorithm's own count.
//
//	go test -run x -bench ArmorFastSweepShapes ./convert
func BenchmarkArmorFastSweepShapes(b *testing.B) {
	for _, sh := range [][3]int{{768, 768, 128}, {768, 2048, 128}, {2048, 768, 128}} {
		b.Run(fmt.Sprintf("%dx%d_b%d", sh[0], sh[1], sh[2]), func(b *testing.B) {
			rng := newRng(1)
			w, h := randLayer(rng, sh[0], sh[1])
			for _, exact := range []bool{false, true} {
				name := "f32"
				if exact {
					name = "f64"
				}
				b.Run(name, func(b *testing.B) {
					var madds int64
					for i := 0; i < b.N; i++ {
						f, err := ArmorFast(w, h, Options{Block: sh[2], Iters: 1, Exact: exact, LBFGSSteps: -1})
						if err != nil {
							b.Fatal(err)
						}
						madds += f.MulAdds
					}
					b.ReportMetric(float64(madds)/b.Elapsed().Seconds()/1e9, "Gmadd/s")
				})
			}
		})
	}
}

// Dense() of a factorization on the f32 path (blocks of fastMinBlock or
// more) reconstructs through f32 products: it must agree with the exact
// deployed product column by column, to f32 accuracy.
func TestDenseF32Path(t *testing.T) {
	w, h := randLayer(newRng(11), 96, 160)
	f, err := ArmorFast(w, h, Options{Block: 32, Iters: 4})
	if err != nil {
		t.Fatal(err)
	}
	d := f.Dense()
	dep := f.Deployed()
	maxAbs, maxDiff := 0.0, 0.0
	e := make([]float64, f.Cols)
	for j := 0; j < f.Cols; j++ {
		clear(e)
		e[j] = 1
		col := dep.Apply(e)
		for i, v := range col {
			maxAbs = math.Max(maxAbs, math.Abs(v))
			maxDiff = math.Max(maxDiff, math.Abs(d[i*f.Cols+j]-v))
		}
	}
	if !(maxDiff <= 1e-5*maxAbs) {
		t.Fatalf("Dense() differs from the deployed product by %v (largest entry %v)", maxDiff, maxAbs)
	}
	if l, _ := ProxyLoss(w, h, d); relErr(l, f.Loss(h)) > 1e-5 {
		t.Fatalf("ProxyLoss(Dense()) = %v, exact loss %v", l, f.Loss(h))
	}
}
