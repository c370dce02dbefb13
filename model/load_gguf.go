package model

import (
	"fmt"

	"github.com/armor-llm/armor/model/gguf"
	"github.com/armor-llm/armor/model/tensor"
)

func loadGGUF(path string) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	m, err := ggufModel(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	m.closers = append(m.closers, f.Close)
	return m, nil
}

// ggufModel reads the configuration, tensors and vocabulary of a parsed
// GGUF file.
func ggufModel(path string, f *gguf.File) (*Model, error) {
	m := &Model{Path: path, Format: "gguf", Tensors: map[string]*tensor.Tensor{}}
	for _, t := range f.Tensors {
		m.Tensors[t.Name] = t
	}
	if err := ggufConfig(f, m); err != nil {
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	m.Vocab = ggufVocab(f)
	return m, nil
}

func ggufConfig(f *gguf.File, m *Model) error {
	arch, ok := f.String("general.architecture")
	if !ok {
		return fmt.Errorf("metadata general.architecture is missing")
	}
	a, err := LookupArch(arch)
	if err != nil {
		return err
	}
	c := &m.Config
	c.Arch = a.Name
	c.RopeHalves, c.QKBias, c.QKNorm = a.GGUFRopeHalves, a.QKBias, a.QKNorm
	geti := func(key string, dst *int, required bool) error {
		v, ok := f.Uint(arch + "." + key)
		if !ok {
			if required {
				return fmt.Errorf("metadata %s.%s is missing", arch, key)
			}
			return nil
		}
		if v > 1<<31 {
			return fmt.Errorf("metadata %s.%s = %d is out of range", arch, key, v)
		}
		*dst = int(v)
		return nil
	}
	for _, k := range []struct {
		key string
		dst *int
	}{{"embedding_length", &c.Dim}, {"feed_forward_length", &c.Hidden}, {"block_count", &c.Layers}, {"attention.head_count", &c.Heads}} {
		if err := geti(k.key, k.dst, true); err != nil {
			return err
		}
	}
	c.KVHeads = c.Heads
	geti("attention.head_count_kv", &c.KVHeads, false)
	geti("context_length", &c.Context, false)
	if c.Context == 0 {
		c.Context = 2048
	}
	if c.Heads > 0 {
		c.HeadDim = c.Dim / c.Heads
	}
	geti("attention.key_length", &c.HeadDim, false)
	c.NormEps = 1e-5
	if v, ok := f.Float(arch + ".attention.layer_norm_rms_epsilon"); ok {
		c.NormEps = v
	}
	c.RopeTheta = 10000
	if v, ok := f.Float(arch + ".rope.freq_base"); ok {
		c.RopeTheta = v
	}
	if t, ok := f.String(arch + ".rope.scaling.type"); ok && t != "none" && t != "" {
		return fmt.Errorf("rope scaling %q in GGUF metadata is not supported", t)
	}
	if emb := f.Tensor("token_embd.weight"); emb != nil && len(emb.Shape) == 2 {
		c.Vocab = emb.Shape[0]
	}
	c.Tied = f.Tensor("output.weight") == nil
	return nil
}

func ggufVocab(f *gguf.File) *Vocab {
	kind, _ := f.String("tokenizer.ggml.model")
	toks, ok := f.Strings("tokenizer.ggml.tokens")
	if !ok {
		return nil
	}
	v := &Vocab{Tokens: toks, BOS: -1, EOS: -1, EOT: -1, UNK: -1}
	switch kind {
	case "llama":
		v.Kind = "spm"
		v.AddBOS = true
	case "gpt2":
		v.Kind = "bpe"
	default:
		v.Kind = kind
	}
	v.Scores, _ = f.KV["tokenizer.ggml.scores"].([]float32)
	v.Types, _ = f.KV["tokenizer.ggml.token_type"].([]int32)
	v.Merges, _ = f.Strings("tokenizer.ggml.merges")
	v.Pre, _ = f.String("tokenizer.ggml.pre")
	id := func(key string) int {
		if u, ok := f.Uint(key); ok && u < uint64(len(toks)) {
			return int(u)
		}
		return -1
	}
	v.BOS, v.EOS, v.EOT, v.UNK = id("tokenizer.ggml.bos_token_id"), id("tokenizer.ggml.eos_token_id"), id("tokenizer.ggml.eot_token_id"), id("tokenizer.ggml.unknown_token_id")
	if b, ok := f.Bool("tokenizer.ggml.add_bos_token"); ok {
		v.AddBOS = b
	}
	if b, ok := f.Bool("tokenizer.ggml.add_space_prefix"); ok {
		v.NoSpacePrefix = !b
	}
	v.ChatTemplate, _ = f.String("tokenizer.chat_template")
	return v
}
