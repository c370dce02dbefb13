// Command armor-serve serves a model over an OpenAI-compatible HTTP API,
// decoding several requests at once (continuous batching).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/model/mmap"
	armrt "github.com/armor-llm/armor/runtime"
	"github.com/armor-llm/armor/serve"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `armor-serve: serve a model over the OpenAI HTTP API.

Usage:
  armor-serve -m MODEL [--host 127.0.0.1] [--port 8080] [--parallel N] [--ctx N] [--api-key KEY]

MODEL is anything armor-run reads: a .armor file, a GGUF file, a Hugging Face
directory or a llama2.c checkpoint.

Endpoints: POST /v1/chat/completions and /v1/completions (with "stream": true
for server-sent events), GET /v1/models, GET /health (503 while the model
loads), GET /metrics (Prometheus), POST /tokenize and /detokenize.

Up to --parallel requests decode together: every step runs one token of each
through every layer as one batch, so the weights are read once per step; a
new prompt is run in chunks of --chunk tokens between steps. Each request has
its own KV cache of --ctx positions. Past --queue waiting requests the server
answers 429. SIGTERM or Ctrl-C stops accepting requests and lets running ones
finish for --grace before cancelling them.

Example:
  armor-serve -m model.armor --parallel 8
  curl http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \
    -d '{"messages":[{"role":"user","content":"Hello"}],"max_tokens":64}'

Flags:
`

type options struct {
	model, tokenizer, host, apiKey, alias, template, device string
	port, parallel, ctx, threads, queue, chunk, maxTokens   int
	topK                                                    int
	temp, topP, minP                                        float64
	maxBody                                                 int64
	grace                                                   time.Duration
	quiet, noBOS                                            bool
	mmap                                                    mmap.Mode
	kv                                                      armrt.KVType
}

