package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/armor-llm/armor/bench"
	"github.com/armor-llm/armor/internal/cliflag"
	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/model/chat"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
	armrt "github.com/armor-llm/armor/runtime"
	"github.com/armor-llm/armor/serve"
)

const serveHelp = `armor-bench serve: serving throughput and latency under concurrent clients.

For each model and each number of clients N in --clients, an armor-serve
engine with --parallel N runs in this process, and N clients each send the
same fixed mix of 4 streamed completions (prompts of 32, 128, 64 and 256
tokens, answers of 64, 32, 96 and 48 tokens, times --gen-scale), one after
another, at temperature 0 with ignore_eos. Reported: aggregate generated
tokens/s (all clients' tokens ÷ wall time), p50/p99 time to first token and
p50/p99 time between streamed tokens, the ratio to the same server at one
client and to dense armor-serve at the same N, and the load average.

  armor-bench serve --synthetic llama-3.2-1b --clients 1,4,8
        dense f16 (the GGUF) vs ARMOR (b=128), synthetic weights
  armor-bench serve --synthetic llama-3.2-1b --llamacpp DIR
        also llama-server -np N on the same GGUF (bench/llamacpp/build.sh)
  armor-bench serve -m model.armor -m model.gguf --clients 1,8

Flags:
`

type serveFlags struct {
	models                           cliflag.Strings
	synthetic, dtype, cache, clients string
	tokenizer, llamacpp              string
	threads, ctx, chunk, b           int
	genScale                         float64
	stall                            time.Duration
	jsonOut                          bool
	kv                               armrt.KVType
	llamaStartup                     time.Duration
	clientCounts                     []int
}

