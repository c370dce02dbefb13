package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/armor-llm/armor/bench"
	"github.com/armor-llm/armor/internal/cliflag"
	"github.com/armor-llm/armor/internal/progress"
	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/mmap"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
	armrt "github.com/armor-llm/armor/runtime"
)

type speedFlags struct {
	models                          cliflag.Strings
	synthetic, dtype, plot, cache   string
	device                          string
	llamacpp                        string
	prompt, gen, threads, repeat, b int
	jsonOut                         bool
	mmap                            mmap.Mode
	kv                              armrt.KVType
}

func speedFlagSet(name string, stderr io.Writer, f *speedFlags) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Var(&f.models, "m", "model to measure (repeatable): .armor, GGUF, HF directory or llama2.c")
	fs.StringVar(&f.synthetic, "synthetic", "", "measure dense, 2:4 and ARMOR variants of a synthetic model of this shape: "+synth.Names())
	fs.StringVar(&f.dtype, "dtype", "f16", "value dtype of synthetic models: f16, bf16 or f32")
	fs.IntVar(&f.b, "block-size", 128, "ARMOR block size of synthetic models")
	fs.StringVar(&f.cache, "cache", defaultCache(), "folder for synthetic model files (reused between runs)")
	fs.IntVar(&f.prompt, "prompt-tokens", 512, "prefill: prompt length in tokens")
	fs.IntVar(&f.gen, "gen-tokens", 128, "decode: tokens generated one at a time")
	fs.IntVar(&f.threads, "threads", runtime.NumCPU(), "threads")
	fs.IntVar(&f.repeat, "repeat", 1, "rounds: each round times every variant once, in turn; each variant's median over rounds, and the median over rounds of its ratio to dense in the same round, are reported")
	fs.StringVar(&f.llamacpp, "llamacpp", os.Getenv("ARMOR_LLAMACPP"), "llama-bench binary (or its folder): also time llama.cpp on the GGUF of the same model (env ARMOR_LLAMACPP)")
	fs.StringVar(&f.plot, "plot", "", "write a bar chart of tokens/s and memory to this .svg file")
	fs.BoolVar(&f.jsonOut, "json", false, "print one JSON array, one object per variant")
	fs.StringVar(&f.device, "device", "cpu", "where the linear layers run: cpu or cuda")
	fs.Var(&f.mmap, "mmap", mmap.FlagHelp)
	fs.Var(&f.kv, "kv-type", armrt.KVTypeHelp)
	return fs
}

func defaultCache() string {
	if d := os.Getenv("ARMOR_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "armor", "synthetic")
	}
	return filepath.Join(os.TempDir(), "armor-synthetic")
}

const speedHelp = `armor-bench speed: prefill and decode tokens/s, weight bytes and peak RSS of
each model variant, side by side, with ratios to the dense variant measured in
the same run and the memory-bandwidth roofline of decode (bytes read per token
÷ measured read bandwidth). Each variant runs in its own process, so peak RSS
is its own and only one variant is in memory at a time; each process does one
untimed prefill and a few decode steps first (as llama-bench's warm-up run).
With --repeat R the variants are timed in R rounds (alternating order); the
table gives each variant's median and the median of its per-round ratios to
dense.

  armor-bench speed --synthetic llama-3.2-1b      dense f16 vs 2:4 vs ARMOR (b=128)
  armor-bench speed -m a.armor -m b.gguf           any models

Synthetic models have random weights at the exact shapes of real ones (speed
does not depend on the values); they are written once into --cache.

A variant that fails shows its error in the table. The exit status is 1 when
every variant failed or --llamacpp names no llama-bench.

Flags:
`

