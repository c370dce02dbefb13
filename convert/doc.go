// Package convert is armor-convert's engine: calibration, the per-layer
// pruning mathematics, and the conversion pipeline that writes .armor files.
//
// The per-layer mathematics — the 2:4 baselines (magnitude, Wanda, SparseGPT,
// NoWag-P) and ARMOR, both the reference schedule of the paper (Armor) and
// our alternating exact minimization (ArmorFast) — is pure float64
// arithmetic on row-major slices and knows nothing of models or files. See
// docs/armor-algorithm.md for the algorithm; section numbers in comments
// refer to it. A layer computes y = W x + bias with W of shape Rows×Cols
// (d_out×d_in); the 2:4 groups run along Cols (the reduction dimension), so
// Cols must be a multiple of 4.
//
// On top of it: CalibrationSequences and Calibrate (calibrate.go) collect each
// linear layer's input statistics by running the model's batched forward pass
// through recording layers; Convert (pipeline.go) converts every linear layer
// in parallel, checkpoints each finished layer, and writes the .armor file
// atomically.
package convert
