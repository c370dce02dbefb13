package convert

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
	"github.com/armor-llm/armor/runtime"
)

// Methods lists the --method values Convert accepts.
var Methods = []string{"dense", "magnitude", "wanda", "sparsegpt", "nowag-p", "armor", "armor-fast", "armor-fast-h"}

// ConvertOptions controls Convert. Zero values select the defaults.
type ConvertOptions struct {
	Method     string       // one of Methods
	Block      int          // ARMOR block size (default 128), a multiple of 4
	Iters      int          // ARMOR iterations / ArmorFast sweeps (0: their defaults)
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
	// checkpoints in PartsDir and write no file.
	Shard, Shards int
	// MergeOnly: every layer must be checkpointed in PartsDir already;
	// Convert only writes the file.
	MergeOnly bool
	Progress  func(Progress)
	Ctx       context.Context
}

// Progress is one progress report of Convert. Calls are serialized.
type Progress struct {
	Stage       string // "calibrate", "layer", "write"
	Layer       string // linear name (stage "layer")
	Done, Total int    // layers finished / total (stage "layer"); sequences or tensors otherwise
	Iter        int    // current iteration or sweep of Layer (0 when it finished)
	Loss        float64
	Elapsed     time.Duration
	ETA         time.Duration // 0 when unknown
}

// LayerReport is what conversion achieved on one linear layer.
type LayerReport struct {
	Name       string  `json:"name"`
	Kind       string  `json:"kind"`
	Rows       int     `json:"rows"`
	Cols       int     `json:"cols"`
	ProxyLoss  float64 `json:"proxy_loss"`
	NoWagPLoss float64 `json:"nowag_p_loss"`
	// FullHLoss: relative output error under the full XXᵀ (FullHLoss), for
	// the methods that collect it (sparsegpt, armor-fast-h).
	FullHLoss float64 `json:"full_h_loss,omitempty"`
	Iters     int     `json:"iters,omitempty"` // ARMOR iterations or armor-fast sweeps run
	Seconds   float64 `json:"seconds"`
	// MulAdds: multiply-adds of the optimization (ARMOR methods), by the
	// algorithm's count (a product skipping S's zeros counts half); GFLOPS
	// is 2·MulAdds per second of Seconds.
	MulAdds    int64   `json:"mul_adds,omitempty"`
	GFLOPS     float64 `json:"gflops,omitempty"`
	Params     int64   `json:"params"`         // stored values (kept core values + wrappers)
	WrapParams int64   `json:"wrapper_params"` // values of the block-diagonal wrappers
	Bytes      int64   `json:"bytes"`
	Resumed    bool    `json:"resumed,omitempty"`
}

// Report summarizes a conversion (armor-convert --json).
type Report struct {
	Output         string        `json:"output"`
	Source         string        `json:"source"`
	Method         string        `json:"method"`
	Block          int           `json:"block,omitempty"`
	Iters          int           `json:"iters,omitempty"`
	DType          string        `json:"dtype"`
	Seed           uint64        `json:"seed"`
	Sequential     bool          `json:"sequential,omitempty"`
	CalibTokens    int           `json:"calib_tokens"`
	CalibSequences int           `json:"calib_sequences"`
	Layers         []LayerReport `json:"layers"`
	// DenseParams: parameters of the linear layers before pruning.
	DenseParams   int64 `json:"dense_params"`
	StoredParams  int64 `json:"stored_params"`
	WrapperParams int64 `json:"wrapper_params"`
	// WrapperOverhead = WrapperParams / DenseParams (0.10: 10 % more
	// multiply-adds than a dense layer of the same shape, on top of the 50 %
	// of the 2:4 core).
	WrapperOverhead float64 `json:"wrapper_overhead"`
	LinearBytes     int64   `json:"linear_bytes"` // stored bytes of the converted linear layers
	WeightBytes     int64   `json:"weight_bytes"` // stored bytes of every tensor
	// MeanProxyLoss and MeanRelNoWagP: mean per-layer proxy loss, and mean of
	// proxy loss / NoWag-P's proxy loss (1 for NoWag-P itself).
	MeanProxyLoss float64 `json:"mean_proxy_loss"`
	MeanRelNoWagP float64 `json:"mean_rel_nowag_p"`
	CalibSeconds  float64 `json:"calib_seconds"`
	Seconds       float64 `json:"seconds"`
	Resumed       int     `json:"resumed_layers,omitempty"`
}

