// Command armor-run generates text and chats with a model: .armor, GGUF,
// Hugging Face directory or llama2.c checkpoint.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"time"

	"github.com/armor-llm/armor/internal/cliflag"
	"github.com/armor-llm/armor/internal/progress"
	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/model/chat"
	"github.com/armor-llm/armor/model/mmap"
	armrt "github.com/armor-llm/armor/runtime"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

type options struct {
	model, tokenizer, prompt, promptFile, system, template string
	device                                                 string
	n, ctx, threads, topK, repeatLastN                     int
	temp, topP, minP, repeatPenalty                        float64
	seed                                                   int64
	chat, noBOS, jsonOut, quiet                            bool
	stops                                                  cliflag.Strings
	mmap                                                   mmap.Mode
	kv                                                     armrt.KVType
}

const usage = `armor-run: generate text or chat with a language model.

Usage:
  armor-run -m MODEL -p PROMPT [-n N] [sampling flags]
  armor-run -m MODEL --chat [--system TEXT]

MODEL is a .armor file, a GGUF file, a Hugging Face directory (config.json +
safetensors + tokenizer.json) or a llama2.c checkpoint (.bin, with
tokenizer.bin beside it or --tokenizer).

The prompt and its continuation are streamed to stdout; load time, prompt and
generation speed and memory go to stderr at the end. --temp 0 is greedy
decoding. In --chat mode each line you type is one user turn, rendered with
the model's chat template; Ctrl-C stops the current answer (at the prompt it
clears the line), Ctrl-D ends.

Flags:
`

func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("armor-run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&o.model, "m", "", "model file or directory (required)")
	fs.StringVar(&o.model, "model", "", "same as -m")
	fs.StringVar(&o.tokenizer, "tokenizer", "", "tokenizer to use instead of the model's: tokenizer.json directory, tokenizer.model, llama2.c tokenizer.bin or GGUF")
	fs.StringVar(&o.prompt, "p", "", "prompt")
	fs.StringVar(&o.prompt, "prompt", "", "same as -p")
	fs.StringVar(&o.promptFile, "f", "", "read the prompt from this file")
	fs.IntVar(&o.n, "n", 256, "tokens to generate (-1: until end of text or context)")
	fs.IntVar(&o.ctx, "ctx", 0, "context size in tokens (0: the model's, at most 4096)")
	fs.IntVar(&o.threads, "threads", runtime.NumCPU(), "threads")
	fs.Float64Var(&o.temp, "temp", 0.8, "temperature (0: greedy)")
	fs.IntVar(&o.topK, "top-k", 40, "top-k sampling (0: off)")
	fs.Float64Var(&o.topP, "top-p", 0.95, "top-p sampling (1: off)")
	fs.Float64Var(&o.minP, "min-p", 0.05, "min-p sampling (0: off)")
	fs.Float64Var(&o.repeatPenalty, "repeat-penalty", 1.0, "repetition penalty (1: off)")
	fs.IntVar(&o.repeatLastN, "repeat-last-n", 64, "tokens the repetition penalty looks back over")
	fs.Int64Var(&o.seed, "seed", -1, "random seed (-1: random)")
	fs.BoolVar(&o.chat, "chat", false, "interactive chat")
	fs.StringVar(&o.system, "system", "", "system message for --chat")
	fs.StringVar(&o.template, "chat-template", "", "built-in chat template to use instead of the model's: chatml, llama3, llama2, plain")
	fs.Var(&o.stops, "stop", "stop when this text is generated (repeatable)")
	fs.BoolVar(&o.noBOS, "no-bos", false, "do not start the prompt with BOS")
	fs.BoolVar(&o.jsonOut, "json", false, "print a JSON summary (text, tokens, speed) to stdout instead of streaming")
	fs.BoolVar(&o.quiet, "quiet", false, "do not print the statistics to stderr")
	fs.Var(&o.mmap, "mmap", mmap.FlagHelp)
	fs.Var(&o.kv, "kv-type", armrt.KVTypeHelp)
	fs.StringVar(&o.device, "device", "cpu", "where the linear layers run: cpu, or cuda (NVIDIA GPU through the CUDA libraries, no cgo)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags go before values: -p \"text\")", fs.Arg(0))
	}
	if o.model == "" {
		return nil, errors.New("no model: give one with -m MODEL")
	}
	if o.promptFile != "" {
		b, err := os.ReadFile(o.promptFile)
		if err != nil {
			return nil, fmt.Errorf("-f: %w", err)
		}
		o.prompt = string(b)
	}
	if !o.chat && o.prompt == "" {
		return nil, errors.New("no prompt: give one with -p TEXT or -f FILE, or use --chat")
	}
	if err := checkRanges(o); err != nil {
		return nil, err
	}
	if o.seed < 0 {
		o.seed = time.Now().UnixNano() & (1<<62 - 1)
	}
	return o, nil
}

