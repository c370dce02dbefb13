package model

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/armor-llm/armor/model/mmap"
	"github.com/armor-llm/armor/model/tensor"
)

// Model is a loaded checkpoint: configuration, tensors under canonical
// (GGUF-style) names, and what is needed to build its tokenizer.
type Model struct {
	Path    string
	Format  string // gguf, hf, llama2c, armor
	Config  Config
	Tensors map[string]*tensor.Tensor
	Vocab   *Vocab // tokenizer description; nil when the file carries none

	// Armor is the header of an .armor file (how each linear layer is
	// stored, provenance); nil for other formats.
	Armor *ArmorHeader

	// Notes are things a user should know about the file that do not stop
	// it from loading (an older format version, say); CLIs print them.
	Notes []string

	closers []func() error
}

// Vocab describes where the tokenizer comes from.
type Vocab struct {
	// Kind: "spm" (SentencePiece BPE with scores), "bpe" (byte-level BPE),
	// "hf" (a tokenizer.json in Dir), "hf-embedded" (tokenizer.json and
	// tokenizer_config.json contents held in HFTokenizer and HFConfig),
	// "llama2c" (a tokenizer.bin at Path), "spm-model" (tokenizer.model at
	// Path).
	Kind   string    `json:"kind"`
	Tokens []string  `json:"tokens,omitempty"`
	Scores []float32 `json:"scores,omitempty"`
	Types  []int32   `json:"types,omitempty"`
	Merges []string  `json:"merges,omitempty"`
	Pre    string    `json:"pre,omitempty"` // llama.cpp pre-tokenizer name for "bpe"
	BOS    int       `json:"bos"`
	EOS    int       `json:"eos"`
	EOT    int       `json:"eot"` // -1 if none
	UNK    int       `json:"unk"`
	AddBOS bool      `json:"add_bos"`
	// NoSpacePrefix: SentencePiece without the leading "▁" (GGUF
	// tokenizer.ggml.add_space_prefix = false).
	NoSpacePrefix bool   `json:"no_space_prefix,omitempty"`
	Dir           string `json:"-"`
	Path          string `json:"-"`
	// HFTokenizer and HFConfig hold tokenizer.json and tokenizer_config.json.
	HFTokenizer string `json:"hf_tokenizer_json,omitempty"`
	HFConfig    string `json:"hf_tokenizer_config_json,omitempty"`
	// ChatTemplate is the Jinja template carried by the file, if any.
	ChatTemplate string `json:"chat_template,omitempty"`
	// ExtraEOG are more end-of-generation ids, e.g. generation_config.json's
	// eos_token_id list (Llama 3 instruct models end turns with <|eot_id|>).
	ExtraEOG []int `json:"extra_eog,omitempty"`
}

// OnClose adds f to what Close releases (memory that a runtime built from
// the model's tensors, for example).
func (m *Model) OnClose(f func() error) { m.closers = append(m.closers, f) }

// Evict drops the model's mapped tensor pages from this process's memory
// (mmap.Evict): what is read does not change, the pages come back from the
// file when read again. A converter calls it when a pass over the whole
// model (calibration) is done, so that the pages it touched stop counting
// in its memory while it converts one layer at a time. Tensors held as
// private copies are left alone.
func (m *Model) Evict() {
	for _, t := range m.Tensors {
		mmap.Evict(t.Data)
	}
}

// Close releases the memory mappings; tensors must not be used afterwards.
func (m *Model) Close() error {
	var errs []error
	for _, c := range m.closers {
		errs = append(errs, c())
	}
	m.closers = nil
	return errors.Join(errs...)
}