func speedCommand(args []string, stdout, stderr io.Writer, demo bool) error {
	f := &speedFlags{}
	fs := speedFlagSet("armor-bench speed", stderr, f)
	fs.Usage = func() { fmt.Fprint(stderr, speedHelp); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if demo && f.synthetic == "" && len(f.models) == 0 {
		f.synthetic = "llama-3.2-1b"
	}
	// The demo's default is 3 rounds: one round cannot tell a real ratio
	// from a moment when the machine's memory bandwidth moved.
	// Its decode runs demoGenTokens, so that the three rounds stay within
	// about five minutes on a slow 2-core machine (128 tokens took 5 min
	// 21 s there).
	repeatSet, genSet := false, false
	fs.Visit(func(fl *flag.Flag) {
		repeatSet = repeatSet || fl.Name == "repeat"
		genSet = genSet || fl.Name == "gen-tokens"
	})
	if demo && !repeatSet {
		f.repeat = demoRounds
	}
	if demo && !genSet {
		f.gen = demoGenTokens
	}
	if f.synthetic == "" && len(f.models) == 0 {
		fs.Usage()
		return errors.New("speed: give -m MODEL (repeatable) or --synthetic SHAPE")
	}
	if f.threads < 1 || f.prompt < 1 || f.gen < 1 || f.repeat < 1 {
		return errors.New("speed: --threads, --prompt-tokens, --gen-tokens and --repeat must be at least 1")
	}
	dt, err := kernels.ParseDType(f.dtype)
	if err != nil {
		return fmt.Errorf("speed: --dtype: %w", err)
	}
	say := func(format string, a ...any) { fmt.Fprintf(stderr, "armor-bench: "+format+"\n", a...) }
	type job struct {
		path, variant, shape string
		llama                bool // llama-bench on path instead of our runtime
	}
	var jobs []job
	var ggufForLlama string
	if f.synthetic != "" {
		cfg, err := synth.Shape(f.synthetic)
		if err != nil {
			return fmt.Errorf("speed: --synthetic: %w", err)
		}
		if err := os.MkdirAll(f.cache, 0o755); err != nil {
			return fmt.Errorf("speed: --cache: %w", err)
		}
		tdt := map[kernels.DType]tensor.DType{kernels.F32: tensor.F32, kernels.F16: tensor.F16, kernels.BF16: tensor.BF16}[dt]
		for _, v := range []synth.Variant{synth.Dense, synth.Sparse24, synth.Armor} {
			name := fmt.Sprintf("%s-%s-%s", f.synthetic, v, dt)
			if v == synth.Armor {
				name += fmt.Sprintf("-b%d", f.b)
			}
			path := filepath.Join(f.cache, name+".armor")
			if _, err := os.Stat(path); err != nil {
				say("writing synthetic %s (%s, %s) to %s", f.synthetic, v, dt, path)
				t0 := time.Now()
				err := synth.WriteArmor(path, cfg, synth.ArmorOptions{Variant: v, DType: tdt, Block: f.b, Seed: 1,
					Progress: newProgress(stderr, "  tensors", false)})
				if err != nil {
					return err
				}
				say("  done in %s", time.Since(t0).Round(time.Second))
			}
			jobs = append(jobs, job{path, string(v), f.synthetic, false})
		}
		if f.llamacpp != "" {
			ggufForLlama = filepath.Join(f.cache, fmt.Sprintf("%s-dense-%s.gguf", f.synthetic, dt))
			if _, err := os.Stat(ggufForLlama); err != nil {
				say("writing synthetic GGUF %s for llama.cpp", ggufForLlama)
				if err := synth.WriteGGUF(ggufForLlama, cfg, tdt, 1); err != nil {
					return err
				}
			}
			// Our runtime on the very file llama.cpp runs, for a like-for-like row.
			jobs = append(jobs, job{ggufForLlama, "dense", f.synthetic, false})
		}
	}
	for _, m := range f.models {
		jobs = append(jobs, job{m, "", "", false})
		if strings.HasSuffix(m, ".gguf") && ggufForLlama == "" {
			ggufForLlama = m
		}
	}
	if f.llamacpp != "" {
		// A --llamacpp that points nowhere is a usage error, found before
		// minutes of measuring, not an error row in the table.
		if _, err := bench.FindLlamaBench(f.llamacpp); err != nil {
			return fmt.Errorf("speed: --llamacpp %s: %w", f.llamacpp, err)
		}
		if ggufForLlama == "" {
			say("--llamacpp: no GGUF among the models; llama.cpp not run")
		} else {
			// llama-bench runs in the rounds too (one repetition each, after
			// its own warm-up), so its ratio to dense is paired like ours.
			jobs = append(jobs, job{ggufForLlama, "llama.cpp", f.synthetic, true})
		}
	}
	// The read bandwidth is probed at the start, then just before and
	// after every measurement: the roofline column uses the one before,
	// and a measurement during which it moved by more than a fifth is
	// flagged.
	say("measuring the read bandwidth with %d threads", f.threads)
	kernels.SetThreads(f.threads)
	probe := bench.NewReadProbe(256 << 20)
	defer probe.Close()
	gbps := probe.GBps()
	say("  %.1f GB/s", gbps)
	// Machines drift over minutes: run the variants in alternation, one
	// measurement each per round (in reverse order every other round, so a
	// steady drift within rounds does not always favour the same one), and
	// report each one's median over rounds and the median of its per-round
	// ratios to dense.
	rounds := make([][]bench.SpeedResult, len(jobs))
	for r := 0; r < f.repeat; r++ {
		for k := range jobs {
			i := k
			if r%2 == 1 {
				i = len(jobs) - 1 - k
			}
			j := jobs[i]
			var res bench.SpeedResult
			before := probe.GBps()
			if j.llama {
				say("round %d/%d: timing llama.cpp (llama-bench) on %s", r+1, f.repeat, j.path)
				res = bench.RunLlamaBench(f.llamacpp, j.path, f.prompt, f.gen, f.threads, 1)
			} else {
				say("round %d/%d: timing %s: %d-token prefill, %d-token decode, %d thread(s)", r+1, f.repeat, j.path, f.prompt, f.gen, f.threads)
				live := progress.NewLine(stderr)
				res = runChild(j.path, f, func(stage string, done, total int) {
					live.Show(fmt.Sprintf("  round %d/%d, %s: %s", r+1, f.repeat, filepath.Base(j.path), stageText(stage, done, total)))
				})
				live.Clear()
			}
			after := probe.GBps()
			res.ReadGBps = before
			res.BandwidthMoved = bench.BandwidthMoved(before, after)
			switch {
			case res.Error != "":
				say("  error: %s", res.Error)
			case j.llama:
				say("  prefill %.1f tok/s, decode %.2f tok/s", res.PrefillTPS, res.DecodeTPS)
			default:
				say("  prefill %.1f tok/s, decode %.2f tok/s, peak RSS %s", res.PrefillTPS, res.DecodeTPS, armrt.FormatBytes(res.PeakRSSBytes))
			}
			if res.BandwidthMoved {
				say("  read bandwidth moved during it: %.1f → %.1f GB/s (this round's ratios are suspect)", before, after)
			}
			rounds[i] = append(rounds[i], res)
		}
	}
	var results []bench.SpeedResult
	for i, j := range jobs {
		r := bench.MedianOfRounds(rounds[i])
		if r.Variant == "" {
			r.Variant = j.variant
		}
		r.Shape = j.shape
		if r.ReadGBps == 0 {
			r.ReadGBps = gbps
		}
		results = append(results, r)
	}
	bench.Compare(results)
	bench.PairRounds(results, rounds)
	if f.plot != "" {
		if err := bench.WriteSpeedPlot(f.plot, results); err != nil {
			say("--plot: %v", err)
		} else {
			say("chart written to %s", f.plot)
		}
	}
	_, verdict := bench.Verdict(results, rounds)
	// The table prints with the errors in it; when no variant produced a
	// measurement the command failed and says so in its exit status.
	failed := 0
	for _, r := range results {
		if r.Error != "" {
			failed++
		}
	}
	var allFailed error
	if failed == len(results) {
		allFailed = fmt.Errorf("speed: every variant failed (%d of %d; errors in the table)", failed, len(results))
	}
	if f.jsonOut {
		// The human tables still go to stderr, so one run gives both.
		fmt.Fprint(stderr, "\n"+bench.FormatSpeedTable(results)+"\n"+bench.FormatRoundsTable(results, rounds)+"\n"+verdict+"\n")
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return err
		}
		return allFailed
	}
	fmt.Fprintf(stdout, "\n%s, %s kernels, %d threads, %s; read bandwidth %.1f GB/s at the start\n", bench.CPUName(), kernels.ISA(), f.threads, runtime.Version(), gbps)
	fmt.Fprintf(stdout, "prefill: %d-token prompt; decode: %d tokens after it (llama.cpp too: llama-bench -d %d); roofline = decode tok/s ÷ (bandwidth probed just before it ÷ bytes read per token), median over rounds; moved = rounds in which the read bandwidth moved by more than a fifth during the measurement\n\n", f.prompt, f.gen, f.prompt)
	fmt.Fprint(stdout, bench.FormatSpeedTable(results))
	fmt.Fprint(stdout, "\n"+bench.FormatRoundsTable(results, rounds))
	fmt.Fprintln(stdout, "\n"+verdict)
	return allFailed
}

