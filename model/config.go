// Package model knows what a model is: its configuration, its tensors under
// canonical names, its tokenizer and chat template, loaded from GGUF, Hugging
// Face directories, llama2.c checkpoints or .armor files.
package model

import (
	"fmt"
	"math"

	"github.com/armor-llm/armor/model/limits"
)

// Config is the architecture-independent description of a decoder-only
// transformer. Differences between families are data, not code.
type Config struct {
	Arch    string `json:"arch"` // llama, qwen2 or qwen3
	Dim     int    `json:"dim"`
	Hidden  int    `json:"hidden"`
	Layers  int    `json:"layers"`
	Heads   int    `json:"heads"`
	KVHeads int    `json:"kv_heads"`
	HeadDim int    `json:"head_dim"`
	Vocab   int    `json:"vocab"`
	Context int    `json:"context"`

	NormEps   float64 `json:"norm_eps"`
	RopeTheta float64 `json:"rope_theta"`
	// RopeHalves pairs (x[i], x[i+d/2]) as Hugging Face's rotate_half and
	// llama.cpp's NEOX mode do; otherwise adjacent pairs (x[2i], x[2i+1])
	// as GGUF llama (whose q/k rows were permuted on conversion) and llama2.c.
	RopeHalves  bool         `json:"rope_halves"`
	RopeScaling *RopeScaling `json:"rope_scaling,omitempty"`

	Tied   bool `json:"tied_embeddings"`
	QKBias bool `json:"qkv_bias"` // bias on q, k and v (Qwen2)
	QKNorm bool `json:"qk_norm"`  // per-head RMSNorm of q and k (Qwen3)
}

// RopeScaling is Llama 3.1's frequency-dependent RoPE scaling.
type RopeScaling struct {
	Type            string  `json:"type"` // "llama3"
	Factor          float64 `json:"factor"`
	LowFreqFactor   float64 `json:"low_freq_factor"`
	HighFreqFactor  float64 `json:"high_freq_factor"`
	OriginalContext int     `json:"original_context"`
}

// Validate checks the config for consistency before anything is allocated.
func (c *Config) Validate() error {
	if _, err := LookupArch(c.Arch); err != nil {
		return err
	}
	for _, v := range []struct {
		name string
		v    int
		max  int
	}{{"dim", c.Dim, limits.MaxDim}, {"hidden", c.Hidden, limits.MaxDim}, {"layers", c.Layers, limits.MaxLayers},
		{"heads", c.Heads, limits.MaxDim}, {"kv_heads", c.KVHeads, limits.MaxDim}, {"head_dim", c.HeadDim, limits.MaxDim},
		{"vocab", c.Vocab, limits.MaxVocab}, {"context", c.Context, limits.MaxDim}} {
		if v.v <= 0 || v.v > v.max {
			return fmt.Errorf("config: %s = %d is out of range (1 to %d)", v.name, v.v, v.max)
		}
	}
	if c.Heads%c.KVHeads != 0 {
		return fmt.Errorf("config: %d heads is not a multiple of %d kv heads", c.Heads, c.KVHeads)
	}
	if c.HeadDim%2 != 0 {
		return fmt.Errorf("config: head_dim %d is odd; RoPE needs pairs", c.HeadDim)
	}
	if !(c.NormEps > 0 && c.NormEps < 1) {
		return fmt.Errorf("config: norm eps %v out of range", c.NormEps)
	}
	if !(c.RopeTheta > 0) || math.IsInf(c.RopeTheta, 0) {
		return fmt.Errorf("config: rope theta %v out of range", c.RopeTheta)
	}
	if s := c.RopeScaling; s != nil {
		if s.Type != "llama3" {
			return fmt.Errorf("config: rope scaling %q is not supported (supported: llama3)", s.Type)
		}
		if !(s.Factor >= 1) || !(s.HighFreqFactor > s.LowFreqFactor) || s.LowFreqFactor <= 0 || s.OriginalContext <= 0 {
			return fmt.Errorf("config: llama3 rope scaling %+v is inconsistent", *s)
		}
	}
	return nil
}

// RopeFreqs returns the HeadDim/2 rotation frequencies (radians per position).
func (c *Config) RopeFreqs() []float64 {
	n := c.HeadDim / 2
	f := make([]float64, n)
	for i := range f {
		f[i] = 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(c.HeadDim))
	}
	if s := c.RopeScaling; s != nil && s.Type == "llama3" {
		lowWave := float64(s.OriginalContext) / s.LowFreqFactor
		highWave := float64(s.OriginalContext) / s.HighFreqFactor
		for i, fr := range f {
			wave := 2 * math.Pi / fr
			switch {
			case wave < highWave:
			case wave > lowWave:
				f[i] = fr / s.Factor
			default:
				smooth := (float64(s.OriginalContext)/wave - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor)
				f[i] = (1-smooth)*fr/s.Factor + smooth*fr
			}
		}
	}
	return f
}

// QDim and KVDim are the widths of the query and key/value projections.
func (c *Config) QDim() int  { return c.Heads * c.HeadDim }
func (c *Config) KVDim() int { return c.KVHeads * c.HeadDim }

// Linears lists the canonical names of the linear weights of layer l (without
// the ".weight" suffix), in forward order.
func LayerLinears(l int) []string {
	p := fmt.Sprintf("blk.%d.", l)
	return []string{p + "attn_q", p + "attn_k", p + "attn_v", p + "attn_output", p + "ffn_gate", p + "ffn_up", p + "ffn_down"}
}

// LinearShape gives the [d_out, d_in] of a canonical linear name's kind.
func (c *Config) LinearShape(kind string) (rows, cols int) {
	switch kind {
	case "attn_q":
		return c.QDim(), c.Dim
	case "attn_k", "attn_v":
		return c.KVDim(), c.Dim
	case "attn_output":
		return c.Dim, c.QDim()
	case "ffn_gate", "ffn_up":
		return c.Hidden, c.Dim
	case "ffn_down":
		return c.Dim, c.Hidden
	}
	return 0, 0
}