// Load opens a model file or directory, detecting its format: a directory
// with config.json (Hugging Face), a GGUF file, an .armor file, or a llama2.c
// checkpoint.
func Load(path string) (*Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	var m *Model
	if st.IsDir() {
		m, err = loadHF(path)
	} else {
		var magic [4]byte
		f, err2 := os.Open(path)
		if err2 != nil {
			return nil, fmt.Errorf("model: %w", err2)
		}
		n, _ := f.Read(magic[:])
		f.Close()
		switch {
		case n == 4 && string(magic[:]) == "GGUF":
			m, err = loadGGUF(path)
		case n == 4 && string(magic[:]) == armorMagic:
			m, err = loadArmor(path)
		case strings.HasSuffix(path, ".json") || filepath.Base(path) == "config.json":
			m, err = loadHF(filepath.Dir(path))
		default:
			m, err = loadLlama2c(path)
		}
	}
	if err != nil {
		return nil, err
	}
	if err := m.check(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// armorMagic starts every .armor file; the reader lives in armorfile.go.
const armorMagic = "ARMR"

// check validates config and tensor shapes.
func (m *Model) check() error {
	c := &m.Config
	if err := c.Validate(); err != nil {
		return fmt.Errorf("model: %s: %w", m.Path, err)
	}
	// Every layer has at least its two norm vectors: a header claiming more
	// layers than the file has tensors for is refused before anything is
	// built per layer.
	if c.Layers > len(m.Tensors)/2 {
		return fmt.Errorf("model: %s: config claims %d layers but the file holds only %d tensors (each layer needs at least 2)", m.Path, c.Layers, len(m.Tensors))
	}
	// Checked in a fixed order (embeddings, then layer by layer), so that
	// the first missing tensor reported is the same on every run.
	type wantT struct {
		name  string
		shape []int
	}
	want := []wantT{{"token_embd.weight", []int{c.Vocab, c.Dim}}, {"output_norm.weight", []int{c.Dim}}}
	if !c.Tied {
		want = append(want, wantT{"output.weight", []int{c.Vocab, c.Dim}})
	}
	check := func(w []wantT) error {
		for _, w := range w {
			t := m.Tensors[w.name]
			if t == nil {
				return fmt.Errorf("model: %s: tensor %s is missing (architecture %s)", m.Path, w.name, c.Arch)
			}
			if !sameShape(t.Shape, w.shape) {
				return fmt.Errorf("model: %s: tensor %s has shape %v, want %v", m.Path, w.name, t.Shape, w.shape)
			}
			if _, ok := t.DType.Kernel(); !ok && t.DType != tensor.Q8_0 && t.DType != tensor.Q4_0 {
				return fmt.Errorf("model: %s: tensor %s has dtype %v, which cannot be used as a weight", m.Path, w.name, t.DType)
			}
		}
		return nil
	}
	if err := check(want); err != nil {
		return err
	}
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		want = append(want[:0], wantT{p + "attn_norm.weight", []int{c.Dim}}, wantT{p + "ffn_norm.weight", []int{c.Dim}})
		if c.QKNorm {
			want = append(want, wantT{p + "attn_q_norm.weight", []int{c.HeadDim}}, wantT{p + "attn_k_norm.weight", []int{c.HeadDim}})
		}
		for _, name := range LayerLinears(l) {
			kind := name[strings.LastIndexByte(name, '.')+1:]
			r, cc := c.LinearShape(kind)
			if m.Format != "armor" || m.Tensors[name+".weight"] != nil {
				want = append(want, wantT{name + ".weight", []int{r, cc}})
			}
			if c.QKBias && (kind == "attn_q" || kind == "attn_k" || kind == "attn_v") {
				want = append(want, wantT{name + ".bias", []int{r}})
			}
		}
		if err := check(want); err != nil {
			return err
		}
	}
	if t := m.Tensors["rope_freqs.weight"]; t != nil && (t.Elements() != c.HeadDim/2 || t.DType != tensor.F32) {
		return fmt.Errorf("model: %s: rope_freqs.weight has %d %v elements, want %d F32", m.Path, t.Elements(), t.DType, c.HeadDim/2)
	}
	return nil
}

func sameShape(a, b []int) bool {
	// A vector may be stored as [n] or [1, n].
	for len(a) > 1 && a[0] == 1 {
		a = a[1:]
	}
	return slices.Equal(a, b)
}

// WeightBytes sums the stored bytes of all tensors.
func (m *Model) WeightBytes() int64 {
	var n int64
	for _, t := range m.Tensors {
		n += int64(len(t.Data))
	}
	return n
}
