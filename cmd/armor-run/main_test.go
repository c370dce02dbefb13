package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/armor-llm/armor/internal/testdata"
	"github.com/armor-llm/armor/kernels/cuda"
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
		{[]string{"-m", m, "-p", "x", "--threads", "0"}, 2, "--threads"},
		{[]string{"-m", m, "-p", "x", "stray"}, 2, "unexpected argument"},
		{[]string{"-m", m, "-p", "x", "--mmap", "sometimes"}, 2, `"sometimes" for flag -mmap: use auto`},
		{[]string{"-m", m, "-p", "x", "--kv-type", "f8"}, 2, `"f8" for flag -kv-type: use f32 or f16`},
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
