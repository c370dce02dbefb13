package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/armor-llm/armor/bench"
	"github.com/armor-llm/armor/convert"
	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/model/mmap"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
	armrt "github.com/armor-llm/armor/runtime"
)

func convertCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("armor-bench convert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	shape := fs.String("synthetic", "", "shape of the synthetic source model (required): "+synth.Names())
	blocks := fs.Int("blocks", 0, "convert only the first N transformer blocks and extrapolate to the whole model (0: all)")
	method := fs.String("method", "armor-fast", "method: "+strings.Join(convert.Methods, ", "))
	block := fs.Int("block-size", 128, "ARMOR block size")
	iters := fs.Int("iters", 0, "maximum sweeps (armor-fast) or iterations (armor); 0: the method's default")
	tol := fs.Float64("tol", 0, "stopping tolerance, as armor-convert --tol (0: the method's default)")
	calibTokens := fs.Int("calib-tokens", 40960, "calibration tokens (random ids: the weights are random too)")
	calibSeq := fs.Int("calib-seq", 256, "tokens per calibration sequence")
	dtype := fs.String("dtype", "f16", "source and stored values: f16, bf16 or f32")
	threads := fs.Int("threads", runtime.NumCPU(), "threads")
	cache := fs.String("cache", defaultCache(), "folder for the synthetic source (reused between runs)")
	jsonOut := fs.Bool("json", false, "print one JSON object (per-layer sweeps, seconds, multiply-adds and GFLOP/s)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `armor-bench convert: what a conversion costs. Writes (once) a synthetic dense
model of a real shape, converts it with random calibration tokens as
armor-convert would, and reports wall and CPU time, peak memory, the load of
the machine around the run, and per layer the sweeps and the multiply-add
rate. With --blocks N only the first N blocks are converted and the time is
extrapolated to the whole model (every block costs the same).

  armor-bench convert --synthetic stories110m
  armor-bench convert --synthetic llama-2-7b --blocks 2 --calib-tokens 65536 --calib-seq 1024

Flags:`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if *shape == "" {
		fs.Usage()
		return errors.New("convert: --synthetic SHAPE is required")
	}
	switch {
	case *threads < 1:
		return fmt.Errorf("convert: --threads %d must be at least 1", *threads)
	case *blocks < 0:
		return fmt.Errorf("convert: --blocks %d must not be negative", *blocks)
	case !(*tol >= 0 && *tol < 1):
		return fmt.Errorf("convert: --tol %g must be at least 0 and below 1", *tol)
	case *calibTokens < 1 || *calibSeq < 2:
		return fmt.Errorf("convert: --calib-tokens must be positive and --calib-seq at least 2")
	}
	dt, ok := tensor.ParseDType(strings.ToUpper(*dtype))
	if !ok || (dt != tensor.F32 && dt != tensor.F16 && dt != tensor.BF16) {
		return fmt.Errorf("convert: --dtype %q: use f16, bf16 or f32", *dtype)
	}
	kernels.SetThreads(*threads)
	runtime.GOMAXPROCS(*threads)
	mmap.SetMode(mmap.Map)
	// A layer's working set is float slices (no pointers, cheap to
	// collect), and each sweep leaves a weight-sized slice behind: collect
	// at 20 % growth rather than 100 % (Llama-2-7B's 11008×4096 layers:
	// peak RSS 5.2 instead of 7.4 GiB, see docs/benchmarks.md).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(20)
	}
	var last time.Time
	progress := func(p convert.Progress) {
		if time.Since(last) < 10*time.Second && p.Done != p.Total {
			return
		}
		last = time.Now()
		line := fmt.Sprintf("armor-bench convert: %s %d/%d", p.Stage, p.Done, p.Total)
		if p.Layer != "" {
			line += fmt.Sprintf(", %s sweep %d loss %.5f", p.Layer, p.Iter, p.Loss)
		}
		line += fmt.Sprintf(" [%s", p.Elapsed.Round(time.Second))
		if p.ETA > 0 {
			line += fmt.Sprintf(", ETA %s", p.ETA.Round(time.Second))
		}
		fmt.Fprintln(stderr, line+"]")
	}
	res, err := bench.MeasureConvert(bench.ConvertOptions{Shape: *shape, Blocks: *blocks, Method: *method, Block: *block,
		Iters: *iters, Tol: *tol, CalibTokens: *calibTokens, CalibSeq: *calibSeq, DType: dt, Threads: *threads, Cache: *cache, Seed: 1,
		Progress: progress, Say: func(f string, a ...any) { fmt.Fprintf(stderr, "armor-bench convert: "+f+"\n", a...) }})
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", " ")
		return enc.Encode(res)
	}
	fmt.Fprintf(stdout, "%s, %s", res.Shape, res.Method)
	if res.Block > 0 {
		fmt.Fprintf(stdout, " b=%d", res.Block)
	}
	fmt.Fprintf(stdout, ", %d of %d blocks, %d calibration tokens, %d threads (load %.1f before, %.1f after)\n",
		res.Blocks, res.ModelBlocks, res.CalibTokens, res.Threads, res.LoadBefore, res.LoadAfter)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "layer\tshape\tsweeps\tseconds\tGFLOP/s\tproducts' GFLOP/s\tloss/NoWag-P\t")
	for _, l := range res.Layers {
		rel := 0.0
		if l.NoWagPLoss > 0 {
			rel = l.ProxyLoss / l.NoWagPLoss
		}
		fmt.Fprintf(tw, "%s\t%dx%d\t%d\t%.1f\t%.1f\t%.1f\t%.3f\t\n", l.Name, l.Rows, l.Cols, l.Iters, l.Seconds, l.GFLOPS, l.ProductGFLOPS, rel)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "wall %.1f s (calibration %.1f s), CPU %.1f s, peak RSS %s, source %s, %.1f GFLOP/s over the layers\n",
		res.WallSeconds, res.CalibSecs, res.CPUSeconds, armrt.FormatBytes(res.PeakRSS), armrt.FormatBytes(res.SourceBytes), res.GFLOPS)
	if res.Blocks < res.ModelBlocks {
		fmt.Fprintf(stdout, "whole model (%d blocks), extrapolated: %s wall\n", res.ModelBlocks, (time.Duration(res.FullWallSeconds) * time.Second).Round(time.Minute))
	}
	return nil
}
