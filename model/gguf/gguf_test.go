package gguf

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/armor-llm/armor/model/tensor"
)

func writeSample(t *testing.T) (string, []*tensor.Tensor) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	ts := []*tensor.Tensor{
		{Name: "a", DType: tensor.F32, Shape: []int{3, 5}, Data: make([]byte, 60)},
		{Name: "b", DType: tensor.F16, Shape: []int{7}, Data: make([]byte, 14)},
		{Name: "c", DType: tensor.Q8_0, Shape: []int{2, 32}, Data: make([]byte, 68)},
		// Last tensor fills whole alignment units, so any truncation cuts data.
		{Name: "d", DType: tensor.F32, Shape: []int{8}, Data: make([]byte, 32)},
	}
	for _, x := range ts {
		for i := range x.Data {
			x.Data[i] = byte(i*7 + len(x.Name))
		}
	}
	kvs := []KV{
		{"general.architecture", "llama"},
		{"llama.block_count", uint32(5)},
		{"llama.rope.freq_base", float32(10000)},
		{"tokenizer.ggml.tokens", []string{"a", "bc", ""}},
		{"tokenizer.ggml.scores", []float32{1, 2.5}},
		{"tokenizer.ggml.token_type", []int32{1, 3}},
		{"flag", true},
	}
	if err := Write(path, kvs, ts); err != nil {
		t.Fatal(err)
	}
	return path, ts
}

func TestRoundTrip(t *testing.T) {
	path, ts := writeSample(t)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if s, _ := f.String("general.architecture"); s != "llama" {
		t.Errorf("architecture %q", s)
	}
	if n, _ := f.Uint("llama.block_count"); n != 5 {
		t.Errorf("block_count %d", n)
	}
	if v, _ := f.Float("llama.rope.freq_base"); v != 10000 {
		t.Errorf("freq_base %v", v)
	}
	if s, _ := f.Strings("tokenizer.ggml.tokens"); !reflect.DeepEqual(s, []string{"a", "bc", ""}) {
		t.Errorf("tokens %q", s)
	}
	if b, _ := f.Bool("flag"); !b {
		t.Error("flag")
	}
	for _, want := range ts {
		got := f.Tensor(want.Name)
		if got == nil {
			t.Fatalf("tensor %s missing", want.Name)
		}
		if got.DType != want.DType || !reflect.DeepEqual(got.Shape, want.Shape) || !reflect.DeepEqual(got.Data, want.Data) {
			t.Errorf("tensor %s: got %v", want.Name, got)
		}
	}
}

// Every truncation of a valid file must give an error, never a panic.
func TestTruncatedAndCorrupted(t *testing.T) {
	path, _ := writeSample(t)
	full, _ := os.ReadFile(path)
	dir := t.TempDir()
	for n := 0; n < len(full); n += 1 + n/16 {
		p := filepath.Join(dir, "trunc.gguf")
		os.WriteFile(p, full[:n], 0o644)
		if f, err := Open(p); err == nil {
			f.Close()
			t.Fatalf("truncated to %d bytes: no error", n)
		} else if !strings.Contains(err.Error(), p) {
			t.Fatalf("error does not name the file: %v", err)
		}
	}
	// Flip every byte of the header to a large value: errors or a valid
	// parse, never a panic or an enormous allocation.
	for i := 4; i < 400 && i < len(full); i++ {
		b := append([]byte(nil), full...)
		b[i] = 0xff
		p := filepath.Join(dir, "bad.gguf")
		os.WriteFile(p, b, 0o644)
		if f, err := Open(p); err == nil {
			f.Close()
		}
	}
}

func TestBadMagicAndType(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.gguf")
	os.WriteFile(p, []byte("GGUX\x03\x00\x00\x00"), 0o644)
	if _, err := Open(p); err == nil || !strings.Contains(err.Error(), "magic") {
		t.Fatalf("bad magic: %v", err)
	}
}