// checkRanges rejects values outside a flag's meaningful range, naming the
// flag, the value and the range.
func checkRanges(o *options) error {
	ints := []struct {
		flag   string
		v, min int64
		rng    string
	}{
		{"-n", int64(o.n), -1, "-1 (until end of text or context) or more"},
		{"--ctx", int64(o.ctx), 0, "0 (the model's) or more"},
		{"--threads", int64(o.threads), 1, "at least 1"},
		{"--top-k", int64(o.topK), 0, "0 (off) or more"},
		{"--repeat-last-n", int64(o.repeatLastN), 0, "0 or more"},
		{"--seed", o.seed, -1, "-1 (random) or more"},
	}
	for _, c := range ints {
		if c.v < c.min {
			return fmt.Errorf("%s %d is out of range: must be %s", c.flag, c.v, c.rng)
		}
	}
	floats := []struct {
		flag string
		v    float64
		ok   bool
		rng  string
	}{
		{"--temp", o.temp, o.temp >= 0 && !math.IsInf(o.temp, 0), "0 (greedy) or more"},
		{"--top-p", o.topP, o.topP >= 0 && o.topP <= 1, "between 0 and 1 (1: off)"},
		{"--min-p", o.minP, o.minP >= 0 && o.minP <= 1, "between 0 (off) and 1"},
		{"--repeat-penalty", o.repeatPenalty, o.repeatPenalty > 0 && !math.IsInf(o.repeatPenalty, 0), "more than 0 (1: off)"},
	}
	for _, c := range floats {
		if !c.ok { // NaN fails every comparison, so lands here too
			return fmt.Errorf("%s %g is out of range: must be %s", c.flag, c.v, c.rng)
		}
	}
	return nil
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "armor-run:", err)
		return 2
	}
	kernels.SetThreads(o.threads)
	mmap.SetMode(o.mmap)
	line := progress.NewLine(stderr)
	ld, err := armrt.OpenWith(o.device, o.model, o.tokenizer, true, armrt.OpenOptions{
		Warn:     func(msg string) { line.Clear(); fmt.Fprintln(stderr, "armor-run:", msg) },
		Progress: loadProgress(line, o.model),
	})
	line.Clear()
	if err != nil {
		fmt.Fprintln(stderr, "armor-run:", err)
		return 1
	}
	defer ld.Close()
	ctx := o.ctx
	if ctx <= 0 {
		ctx = min(ld.Tr.Config.Context, 4096)
	}
	if ctx > ld.Tr.Config.Context {
		fmt.Fprintf(stderr, "armor-run: --ctx %d exceeds the model's context of %d\n", ctx, ld.Tr.Config.Context)
		return 2
	}
	ld.Tr.KVF16 = o.kv.F16
	sc := armrt.SamplerConfig{Temp: float32(o.temp), TopK: o.topK, TopP: float32(o.topP), MinP: float32(o.minP),
		RepeatPenalty: float32(o.repeatPenalty), RepeatLastN: o.repeatLastN, Seed: uint64(o.seed)}
	sess, err := armrt.NewSession(ld.Tr, ld.Tok, ctx, sc)
	if err != nil {
		fmt.Fprintln(stderr, "armor-run:", err)
		return 1
	}
	if o.chat {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt)
		defer signal.Stop(sigs)
		return chatLoop(o, ld, sess, stdin, stdout, stderr, sigs)
	}
	prompt, err := ld.Tok.TokenizeErr(o.prompt, ld.Tok.AddBOSDefault() && !o.noBOS, true)
	if err != nil {
		fmt.Fprintln(stderr, "armor-run: --prompt:", err)
		return 1
	}
	sigctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	w := bufio.NewWriter(stdout)
	emit := func(s string) { w.WriteString(s); w.Flush() }
	if o.jsonOut {
		emit = nil
	} else {
		emit(o.prompt)
	}
	res, err := sess.Generate(sigctx, prompt, o.n, o.stops, emit)
	if err != nil {
		w.Flush()
		fmt.Fprintln(stderr, "\narmor-run:", err)
		return 1
	}
	if o.jsonOut {
		json.NewEncoder(w).Encode(map[string]any{
			"model": o.model, "prompt": o.prompt, "prompt_tokens": prompt, "tokens": res.Tokens, "text": res.Text,
			"stop_reason": res.StopReason, "prompt_tps": res.PromptTPS(), "decode_tps": decodeTPS(res),
			"load_seconds": ld.LoadTime.Seconds(), "weight_bytes": ld.Model.WeightBytes(), "bytes_per_token": ld.Tr.WeightBytes(),
			"kv_cache_bytes": sess.State.KVBytes(), "kv_type": o.kv.String(), "peak_rss_bytes": armrt.PeakRSS(), "weights_held": mmap.HeldAs(), "device": ld.Device,
			"threads": o.threads, "seed": o.seed,
		})
	} else {
		w.WriteString("\n")
	}
	w.Flush()
	if !o.quiet {
		printStats(stderr, ld, sess, res)
	}
	if res.StopReason == "context" {
		fmt.Fprintf(stderr, "armor-run: stopped: the context of %d tokens is full (raise --ctx, model maximum %d)\n", sess.State.Capacity, ld.Tr.Config.Context)
	}
	return 0
}

