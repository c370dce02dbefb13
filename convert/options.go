package convert

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/tensor"
)

// DefaultBlock is ARMOR's block size when none is asked for (the paper's
// 128); a model whose smallest layer is narrower gets the largest multiple
// of 4 that fits (see resolveBlock).
const DefaultBlock = 128

// ConvertOptions controls Convert. Zero values select the defaults.
type ConvertOptions struct {
	Method string // one of Methods
	Block  int    // ARMOR block size, a multiple of 4 (0: DefaultBlock, or the largest that fits)
	Iters  int    // ARMOR iterations / ArmorFast sweeps (0: their defaults)
	// Tol: the relative improvement of the proxy loss that counts as
	// progress for the stopping rule (0: the method's default; see
	// Options.RTol).
	Tol        float64
	DType      tensor.DType // stored values: F32 (the zero value), F16 or BF16; armor-convert defaults to F16
	Seed       uint64       // ARMOR's sampling seed (the calibration seed is the caller's)
	Threads    int          // cores to use (default GOMAXPROCS)
	Resume     bool         // reuse the per-layer checkpoints of an interrupted run
	Sequential bool         // collect each block's statistics from the already-converted blocks
	// FullBudget bounds the bytes of full XXᵀ statistics (sparsegpt,
	// armor-fast-h) collected in one calibration pass (0: 4 GiB; negative:
	// always one block per pass).
	FullBudget int64
	// RefineRounds: armor-fast-h's rounds of full-Hessian L-BFGS steps
	// after ArmorFast (0: RefineFullH's default).
	RefineRounds int
	// PartsDir holds the per-layer checkpoints (default OUT + ".parts").
	// It is removed when the file is complete.
	PartsDir string
	// Provenance is merged into the file's provenance record.
	Provenance map[string]any
	// StatsDir holds calibration statistics (see shard.go). With
	// CalibOnly, Convert calibrates, writes them there and stops;
	// otherwise, when set, they are read from there instead of
	// calibrating, and so are the calibration tokens (seqs may be nil).
	StatsDir  string
	CalibOnly bool
	// Shards > 0: convert only the layers of shard Shard (0-based; layer
	// i of the file order belongs to shard i mod Shards), leave their
	// checkpoints in PartsDir and write no file. Under Sequential, shard
	// Shard converts the blocks [Shard·L/Shards, (Shard+1)·L/Shards) of the
	// model's L instead, sequentially within the range, the blocks before
	// it running dense (see blockRange).
	Shard, Shards int
	// MergeOnly: every layer must be checkpointed in PartsDir already;
	// Convert only writes the file. Under Sequential, Shards is the number
	// of block-range shards that made the checkpoints (0 or 1: one
	// process), and Shard is not used.
	MergeOnly bool
	// SweepCheckpoint: how often armor-fast saves a layer's iterate
	// between sweeps (0: every 5 minutes).
	SweepCheckpoint time.Duration
	Progress        func(Progress)
	Ctx             context.Context
}

// Progress is one progress report of Convert. Calls are serialized.
type Progress struct {
	Stage       string // "calibrate", "layer", "write", or "note" (Note says something the caller should know)
	Layer       string // linear name (stage "layer")
	Done, Total int    // layers finished / total (stage "layer"); sequences or tensors otherwise
	Iter        int    // current iteration or sweep of Layer (0 when it finished)
	Loss        float64
	Elapsed     time.Duration
	ETA         time.Duration // 0 when unknown
	Note        string
}

// fullBytes is the memory of the full XXᵀ of every distinct layer input of
// a model: per block, the attention input, the attention output's input,
// the FFN input and the down projection's input.
func fullBytes(c model.Config) int64 {
	per := int64(c.Dim)*int64(c.Dim)*2 + int64(c.QDim())*int64(c.QDim()) + int64(c.Hidden)*int64(c.Hidden)
	return 8 * per * int64(c.Layers)
}

// linearNames lists every linear layer of every block, in file order.
func linearNames(c model.Config) []string {
	var out []string
	for l := 0; l < c.Layers; l++ {
		out = append(out, model.LayerLinears(l)...)
	}
	return out
}

func shapeOf(m *model.Model, name string) (int, int) {
	return m.Config.LinearShape(name[strings.LastIndexByte(name, '.')+1:])
}

// resolveBlock picks the block size when none was asked for: DefaultBlock,
// or the largest multiple of 4 within the smallest layer dimension, with a
// note saying so.
func resolveBlock(src *model.Model, opt *ConvertOptions) (note string) {
	if opt.Block != 0 || !isArmor(opt.Method) {
		return ""
	}
	opt.Block = DefaultBlock
	smallest, which := 0, ""
	for _, n := range linearNames(src.Config) {
		r, c := shapeOf(src, n)
		if d := min(r, c); smallest == 0 || d < smallest {
			smallest, which = d, fmt.Sprintf("%s (%d×%d)", n, r, c)
		}
	}
	if smallest > 0 && smallest < DefaultBlock && smallest >= 4 {
		opt.Block = smallest / 4 * 4
		return fmt.Sprintf("block size %d: the default %d is larger than the smallest layer, %s", opt.Block, DefaultBlock, which)
	}
	return ""
}

