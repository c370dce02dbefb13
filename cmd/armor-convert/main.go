// Command armor-convert prunes a model to 2:4 (baselines) or factorizes it
// with ARMOR, and writes the result as an .armor file that armor-run and
// armor-bench execute.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	goruntime "runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/armor-llm/armor/convert"
	"github.com/armor-llm/armor/internal/cliflag"
	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/mmap"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `armor-convert: prune a model to 2:4 sparsity, plainly or with ARMOR's
block-diagonal wrappers (y = A'·(S·(B'·x)), S 2:4 sparse), and write an .armor
file.

Usage:
  armor-convert -m SRC -o OUT.armor --method M --calib FILE [--calib FILE...] [flags]

SRC is a GGUF file, a Hugging Face directory or a llama2.c checkpoint.
Methods:
%sEvery method but dense and magnitude needs calibration text: the texts are
tokenized and cut into sequences of --calib-seq tokens starting with BOS,
--calib-tokens in all (chosen with --calib-seed, default --seed), and run once
through the dense model to collect each layer's input statistics. The
per-layer proxy loss (ARMOR's weighted relative error) is recorded whenever
there is calibration text, with NoWag-P's for comparison.

Interrupting (Ctrl-C, SIGTERM) leaves no partial OUT; finished layers are kept in
OUT.parts/ and --resume continues from them.

Past one machine (every layer converts independently once the calibration
statistics exist; see docs/deploy/ for a Kubernetes Indexed Job):
  armor-convert -m SRC --calib FILE --calib-only --stats STATS/ [--method M]
  armor-convert -m SRC --stats STATS/ --shard I/N --parts PARTS/ [flags]   (I = 0..N-1)
  armor-convert merge -m SRC --stats STATS/ --parts PARTS/ -o OUT.armor [flags]
The shards and the merge take the same conversion flags (method, block size,
iterations, dtype, seed); the merged file is byte for byte what one process
writes.

--sequential in shards: each shard calibrates itself (no --stats) and converts
the blocks I*L/N to (I+1)*L/N-1 (integer division) of the model's L,
sequentially within that range; the blocks before its range run dense:
  armor-convert -m SRC --calib FILE --sequential --shard I/N --parts PARTS/ [flags]
  armor-convert merge -m SRC --calib FILE --sequential --shards N --parts PARTS/ -o OUT.armor [flags]
The shards run in parallel instead of one after the other, but each one runs
its dense prefix in every calibration pass, and the first block of every shard
but the first is calibrated on the dense model's activations instead of the
converted blocks' (shard 0's blocks are the single run's; the file records
sequential_shards N). N is part of every checkpoint's key: a merge or
--resume does not mix parts of different N or of a non-sequential run.

