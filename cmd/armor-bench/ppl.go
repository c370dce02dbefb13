package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/armor-llm/armor/bench"
	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/model/mmap"
	armrt "github.com/armor-llm/armor/runtime"
)

// errUsage marks a flag error already reported by the flag package.
var errUsage = errors.New("usage")

func pplCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("armor-bench ppl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("m", "", "model file or directory (required)")
	tokPath := fs.String("tokenizer", "", "tokenizer to use instead of the model's")
	text := fs.String("text", "", "text file to evaluate (required)")
	ctx := fs.Int("ctx", 512, "window size in tokens")
	maxBytes := fs.Int("max-bytes", 0, "use only the first N bytes of the text (0: all)")
	threads := fs.Int("threads", runtime.NumCPU(), "threads")
	jsonOut := fs.Bool("json", false, "print one JSON object")
	device := fs.String("device", "cpu", "cpu or cuda")
	var held mmap.Mode
	fs.Var(&held, "mmap", mmap.FlagHelp)
	var kv armrt.KVType
	fs.Var(&kv, "kv-type", armrt.KVTypeHelp)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `armor-bench ppl: perplexity computed as llama.cpp's llama-perplexity does (text
tokenized once with BOS, non-overlapping windows of --ctx tokens whose first
token is replaced by BOS, only the second half of each window scored), so the
two give the same figure on the same GGUF.

Flags:`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if *model == "" || *text == "" {
		fs.Usage()
		return errors.New("ppl: -m MODEL and --text FILE are required")
	}
	if *threads < 1 {
		return fmt.Errorf("ppl: --threads %d is out of range: must be at least 1", *threads)
	}
	if *ctx < 2 {
		return fmt.Errorf("ppl: --ctx %d is out of range: must be at least 2 (half of each window is scored)", *ctx)
	}
	if *maxBytes < 0 {
		return fmt.Errorf("ppl: --max-bytes %d is out of range: must be 0 (all) or more", *maxBytes)
	}
	kernels.SetThreads(*threads)
	mmap.SetMode(held)
	raw, err := os.ReadFile(*text)
	if err != nil {
		return fmt.Errorf("ppl: %w", err)
	}
	if *maxBytes > 0 && *maxBytes < len(raw) {
		raw = raw[:*maxBytes]
	}
	// llama-perplexity reads the file with common's -f handler, which drops
	// one trailing newline; do the same so token counts agree.
	if n := len(raw); n > 0 && raw[n-1] == '\n' {
		raw = raw[:n-1]
	}
	ld, err := armrt.OpenOn(*device, *model, *tokPath, true, func(msg string) { fmt.Fprintln(stderr, "armor-bench:", msg) })
	if err != nil {
		return err
	}
	defer ld.Close()
	ld.Tr.KVF16 = kv.F16
	tokens, err := ld.Tok.TokenizeErr(string(raw), ld.Tok.AddBOSDefault(), false)
	if err != nil {
		return err
	}
	progress := newProgress(stderr, "ppl: window", *jsonOut)
	res, err := bench.Perplexity(ld.Tr, tokens, *ctx, ld.Tok.BOS(), progress)
	if err != nil {
		return err
	}
	if *jsonOut {
		out := struct {
			Model  string `json:"model"`
			Text   string `json:"text"`
			KVType string `json:"kv_type"`
			*bench.PPLResult
		}{*model, *text, kv.String(), res}
		return json.NewEncoder(stdout).Encode(out)
	}
	fmt.Fprintf(stdout, "%s: %d tokens, %d windows of %d, %d scored, %.1f s\n", *model, res.Tokens, res.Chunks, res.Ctx, res.Scored, res.Seconds)
	fmt.Fprintf(stdout, "perplexity: %.4f\n", res.Perplexity)
	return nil
}

// newProgress reports "label done/total" at most twice a second, on one
// redrawn line when w is a terminal and as plain lines otherwise.
func newProgress(w io.Writer, label string, quiet bool) func(done, total int) {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	start := time.Now()
	last := start
	return func(done, total int) {
		if quiet {
			return
		}
		now := time.Now()
		if done != total && now.Sub(last) < 500*time.Millisecond {
			return
		}
		if !tty && done != total && now.Sub(last) < 10*time.Second {
			return
		}
		last = now
		eta := ""
		if done > 0 && done < total {
			rem := time.Duration(float64(now.Sub(start)) / float64(done) * float64(total-done))
			eta = fmt.Sprintf(", ETA %s", rem.Round(time.Second))
		}
		if tty {
			fmt.Fprintf(w, "\r%s %d/%d (%s%s)   ", label, done, total, now.Sub(start).Round(time.Second), eta)
			if done == total {
				fmt.Fprintln(w)
			}
		} else {
			fmt.Fprintf(w, "%s %d/%d (%s%s)\n", label, done, total, now.Sub(start).Round(time.Second), eta)
		}
	}
}