// runChild measures one model in a fresh process of this program, so its
// peak RSS is its own and models are never in memory together. The child's
// progress lines are passed to progress as they come.
func runChild(path string, f *speedFlags, progress func(stage string, done, total int)) bench.SpeedResult {
	fail := func(err error) bench.SpeedResult {
		return bench.SpeedResult{Model: path, Threads: f.threads, Error: err.Error()}
	}
	exe, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	cmd := exec.Command(exe, internalSpeedOne, "-m", path, "--prompt-tokens", strconv.Itoa(f.prompt),
		"--gen-tokens", strconv.Itoa(f.gen), "--threads", strconv.Itoa(f.threads), "--repeat", "1", "--device", f.device, "--mmap", f.mmap.String(), "--kv-type", f.kv.String())
	// A test binary re-executed as a child runs main's run() (TestMain).
	cmd.Env = append(os.Environ(), "ARMOR_BENCH_AS_MAIN=1")
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &progressWriter{rest: &errb, progress: progress}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		return fail(errors.New(msg))
	}
	var r bench.SpeedResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return fail(fmt.Errorf("bad output from the measuring process: %v", err))
	}
	return r
}

// internalSpeedOne is the command name of runChild's child process; it is
// not for users (armor-bench's help does not list it).
const internalSpeedOne = "internal-speed-one"

