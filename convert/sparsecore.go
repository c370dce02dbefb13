package convert

import "math"

// pairs are the 6 supports of size 2 in a group of 4.
var pairs = [6][2]int{{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}}

// groupUpdate is the exact minimization of the loss over one (row i, group g)
// of S with everything else fixed (section 4, discrete step, items 3-4).
//
// Writing the tile's scaled residual as E, a = A_J[:, i] and
// B̃ = B_K[g..g+3, :] ⊙ √h, the loss as a function of the group's 4 values s is
//
//	const + 2 sᵀ f + ‖a‖² sᵀ Q s,   f = t − ‖a‖² Q s_old,  Q = B̃ B̃ᵀ,
//
// where t = B̃ Eᵀ a is computed at the current values s_old (the residual with
// the group removed, projected). For each of the 6 supports P the minimizer is
// s_P = −Q_P⁻¹ f_P / ‖a‖² with value −f_Pᵀ Q_P⁻¹ f_P / ‖a‖²; the best support
// wins. The regularizers 1e-9·I and 1e-8 are the reference's.
//
// It returns the new values (zero off the support), the support and the exact
// change of the unnormalized loss, 2 δᵀ t + ‖a‖² δᵀ Q δ with δ = s_new − s_old:
// the prediction that the tests check against the real loss.
func groupUpdate(t [4]float64, aa float64, q *[16]float64, sOld [4]float64) (sNew [4]float64, keep [2]int, delta float64) {
	gq := newGroupQ(q)
	return gq.update(t, aa, sOld)
}

// groupQ holds what groupUpdate needs of one group's Q, computed once: Q
// depends only on B and h, so a tile's group pass shares it across all the
// tile's rows. For each support P, its 2×2 Q_P (with the 1e-9 ridge), the
// determinant and its inverse (0 when the determinant is not a positive
// finite number, which makes that support's cost 0 and its values 0).
type groupQ struct {
	q  [16]float64
	pq [6][5]float64 // q00, q01, q11, det, 1/det
}

func newGroupQ(q *[16]float64) groupQ {
	gq := groupQ{q: *q}
	for k, pr := range pairs {
		a, b := pr[0], pr[1]
		q00, q01, q11 := q[a*4+a]+1e-9, q[a*4+b], q[b*4+b]+1e-9
		det := q00*q11 - q01*q01
		inv := 0.0
		if det > 0 && !math.IsInf(det, 0) {
			inv = 1 / det
		}
		gq.pq[k] = [5]float64{q00, q01, q11, det, inv}
	}
	return gq
}

// update is groupUpdate with Q's per-support factors precomputed. The
// supports are compared by their costs −f_Pᵀ Q_P⁻¹ f_P, computed with the
// inverse determinant (no division); only the winner's values are solved
// for, with divisions.
func (gq *groupQ) update(t [4]float64, aa float64, sOld [4]float64) (sNew [4]float64, keep [2]int, delta float64) {
	q := &gq.q
	var f [4]float64
	for p := 0; p < 4; p++ {
		v := 0.0
		for r := 0; r < 4; r++ {
			v += q[p*4+r] * sOld[r]
		}
		f[p] = t[p] - aa*v
	}
	bestCost := math.Inf(1)
	best := 0
	for k, pr := range pairs {
		fa, fb := f[pr[0]], f[pr[1]]
		c := &gq.pq[k]
		q00, q01, q11 := c[0], c[1], c[2]
		cost := -(fa*(q11*fa-q01*fb) + fb*(q00*fb-q01*fa)) * c[4]
		if cost < bestCost {
			bestCost, best = cost, k
		}
	}
	keep = pairs[best]
	if c := &gq.pq[best]; c[4] != 0 {
		fa, fb := f[keep[0]], f[keep[1]]
		q00, q01, q11, det := c[0], c[1], c[2], c[3]
		// Q_P⁻¹ f_P for the symmetric 2×2 Q_P.
		y0 := (q11*fa - q01*fb) / det
		y1 := (q00*fb - q01*fa) / det
		sNew[keep[0]], sNew[keep[1]] = -y0/(aa+1e-8), -y1/(aa+1e-8)
	}
	var d [4]float64
	for p := range d {
		d[p] = sNew[p] - sOld[p]
	}
	for p := 0; p < 4; p++ {
		qd := 0.0
		for r := 0; r < 4; r++ {
			qd += q[p*4+r] * d[r]
		}
		delta += 2*d[p]*t[p] + aa*d[p]*qd
	}
	return sNew, keep, delta
}
