package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/armor-llm/armor/internal/testdata"
	"github.com/armor-llm/armor/kernels/cuda"
	armrt "github.com/armor-llm/armor/runtime"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, strings.NewReader(""), &o, &e)
	return code, o.String(), e.String()
}

func TestGreedyDeterministic(t *testing.T) {
	m := testdata.File(t, "models/stories260K.gguf")
	code, out1, errs := runCmd("-m", m, "-p", "Once upon a time", "-n", "24", "--temp", "0", "--threads", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	_, out2, _ := runCmd("-m", m, "-p", "Once upon a time", "-n", "24", "--temp", "0", "--threads", "2")
	if out1 != out2 || !strings.HasPrefix(out1, "Once upon a time") || len(out1) < 40 {
		t.Fatalf("greedy output differs between 1 and 2 threads or is too short:\n%q\n%q", out1, out2)
	}
	if !strings.Contains(errs, "tokens/s") {
		t.Errorf("no statistics on stderr: %q", errs)
	}
	// Mapped and copied weights are the same bytes, and the statistics say
	// which way they were held.
	for mode, held := range map[string]string{"yes": "mapped", "no": "copied"} {
		_, out, errs := runCmd("-m", m, "-p", "Once upon a time", "-n", "24", "--temp", "0", "--mmap", mode)
		if out != out1 || !strings.Contains(errs, held+" (") {
			t.Errorf("--mmap %s: output %q (want %q), stderr %q (want %q)", mode, out, out1, errs, held)
		}
	}
}

// The command prints exactly llama.cpp's greedy continuation.
func TestGreedyMatchesLlamaCpp(t *testing.T) {
	var g testdata.Greedy
	testdata.LlamaCpp(t, "greedy_once_upon_a_time.json", &g)
	m := testdata.File(t, "models/stories260K.gguf")
	code, out, errs := runCmd("-m", m, "-p", "Once upon a time", "-n", "48", "--temp", "0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if want := "Once upon a time" + g.Text + "\n"; out != want {
		t.Fatalf("stdout\n got %q\nwant %q", out, want)
	}
	// With an f16 KV cache (llama.cpp's own kind) too; the JSON summary
	// says which cache ran and its size is half the f32 one's.
	kvBytes := map[string]float64{}
	for _, kv := range []string{"f32", "f16"} {
		code, out, errs := runCmd("-m", m, "-p", "Once upon a time", "-n", "48", "--temp", "0", "--kv-type", kv, "--json")
		if code != 0 {
			t.Fatalf("--kv-type %s: exit %d: %s", kv, code, errs)
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		if r["text"] != g.Text || r["kv_type"] != kv {
			t.Fatalf("--kv-type %s: text %q, kv_type %v; want %q", kv, r["text"], r["kv_type"], g.Text)
		}
		kvBytes[kv], _ = r["kv_cache_bytes"].(float64)
	}
	if !(kvBytes["f16"] > 0 && kvBytes["f16"]*2 == kvBytes["f32"]) {
		t.Errorf("KV cache bytes %v", kvBytes)
	}
}

func TestBadInput(t *testing.T) {
	m := testdata.File(t, "models/stories260K.gguf")
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.gguf")
	os.WriteFile(junk, []byte("GGUF\x03\x00\x00\x00\x01"), 0o644)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-p", "hi"}, 2, "no model"},
		{[]string{"-m", m}, 2, "no prompt"},
		{[]string{"-m", filepath.Join(dir, "nope.gguf"), "-p", "x"}, 1, "nope.gguf"},
		{[]string{"-m", junk, "-p", "x"}, 1, "junk.gguf"},
		{[]string{"-m", m, "-p", strings.Repeat("Once upon a time ", 20), "--ctx", "16"}, 1, "does not fit the context"},
		{[]string{"-m", m, "-p", "x", "--ctx", "100000"}, 2, "exceeds the model's context"},
		{[]string{"-m", m, "-p", "x", "--threads", "0"}, 2, "--threads 0 is out of range: must be at least 1"},
		{[]string{"-m", m, "-p", "x", "stray"}, 2, "unexpected argument"},
		{[]string{"-m", m, "-p", "x", "--mmap", "sometimes"}, 2, `"sometimes" for flag -mmap: use auto`},
		{[]string{"-m", m, "-p", "x", "--kv-type", "f8"}, 2, `"f8" for flag -kv-type: use f32 or f16`},
		{[]string{"-m", m, "-p", "x", "-n", "-5"}, 2, "-n -5 is out of range: must be -1 (until end of text or context) or more"},
		{[]string{"-m", m, "-p", "x", "--top-p", "7"}, 2, "--top-p 7 is out of range: must be between 0 and 1"},
		{[]string{"-m", m, "-p", "x", "--min-p", "1.5"}, 2, "--min-p 1.5 is out of range"},
		{[]string{"-m", m, "-p", "x", "--temp", "-1"}, 2, "--temp -1 is out of range: must be 0 (greedy) or more"},
		{[]string{"-m", m, "-p", "x", "--temp", "NaN"}, 2, "--temp NaN is out of range"},
		{[]string{"-m", m, "-p", "x", "--top-k", "-3"}, 2, "--top-k -3 is out of range"},
		{[]string{"-m", m, "-p", "x", "--repeat-penalty", "0"}, 2, "--repeat-penalty 0 is out of range: must be more than 0"},
		{[]string{"-m", m, "-p", "x", "--repeat-last-n", "-2"}, 2, "--repeat-last-n -2 is out of range"},
		{[]string{"-m", m, "-p", "x", "--ctx", "-1"}, 2, "--ctx -1 is out of range"},
		{[]string{"-m", m, "-p", "x", "--seed", "-7"}, 2, "--seed -7 is out of range: must be -1 (random) or more"},
	}
	for _, c := range cases {
		code, _, errs := runCmd(c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", c.args, code, errs, c.code, c.want)
		}
	}
}

func TestChatEndsOnEOF(t *testing.T) {
	m := testdata.File(t, "models/stories260K.gguf")
	var o, e bytes.Buffer
	code := run([]string{"-m", m, "--chat", "-n", "8", "--temp", "0"}, strings.NewReader("Tell me a story\n"), &o, &e)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, e.String())
	}
	if !strings.Contains(o.String(), "> ") || len(o.String()) < 8 {
		t.Fatalf("chat output %q", o.String())
	}
}