// demoRounds and demoGenTokens are the demo's default --repeat and
// --gen-tokens.
const (
	demoRounds    = 3
	demoGenTokens = 64
)

// speedOne is the child side of runChild: it measures one model and prints
// one JSON object, with progress lines (progressPrefix) on stderr.
func speedOne(args []string, stdout, stderr io.Writer) error {
	f := &speedFlags{}
	fs := speedFlagSet("armor-bench "+internalSpeedOne, stderr, f)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if len(f.models) != 1 {
		return errors.New(internalSpeedOne + ": exactly one -m")
	}
	path := f.models[0]
	if err := checkFits(path); err != nil {
		return err
	}
	kernels.SetThreads(f.threads)
	mmap.SetMode(f.mmap)
	report := progressReporter(stderr)
	report("load", 0, 1)
	ld, err := armrt.OpenWith(f.device, path, "", false, armrt.OpenOptions{
		Warn:     func(msg string) { fmt.Fprintln(stderr, "armor-bench:", msg) },
		Progress: func(stage string, done, total int64) { report(stage, int(done), int(total)) },
	})
	if err != nil {
		return err
	}
	defer ld.Close()
	r := bench.SpeedResult{Model: path, Threads: f.threads, PromptTokens: f.prompt, GenTokens: f.gen, DecodeDepth: f.prompt}
	r.Variant, r.DType = describe(ld.Model)
	r.WeightBytes = ld.Model.WeightBytes()
	r.BytesPerToken = ld.Tr.WeightBytes()
	ld.Tr.KVF16 = f.kv.F16
	r.KVType = f.kv.String()
	r.PrefillTPS, r.DecodeTPS, r.KVBytes, err = bench.MeasureSpeed(ld.Tr, bench.SpeedOptions{PromptTokens: f.prompt, GenTokens: f.gen, Repeat: f.repeat, Progress: report})
	if err != nil {
		return err
	}
	r.PeakRSSBytes = armrt.PeakRSS()
	r.WeightsHeld = mmap.HeldAs()
	r.Environment()
	return json.NewEncoder(stdout).Encode(r)
}

