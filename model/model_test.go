package model_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/armor-llm/armor/internal/testdata"
	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
)

func tiny() model.Config {
	return model.Config{Arch: "qwen2", Dim: 16, Hidden: 24, Layers: 1, Heads: 2, KVHeads: 1, HeadDim: 8, Vocab: 20, Context: 32,
		NormEps: 1e-6, RopeTheta: 10000, RopeHalves: true, Tied: true, QKBias: true}
}

func wantErr(t *testing.T, path string, parts ...string) {
	t.Helper()
	m, err := model.Load(path)
	if err == nil {
		m.Close()
		t.Fatalf("%s: loaded without error", path)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not mention %q", err, p)
		}
	}
}

func TestLoadStoriesBothFormats(t *testing.T) {
	for _, f := range []string{"models/stories260K.gguf", "models/stories260K.bin"} {
		m, err := model.Load(testdata.File(t, f))
		if err != nil {
			t.Fatal(err)
		}
		c := m.Config
		if c.Dim != 64 || c.Hidden != 172 || c.Layers != 5 || c.Heads != 8 || c.KVHeads != 4 || c.Vocab != 512 {
			t.Errorf("%s: config %+v", f, c)
		}
		m.Close()
	}
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	// Truncated llama2.c checkpoint.
	full, err := os.ReadFile(testdata.File(t, "models/stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "trunc.bin")
	os.WriteFile(p, full[:len(full)/2], 0o644)
	wantErr(t, p, p, "truncated")
	// Truncated GGUF.
	full, _ = os.ReadFile(testdata.File(t, "models/stories260K.gguf"))
	p = filepath.Join(dir, "trunc.gguf")
	os.WriteFile(p, full[:len(full)-1000], 0o644)
	wantErr(t, p, p, "truncated")
	// Not a model at all.
	p = filepath.Join(dir, "junk.bin")
	os.WriteFile(p, []byte("hello, this is not a model file at all"), 0o644)
	wantErr(t, p, p, "not a GGUF")
	wantErr(t, filepath.Join(dir, "missing.gguf"), "missing.gguf")
}

func TestBadHFCheckpoints(t *testing.T) {
	dir := t.TempDir()
	if err := synth.WriteHF(dir, tiny(), tensor.F16, 1); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	cfgPath := filepath.Join(dir, "config.json")
	orig, _ := os.ReadFile(cfgPath)
	edit := func(from, to string) {
		os.WriteFile(cfgPath, []byte(strings.Replace(string(orig), from, to, 1)), 0o644)
	}
	edit(`"intermediate_size": 24`, `"intermediate_size": 25`)
	wantErr(t, dir, "ffn_", "shape")
	edit(`"model_type": "qwen2"`, `"model_type": "gpt_neox"`)
	wantErr(t, dir, "gpt_neox", "config.json")
	edit(`"num_key_value_heads": 1`, `"num_key_value_heads": 3`)
	wantErr(t, dir, "kv heads")
	os.WriteFile(cfgPath, orig, 0o644)
	// Missing tensor file.
	st := filepath.Join(dir, "model.safetensors")
	data, _ := os.ReadFile(st)
	os.WriteFile(st, data[:len(data)-10], 0o644)
	wantErr(t, dir, "model.safetensors")
	os.Remove(st)
	wantErr(t, dir, "model.safetensors")
}

func TestMissingTokenizer(t *testing.T) {
	dir := t.TempDir()
	synth.WriteHF(dir, tiny(), tensor.F32, 1)
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Tokenizer(); err == nil || !strings.Contains(err.Error(), "no tokenizer") {
		t.Fatalf("missing tokenizer: %v", err)
	}
}

func TestGenerationConfigEOS(t *testing.T) {
	dir := t.TempDir()
	c := tiny()
	c.Vocab = 128300
	c.Layers = 1
	if err := synth.WriteHF(dir, c, tensor.BF16, 1); err != nil {
		t.Fatal(err)
	}
	td := testdata.Dir(t)
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(td, "tokenizers", "llama3", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(`{"eos_token_id": [128001, 128008, 128009]}`), 0o644)
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := m.Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	if !tok.IsEOG(128008) || !tok.IsEOG(128009) || tok.IsEOG(100) {
		t.Fatal("generation_config.json eos ids not honoured")
	}
	if m.ChatTemplate() == "" {
		t.Fatal("chat template of tokenizer_config.json not found")
	}
}
