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
	var f [4]float64
	for p := 0; p < 4; p++ {
		v := 0.0
		for r := 0; r < 4; r++ {
			v += q[p*4+r] * sOld[r]
		}
		f[p] = t[p] - aa*v
	}
	// The values of a support are needed only for the winner, so its
	// divisions by ‖a‖² wait until the choice is made (this loop is most of
	// a group pass's scalar work).
	bestCost := math.Inf(1)
	var bestY [2]float64
	keep = pairs[0]
	for _, pr := range pairs {
		a, b := pr[0], pr[1]
		q00, q01, q11 := q[a*4+a]+1e-9, q[a*4+b], q[b*4+b]+1e-9
		det := q00*q11 - q01*q01
		var y0, y1, cost float64
		if det > 0 && !math.IsInf(det, 0) {
			// Q_P⁻¹ f_P for the symmetric 2×2 Q_P.
			y0 = (q11*f[a] - q01*f[b]) / det
			y1 = (q00*f[b] - q01*f[a]) / det
			cost = -(f[a]*y0 + f[b]*y1)
		}
		if cost < bestCost {
			bestCost, keep, bestY = cost, pr, [2]float64{y0, y1}
		}
	}
	sNew[keep[0]], sNew[keep[1]] = -bestY[0]/(aa+1e-8), -bestY[1]/(aa+1e-8)
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