// checkOptions validates everything that can be checked before any work, so
// that a bad block size or output path fails at once.
func checkOptions(src *model.Model, seqs [][]int, out string, opt *ConvertOptions) error {
	m := methodByName(opt.Method)
	if m == nil {
		return fmt.Errorf("convert: unknown method %q (one of %s)", opt.Method, strings.Join(Methods, ", "))
	}
	switch opt.DType {
	case tensor.F32, tensor.F16, tensor.BF16:
	default:
		return fmt.Errorf("convert: values cannot be stored as %v (use f32, f16 or bf16)", opt.DType)
	}
	if m.Stats != needNone && len(seqs) == 0 {
		return fmt.Errorf("convert: method %s needs calibration text (--calib FILE): its choices are weighted by the input statistics", opt.Method)
	}
	if m.armor() && (opt.Block < 4 || opt.Block%4 != 0) {
		return fmt.Errorf("convert: block size %d is not a positive multiple of 4 (the 2:4 groups of 4 must not straddle blocks)", opt.Block)
	}
	for _, n := range linearNames(src.Config) {
		t := src.Tensors[n+".weight"]
		if t == nil {
			kind := "missing"
			if h := src.Armor; h != nil {
				if l, ok := h.Linears[n]; ok {
					kind = "stored as " + l.Kind
				}
			}
			return fmt.Errorf("convert: %s: tensor %s.weight is %s; conversion needs the dense weights (convert from the original model)", src.Path, n, kind)
		}
		rows, cols := shapeOf(src, n)
		if len(t.Shape) != 2 || t.Shape[0] != rows || t.Shape[1] != cols {
			return fmt.Errorf("convert: %s: tensor %s.weight has shape %v, want [%d %d]", src.Path, n, t.Shape, rows, cols)
		}
		if m.Name != "dense" && cols%4 != 0 {
			return fmt.Errorf("convert: %s: linear %s has %d input columns, not a multiple of 4: it cannot be pruned 2:4", src.Path, n, cols)
		}
		if m.armor() && (opt.Block > rows || opt.Block > cols) {
			return fmt.Errorf("convert: block size %d is larger than linear %s (%d×%d): use a block size of at most %d", opt.Block, n, rows, cols, min(rows, cols)/4*4)
		}
	}
	for _, s := range seqs {
		if len(s) > src.Config.Context {
			return fmt.Errorf("convert: calibration sequences of %d tokens exceed the model's context of %d", len(s), src.Config.Context)
		}
	}
	if opt.Shards > 0 && !opt.MergeOnly && (opt.Shard < 0 || opt.Shard >= opt.Shards) {
		return fmt.Errorf("convert: shard %d of %d: shards are numbered 0 to %d", opt.Shard, opt.Shards, opt.Shards-1)
	}
	if opt.Sequential && (opt.StatsDir != "" || opt.CalibOnly) {
		return errors.New("convert: sequential calibration cannot use saved statistics: each block's statistics depend on the converted blocks before it (its shards calibrate themselves)")
	}
	if opt.Sequential && opt.Shards > src.Config.Layers {
		return fmt.Errorf("convert: %d sequential shards for %d blocks: each shard converts a range of whole blocks, so use at most %d", opt.Shards, src.Config.Layers, src.Config.Layers)
	}
	if opt.MergeOnly && opt.Shards < 0 || opt.MergeOnly && opt.Shards > 0 && !opt.Sequential {
		return errors.New("convert: a merge takes the number of shards only for sequential shards (ordinary shards give the same checkpoints as one process)")
	}
	if opt.CalibOnly && opt.StatsDir == "" {
		return errors.New("convert: calibrating only needs a folder for the statistics")
	}
	if opt.CalibOnly || opt.sharded() {
		if opt.Shards > 0 && opt.PartsDir == "" {
			return errors.New("convert: a shard needs the folder for its layers' checkpoints")
		}
		return nil // no output file
	}
	return checkWritable(out)
}

// checkWritable makes sure the output can be written: find out now, not
// after hours of conversion.
func checkWritable(out string) error {
	if st, err := os.Stat(out); err == nil && st.IsDir() {
		return fmt.Errorf("convert: output %s is a directory", out)
	}
	dir := filepath.Dir(out)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("convert: cannot write the output %s: the directory %s does not exist", out, dir)
	case err != nil:
		return fmt.Errorf("convert: cannot write the output %s: %w", out, err)
	case !st.IsDir():
		return fmt.Errorf("convert: cannot write the output %s: %s is not a directory", out, dir)
	}
	f, err := os.CreateTemp(dir, ".armor-convert-probe-*")
	if err != nil {
		return fmt.Errorf("convert: cannot write the output %s: the directory %s is not writable", out, dir)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// fingerprint hashes everything a layer's result depends on apart from the
// layer itself: method, options, calibration tokens.
func fingerprint(src *model.Model, seqs [][]int, opt ConvertOptions) string {
	h := sha256.New()
	fmt.Fprintf(h, "v1|%s|%d|%d|%s|%d|%v|%d|%d|", opt.Method, opt.Block, opt.Iters, opt.DType, opt.Seed, opt.Sequential, opt.RefineRounds, len(seqs))
	if opt.Tol != 0 {
		// Only when set, so that the keys of earlier checkpoints hold.
		fmt.Fprintf(h, "tol=%g|", opt.Tol)
	}
	if n := opt.seqShards(); n > 0 {
		// Where a block's range starts decides the inputs of its
		// statistics; one shard is the single run (same keys, so a
		// --resume of either takes up the other's checkpoints).
		fmt.Fprintf(h, "seqshards=%d|", n)
	}
	hashTokens(h, seqs)
	return hex.EncodeToString(h.Sum(nil))
}

// hashTokens writes the calibration tokens to h.
func hashTokens(h hash.Hash, seqs [][]int) {
	var b [8]byte
	for _, s := range seqs {
		binary.LittleEndian.PutUint64(b[:], uint64(len(s)))
		h.Write(b[:])
		for _, t := range s {
			binary.LittleEndian.PutUint64(b[:], uint64(t))
			h.Write(b[:])
		}
	}
}
