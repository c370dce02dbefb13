package convert

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/mmap"
	"github.com/armor-llm/armor/runtime"
)

// Convert converts every linear layer of the blocks of src by opt.Method,
// calibrating on seqs (see CalibrationSequences; may be nil for the methods
// that need no statistics), and writes the model to out as an .armor file.
// The file appears only when complete; on error or cancellation nothing is
// written there (finished layers stay checkpointed in PartsDir for Resume).
//
// The stages: options are checked (and the block size chosen), checkpoints
// of an earlier run are taken up (Resume), the statistics are collected
// (once, or block by block), the layers are converted (runLayers), and the
// file is assembled (buildSpec) and written.
func Convert(src *model.Model, seqs [][]int, out string, opt ConvertOptions) (*Report, error) {
	start := time.Now()
	if opt.Ctx == nil {
		opt.Ctx = context.Background()
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
	blockNote := resolveBlock(src, &opt)
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
	c := newConversion(src, seqs, out, opt, names, start)
	if blockNote != "" {
		c.note(blockNote)
	}
	c.takeUpCheckpoints()
	if err := c.convertAll(); err != nil {
		return nil, err
	}
	if opt.sharded() {
		// A shard leaves its layers in PartsDir; the merge writes the file.
		for _, n := range c.pending {
			c.rep.Layers = append(c.rep.Layers, c.results[n].Report)
		}
		c.rep.Output = ""
		c.rep.Seconds = time.Since(start).Seconds()
		return c.rep, nil
	}
	if err := c.write(); err != nil {
		return nil, err
	}
	os.RemoveAll(opt.PartsDir)
	c.rep.Seconds = time.Since(start).Seconds()
	return c.rep, nil
}

// conversion is the state one Convert call shares between its stages.
type conversion struct {
	src     *model.Model
	seqs    [][]int
	out     string
	opt     ConvertOptions
	ctx     context.Context
	method  *method
	names   []string // every linear layer, in file order
	pending []string // the layers this run converts (not resumed, in its shard)
	threads int
	baseKey string
	record  runRecord // this run's options, beside the checkpoints and in each
	rep     *Report

	mu      sync.Mutex // serializes Progress; guards results and eta
	results map[string]*layerOut
	eta     etaTracker
}

func newConversion(src *model.Model, seqs [][]int, out string, opt ConvertOptions, names []string, start time.Time) *conversion {
	c := &conversion{src: src, seqs: seqs, out: out, opt: opt, ctx: opt.Ctx, method: methodByName(opt.Method), names: names,
		threads: defaultThreads(opt.Threads), baseKey: fingerprint(src, seqs, opt), record: recordOf(src, seqs, opt), results: map[string]*layerOut{}}
	c.rep = &Report{Output: out, Source: src.Path, Method: opt.Method, DType: opt.DType.String(), Seed: opt.Seed,
		Sequential: opt.Sequential, SeqShards: opt.seqShards(), CalibSequences: len(seqs)}
	for _, s := range seqs {
		c.rep.CalibTokens += len(s)
	}
	if c.method.armor() {
		c.rep.Block, c.rep.Iters = opt.Block, opt.Iters
	}
	c.eta = etaTracker{start: start, layerWork: map[string]float64{}, capSweeps: expectedSweeps(opt)}
	for _, n := range names {
		r, cols := shapeOf(src, n)
		c.eta.layerWork[n] = float64(r * cols)
		c.eta.totalWork += c.eta.layerWork[n]
	}
	return c
}

// emit sends p to the caller; c.mu must be held.
func (c *conversion) emit(p Progress) {
	if c.opt.Progress != nil {
		p.Elapsed = time.Since(c.eta.start)
		c.opt.Progress(p)
	}
}

// note records something the caller should know, in the report and as a
// progress note.
func (c *conversion) note(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rep.Notes = append(c.rep.Notes, s)
	c.emit(Progress{Stage: "note", Note: s})
}

func (c *conversion) keyOf(name string) string { return layerKey(c.baseKey, c.src, name) }

// takeUpCheckpoints loads the finished layers of an interrupted run (under
// Resume), says what it reused and why not more, records this run's options
// beside the checkpoints, and lists the layers left to convert.
func (c *conversion) takeUpCheckpoints() {
	opt := c.opt
	mine := map[string]bool{} // the layers of this run's shard
	i := 0
	for l := 0; l < c.src.Config.Layers; l++ {
		for _, n := range model.LayerLinears(l) {
			mine[n] = opt.shardOf(i, l, c.src.Config.Layers)
			i++
		}
	}
	if opt.Resume {
		for _, n := range c.names {
			if lo := loadCheckpoint(opt.PartsDir, n, c.keyOf(n)); lo != nil {
				lo.Report.Resumed = true
				if !opt.Sequential || opt.MergeOnly || !mine[n] {
					// Sequential calibration runs the converted layers
					// of its own blocks; the rest stay in their files.
					lo = lo.light()
				}
				c.results[n] = lo
				c.eta.totalWork -= c.eta.layerWork[n]
				c.eta.finished++
				c.rep.Resumed++
			}
		}
	}
	record := c.record
	if opt.Resume && !opt.MergeOnly {
		if s := resumeNote(opt.PartsDir, record, c.rep.Resumed, len(c.names)); s != "" {
			c.note(s)
		}
	}
	if !opt.MergeOnly {
		// For the next --resume's note; a failure only loses the note.
		writeSealed(runRecordPath(opt.PartsDir), record)
	}
	for _, n := range c.names {
		if c.results[n] == nil && mine[n] {
			c.pending = append(c.pending, n)
		}
	}
}

// calibrate collects the statistics of layers, running m (the dense model,
// or under Sequential the converted view with its builder), or reads them
// from StatsDir.
func (c *conversion) calibrate(layers []string, build runtime.LinearBuilder, m *model.Model) (*Stats, error) {
	full := c.method.Stats == needFull
	if c.opt.StatsDir != "" {
		return readStats(c.opt.StatsDir, layers, full)
	}
	t0 := time.Now()
	c.eta.calibStart = t0
	s, err := Calibrate(m, c.seqs, CalibOptions{Full: full, Layers: layers, Builder: build, Ctx: c.ctx,
		Progress: func(d, t int) {
			c.mu.Lock()
			c.emit(Progress{Stage: "calibrate", Done: d, Total: t, ETA: c.eta.calibration(d, t)})
			c.mu.Unlock()
		}})
	c.rep.CalibSeconds += time.Since(t0).Seconds()
	return s, err
}

// convertAll collects the statistics and converts the pending layers:
// after one calibration pass over all of them, or block by block under
// Sequential and when the full XXᵀ of every layer input at once would not
// fit in FullBudget (each pass over the calibration text then keeps one
// block's matrices).
func (c *conversion) convertAll() error {
	opt := c.opt
	if opt.MergeOnly && len(c.pending) > 0 {
		return mergeMissing(opt.PartsDir, c.pending, len(c.names), c.record)
	}
	if len(c.pending) == 0 {
		return c.ctx.Err()
	}
	needsData := c.method.Stats != needNone || len(c.seqs) > 0
	perBlock := opt.Sequential
	if c.method.Stats == needFull {
		budget := opt.FullBudget
		if budget == 0 {
			budget = 4 << 30
		}
		perBlock = perBlock || fullBytes(c.src.Config) > budget
	}
	if !needsData || !perBlock {
		var stats *Stats
		if needsData {
			var err error
			if stats, err = calibrateOrResume(opt, c.seqs, c.pending, c.method.Stats == needFull, c.calibrate, c.src); err != nil {
				return err
			}
		}
		// Biggest layers first balances the workers.
		order := slices.Clone(c.pending)
		slices.SortStableFunc(order, func(a, b string) int { return int(c.eta.layerWork[b] - c.eta.layerWork[a]) })
		return c.runLayers(order, stats)
	}
	inPending := map[string]bool{}
	for _, n := range c.pending {
		inPending[n] = true
	}
	for l := 0; l < c.src.Config.Layers; l++ {
		var todo []string
		for _, n := range model.LayerLinears(l) {
			if inPending[n] {
				todo = append(todo, n)
			}
		}
		if len(todo) == 0 {
			continue
		}
		view, build := c.src, runtime.LinearBuilder(nil)
		if opt.Sequential {
			// Only the blocks before l: a resumed layer of block l itself
			// must not change the statistics of its siblings. A shard's
			// blocks before its range stay dense (see blockRange).
			before := map[string]*layerOut{}
			first, _ := opt.blockRange(c.src.Config.Layers)
			for k := first; k < l; k++ {
				for _, n := range model.LayerLinears(k) {
					before[n] = c.results[n]
				}
			}
			view = convertedView(c.src, before)
			build = runtime.ArmorFileBuilder(view)
		}
		st, err := c.calibrate(todo, build, view)
		if err != nil {
			return err
		}
		if err := c.runLayers(todo, st); err != nil {
			return err
		}
	}
	return c.ctx.Err()
}

// runLayers converts layers with the statistics st (nil for the methods
// that need none) and checkpoints each. The ARMOR methods convert one layer
// at a time on every thread (their products are parallel within the
// layer), so memory holds one layer's working set; the cheap baselines run
// a layer per thread.
func (c *conversion) runLayers(layers []string, st *Stats) error {
	// Calibration touched the whole source; each layer reads only its own
	// weights from here on (runLayer evicts them again when done).
	c.src.Evict()
	c.mu.Lock()
	c.eta.startLayers()
	c.mu.Unlock()
	workers := max(1, min(c.threads, len(layers)))
	if c.method.armor() {
		workers = 1
	}
	inner := max(1, c.threads/workers)
	cctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	jobs := make(chan string)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				if err := c.runLayer(cctx, n, st, inner); err != nil {
					errs <- err
					cancel()
					return
				}
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
	if err := <-errs; err != nil && c.ctx.Err() == nil {
		return err
	}
	return c.ctx.Err()
}

// runLayer converts one layer on threads threads and checkpoints it.
func (c *conversion) runLayer(ctx context.Context, n string, st *Stats, threads int) error {
	var h, full []float64
	if st != nil {
		h = st.H[n]
		if st.Full != nil {
			full = st.Full[n]
		}
	}
	started := time.Now()
	total := len(c.names)
	key := c.keyOf(n) // hashes the layer's weights: once, not again at the end
	sweeps := newSweepFile(c.opt.PartsDir, n, key)
	lo, err := convertLayer(ctx, c.src, n, h, full, c.opt, threads, sweeps, func(it int, loss float64) {
		c.mu.Lock()
		c.emit(Progress{Stage: "layer", Layer: n, Done: c.eta.finished, Total: total, Iter: it, Loss: loss, ETA: c.eta.duringLayer(n, started, it)})
		c.mu.Unlock()
	})
	if err != nil {
		return err
	}
	if t := c.src.Tensors[n+".weight"]; t != nil {
		mmap.Evict(t.Data)
	}
	lo.Key, lo.Run = key, c.record
	if err := saveCheckpoint(c.opt.PartsDir, n, lo); err != nil {
		return err
	}
	sweeps.remove()
	if !c.opt.Sequential {
		// The data lives in the checkpoint until the file is written:
		// memory holds one layer per worker, not the whole converted
		// model. (Sequential calibration runs the converted layers, so it
		// keeps them.)
		lo = lo.light()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.results[n] = lo
	c.eta.layerDone(n, lo.Report.Iters)
	c.emit(Progress{Stage: "layer", Layer: n, Done: c.eta.finished, Total: total, Loss: lo.Report.ProxyLoss, ETA: c.eta.remaining()})
	return nil
}

// write assembles the file from the converted layers and writes it.
func (c *conversion) write() error {
	spec, err := buildSpec(c.src, c.results, c.names, c.opt, c.rep)
	if err != nil {
		return err
	}
	spec.Progress = func(d, t int) {
		c.mu.Lock()
		c.emit(Progress{Stage: "write", Done: d, Total: t})
		c.mu.Unlock()
	}
	// Parts are written one after another; a part copied from the mapped
	// source (an embedding, a norm) leaves this process's memory when the
	// next one is asked for.
	var prev []byte
	for i := range spec.Parts {
		p := &spec.Parts[i]
		inner := p.Data
		p.Data = func() ([]byte, error) {
			mmap.Evict(prev)
			if err := c.ctx.Err(); err != nil {
				return nil, err
			}
			b, err := inner()
			prev = b
			return b, err
		}
	}
	if err := model.WriteArmor(c.out, spec); err != nil {
		if c.ctx.Err() != nil {
			return c.ctx.Err()
		}
		return err
	}
	return nil
}