func serveCommand(args []string, stdout, stderr io.Writer) error {
	f := &serveFlags{kv: armrt.KVType{F16: true}}
	fs := flag.NewFlagSet("armor-bench serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, serveHelp); fs.PrintDefaults() }
	fs.Var(&f.models, "m", "model to serve (repeatable)")
	fs.StringVar(&f.tokenizer, "tokenizer", "", "tokenizer for models without one (e.g. a GGUF of the same vocabulary)")
	fs.StringVar(&f.synthetic, "synthetic", "", "serve dense (GGUF) and ARMOR variants of a synthetic model of this shape: llama-3.2-1b, qwen2.5-0.5b, qwen3-0.6b, stories110m")
	fs.StringVar(&f.dtype, "dtype", "f16", "value dtype of synthetic models: f16, bf16 or f32")
	fs.IntVar(&f.b, "block-size", 128, "ARMOR block size of synthetic models")
	fs.StringVar(&f.cache, "cache", defaultCache(), "folder for synthetic model files (shared with speed)")
	fs.StringVar(&f.clients, "clients", "1,4,8", "numbers of concurrent clients, comma-separated; the server runs with --parallel equal to each")
	fs.IntVar(&f.threads, "threads", runtime.NumCPU(), "threads")
	fs.IntVar(&f.ctx, "ctx", 512, "context per sequence (llama-server gets -c N×ctx)")
	fs.IntVar(&f.chunk, "chunk", 128, "prompt tokens per step beside the decoding sequences (armor-serve --chunk)")
	fs.Float64Var(&f.genScale, "gen-scale", 1, "scale the answer lengths of the mix (0.25: a quick run)")
	fs.StringVar(&f.llamacpp, "llamacpp", os.Getenv("ARMOR_LLAMACPP"), "llama-server binary (or its folder): run the same load against llama-server -np N on the GGUF (env ARMOR_LLAMACPP)")
	fs.DurationVar(&f.llamaStartup, "llamacpp-timeout", 5*time.Minute, "how long llama-server may take to load")
	fs.DurationVar(&f.stall, "stall", 2*time.Minute, "a request that receives nothing for this long fails the row (a server that died or hangs) instead of waiting for ever")
	fs.BoolVar(&f.jsonOut, "json", false, "print one JSON array, one object per model and client count")
	fs.Var(&f.kv, "kv-type", armrt.KVTypeHelp+"; f16 here, as llama-server keeps it")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	for _, s := range strings.Split(f.clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("serve: --clients %q: want positive numbers separated by commas", f.clients)
		}
		f.clientCounts = append(f.clientCounts, n)
	}
	if f.synthetic == "" && len(f.models) == 0 {
		fs.Usage()
		return errors.New("serve: give -m MODEL (repeatable) or --synthetic SHAPE")
	}
	if f.threads < 1 || f.ctx < 300 || f.chunk < 1 || f.genScale <= 0 {
		return errors.New("serve: --threads, --chunk and --gen-scale must be positive and --ctx at least 300 (the mix's longest request)")
	}
	if f.stall < 0 {
		return fmt.Errorf("serve: --stall %v: want a duration of 0 (no limit) or more", f.stall)
	}
	mix := bench.ServeMix(f.genScale)
	for _, q := range mix {
		if q.PromptChars+q.MaxTokens+2 > f.ctx {
			return fmt.Errorf("serve: --ctx %d is too small for a %d-token prompt and a %d-token answer", f.ctx, q.PromptChars, q.MaxTokens)
		}
	}
	say := func(format string, a ...any) { fmt.Fprintf(stderr, "armor-bench: "+format+"\n", a...) }
	type job struct{ path, tok, variant string }
	var jobs []job
	gguf := ""
	if f.synthetic != "" {
		cfg, err := synth.Shape(f.synthetic)
		if err != nil {
			return fmt.Errorf("serve: --synthetic: %w", err)
		}
		dt, err := kernels.ParseDType(f.dtype)
		if err != nil {
			return fmt.Errorf("serve: --dtype: %w", err)
		}
		tdt := map[kernels.DType]tensor.DType{kernels.F32: tensor.F32, kernels.F16: tensor.F16, kernels.BF16: tensor.BF16}[dt]
		if err := os.MkdirAll(f.cache, 0o755); err != nil {
			return fmt.Errorf("serve: --cache: %w", err)
		}
		gguf = filepath.Join(f.cache, fmt.Sprintf("%s-dense-%s.gguf", f.synthetic, dt))
		if _, err := os.Stat(gguf); err != nil {
			say("writing synthetic GGUF %s", gguf)
			if err := synth.WriteGGUF(gguf, cfg, tdt, 1); err != nil {
				return err
			}
		}
		arm := filepath.Join(f.cache, fmt.Sprintf("%s-%s-%s-b%d.armor", f.synthetic, synth.Armor, dt, f.b))
		if _, err := os.Stat(arm); err != nil {
			say("writing synthetic %s (ARMOR, %s) to %s", f.synthetic, dt, arm)
			if err := synth.WriteArmor(arm, cfg, synth.ArmorOptions{Variant: synth.Armor, DType: tdt, Block: f.b, Seed: 1,
				Progress: newProgress(stderr, "  tensors", false)}); err != nil {
				return err
			}
		}
		// The .armor file has no vocabulary: the GGUF's serves both.
		jobs = append(jobs, job{gguf, "", "dense"}, job{arm, gguf, "armor"})
	}
	for _, m := range f.models {
		jobs = append(jobs, job{m, f.tokenizer, ""})
		if strings.HasSuffix(m, ".gguf") && gguf == "" {
			gguf = m
		}
	}
	kernels.SetThreads(f.threads)
	var results []bench.ServeResult
	for _, j := range jobs {
		say("loading %s", j.path)
		ld, err := armrt.Open(j.path, j.tok, true)
		if err != nil {
			return err
		}
		variant := j.variant
		if variant == "" {
			variant, _ = describe(ld.Model)
		}
		ld.Tr.KVF16 = f.kv.F16
		for _, n := range f.clientCounts {
			say("%s: armor-serve --parallel %d, %d clients", filepath.Base(j.path), n, n)
			r, err := measureArmorServe(ld, n, f, mix)
			r.Model, r.Variant, r.Server, r.Shape, r.Parallel, r.Threads, r.KVType = j.path, variant, "armor-serve", f.synthetic, n, f.threads, f.kv.String()
			if err != nil {
				r.Error = err.Error()
				say("  error: %v", err)
			} else {
				say("  %.2f tok/s aggregate, TTFT p50 %.0f ms, ITL p50 %.0f ms p99 %.0f ms (load %.2f)", r.AggregateTPS, r.TTFTP50Ms, r.ITLP50Ms, r.ITLP99Ms, r.Load1)
				say("  steps: %d decode-only (%d tokens) %.1f s, %d with a prompt chunk (%d tokens) %.1f s", r.DecodeSteps, r.DecodeStepTokens, r.DecodeStepSeconds, r.MixedSteps, r.MixedStepTokens, r.MixedStepSeconds)
			}
			results = append(results, r)
		}
		ld.Close()
	}
	if f.llamacpp != "" {
		if gguf == "" {
			say("--llamacpp: no GGUF among the models; llama-server not run")
		}
		for _, n := range f.clientCounts {
			if gguf == "" {
				break
			}
			say("llama-server -np %d on %s, %d clients", n, filepath.Base(gguf), n)
			r, err := measureLlamaServer(gguf, n, f, mix, stderr)
			r.Model, r.Variant, r.Server, r.Shape, r.Parallel, r.Threads, r.KVType = gguf, "llama.cpp", "llama-server", f.synthetic, n, f.threads, "f16"
			if err != nil {
				r.Error = err.Error()
				say("  error: %v", err)
			} else {
				say("  %.2f tok/s aggregate, TTFT p50 %.0f ms, ITL p50 %.0f ms p99 %.0f ms (load %.2f)", r.AggregateTPS, r.TTFTP50Ms, r.ITLP50Ms, r.ITLP99Ms, r.Load1)
			}
			results = append(results, r)
		}
	}
	bench.CompareServe(results)
	if f.jsonOut {
		fmt.Fprint(stderr, "\n"+bench.FormatServeTable(results))
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	fmt.Fprintf(stdout, "\n%s, %s kernels, %d threads, KV %s, %s; mix per client: prompts 32/128/64/256 tokens, answers %v tokens; load = 1-min load average at the start\n\n",
		bench.CPUName(), kernels.ISA(), f.threads, f.kv.String(), runtime.Version(), answerLens(mix))
	fmt.Fprint(stdout, bench.FormatServeTable(results))
	return nil
}

func answerLens(mix []bench.ServeRequest) []int {
	var out []int
	for _, q := range mix {
		out = append(out, q.MaxTokens)
	}
	return out
}

// measureArmorServe serves ld over HTTP on a loopback port with parallel
// clients slots and runs the load against it.
func measureArmorServe(ld *armrt.Loaded, clients int, f *serveFlags, mix []bench.ServeRequest) (bench.ServeResult, error) {
	eng, err := serve.NewEngine(ld.Tr, ld.Tok, serve.EngineConfig{Parallel: clients, Ctx: f.ctx, Queue: clients, Chunk: f.chunk})
	if err != nil {
		return bench.ServeResult{}, err
	}
	defer eng.Close(context.Background())
	tmpl, err := chat.Builtin("plain")
	if err != nil {
		return bench.ServeResult{}, err
	}
	srv := serve.NewServer(serve.Options{ModelName: "bench"})
	srv.Ready(eng, ld.Tok, tmpl)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return bench.ServeResult{}, err
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	defer hs.Close()
	base := "http://" + ln.Addr().String()
	// One short untimed request pages the weights in and grows the buffers.
	if _, err := bench.RunServeLoad(context.Background(), base, "bench", 1, []bench.ServeRequest{{PromptChars: 16, MaxTokens: 4}}, f.stall); err != nil {
		return bench.ServeResult{}, err
	}
	s0 := eng.StepStats()
	r, err := bench.RunServeLoad(context.Background(), base, "bench", clients, mix, f.stall)
	d := eng.StepStats().Sub(s0)
	r.DecodeSteps, r.DecodeStepSeconds, r.DecodeStepTokens = d.DecodeSteps, d.DecodeSeconds, d.DecodeTokens
	r.MixedSteps, r.MixedStepSeconds, r.MixedStepTokens = d.MixedSteps, d.MixedSeconds, d.MixedTokens
	return r, err
}

// findLlamaServer resolves the llama-server binary from a path that is the
// binary or a folder holding it (or llama-bench beside it).
func findLlamaServer(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("llama.cpp: %w", err)
	}
	if !st.IsDir() {
		if filepath.Base(path) != "llama-server" {
			path = filepath.Dir(path)
		} else {
			return path, nil
		}
	}
	for _, sub := range []string{"llama-server", "bin/llama-server", "build/bin/llama-server"} {
		p := filepath.Join(path, sub)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("llama.cpp: no llama-server in %s (build it with bench/llamacpp/build.sh)", path)
}

// measureLlamaServer starts llama-server -np clients on gguf, waits for its
// /health, runs the load and stops it.
func measureLlamaServer(gguf string, clients int, f *serveFlags, mix []bench.ServeRequest, stderr io.Writer) (bench.ServeResult, error) {
	bin, err := findLlamaServer(f.llamacpp)
	if err != nil {
		return bench.ServeResult{}, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return bench.ServeResult{}, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	logPath := filepath.Join(os.TempDir(), fmt.Sprintf("armor-bench-llama-server-%d.log", port))
	logf, err := os.Create(logPath)
	if err != nil {
		return bench.ServeResult{}, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-m", gguf, "--host", "127.0.0.1", "--port", strconv.Itoa(port), "-np", strconv.Itoa(clients),
		"-c", strconv.Itoa(clients*f.ctx), "-t", strconv.Itoa(f.threads), "-tb", strconv.Itoa(f.threads), "-b", "2048", "-ub", strconv.Itoa(max(f.chunk, 512)),
		"--cont-batching")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return bench.ServeResult{}, fmt.Errorf("llama-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(f.llamaStartup)
	for {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			return bench.ServeResult{}, fmt.Errorf("llama-server did not become healthy within %s (log: %s)", f.llamaStartup, logPath)
		}
		select {
		case <-exited:
			return bench.ServeResult{}, fmt.Errorf("llama-server exited (log: %s)", logPath)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if _, err := bench.RunServeLoad(context.Background(), base, "bench", 1, []bench.ServeRequest{{PromptChars: 16, MaxTokens: 4}}, f.stall); err != nil {
		return bench.ServeResult{}, fmt.Errorf("%w (log: %s)", err, logPath)
	}
	return bench.RunServeLoad(context.Background(), base, "bench", clients, mix, f.stall)
}