// describe names a model's variant (dense, sparse24, armor) and value dtype.
func describe(m *model.Model) (variant, dtype string) {
	variant = "dense"
	if h := m.Armor; h != nil {
		for _, l := range h.Linears {
			if l.Kind == "armor" {
				variant = "armor"
				break
			}
			if l.Kind == "sparse24" {
				variant = "sparse24"
			}
		}
	}
	for _, n := range []string{"blk.0.ffn_up.weight", "blk.0.ffn_up.s24_values"} {
		if t := m.Tensors[n]; t != nil {
			return variant, strings.ToLower(t.DType.String())
		}
	}
	return variant, "?"
}

// checkFits refuses, before loading, a model larger than the available memory.
func checkFits(path string) error {
	st, err := os.Stat(path)
	if err != nil || st.IsDir() {
		return nil
	}
	avail := mmap.AvailableMemory()
	if avail > 0 && st.Size() > avail {
		return fmt.Errorf("%s: %s of weights do not fit in the %s of available memory", path, armrt.FormatBytes(st.Size()), armrt.FormatBytes(avail))
	}
	return nil
}

// progressPrefix starts the progress lines that the child process writes to
// its stderr: "@progress STAGE DONE TOTAL".
const progressPrefix = "@progress "

// progressReporter writes progress lines to w, at most about 5 a second
// (and every change of stage).
func progressReporter(w io.Writer) func(stage string, done, total int) {
	var last time.Time
	lastStage := ""
	return func(stage string, done, total int) {
		if now := time.Now(); stage != lastStage || now.Sub(last) >= 200*time.Millisecond {
			last, lastStage = now, stage
			fmt.Fprintf(w, "%s%s %d %d\n", progressPrefix, stage, done, total)
		}
	}
}

// progressWriter splits a child's stderr: progress lines go to progress,
// everything else to rest.
type progressWriter struct {
	rest     io.Writer
	progress func(stage string, done, total int)
	partial  []byte
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		line := string(p.partial[:i])
		p.partial = p.partial[i+1:]
		if rest, ok := strings.CutPrefix(line, progressPrefix); ok {
			var stage string
			var done, total int
			if n, _ := fmt.Sscanf(rest, "%s %d %d", &stage, &done, &total); n == 3 && p.progress != nil {
				p.progress(stage, done, total)
			}
			continue
		}
		p.rest.Write([]byte(line + "\n"))
	}
	return len(b), nil
}

// stageText says what a progress report means.
func stageText(stage string, done, total int) string {
	switch stage {
	case "load":
		return "loading"
	case "reading":
		return fmt.Sprintf("loading: read %s of %s", armrt.FormatBytes(int64(done)), armrt.FormatBytes(int64(total)))
	case "building":
		return fmt.Sprintf("loading: built %d of %d blocks", done, total)
	case "decode":
		return fmt.Sprintf("decode %d/%d tokens", done, total)
	}
	return stage
}