func printStats(w io.Writer, ld *armrt.Loaded, sess *armrt.Session, res *armrt.Result) {
	fmt.Fprintf(w, "\nload time    = %8.2f ms\n", float64(ld.LoadTime.Microseconds())/1000)
	fmt.Fprintf(w, "prompt eval  = %8.2f ms / %4d tokens (%8.2f tokens/s)\n", float64(res.PromptTime.Microseconds())/1000, res.PromptTokens, res.PromptTPS())
	fmt.Fprintf(w, "generation   = %8.2f ms / %4d tokens (%s)\n", float64(res.GenTime.Microseconds())/1000, len(res.Tokens), genRate(res, "tokens/s"))
	fmt.Fprintf(w, "memory       = weights %s %s (%s read per token), KV cache %s, peak RSS %s\n",
		armrt.FormatBytes(ld.Model.WeightBytes()), mmap.HeldAs(), armrt.FormatBytes(ld.Tr.WeightBytes()), armrt.FormatBytes(sess.State.KVBytes()), armrt.FormatBytes(armrt.PeakRSS()))
	fmt.Fprintf(w, "compute      = %s, %d threads, %s kernels\n", ld.Device, kernels.Threads(), kernelsISA())
}

// chatLoop reads user turns from stdin and answers them. sigs delivers
// Ctrl-C: during an answer it stops the answer; at the prompt it drops the
// line being typed and shows a fresh prompt, as a shell does (the terminal
// has already discarded the typed text), and is never carried over to stop
// the next answer.
func chatLoop(o *options, ld *armrt.Loaded, sess *armrt.Session, stdin io.Reader, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	tmpl, err := ld.ChatTemplate(o.template, func(msg string) { fmt.Fprintln(os.Stderr, "armor-run: "+msg) })
	if err != nil {
		fmt.Fprintln(stderr, "armor-run:", err)
		return 1
	}
	var msgs []chat.Message
	if o.system != "" {
		msgs = append(msgs, chat.Message{Role: "system", Content: o.system})
	}
	// Lines are read in their own goroutine, so the prompt can wait for a
	// line and a Ctrl-C at once.
	lines := make(chan string)
	go func() {
		defer close(lines)
		in := bufio.NewScanner(stdin)
		in.Buffer(make([]byte, 1<<20), 1<<20)
		for in.Scan() {
			lines <- in.Text()
		}
	}()
	w := bufio.NewWriter(stdout)
	fmt.Fprintf(stderr, "armor-run: chatting with %s (%s). Ctrl-C stops an answer or clears the line, Ctrl-D ends.\n", o.model, ld.Tr.Config.Arch)
	bos := ""
	if b := ld.Tok.BOS(); b >= 0 {
		bos = ld.Tok.Piece(b)
	}
	hinted := false
	for {
		fmt.Fprint(stdout, "> ")
		var line string
		select {
		case l, ok := <-lines:
			if !ok {
				fmt.Fprintln(stdout)
				return 0
			}
			line = strings.TrimSpace(l)
		case <-sigs:
			fmt.Fprintln(stdout)
			if !hinted {
				fmt.Fprintln(stderr, "armor-run: (Ctrl-C clears the line; Ctrl-D ends the chat)")
				hinted = true
			}
			continue
		}
		if line == "" {
			continue
		}
		msgs = append(msgs, chat.Message{Role: "user", Content: line})
		text, err := tmpl.Render(msgs, true)
		if err != nil {
			fmt.Fprintln(stderr, "armor-run:", err)
			return 1
		}
		addBOS := ld.Tok.AddBOSDefault() && !o.noBOS && !chat.StartsWithBOS(text, bos)
		prompt, err := ld.Tok.TokenizeErr(text, addBOS, true)
		if err != nil {
			fmt.Fprintln(stderr, "armor-run:", err)
			return 1
		}
		// A Ctrl-C that arrived after the line was read belongs to no
		// answer yet: drop it.
		select {
		case <-sigs:
		default:
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			select {
			case <-sigs:
				cancel()
			case <-done:
			}
		}()
		res, err := sess.Generate(ctx, prompt, o.n, o.stops, func(s string) { w.WriteString(s); w.Flush() })
		close(done)
		cancel()
		if err != nil {
			fmt.Fprintln(stderr, "\narmor-run:", err)
			var full *armrt.ErrContextFull
			if errors.As(err, &full) || strings.Contains(err.Error(), "does not fit the context") {
				msgs = msgs[:len(msgs)-1]
				continue
			}
			return 1
		}
		fmt.Fprintln(w)
		w.Flush()
		if res.StopReason == "interrupted" {
			fmt.Fprintln(stderr, "[stopped]")
		}
		msgs = append(msgs, chat.Message{Role: "assistant", Content: strings.TrimSpace(res.Text)})
		if !o.quiet {
			rate := "no decode step"
			if len(res.Tokens) >= 2 {
				rate = fmt.Sprintf("%.1f t/s", res.GenTPS())
			}
			fmt.Fprintf(stderr, "[%d prompt tokens at %.1f t/s, %d tokens, %s]\n", res.PromptTokens, res.PromptTPS(), len(res.Tokens), rate)
		}
	}
}

