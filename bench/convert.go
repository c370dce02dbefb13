package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/armor-llm/armor/convert"
	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
	armorrt "github.com/armor-llm/armor/runtime"
)

// ConvertOptions sets up a conversion-cost measurement (armor-bench convert).
type ConvertOptions struct {
	Shape       string  // synthetic shape (synth.Shape)
	Blocks      int     // convert only the first Blocks transformer blocks (0: all); the full model is extrapolated
	Method      string  // convert.Methods
	Block       int     // ARMOR block size
	Iters       int     // maximum sweeps/iterations (0: the method's default)
	Tol         float64 // the stopping rule's relative tolerance (0: the method's default)
	CalibTokens int     // calibration tokens (random ids: the weights are random too)
	CalibSeq    int     // tokens per calibration sequence
	DType       tensor.DType
	Threads     int
	Cache       string // folder for the synthetic source GGUF (reused)
	Seed        uint64
	Progress    func(convert.Progress)
	Say         func(format string, a ...any)
}

// ConvertResult is one measured conversion.
type ConvertResult struct {
	Shape       string  `json:"shape"`
	Method      string  `json:"method"`
	Block       int     `json:"block,omitempty"`
	Tol         float64 `json:"tol,omitempty"` // --tol, when set
	Threads     int     `json:"threads"`
	Blocks      int     `json:"blocks"`       // transformer blocks converted
	ModelBlocks int     `json:"model_blocks"` // blocks of the full shape
	CalibTokens int     `json:"calib_tokens"`
	WallSeconds float64 `json:"wall_seconds"`
	CalibSecs   float64 `json:"calib_seconds"`
	CPUSeconds  float64 `json:"cpu_seconds"` // user+system CPU time of the conversion (0 where unknown)
	PeakRSS     int64   `json:"peak_rss"`    // bytes, of the whole process (Linux; 0 elsewhere)
	SourceBytes int64   `json:"source_bytes"`
	// LoadBefore/LoadAfter: the machine's 1-minute load average around the
	// run (Linux; -1 elsewhere): other work competes for the cores.
	LoadBefore float64 `json:"load_before"`
	LoadAfter  float64 `json:"load_after"`
	MulAdds    int64   `json:"mul_adds"`
	// GFLOPS: 2·MulAdds per second of layer conversion time (all threads).
	GFLOPS     float64 `json:"gflops"`
	MeanSweeps float64 `json:"mean_sweeps,omitempty"`
	// FullWallSeconds extrapolates the wall time to every block of the
	// shape: calibration and conversion scale with the block count.
	FullWallSeconds float64               `json:"full_wall_seconds"`
	MeanRelNoWagP   float64               `json:"mean_rel_nowag_p,omitempty"`
	Layers          []convert.LayerReport `json:"layers"`
	Report          *convert.Report       `json:"-"`
}

// MeasureConvert writes (once, into the cache) a synthetic dense GGUF of the
// shape truncated to the first Blocks blocks, converts it with random
// calibration tokens, and measures time, CPU time, memory and the achieved
// multiply-add rate.
func MeasureConvert(o ConvertOptions) (*ConvertResult, error) {
	cfg, err := synth.Shape(o.Shape)
	if err != nil {
		return nil, err
	}
	full := cfg.Layers
	if o.Blocks > 0 && o.Blocks < cfg.Layers {
		cfg.Layers = o.Blocks
	}
	if o.Threads <= 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
	say := o.Say
	if say == nil {
		say = func(string, ...any) {}
	}
	if err := os.MkdirAll(o.Cache, 0o755); err != nil {
		return nil, err
	}
	src := filepath.Join(o.Cache, fmt.Sprintf("%s-%dblk-dense-%s.gguf", o.Shape, cfg.Layers, strings.ToLower(o.DType.String())))
	if _, err := os.Stat(src); err != nil {
		say("writing synthetic %s (%d of %d blocks, %s) to %s", o.Shape, cfg.Layers, full, o.DType, src)
		tmp := src + ".tmp"
		if err := synth.WriteGGUF(tmp, cfg, o.DType, o.Seed+1); err != nil {
			os.Remove(tmp)
			return nil, err
		}
		if err := os.Rename(tmp, src); err != nil {
			return nil, err
		}
	}
	m, err := model.Load(src)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	seqLen := min(o.CalibSeq, cfg.Context)
	var seqs [][]int
	if o.Method != "dense" {
		rng := rand.New(rand.NewPCG(o.Seed, 3))
		for left := o.CalibTokens; left > 0; left -= seqLen {
			n := min(seqLen, left)
			s := make([]int, n)
			s[0] = 1 // BOS
			for i := 1; i < n; i++ {
				s[i] = 3 + rng.IntN(cfg.Vocab-3)
			}
			seqs = append(seqs, s)
		}
	}
	outDir, err := os.MkdirTemp(o.Cache, "convert-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(outDir)
	res := &ConvertResult{Shape: o.Shape, Method: o.Method, Threads: o.Threads, Blocks: cfg.Layers, ModelBlocks: full,
		CalibTokens: o.CalibTokens, LoadBefore: loadAverage()}
	if st, err := os.Stat(src); err == nil {
		res.SourceBytes = st.Size()
	}
	if strings.HasPrefix(o.Method, "armor") {
		res.Block, res.Tol = o.Block, o.Tol
	}
	cpu0 := cpuSeconds()
	t0 := time.Now()
	rep, err := convert.Convert(m, seqs, filepath.Join(outDir, "out.armor"), convert.ConvertOptions{
		Method: o.Method, Block: res.Block, Iters: o.Iters, Tol: o.Tol, DType: o.DType, Seed: o.Seed, Threads: o.Threads,
		Progress: o.Progress})
	if err != nil {
		return nil, err
	}
	res.WallSeconds = time.Since(t0).Seconds()
	if c := cpuSeconds(); c > 0 {
		res.CPUSeconds = c - cpu0
	}
	res.PeakRSS = armorrt.PeakRSS()
	res.LoadAfter = loadAverage()
	res.CalibSecs = rep.CalibSeconds
	res.Layers = rep.Layers
	res.Report = rep
	res.MeanRelNoWagP = rep.MeanRelNoWagP
	var layerSecs float64
	sweeps := 0
	for _, l := range rep.Layers {
		res.MulAdds += l.MulAdds
		layerSecs += l.Seconds
		sweeps += l.Iters
	}
	if layerSecs > 0 {
		res.GFLOPS = 2 * float64(res.MulAdds) / layerSecs / 1e9
	}
	if len(rep.Layers) > 0 {
		res.MeanSweeps = float64(sweeps) / float64(len(rep.Layers))
	}
	res.FullWallSeconds = res.WallSeconds * float64(full) / float64(cfg.Layers)
	return res, nil
}

// loadAverage reads the 1-minute load average (Linux), or -1.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	var l float64
	if _, err := fmt.Sscanf(string(b), "%f", &l); err != nil {
		return -1
	}
	return l
}