// part is one encoded tensor of a converted layer.
type part struct {
	Name  string
	DType string
	Shape []int
	Data  []byte
}

// layerOut is a converted layer, as held in memory and checkpointed.
type layerOut struct {
	Key    string // fingerprint of everything the result depends on
	Linear model.ArmorLinear
	Report LayerReport
	Parts  []part
}

// Convert converts every linear layer of the blocks of src by opt.Method,
// calibrating on seqs (see CalibrationSequences; may be nil for the dense and
// magnitude methods), and writes the model to out as an .armor file. The
// file appears only when complete; on error or cancellation nothing is
// written there (finished layers stay checkpointed in PartsDir for Resume).
func Convert(src *model.Model, seqs [][]int, out string, opt ConvertOptions) (*Report, error) {
	start := time.Now()
	ctx := opt.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	if opt.StatsDir != "" && !opt.CalibOnly {
		man, err := readStatsManifest(opt.StatsDir)
		if err != nil {
			return nil, err
		}
		seqs = man.Seqs
		// The calibration's own record wins: a shard or the merge did not
		// read the calibration text.
		prov := map[string]any{}
		for k, v := range opt.Provenance {
			prov[k] = v
		}
		for k, v := range man.Provenance {
			prov[k] = v
		}
		opt.Provenance = prov
	}
	if err := checkOptions(src, seqs, out, &opt); err != nil {
		return nil, err
	}
	if opt.MergeOnly {
		opt.Resume = true
	}
	names := linearNames(src.Config)
	if opt.PartsDir == "" {
		opt.PartsDir = out + ".parts"
	}
	if opt.CalibOnly {
		return calibrateOnly(src, seqs, opt, names, start)
	}
	if err := os.MkdirAll(opt.PartsDir, 0o755); err != nil {
		return nil, fmt.Errorf("convert: cannot create the checkpoint folder: %w", err)
	}
	threads := defaultThreads(opt.Threads)
	rep := &Report{Output: out, Source: src.Path, Method: opt.Method, DType: opt.DType.String(), Seed: opt.Seed,
		Sequential: opt.Sequential, CalibSequences: len(seqs)}
	for _, s := range seqs {
		rep.CalibTokens += len(s)
	}
	if isArmor(opt.Method) {
		rep.Block, rep.Iters = opt.Block, opt.Iters
	}
	baseKey := fingerprint(src, seqs, opt)

	var mu sync.Mutex // serializes Progress and guards done/results
	report := func(p Progress) {
		if opt.Progress != nil {
			p.Elapsed = time.Since(start)
			opt.Progress(p)
		}
	}
	results := map[string]*layerOut{}
	// Work units for the ETA: a layer costs about rows·cols.
	var totalWork, doneWork float64
	layerWork := map[string]float64{}
	for _, n := range names {
		r, c := shapeOf(src, n)
		layerWork[n] = float64(r * c)
		totalWork += layerWork[n]
	}
	var layerStart time.Time // set when the first layer starts (the rate excludes calibration)
	finished := 0
	eta := func() time.Duration {
		if doneWork == 0 {
			return 0
		}
		el := time.Since(layerStart).Seconds()
		return time.Duration(el / doneWork * (totalWork - doneWork) * float64(time.Second))
	}
	// Before the first layer finishes (hours in, on a big model), the ETA
	// comes from the current layer's sweeps: seconds per sweep and unit of
	// work, times the sweeps a layer is expected to take (the mean of the
	// finished layers, else the cap, so it is an upper bound) over the work
	// left.
	sweepsDone, layersDone := 0, 0
	sweepETA := func(name string, started time.Time, it int) time.Duration {
		if doneWork > 0 && layersDone > 0 || it <= 0 {
			return eta()
		}
		expect := float64(opt.Iters)
		if expect <= 0 {
			expect = 200
			if opt.Method == "armor" {
				expect = 20000
			}
		}
		if layersDone > 0 {
			expect = float64(sweepsDone) / float64(layersDone)
		}
		perSweep := time.Since(started).Seconds() / float64(it) / layerWork[name]
		left := perSweep * (expect*(totalWork-doneWork) - float64(it)*layerWork[name])
		return time.Duration(max(left, 0) * float64(time.Second))
	}
	var calibStart time.Time
	calibETA := func(d, t int) time.Duration {
		if d <= 0 || d >= t {
			return 0
		}
		el := time.Since(calibStart).Seconds()
		return time.Duration(el / float64(d) * float64(t-d) * float64(time.Second))
	}
	keyOf := func(name string) string { return layerKey(baseKey, src, name) }
	// Resumed layers.
	if opt.Resume {
		for _, n := range names {
			if lo := loadCheckpoint(opt.PartsDir, n, keyOf(n)); lo != nil {
				lo.Report.Resumed = true
				if !opt.Sequential {
					lo = lo.light()
				}
				results[n] = lo
				totalWork -= layerWork[n]
				finished++
				rep.Resumed++
			}
		}
	}

	// Statistics.
	needFull := methodNeedsFull(opt.Method)
	var stats *Stats
	calibrate := func(layers []string, build runtime.LinearBuilder, m *model.Model) (*Stats, error) {
		t0 := time.Now()
		calibStart = t0
		s, err := Calibrate(m, seqs, CalibOptions{Full: needFull, Layers: layers, Builder: build, Ctx: ctx,
			Progress: func(d, t int) {
				mu.Lock()
				report(Progress{Stage: "calibrate", Done: d, Total: t, ETA: calibETA(d, t)})
				mu.Unlock()
			}})
		rep.CalibSeconds += time.Since(t0).Seconds()
		return s, err
	}
	var pending []string
	for i, n := range names {
		if results[n] == nil && opt.shardOf(i) {
			pending = append(pending, n)
		}
	}
	if opt.MergeOnly && len(pending) > 0 {
		return nil, fmt.Errorf("convert: cannot merge: layer %s has no finished checkpoint in %s (%d of %d layers missing; run its shard)", pending[0], opt.PartsDir, len(pending), len(names))
	}
	// Block by block: under --sequential, and when the full XXᵀ of every
	// layer input at once would not fit in FullBudget (each pass over the
	// calibration text then keeps one block's matrices).
	perBlock := opt.Sequential
	if needFull {
		budget := opt.FullBudget
		if budget == 0 {
			budget = 4 << 30
		}
		perBlock = perBlock || fullBytes(src.Config) > budget
	}
	if opt.StatsDir != "" {
		// Saved statistics: read a block's worth at a time under perBlock.
		calibrate = func(layers []string, _ runtime.LinearBuilder, _ *model.Model) (*Stats, error) {
			return readStats(opt.StatsDir, layers, needFull)
		}
	}
	if len(seqs) > 0 && !perBlock && len(pending) > 0 {
		var err error
		if stats, err = calibrateOrResume(opt, seqs, pending, needFull, calibrate, src); err != nil {
			return nil, err
		}
	}

	// Layer conversion, parallel over layers.
	runLayers := func(layers []string, st *Stats) error {
		if layerStart.IsZero() {
			layerStart = time.Now()
		}
		// The ARMOR methods convert one layer at a time on every thread
		// (their products are parallel within the layer), so memory holds
		// one layer's working set; the cheap baselines run a layer per
		// thread.
		workers := max(1, min(threads, len(layers)))
		if isArmor(opt.Method) {
			workers = 1
		}
		inner := max(1, threads/workers)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		jobs := make(chan string)
		errs := make(chan error, workers)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := range jobs {
					var h, full []float64
					if st != nil {
						h, full = st.H[n], nil
						if st.Full != nil {
							full = st.Full[n]
						}
					}
					started := time.Now()
					lo, err := convertLayer(cctx, src, n, h, full, opt, inner, func(it int, loss float64) {
						mu.Lock()
						report(Progress{Stage: "layer", Layer: n, Done: finished, Total: len(names), Iter: it, Loss: loss, ETA: sweepETA(n, started, it)})
						mu.Unlock()
					})
					if err == nil {
						lo.Key = keyOf(n)
						err = saveCheckpoint(opt.PartsDir, n, lo)
					}
					if err != nil {
						errs <- err
						cancel()
						return
					}
					if !opt.Sequential {
						// The data lives in the checkpoint until the file is
						// written: memory holds one layer per worker, not the
						// whole converted model. (Sequential calibration runs
						// the converted layers, so it keeps them.)
						lo = lo.light()
					}
					mu.Lock()
					results[n] = lo
					finished++
					if lo.Report.Iters > 0 {
						sweepsDone += lo.Report.Iters
						layersDone++
					}
					doneWork += layerWork[n]
					report(Progress{Stage: "layer", Layer: n, Done: finished, Total: len(names), Loss: lo.Report.ProxyLoss, ETA: eta()})
					mu.Unlock()
				}
			}()
		}
	feed:
		for _, n := range layers {
			select {
			case jobs <- n:
			case <-cctx.Done():
				break feed
			}
		}
		close(jobs)
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		return ctx.Err()
	}

	inPending := map[string]bool{}
	for _, n := range pending {
		inPending[n] = true
	}
	if perBlock && len(seqs) > 0 {
		for l := 0; l < src.Config.Layers; l++ {
			var todo []string
			for _, n := range model.LayerLinears(l) {
				if inPending[n] {
					todo = append(todo, n)
				}
			}
			if len(todo) == 0 {
				continue
			}
			// Only the blocks before l: a resumed layer of block l itself
			// must not change the statistics of its siblings.
			before := map[string]*layerOut{}
			for k := 0; k < l; k++ {
				for _, n := range model.LayerLinears(k) {
					before[n] = results[n]
				}
			}
			view, build := src, runtime.LinearBuilder(nil)
			if opt.Sequential {
				view = convertedView(src, before)
				build = runtime.ArmorFileBuilder(view)
			}
			st, err := calibrate(todo, build, view)
			if err != nil {
				return nil, err
			}
			if err := runLayers(todo, st); err != nil {
				return nil, err
			}
		}
	} else if len(pending) > 0 {
		// Biggest layers first balances the workers.
		order := slices.Clone(pending)
		slices.SortStableFunc(order, func(a, b string) int { return int(layerWork[b] - layerWork[a]) })
		if err := runLayers(order, stats); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if opt.Shards > 0 {
		// A shard leaves its layers in PartsDir; the merge writes the file.
		for _, n := range pending {
			rep.Layers = append(rep.Layers, results[n].Report)
		}
		rep.Output = ""
		rep.Seconds = time.Since(start).Seconds()
		return rep, nil
	}

	// Assemble and write.
	spec, err := buildSpec(src, results, names, opt, rep)
	if err != nil {
		return nil, err
	}
	spec.Progress = func(d, t int) { mu.Lock(); report(Progress{Stage: "write", Done: d, Total: t}); mu.Unlock() }
	for i := range spec.Parts {
		p := &spec.Parts[i]
		inner := p.Data
		p.Data = func() ([]byte, error) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return inner()
		}
	}
	if err := model.WriteArmor(out, spec); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	os.RemoveAll(opt.PartsDir)
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// fullBytes is the memory of the full XXᵀ of every distinct layer input of
// a model: per block, the attention input, the attention output's input,
// the FFN input and the down projection's input.
func fullBytes(c model.Config) int64 {
	per := int64(c.Dim)*int64(c.Dim)*2 + int64(c.QDim())*int64(c.QDim()) + int64(c.Hidden)*int64(c.Hidden)
	return 8 * per * int64(c.Layers)
}