func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("armor-serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&o.model, "m", "", "model file or directory (required)")
	fs.StringVar(&o.model, "model", "", "same as -m")
	fs.StringVar(&o.tokenizer, "tokenizer", "", "tokenizer to use instead of the model's")
	fs.StringVar(&o.host, "host", "127.0.0.1", "address to listen on (0.0.0.0: every interface)")
	fs.IntVar(&o.port, "port", 8080, "port to listen on (0: any free port)")
	fs.IntVar(&o.parallel, "parallel", 4, "requests decoded at once, each with its own KV-cache slot")
	fs.IntVar(&o.parallel, "np", 4, "same as --parallel (llama-server's name)")
	fs.IntVar(&o.ctx, "ctx", 0, "context of each request in tokens, prompt and answer (0: the model's, at most 4096)")
	fs.IntVar(&o.queue, "queue", 64, "requests that may wait for a slot; past that, 429")
	fs.IntVar(&o.chunk, "chunk", 128, "prompt tokens run per step beside the decoding requests")
	fs.IntVar(&o.threads, "threads", runtime.NumCPU(), "threads")
	fs.StringVar(&o.apiKey, "api-key", os.Getenv("ARMOR_API_KEY"), "require Authorization: Bearer KEY on every endpoint but /health (env ARMOR_API_KEY)")
	fs.StringVar(&o.alias, "alias", "", "model name reported by the API (default: the file name)")
	fs.StringVar(&o.template, "chat-template", "", "built-in chat template to use instead of the model's: chatml, llama3, llama2, plain")
	fs.IntVar(&o.maxTokens, "n", 512, "answer length of requests that set no max_tokens (the context still limits it)")
	fs.Float64Var(&o.temp, "temp", 0.8, "temperature of requests that set none")
	fs.Float64Var(&o.topP, "top-p", 0.95, "top_p of requests that set none")
	fs.IntVar(&o.topK, "top-k", 40, "top-k of requests that set none (0: off)")
	fs.Float64Var(&o.minP, "min-p", 0.05, "min-p of requests that set none (0: off)")
	fs.Int64Var(&o.maxBody, "max-body", 8<<20, "largest request body in bytes; larger ones get 413")
	fs.DurationVar(&o.grace, "grace", 30*time.Second, "on SIGTERM, how long running requests may take to finish")
	fs.BoolVar(&o.quiet, "quiet", false, "do not log one line per request")
	fs.BoolVar(&o.noBOS, "no-bos", false, "do not start prompts with BOS")
	fs.StringVar(&o.device, "device", "cpu", "where the linear layers run: cpu, or cuda")
	fs.Var(&o.mmap, "mmap", mmap.FlagHelp)
	fs.Var(&o.kv, "kv-type", armrt.KVTypeHelp)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q (flags go before values: -m MODEL)", fs.Arg(0))
	case o.model == "":
		return nil, errors.New("no model: give one with -m MODEL")
	case o.parallel < 1:
		return nil, fmt.Errorf("--parallel %d: must be at least 1", o.parallel)
	case o.threads < 1:
		return nil, fmt.Errorf("--threads %d: must be at least 1", o.threads)
	case o.port < 0 || o.port > 65535:
		return nil, fmt.Errorf("--port %d: out of range", o.port)
	}
	// Each flag with its own range, named with its value (NaN fails every
	// comparison, so it is refused too).
	for _, c := range []struct {
		flag string
		v    float64
		ok   bool
		rng  string
	}{
		{"--queue", float64(o.queue), o.queue >= 0, "0 or more"},
		{"--chunk", float64(o.chunk), o.chunk >= 1, "at least 1"},
		{"-n", float64(o.maxTokens), o.maxTokens >= 1, "at least 1"},
		{"--max-body", float64(o.maxBody), o.maxBody >= 1, "at least 1"},
		{"--ctx", float64(o.ctx), o.ctx >= 0, "0 (the model's) or more"},
		{"--top-k", float64(o.topK), o.topK >= 0, "0 (off) or more"},
		{"--temp", o.temp, o.temp >= 0 && !math.IsInf(o.temp, 0), "0 (greedy) or more"},
		{"--top-p", o.topP, o.topP > 0 && o.topP <= 1, "more than 0, at most 1"},
		{"--min-p", o.minP, o.minP >= 0 && o.minP <= 1, "between 0 (off) and 1"},
	} {
		if !c.ok {
			return nil, fmt.Errorf("%s %g is out of range: must be %s", c.flag, c.v, c.rng)
		}
	}
	if o.alias == "" {
		o.alias = filepath.Base(filepath.Clean(o.model))
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "armor-serve:", err)
		return 2
	}
	logger := log.New(stderr, "armor-serve: ", log.LstdFlags)
	reqLog := logger
	if o.quiet {
		reqLog = nil
	}
	kernels.SetThreads(o.threads)
	mmap.SetMode(o.mmap)
	srv := serve.NewServer(serve.Options{ModelName: o.alias, APIKey: o.apiKey, MaxBody: o.maxBody, Log: reqLog, NoBOS: o.noBOS,
		Defaults: serve.Defaults(o.temp, o.topP, o.minP, o.topK, o.maxTokens)})
	ln, err := net.Listen("tcp", net.JoinHostPort(o.host, strconv.Itoa(o.port)))
	if err != nil {
		fmt.Fprintln(stderr, "armor-serve:", err)
		return 1
	}
	addr := "http://" + ln.Addr().String()
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 30 * time.Second, ErrorLog: logger}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	logger.Printf("listening on %s; loading %s (/health answers 503 until it is ready)", addr, o.model)

	sigctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	type loaded struct {
		ld  *armrt.Loaded
		eng *serve.Engine
		err error
	}
	ready := make(chan loaded, 1)
	go func() {
		ld, eng, err := load(o, srv, logger)
		ready <- loaded{ld, eng, err}
	}()
	var eng *serve.Engine
	select {
	case l := <-ready:
		if l.err != nil {
			hs.Close()
			fmt.Fprintln(stderr, "armor-serve:", l.err)
			return 1
		}
		defer l.ld.Close()
		eng = l.eng
		logger.Printf("ready: %s (model %s, %d parallel × %d context, KV caches %s, %d threads, %s kernels)",
			addr, o.alias, o.parallel, eng.Ctx(), armrt.FormatBytes(eng.KVBytes()), kernels.Threads(), kernels.ISA())
	case <-sigctx.Done():
		hs.Close()
		logger.Printf("stopped while loading")
		return 0
	case err := <-served:
		fmt.Fprintln(stderr, "armor-serve:", err)
		return 1
	}
	select {
	case <-sigctx.Done():
	case err := <-served:
		fmt.Fprintln(stderr, "armor-serve:", err)
		return 1
	}
	stop()
	logger.Printf("shutting down: no new requests; %d running, %d queued, up to %s to finish", eng.Active(), eng.Queued(), o.grace)
	ctx, cancel := context.WithTimeout(context.Background(), o.grace)
	defer cancel()
	// Shutdown closes the listener and waits for the handlers, which wait
	// for their sequences; past the grace period the engine cancels what
	// is left, and the handlers end.
	shut := make(chan error, 1)
	go func() { shut <- hs.Shutdown(ctx) }()
	select {
	case <-shut:
	case <-ctx.Done():
	}
	if err := eng.Close(ctx); err != nil {
		logger.Printf("grace period over: cancelled the requests still running")
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := hs.Shutdown(ctx2); err != nil {
		hs.Close()
	}
	logger.Printf("stopped")
	return 0
}

// load opens the model and starts the engine, then makes srv ready.
func load(o *options, srv *serve.Server, logger *log.Logger) (*armrt.Loaded, *serve.Engine, error) {
	ld, err := armrt.OpenOn(o.device, o.model, o.tokenizer, true, func(msg string) { logger.Print(msg) })
	if err != nil {
		return nil, nil, err
	}
	ctx := o.ctx
	if ctx <= 0 {
		ctx = min(ld.Tr.Config.Context, 4096)
	}
	if ctx > ld.Tr.Config.Context {
		ld.Close()
		return nil, nil, fmt.Errorf("--ctx %d exceeds the model's context of %d", ctx, ld.Tr.Config.Context)
	}
	ld.Tr.KVF16 = o.kv.F16
	tmpl, err := ld.ChatTemplate(o.template, func(msg string) { logger.Print(msg) })
	if err != nil {
		ld.Close()
		return nil, nil, err
	}
	eng, err := serve.NewEngine(ld.Tr, ld.Tok, serve.EngineConfig{Parallel: o.parallel, Ctx: ctx, Queue: o.queue, Chunk: o.chunk})
	if err != nil {
		ld.Close()
		return nil, nil, err
	}
	srv.Ready(eng, ld.Tok, tmpl)
	return ld, eng, nil
}