Flags:
`

// methodList is the usage's list of methods, one per line.
func methodList() string {
	var b strings.Builder
	const indent, width = 15, 79
	for _, m := range convert.Methods {
		line := fmt.Sprintf("  %-12s", m)
		for _, word := range strings.Fields(convert.MethodHelp(m)) {
			if len(line)+1+len(word) > width {
				b.WriteString(line + "\n")
				line = strings.Repeat(" ", indent-1)
			}
			line += " " + word
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// signalled is the cancellation cause when a signal stops the conversion.
type signalled struct{ sig syscall.Signal }

func (s signalled) Error() string { return "interrupted by " + s.sig.String() }

func run(args []string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if s, ok := <-sigs; ok {
			cancel(signalled{s.(syscall.Signal)})
		}
	}()
	err := convertCmd(ctx, args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "\narmor-convert: interrupted; no output written (finished layers are kept: rerun with --resume)")
		// The shell's convention: 128 + the signal (130 for Ctrl-C, 143
		// for SIGTERM), so batch systems see how the run ended.
		var s signalled
		if errors.As(context.Cause(ctx), &s) {
			return 128 + int(s.sig)
		}
		return 130
	}
	fmt.Fprintln(stderr, "armor-convert:", err)
	return 1
}

var errUsage = errors.New("usage")

func usageErr(stderr io.Writer, format string, a ...any) error {
	fmt.Fprintf(stderr, "armor-convert: "+format+" (see armor-convert --help)\n", a...)
	return errUsage
}

func convertCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	merge := len(args) > 0 && args[0] == "merge"
	if merge {
		args = args[1:]
	}
	fs := flag.NewFlagSet("armor-convert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	src := fs.String("m", "", "source model: GGUF file, Hugging Face directory or llama2.c checkpoint (required)")
	out := fs.String("o", "", "output .armor file (required)")
	method := fs.String("method", "armor-fast", "method: "+strings.Join(convert.Methods, ", "))
	var calib cliflag.Strings
	fs.Var(&calib, "calib", "calibration text file (repeatable; required for every method but dense and magnitude)")
	calibTokens := fs.Int("calib-tokens", 40960, "calibration tokens in all")
	calibSeq := fs.Int("calib-seq", 256, "tokens per calibration sequence, BOS included")
	dtype := fs.String("dtype", "f16", "stored values: f16, bf16 or f32")
	block := fs.Int("block-size", 0, fmt.Sprintf("ARMOR block size b of the wrappers, a multiple of 4 at most the smallest layer dimension (default %d, or the largest that fits a smaller model)", convert.DefaultBlock))
	iters := fs.Int("iters", 0, "ARMOR: maximum iterations (armor, default 20000) or sweeps (armor-fast, default 200)")
	tol := fs.Float64("tol", 0, "ARMOR: a layer stops after 3 sweeps (armor-fast; armor: 100 iterations; armor-fast-h: also 3 of its refinement rounds) that lower its proxy loss by less than this fraction (0: the defaults, armor-fast 2e-3, armor and the refinement 1e-6); larger is faster")
	threads := fs.Int("threads", goruntime.NumCPU(), "threads")
	seed := fs.Uint64("seed", 1, "seed of ARMOR's sampling and, unless --calib-seed is given, of the calibration sample")
	calibSeed := fs.Uint64("calib-seed", 0, "seed of the calibration sample (default: --seed); fixing it separates the two sources of run-to-run variation")
	resume := fs.Bool("resume", false, "continue an interrupted conversion from its per-layer checkpoints (OUT.parts/)")
	sequential := fs.Bool("sequential", false, "collect each block's statistics from the already-converted preceding blocks")
	jsonOut := fs.Bool("json", false, "print a JSON report on stdout (per-layer proxy losses, parameter and byte counts, time)")
	calibOnly := fs.Bool("calib-only", false, "only calibrate: write the statistics to --stats and stop")
	statsDir := fs.String("stats", "", "folder of calibration statistics: written by --calib-only, read instead of calibrating otherwise")
	shard := fs.String("shard", "", "I/N: convert only shard I (0-based) of N of the layers (with --sequential, of the blocks) into --parts, write no file")
	shards := fs.Int("shards", 0, "merge --sequential: the N of the --shard I/N that converted the parts")
	parts := fs.String("parts", "", "folder of the per-layer checkpoints (default OUT.parts)")
	synthetic := fs.String("synthetic", "", "instead of converting -m, write a model with random weights at a real shape ("+synth.Names()+") with --method dense, sparse24 or armor: for speed and memory measurements")
	fs.Usage = func() {
		fmt.Fprintf(stderr, usage, methodList())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return flag.ErrHelp
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		return usageErr(stderr, "unexpected argument %q", fs.Arg(0))
	}
	dt, ok := tensor.ParseDType(strings.ToUpper(*dtype))
	if !ok || (dt != tensor.F32 && dt != tensor.F16 && dt != tensor.BF16) {
		return usageErr(stderr, "--dtype %q: use f16, bf16 or f32", *dtype)
	}
	if *out != "" {
		// A killed earlier run of this output may have left its temporary
		// file (complete or partial); it is never used again.
		removed, err := model.RemoveStaleTemps(*out)
		for _, r := range removed {
			fmt.Fprintf(stderr, "armor-convert: removed %s, left by an interrupted run\n", r)
		}
		if err != nil {
			return err
		}
	}
	if *synthetic != "" {
		return writeSynthetic(*synthetic, *out, *method, dt, *block, *seed, stdout, stderr)
	}
	calibSeedSet := false
	fs.Visit(func(f *flag.Flag) { calibSeedSet = calibSeedSet || f.Name == "calib-seed" })
	if !calibSeedSet {
		*calibSeed = *seed
	}
	var shardI, shardN int
	if *shard != "" {
		if _, err := fmt.Sscanf(*shard, "%d/%d", &shardI, &shardN); err != nil || shardN < 1 || shardI < 0 || shardI >= shardN || fmt.Sprintf("%d/%d", shardI, shardN) != *shard {
			return usageErr(stderr, "--shard %q: want I/N with 0 <= I < N, e.g. 0/8", *shard)
		}
	}
	switch {
	case *src == "":
		return usageErr(stderr, "-m SRC is required")
	case *calibOnly && *statsDir == "":
		return usageErr(stderr, "--calib-only needs --stats DIR for the statistics")
	case *sequential && *statsDir != "":
		return usageErr(stderr, "--sequential calibrates each block on the converted blocks before it: it takes --calib, not --stats")
	case *shard != "" && *sequential && *parts == "":
		return usageErr(stderr, "--sequential --shard needs --parts DIR")
	case *shard != "" && !*sequential && (*statsDir == "" || *parts == ""):
		return usageErr(stderr, "--shard needs --stats DIR (from --calib-only) and --parts DIR")
	case merge && *shard != "":
		return usageErr(stderr, "merge takes no --shard (for --sequential shards, --shards N)")
	case *shards != 0 && !(merge && *sequential):
		return usageErr(stderr, "--shards N is for merge --sequential (--shard I/N converts one shard)")
	case merge && *sequential && (*shards < 1 || *parts == "" || *out == ""):
		return usageErr(stderr, "merge --sequential needs --shards N (of the shards' --shard I/N), --parts DIR, -o OUT.armor and the shards' --calib")
	case merge && !*sequential && (*statsDir == "" || *parts == "" || *out == ""):
		return usageErr(stderr, "merge needs --stats DIR, --parts DIR and -o OUT.armor")
	case *calibOnly && (*shard != "" || merge):
		return usageErr(stderr, "--calib-only does not combine with --shard or merge")
	case *out == "" && !*calibOnly && *shard == "":
		return usageErr(stderr, "-o OUT.armor is required")
	}
	if *threads < 1 {
		return usageErr(stderr, "--threads %d must be at least 1", *threads)
	}
	if *calibTokens < 1 || *calibSeq < 2 {
		return usageErr(stderr, "--calib-tokens must be positive and --calib-seq at least 2")
	}
	if *iters < 0 {
		return usageErr(stderr, "--iters %d must not be negative", *iters)
	}
	if !(*tol >= 0 && *tol < 1) {
		return usageErr(stderr, "--tol %g must be at least 0 and below 1", *tol)
	}
	if !slices.Contains(convert.Methods, *method) {
		return usageErr(stderr, "--method %q: use one of %s", *method, strings.Join(convert.Methods, ", "))
	}
	isArmor := convert.MethodFactorizes(*method)
	if isArmor && *block != 0 && (*block < 4 || *block%4 != 0) {
		return usageErr(stderr, "--block-size %d is not a positive multiple of 4 (the 2:4 groups of 4 must not straddle blocks)", *block)
	}
	if convert.MethodNeedsCalibration(*method) && len(calib) == 0 && (*statsDir == "" || *calibOnly) {
		return usageErr(stderr, "method %s needs calibration text: --calib FILE", *method)
	}
	kernels.SetThreads(*threads)
	// Conversion reads each source weight a few times and needs its memory
	// for calibration statistics: map the source instead of copying it.
	mmap.SetMode(mmap.Map)
	// A layer's working set is float slices (no pointers, cheap to
	// collect), and each sweep leaves a weight-sized slice behind: collect
	// at 20 % growth rather than 100 % (Llama-2-7B's 11008×4096 layers:
	// peak RSS 5.2 instead of 7.4 GiB, see docs/benchmarks.md).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(20)
	}
	goruntime.GOMAXPROCS(*threads)

	m, err := model.Load(*src)
	if err != nil {
		return err
	}
	defer m.Close()
	var seqs [][]int
	if len(calib) > 0 {
		tok, err := m.Tokenizer()
		if err != nil {
			return fmt.Errorf("%s: calibration needs the model's tokenizer: %w", *src, err)
		}
		var texts []string
		for _, f := range calib {
			b, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("--calib: %w", err)
			}
			texts = append(texts, string(b))
		}
		if seqs, err = convert.CalibrationSequences(tok, texts, *calibTokens, *calibSeq, *calibSeed); err != nil {
			return fmt.Errorf("--calib %s: %w", strings.Join(calib, ", "), err)
		}
	}
	opt := convert.ConvertOptions{Method: *method, Block: *block, Iters: *iters, Tol: *tol, DType: dt, Seed: *seed, Threads: *threads,
		Resume: *resume, Sequential: *sequential, Ctx: ctx, Progress: progressPrinter(stderr, *method),
		Provenance: map[string]any{"calib_files": []string(calib), "calib_seq": *calibSeq, "calib_seed": *calibSeed},
		StatsDir:   *statsDir, CalibOnly: *calibOnly, Shard: shardI, Shards: shardN, PartsDir: *parts, MergeOnly: merge}
	if merge {
		opt.Shards = *shards
	}
	if !isArmor {
		opt.Block = 0
	}
	rep, err := convert.Convert(m, seqs, *out, opt)
	if err != nil {
		return err
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", " ")
		return enc.Encode(rep)
	}
	switch {
	case *calibOnly:
		fmt.Fprintf(stdout, "%s: calibration statistics of %d calibration tokens, %.1f s\n", *statsDir, rep.CalibTokens, rep.Seconds)
		return nil
	case *shard != "":
		fmt.Fprintf(stdout, "%s: shard %s, %d layers converted, %.1f s\n", *parts, *shard, len(rep.Layers), rep.Seconds)
		return nil
	}
	fmt.Fprintf(stdout, "%s: %s, %d linear layers, %d calibration tokens\n", *out, rep.Method, len(rep.Layers), rep.CalibTokens)
	fmt.Fprintf(stdout, "weights: %d bytes (linear layers %d); parameters of the linear layers %d of %d dense, wrappers +%.1f %%\n",
		rep.WeightBytes, rep.LinearBytes, rep.StoredParams, rep.DenseParams, 100*rep.WrapperOverhead)
	if rep.CalibTokens > 0 {
		fmt.Fprintf(stdout, "mean per-layer proxy loss %.5f, %.3f × NoWag-P's\n", rep.MeanProxyLoss, rep.MeanRelNoWagP)
	}
	fmt.Fprintf(stdout, "time %.1f s (calibration %.1f s)\n", rep.Seconds, rep.CalibSeconds)
	return nil
}

// progressPrinter reports progress on stderr, at most every half second on
// a terminal (one redrawn line) and every 10 seconds otherwise, plus one line
// per finished layer when not on a terminal.
func progressPrinter(w io.Writer, method string) func(convert.Progress) {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	var last time.Time
	return func(p convert.Progress) {
		final := p.Done == p.Total
		layerDone := p.Stage == "layer" && p.Iter == 0
		now := time.Now()
		gap := 10 * time.Second
		if tty {
			gap = 500 * time.Millisecond
		}
		if !final && now.Sub(last) < gap && !(layerDone && !tty) {
			return
		}
		last = now
		var line string
		switch p.Stage {
		case "note":
			if tty {
				fmt.Fprint(w, "\r\033[K")
			}
			fmt.Fprintln(w, "armor-convert:", p.Note)
			return
		case "calibrate":
			line = fmt.Sprintf("calibrating: sequence %d/%d", p.Done, p.Total)
		case "layer":
			if p.Iter > 0 {
				line = fmt.Sprintf("%s: %d/%d layers done, %s iteration %d, proxy loss %.5f", method, p.Done, p.Total, p.Layer, p.Iter, p.Loss)
			} else {
				line = fmt.Sprintf("%s: %d/%d layers done (%s: proxy loss %.5f)", method, p.Done, p.Total, p.Layer, p.Loss)
			}
		case "write":
			line = fmt.Sprintf("writing: tensor %d/%d", p.Done, p.Total)
		}
		line += fmt.Sprintf(" [%s", p.Elapsed.Round(time.Second))
		if p.ETA > 0 {
			line += fmt.Sprintf(", ETA %s", p.ETA.Round(time.Second))
		}
		line += "]"
		if tty {
			fmt.Fprintf(w, "\r\033[K%s", line)
			if final {
				fmt.Fprintln(w)
			}
		} else {
			fmt.Fprintln(w, line)
		}
	}
}

// writeSynthetic writes a random-weight model of a named real shape: no
// optimization, just shapes and valid 2:4 masks, one tensor in memory at a
// time.
func writeSynthetic(shape, out, method string, dt tensor.DType, block int, seed uint64, stdout, stderr io.Writer) error {
	if out == "" {
		return usageErr(stderr, "-o OUT.armor is required")
	}
	cfg, err := synth.Shape(shape)
	if err != nil {
		return fmt.Errorf("--synthetic: %w", err)
	}
	v := synth.Variant(method)
	switch v {
	case synth.Dense, synth.Sparse24, synth.Armor:
	default:
		return usageErr(stderr, "--synthetic writes --method dense, sparse24 or armor, not %q", method)
	}
	if v == synth.Armor && (block < 4 || block%4 != 0) {
		return fmt.Errorf("--block-size %d is not a positive multiple of 4", block)
	}
	t0 := time.Now()
	last := time.Time{}
	err = synth.WriteArmor(out, cfg, synth.ArmorOptions{Variant: v, DType: dt, Block: block, Seed: seed,
		Progress: func(done, total int) {
			if time.Since(last) > time.Second || done == total {
				last = time.Now()
				fmt.Fprintf(stderr, "\rarmor-convert: synthetic %s %s: tensor %d/%d", shape, v, done, total)
				if done == total {
					fmt.Fprintln(stderr)
				}
			}
		}})
	if err != nil {
		return err
	}
	st, _ := os.Stat(out)
	fmt.Fprintf(stdout, "%s: synthetic %s (%s, %v), %d bytes, %.1f s\n", out, shape, v, dt, st.Size(), time.Since(t0).Seconds())
	return nil
}