// Without a GPU, --device cuda fails with a message that names the missing
// library and where it looked.
func TestDeviceCUDAWithoutGPU(t *testing.T) {
	if _, err := cuda.Available(); err == nil {
		t.Skip("a CUDA device is present")
	}
	m := testdata.File(t, "models/stories260K.gguf")
	code, _, errs := runCmd("-m", m, "-p", "x", "--device", "cuda")
	if code == 0 || !strings.Contains(errs, "libcuda") || !strings.Contains(errs, "ARMOR_CUDA_LIBS") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	code, _, errs = runCmd("-m", m, "-p", "x", "--device", "tpu")
	if code == 0 || !strings.Contains(errs, "cpu or cuda") {
		t.Fatalf("--device tpu: exit %d: %s", code, errs)
	}
}

// The shared llama2.c checkpoint with its tokenizer.bin gives, through the
// command, exactly the GGUF's greedy text, which begins with llama2.c's own
// greedy output (the prompt is that output's first tokens).
func TestLlama2cBinMatchesGGUF(t *testing.T) {
	gguf := testdata.File(t, "models/stories260K.gguf")
	bin := testdata.File(t, "models/stories260K.bin")
	tok := testdata.File(t, "models/tok512.bin")
	args := []string{"-p", "Once upon a time", "-n", "200", "--temp", "0", "--quiet"}
	code, want, errs := runCmd(append([]string{"-m", gguf}, args...)...)
	if code != 0 {
		t.Fatalf("gguf: exit %d: %s", code, errs)
	}
	code, got, errs := runCmd(append([]string{"-m", bin, "--tokenizer", tok}, args...)...)
	if code != 0 {
		t.Fatalf("stories260K.bin: exit %d: %s", code, errs)
	}
	if !strings.HasPrefix(got, testdata.Llama2cStoriesGreedy) {
		t.Errorf("stories260K.bin: output does not begin with llama2.c's reference:\n got %q\nwant %q", got, testdata.Llama2cStoriesGreedy)
	}
	if got != want {
		t.Fatalf("stories260K.bin --tokenizer tok512.bin:\n got %q\nwant %q (the GGUF's)", got, want)
	}
}

// One generated token has no decode step to time: the statistics say so
// instead of "0.00 tokens/s", and the JSON rate is null.
func TestOneTokenRate(t *testing.T) {
	m := testdata.File(t, "models/stories260K.gguf")
	code, _, errs := runCmd("-m", m, "-p", "Once upon a time", "-n", "1", "--temp", "0")
	if code != 0 || !strings.Contains(errs, "1 tokens (no decode step") || strings.Contains(errs, "0.00 tokens/s") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	code, out, errs := runCmd("-m", m, "-p", "Once upon a time", "-n", "1", "--temp", "0", "--json")
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil {
		t.Fatalf("exit %d, %v: %s %s", code, err, out, errs)
	}
	if v, ok := r["decode_tps"]; !ok || v != nil {
		t.Errorf("decode_tps %v (present %v), want null", v, ok)
	}
}

// syncBuffer is a bytes.Buffer safe to read while the chat writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A Ctrl-C at the prompt gives a fresh prompt and is not kept to stop the
// next answer, which runs to its full length.
func TestChatCtrlCAtPrompt(t *testing.T) {
	m := testdata.File(t, "models/stories260K.gguf")
	o, err := parse([]string{"-m", m, "--chat", "-n", "8", "--temp", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ld, err := armrt.Open(m, "", true)
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	sess, err := armrt.NewSession(ld.Tr, ld.Tok, 256, armrt.SamplerConfig{Temp: 0})
	if err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	var out, errb syncBuffer
	sigs := make(chan os.Signal, 1)
	done := make(chan int)
	go func() { done <- chatLoop(o, ld, sess, inR, &out, &errb, sigs) }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; stdout %q, stderr %q", what, out.String(), errb.String())
			}
		}
	}
	waitFor("the first prompt", func() bool { return strings.Count(out.String(), "> ") == 1 })
	sigs <- os.Interrupt
	waitFor("a fresh prompt", func() bool { return strings.Count(out.String(), "> ") == 2 })
	if !strings.Contains(errb.String(), "Ctrl-C clears the line") {
		t.Errorf("no hint on stderr: %q", errb.String())
	}
	inW.Write([]byte("Tell me a story\n"))
	waitFor("the answer", func() bool { return strings.Count(out.String(), "> ") == 3 })
	inW.Close()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if strings.Contains(errb.String(), "[stopped]") || !strings.Contains(errb.String(), ", 8 tokens,") {
		t.Fatalf("the answer was cut short: stderr %q, stdout %q", errb.String(), out.String())
	}
}
