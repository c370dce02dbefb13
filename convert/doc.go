// Package convert holds the per-layer pruning mathematics of armor-convert:
// the 2:4 baselines (magnitude, Wanda, SparseGPT, NoWag-P) and ARMOR, both the
// reference schedule of the paper (Armor) and our alternating exact
// minimization (ArmorFast). See docs/armor-algorithm.md for the algorithm this
// package implements; section numbers in comments refer to it.
//
// Everything here is pure float64 arithmetic on row-major slices: the package
// knows nothing of models or files. A layer computes y = W x + bias with W of
// shape Rows×Cols (d_out×d_in); the 2:4 groups run along Cols (the reduction
// dimension), so Cols must be a multiple of 4.
package convert