func isArmor(method string) bool {
	return method == "armor" || method == "armor-fast" || method == "armor-fast-h"
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

// checkOptions validates everything that can be checked before any work, so
// that a bad block size or output path fails at once.
func checkOptions(src *model.Model, seqs [][]int, out string, opt *ConvertOptions) error {
	if !slices.Contains(Methods, opt.Method) {
		return fmt.Errorf("convert: unknown method %q (one of %s)", opt.Method, strings.Join(Methods, ", "))
	}
	switch opt.DType {
	case tensor.F32, tensor.F16, tensor.BF16:
	default:
		return fmt.Errorf("convert: values cannot be stored as %v (use f32, f16 or bf16)", opt.DType)
	}
	if opt.Method != "dense" && len(seqs) == 0 {
		return fmt.Errorf("convert: method %s needs calibration text (--calib FILE): every method's proxy loss is weighted by the input statistics", opt.Method)
	}
	if isArmor(opt.Method) {
		if opt.Block == 0 {
			opt.Block = 128
		}
		if opt.Block < 4 || opt.Block%4 != 0 {
			return fmt.Errorf("convert: block size %d is not a positive multiple of 4 (the 2:4 groups of 4 must not straddle blocks)", opt.Block)
		}
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
		if opt.Method != "dense" && cols%4 != 0 {
			return fmt.Errorf("convert: %s: linear %s has %d input columns, not a multiple of 4: it cannot be pruned 2:4", src.Path, n, cols)
		}
		if isArmor(opt.Method) && (opt.Block > rows || opt.Block > cols) {
			return fmt.Errorf("convert: block size %d is larger than linear %s (%d×%d): use a block size of at most %d", opt.Block, n, rows, cols, min(rows, cols))
		}
	}
	for _, s := range seqs {
		if len(s) > src.Config.Context {
			return fmt.Errorf("convert: calibration sequences of %d tokens exceed the model's context of %d", len(s), src.Config.Context)
		}
	}
	if opt.Shards > 0 && (opt.Shard < 0 || opt.Shard >= opt.Shards) {
		return fmt.Errorf("convert: shard %d of %d: shards are numbered 0 to %d", opt.Shard, opt.Shards, opt.Shards-1)
	}
	if opt.Sequential && (opt.StatsDir != "" || opt.CalibOnly || opt.Shards > 0) {
		return errors.New("convert: sequential calibration cannot use saved statistics or shards: each block's statistics depend on the converted blocks before it")
	}
	if opt.CalibOnly && opt.StatsDir == "" {
		return errors.New("convert: calibrating only needs a folder for the statistics")
	}
	if opt.CalibOnly || opt.Shards > 0 {
		if opt.Shards > 0 && opt.PartsDir == "" {
			return errors.New("convert: a shard needs the folder for its layers' checkpoints")
		}
		return nil // no output file
	}
	// The output folder must be writable: find out now, not after hours.
	dir := filepath.Dir(out)
	if st, err := os.Stat(out); err == nil && st.IsDir() {
		return fmt.Errorf("convert: output %s is a directory", out)
	}
	f, err := os.CreateTemp(dir, ".armor-convert-probe-*")
	if err != nil {
		return fmt.Errorf("convert: cannot write the output %s: %w", out, err)
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
	var b [8]byte
	for _, s := range seqs {
		binary.LittleEndian.PutUint64(b[:], uint64(len(s)))
		h.Write(b[:])
		for _, t := range s {
			binary.LittleEndian.PutUint64(b[:], uint64(t))
			h.Write(b[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// layerKey adds the layer's name and weights to the run's fingerprint (and,
// for sequential calibration, the weights of every earlier layer, which
// determine its statistics: their hashes are covered by baseKey's inputs
// being the same and the earlier layers' keys matching in turn).
func layerKey(base string, src *model.Model, name string) string {
	h := sha256.New()
	h.Write([]byte(base))
	h.Write([]byte(name))
	if t := src.Tensors[name+".weight"]; t != nil {
		h.Write(t.Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// light returns a copy of lo without the tensor data (kept in its checkpoint).
func (lo *layerOut) light() *layerOut {
	out := *lo
	out.Parts = slices.Clone(lo.Parts)
	for i := range out.Parts {
		out.Parts[i].Data = nil
	}
	return &out
}

// ckptCache holds the last checkpoint read back, as the writer asks for the
// tensors of one layer one after the other.
type ckptCache struct {
	name string
	lo   *layerOut
}

func (c *ckptCache) load(dir, name, key string) (*layerOut, error) {
	if c.name != name {
		lo := loadCheckpoint(dir, name, key)
		if lo == nil {
			return nil, fmt.Errorf("convert: the checkpoint of layer %s in %s is missing or damaged (run again with --resume to redo it)", name, dir)
		}
		c.name, c.lo = name, lo
	}
	return c.lo, nil
}

func checkpointPath(dir, name string) string { return filepath.Join(dir, name+".ckpt") }

func saveCheckpoint(dir, name string, lo *layerOut) error {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(lo); err != nil {
		return fmt.Errorf("convert: checkpoint of %s: %w", name, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	tmp, err := os.CreateTemp(dir, ".tmp-*.ckpt")
	if err != nil {
		return fmt.Errorf("convert: checkpoint of %s: %w", name, err)
	}
	_, err = tmp.Write(buf.Bytes())
	if err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), checkpointPath(dir, name))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("convert: checkpoint of %s: %w", name, err)
	}
	return nil
}

// loadCheckpoint returns a layer's checkpoint if it is intact and was made
// with the same inputs, else nil (the layer is then converted again).
func loadCheckpoint(dir, name, key string) *layerOut {
	b, err := os.ReadFile(checkpointPath(dir, name))
	if err != nil || len(b) < sha256.Size {
		return nil
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if s := sha256.Sum256(body); !bytes.Equal(s[:], sum) {
		return nil
	}
	var lo layerOut
	if err := gob.NewDecoder(bytes.NewReader(body)).Decode(&lo); err != nil || lo.Key != key {
		return nil
	}
	return &lo
}

// toMatrix reads a weight tensor in float64.
func toMatrix(t *tensor.Tensor) Matrix {
	f := t.ToF32()
	w := Matrix{Rows: t.Shape[0], Cols: t.Shape[1], Data: make([]float64, len(f))}
	for i, v := range f {
		w.Data[i] = float64(v)
	}
	return w
}

func encode(v []float64, dt tensor.DType) []byte {
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return synth.Encode(f, dt)
}

// encode24 packs a 2:4 matrix (zeros off the mask) into the kernels' layout.
func encode24(name string, s []float64, rows, cols int, dt tensor.DType) ([]part, error) {
	kd, _ := dt.Kernel()
	f := make([]float32, len(s))
	for i, x := range s {
		f[i] = float32(x)
	}
	p, err := kernels.Pack24(f, rows, cols, kd)
	if err != nil {
		return nil, fmt.Errorf("convert: %s: %w", name, err)
	}
	var vals []byte
	if p.DType == kernels.F32 {
		vals = synth.Encode(p.F32, tensor.F32)
	} else {
		vals = make([]byte, 2*len(p.U16))
		for i, u := range p.U16 {
			binary.LittleEndian.PutUint16(vals[2*i:], u)
		}
	}
	return []part{
		{Name: name + ".s24_values", DType: dt.String(), Shape: []int{rows, cols / 2}, Data: vals},
		{Name: name + ".s24_idx", DType: tensor.U8.String(), Shape: []int{rows, kernels.IdxStride(cols)}, Data: p.Idx},
	}, nil
}

func flatBlocks(blocks [][]float64) []float64 {
	var out []float64
	for _, b := range blocks {
		out = append(out, b...)
	}
	return out
}

// convertLayer prunes or factorizes one linear layer.
func convertLayer(ctx context.Context, src *model.Model, name string, h, full []float64, opt ConvertOptions, threads int, progress func(int, float64)) (*layerOut, error) {
	t0 := time.Now()
	w := toMatrix(src.Tensors[name+".weight"])
	rows, cols := w.Rows, w.Cols
	dt := opt.DType
	lo := &layerOut{Report: LayerReport{Name: name, Rows: rows, Cols: cols}}
	wrap := func(err error) error { return fmt.Errorf("convert: %s (%s): %w", name, opt.Method, err) }
	var approx []float64
	var nowag float64
	if h != nil {
		np, err := NoWagP(w, h)
		if err != nil {
			return nil, wrap(err)
		}
		if nowag, err = ProxyLoss(w, h, np.W); err != nil {
			return nil, wrap(err)
		}
	}
	var s24 *Sparse24
	var err error
	switch opt.Method {
	case "dense":
		lo.Linear = model.ArmorLinear{Kind: "dense"}
		lo.Parts = []part{{Name: name + ".weight", DType: dt.String(), Shape: []int{rows, cols}, Data: encode(w.Data, dt)}}
		lo.Report.Params = int64(rows * cols)
		approx = w.Data
	case "magnitude":
		s24, err = Magnitude(w)
	case "wanda":
		s24, err = Wanda(w, h)
	case "nowag-p":
		s24, err = NoWagP(w, h)
	case "sparsegpt":
		if full == nil {
			return nil, wrap(errors.New("no full XXᵀ statistics were collected"))
		}
		s24, err = SparseGPT(w, full, 128)
	case "armor", "armor-fast", "armor-fast-h":
		o := Options{Block: opt.Block, Iters: opt.Iters, Seed: opt.Seed, Threads: threads, Progress: progress, Ctx: ctx}
		var f *Factorization
		if opt.Method == "armor" {
			f, err = Armor(w, h, o)
		} else {
			f, err = ArmorFast(w, h, o)
		}
		if err == nil && opt.Method == "armor-fast-h" {
			if full == nil {
				return nil, wrap(errors.New("no full XXᵀ statistics were collected"))
			}
			o.Iters = opt.RefineRounds
			f, err = RefineFullH(f, w, full, o)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, wrap(err)
		}
		d := f.Deployed()
		parts, err := encode24(name, d.S, rows, cols, dt)
		if err != nil {
			return nil, err
		}
		pre, post := flatBlocks(d.B), flatBlocks(d.A)
		lo.Parts = append(parts,
			part{Name: name + ".pre", DType: dt.String(), Shape: []int{len(pre)}, Data: encode(pre, dt)},
			part{Name: name + ".post", DType: dt.String(), Shape: []int{len(post)}, Data: encode(post, dt)})
		lo.Linear = model.ArmorLinear{Kind: "armor", Block: opt.Block}
		lo.Report.Iters = f.Iters
		lo.Report.MulAdds = f.MulAdds
		lo.Report.WrapParams = int64(len(pre) + len(post))
		lo.Report.Params = int64(rows*cols/2) + lo.Report.WrapParams
		approx = f.Dense()
	}
	if err != nil {
		return nil, wrap(err)
	}
	if s24 != nil {
		if lo.Parts, err = encode24(name, s24.W, rows, cols, dt); err != nil {
			return nil, err
		}
		lo.Linear = model.ArmorLinear{Kind: "sparse24"}
		lo.Report.Params = int64(rows * cols / 2)
		approx = s24.W
	}
	lo.Report.Kind = lo.Linear.Kind
	for _, p := range lo.Parts {
		lo.Report.Bytes += int64(len(p.Data))
	}
	if h != nil {
		loss, err := ProxyLoss(w, h, approx)
		if err != nil {
			return nil, wrap(err)
		}
		lo.Report.ProxyLoss, lo.Report.NoWagPLoss = loss, nowag
	}
	if full != nil {
		if lo.Report.FullHLoss, err = FullHLoss(w, full, approx); err != nil {
			return nil, wrap(err)
		}
	}
	lo.Report.Seconds = time.Since(t0).Seconds()
	if lo.Report.MulAdds > 0 && lo.Report.Seconds > 0 {
		lo.Report.GFLOPS = 2 * float64(lo.Report.MulAdds) / lo.Report.Seconds / 1e9
	}
	return lo, nil
}

// convertedView is src with the converted layers in place of the dense
// ones, in the form runtime.ArmorFileBuilder builds from.
func convertedView(src *model.Model, results map[string]*layerOut) *model.Model {
	v := &model.Model{Path: src.Path, Format: "armor", Config: src.Config, Tensors: map[string]*tensor.Tensor{}, Vocab: src.Vocab}
	for k, t := range src.Tensors {
		v.Tensors[k] = t
	}
	hdr := &model.ArmorHeader{Linears: map[string]model.ArmorLinear{}}
	for n, lo := range results {
		hdr.Linears[n] = lo.Linear
		for _, p := range lo.Parts {
			dt, _ := tensor.ParseDType(p.DType)
			v.Tensors[p.Name] = &tensor.Tensor{Name: p.Name, DType: dt, Shape: p.Shape, Data: p.Data}
		}
	}
	v.Armor = hdr
	return v
}

// buildSpec assembles the file: converted linears, every other tensor of
// src copied (vectors in F32, matrices in the chosen dtype), and the report.
func buildSpec(src *model.Model, results map[string]*layerOut, names []string, opt ConvertOptions, rep *Report) (*model.ArmorSpec, error) {
	spec := &model.ArmorSpec{Config: src.Config, Linears: map[string]model.ArmorLinear{}, Layers: map[string]model.LayerResult{}}
	if src.Vocab != nil {
		v, err := src.Vocab.Embedded(src.Config.Vocab)
		if err != nil {
			return nil, fmt.Errorf("convert: %s: %w", src.Path, err)
		}
		spec.Vocab = v
	}
	cache := &ckptCache{}
	linear := map[string]bool{}
	for _, n := range names {
		linear[n+".weight"] = true
	}
	var other []string
	for k := range src.Tensors {
		if !linear[k] {
			other = append(other, k)
		}
	}
	slices.Sort(other)
	// Embedding first, then the blocks, then the rest, as GGUF orders them.
	slices.SortStableFunc(other, func(a, b string) int { return tensorRank(a) - tensorRank(b) })
	for _, k := range other {
		t := src.Tensors[k]
		dt := opt.DType
		if len(t.Shape) < 2 || t.Elements() == t.Shape[len(t.Shape)-1] {
			dt = tensor.F32 // norms, biases, rope factors
		}
		spec.Parts = append(spec.Parts, model.ArmorPart{Name: k, DType: dt, Shape: slices.Clone(t.Shape), Data: func() ([]byte, error) {
			return synth.Encode(t.ToF32(), dt), nil
		}})
		bytes, _ := tensor.ByteSize(dt, int64(t.Elements()))
		rep.WeightBytes += bytes
	}
	var sumLoss, sumRel float64
	nRel := 0
	for _, n := range names {
		lo := results[n]
		if lo == nil {
			return nil, fmt.Errorf("convert: layer %s was not converted", n)
		}
		spec.Linears[n] = lo.Linear
		for i, p := range lo.Parts {
			dt, ok := tensor.ParseDType(p.DType)
			if !ok {
				return nil, fmt.Errorf("convert: layer %s: bad dtype %q", n, p.DType)
			}
			spec.Parts = append(spec.Parts, model.ArmorPart{Name: p.Name, DType: dt, Shape: p.Shape, Data: func() ([]byte, error) {
				if p.Data != nil {
					return p.Data, nil
				}
				full, err := cache.load(opt.PartsDir, n, lo.Key)
				if err != nil {
					return nil, err
				}
				return full.Parts[i].Data, nil
			}})
		}
		r := lo.Report
		// No wall-clock times in the file: the same inputs give the same
		// bytes, whether one process or many shards converted the layers
		// (times are in the report).
		spec.Layers[n] = model.LayerResult{Method: opt.Method, ProxyLoss: r.ProxyLoss, NoWagPLoss: r.NoWagPLoss, Iters: r.Iters}
		rep.Layers = append(rep.Layers, r)
		rep.DenseParams += int64(r.Rows * r.Cols)
		rep.StoredParams += r.Params
		rep.WrapperParams += r.WrapParams
		rep.LinearBytes += r.Bytes
		rep.WeightBytes += r.Bytes
		sumLoss += r.ProxyLoss
		if r.NoWagPLoss > 0 {
			sumRel += r.ProxyLoss / r.NoWagPLoss
			nRel++
		}
	}
	if rep.DenseParams > 0 {
		rep.WrapperOverhead = float64(rep.WrapperParams) / float64(rep.DenseParams)
	}
	if len(names) > 0 {
		rep.MeanProxyLoss = sumLoss / float64(len(names))
	}
	if nRel > 0 {
		rep.MeanRelNoWagP = sumRel / float64(nRel)
	}
	prov := map[string]any{"method": opt.Method, "source": filepath.Base(src.Path), "dtype": opt.DType.String(),
		"calib_tokens": rep.CalibTokens, "calib_sequences": rep.CalibSequences, "seed": opt.Seed}
	if isArmor(opt.Method) {
		prov["block"], prov["iters"] = opt.Block, opt.Iters
	}
	if opt.Sequential {
		prov["sequential"] = true
	}
	for k, v := range opt.Provenance {
		prov[k] = v
	}
	spec.Provenance = prov
	return spec, nil
}

// tensorRank orders the non-linear tensors: embedding, blocks, the rest.
func tensorRank(name string) int {
	switch {
	case strings.HasPrefix(name, "token_embd"):
		return 0
	case strings.HasPrefix(name, "blk."):
		return 1
	}
	return 2
}