// loadProgress shows the model's loading on line: the bytes read into
// memory, then the blocks built.
func loadProgress(line *progress.Line, model string) func(stage string, done, total int64) {
	start := time.Now()
	return func(stage string, done, total int64) {
		el := time.Since(start).Round(time.Second)
		if stage == "reading" {
			line.Show(fmt.Sprintf("armor-run: loading %s: read %s of %s (%s)", model, armrt.FormatBytes(done), armrt.FormatBytes(total), el))
			return
		}
		line.Show(fmt.Sprintf("armor-run: loading %s: built %d of %d blocks (%s)", model, done, total, el))
	}
}

// genRate is the generation speed for the statistics. The first generated
// token comes from the prompt's logits, so with one token there was no
// decode step to time, and the rate says so instead of printing 0.
func genRate(res *armrt.Result, unit string) string {
	if len(res.Tokens) < 2 {
		return "no decode step: the first token comes from the prompt's logits"
	}
	return fmt.Sprintf("%8.2f %s", res.GenTPS(), unit)
}

// decodeTPS is the JSON decode_tps: null when no decode step was timed.
func decodeTPS(res *armrt.Result) any {
	if len(res.Tokens) < 2 {
		return nil
	}
	return res.GenTPS()
}

func kernelsISA() string { return kernels.ISA().String() }
