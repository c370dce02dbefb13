package convert

import "github.com/armor-llm/armor/kernels"

// pairs are the 6 supports of size 2 in a group of 4.
var pairs = kernels.Group24Pairs

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
	return gq.Update(t, aa, sOld)
}

// groupQ is a group's precomputed Q (kernels.Group24: Q, and per support
// its 2×2 block and inverse determinant), shared by all rows of a tile.
type groupQ = kernels.Group24

func newGroupQ(q *[16]float64) groupQ { return kernels.NewGroup24(q) }
