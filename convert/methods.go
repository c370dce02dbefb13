package convert

import (
	"errors"
	"slices"
)

// statsNeed is what calibration a method needs.
type statsNeed int

const (
	needNone statsNeed = iota // no data (its proxy loss is reported only when calibrated anyway)
	needDiag                  // the diagonal of XXᵀ per layer input (the proxy loss's weights)
	needFull                  // the full XXᵀ per layer input as well
)

// layerJob is one linear layer handed to a method.
type layerJob struct {
	w       Matrix
	h, full []float64 // diagonal and full XXᵀ of the layer's input (nil when not collected)
	opt     ConvertOptions
	options Options // the ARMOR options derived from opt (block, sweeps, threads, progress)
}

// takeW hands the weights over to a method that needs them only at its
// start (ARMOR normalizes them into its own target): the job then no longer
// holds them, 8 bytes a weight less during the long optimization, and the
// caller reads them again for its losses.
func (j *layerJob) takeW() Matrix {
	w := j.w
	j.w = Matrix{}
	return w
}

// method is one --method value: what it needs and how it converts a layer.
// A method has prune (a plain 2:4 matrix), factor (an ARMOR factorization)
// or neither (dense: the weights stored as they are).
type method struct {
	Name   string
	Help   string
	Stats  statsNeed
	prune  func(j *layerJob) (*Sparse24, error)
	factor func(j *layerJob) (*Factorization, error)
}

// armor reports whether the method factorizes (and so takes a block size
// and sweeps).
func (m *method) armor() bool { return m.factor != nil }

var errNoFull = errors.New("no full XXᵀ statistics were collected")

var methodTable = []method{
	{Name: "dense", Help: "the unpruned model in the same format (for fair comparisons)"},
	{Name: "magnitude", Help: "keep the 2 largest |W| of every group of 4 inputs (needs no calibration)",
		prune: func(j *layerJob) (*Sparse24, error) { return Magnitude(j.w) }},
	{Name: "wanda", Help: "keep the 2 largest |W|·‖X_j‖ per group", Stats: needDiag,
		prune: func(j *layerJob) (*Sparse24, error) { return Wanda(j.w, j.h) }},
	{Name: "nowag-p", Help: "keep the 2 largest W̄²·h per group (NoWag-normalized W)", Stats: needDiag,
		prune: func(j *layerJob) (*Sparse24, error) { return NoWagP(j.w, j.h) }},
	{Name: "sparsegpt", Help: "OBS-style pruning with the full XXᵀ (SparseGPT)", Stats: needFull,
		prune: func(j *layerJob) (*Sparse24, error) {
			if j.full == nil {
				return nil, errNoFull
			}
			return SparseGPT(j.w, j.full, 128)
		}},
	{Name: "armor", Help: "ARMOR, the paper's reference schedule (Adam + sparse-core steps)", Stats: needDiag,
		factor: func(j *layerJob) (*Factorization, error) { return Armor(j.takeW(), j.h, j.options) }},
	{Name: "armor-fast", Help: "ARMOR by alternating exact minimizations (ours; far less work)", Stats: needDiag,
		factor: func(j *layerJob) (*Factorization, error) { return ArmorFast(j.takeW(), j.h, j.options) }},
	{Name: "armor-fast-h", Help: "armor-fast, then A, B and the kept values of S refined by L-BFGS for the output error " +
		"under the full XXᵀ (what SparseGPT minimizes) with the mask fixed (ours; best quality; collects an in×in " +
		"matrix per layer input)", Stats: needFull,
		factor: func(j *layerJob) (*Factorization, error) {
			if j.full == nil {
				return nil, errNoFull
			}
			f, err := ArmorFast(j.w, j.h, j.options)
			if err != nil {
				return nil, err
			}
			o := j.options
			o.Iters = j.opt.RefineRounds
			return RefineFullH(f, j.w, j.full, o)
		}},
}

// Methods lists the --method values Convert accepts.
var Methods = func() []string {
	var names []string
	for _, m := range methodTable {
		names = append(names, m.Name)
	}
	return names
}()

// MethodHelp returns a one-line description of a method ("" if unknown).
func MethodHelp(name string) string {
	if m := methodByName(name); m != nil {
		return m.Help
	}
	return ""
}

// methodByName returns the method's table entry, or nil.
func methodByName(name string) *method {
	i := slices.IndexFunc(methodTable, func(m method) bool { return m.Name == name })
	if i < 0 {
		return nil
	}
	return &methodTable[i]
}

// methodNeedsFull reports whether a method needs the full XXᵀ of its inputs.
func methodNeedsFull(name string) bool {
	m := methodByName(name)
	return m != nil && m.Stats == needFull
}

// isArmor reports whether a method factorizes with ARMOR's wrappers.
func isArmor(name string) bool {
	m := methodByName(name)
	return m != nil && m.armor()
}

// MethodNeedsCalibration reports whether a method needs calibration text.
func MethodNeedsCalibration(name string) bool {
	m := methodByName(name)
	return m != nil && m.Stats != needNone
}

// MethodFactorizes reports whether a method is one of ARMOR's (block size
// and sweeps apply).
func MethodFactorizes(name string) bool { return isArmor(name) }
