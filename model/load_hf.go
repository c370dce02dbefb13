package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/armor-llm/armor/model/safetensors"
	"github.com/armor-llm/armor/model/tensor"
	"github.com/armor-llm/armor/model/tokenizer"
)

// hfConfig is the part of a Hugging Face config.json that we read.
type hfConfig struct {
	ModelType        string          `json:"model_type"`
	Architectures    []string        `json:"architectures"`
	HiddenSize       int             `json:"hidden_size"`
	Intermediate     int             `json:"intermediate_size"`
	Layers           int             `json:"num_hidden_layers"`
	Heads            int             `json:"num_attention_heads"`
	KVHeads          int             `json:"num_key_value_heads"`
	HeadDim          int             `json:"head_dim"`
	Vocab            int             `json:"vocab_size"`
	MaxPos           int             `json:"max_position_embeddings"`
	RMSEps           float64         `json:"rms_norm_eps"`
	RopeTheta        float64         `json:"rope_theta"`
	RopeScaling      json.RawMessage `json:"rope_scaling"`
	Tie              *bool           `json:"tie_word_embeddings"`
	AttentionBias    bool            `json:"attention_bias"`
	HiddenAct        string          `json:"hidden_act"`
	BOS              json.RawMessage `json:"bos_token_id"`
	EOS              json.RawMessage `json:"eos_token_id"`
	UseSlidingWindow bool            `json:"use_sliding_window"`
}

// hfNames maps Hugging Face tensor names to canonical ones.
var hfLayerNames = map[string]string{
	"input_layernorm.weight":          "attn_norm.weight",
	"self_attn.q_proj.weight":         "attn_q.weight",
	"self_attn.k_proj.weight":         "attn_k.weight",
	"self_attn.v_proj.weight":         "attn_v.weight",
	"self_attn.o_proj.weight":         "attn_output.weight",
	"self_attn.q_proj.bias":           "attn_q.bias",
	"self_attn.k_proj.bias":           "attn_k.bias",
	"self_attn.v_proj.bias":           "attn_v.bias",
	"self_attn.o_proj.bias":           "attn_output.bias",
	"self_attn.q_norm.weight":         "attn_q_norm.weight",
	"self_attn.k_norm.weight":         "attn_k_norm.weight",
	"post_attention_layernorm.weight": "ffn_norm.weight",
	"mlp.gate_proj.weight":            "ffn_gate.weight",
	"mlp.up_proj.weight":              "ffn_up.weight",
	"mlp.down_proj.weight":            "ffn_down.weight",
}

// CanonicalHFName maps a Hugging Face tensor name to the canonical name, or
// returns "" for tensors the runtime does not use.
func CanonicalHFName(name string) string {
	switch name {
	case "model.embed_tokens.weight":
		return "token_embd.weight"
	case "model.norm.weight":
		return "output_norm.weight"
	case "lm_head.weight":
		return "output.weight"
	}
	rest, ok := strings.CutPrefix(name, "model.layers.")
	if !ok {
		return ""
	}
	i := strings.IndexByte(rest, '.')
	if i <= 0 {
		return ""
	}
	if c, ok := hfLayerNames[rest[i+1:]]; ok {
		return "blk." + rest[:i] + "." + c
	}
	return ""
}

func loadHF(dir string) (*Model, error) {
	cfgPath := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("model: %s: not a Hugging Face model directory: %w", dir, err)
	}
	var hc hfConfig
	if err := json.Unmarshal(b, &hc); err != nil {
		return nil, fmt.Errorf("model: %s: %w", cfgPath, err)
	}
	m := &Model{Path: dir, Format: "hf", Tensors: map[string]*tensor.Tensor{}}
	if err := hfToConfig(&hc, &m.Config); err != nil {
		return nil, fmt.Errorf("model: %s: %w", cfgPath, err)
	}
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	m.closers = append(m.closers, set.Close)
	for name, t := range set.Tensors {
		if c := CanonicalHFName(name); c != "" {
			t.Name = c
			m.Tensors[c] = t
		}
	}
	if m.Config.Tied && m.Tensors["output.weight"] != nil {
		// Some checkpoints store the tied head anyway; use it as given.
		m.Config.Tied = false
	}
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err == nil {
		m.Vocab = &Vocab{Kind: "hf", Dir: dir, BOS: -1, EOS: -1, EOT: -1, UNK: -1}
		m.Vocab.ExtraEOG = generationEOS(dir)
	} else if _, err := os.Stat(filepath.Join(dir, "tokenizer.model")); err == nil {
		m.Vocab = &Vocab{Kind: "spm-model", Path: filepath.Join(dir, "tokenizer.model")}
		if c, err := tokenizer.LoadHFConfig(dir); err == nil {
			m.Vocab.ChatTemplate = c.ChatTemplate
		}
	}
	return m, nil
}

func hfToConfig(hc *hfConfig, c *Config) error {
	a, err := archForHF(hc.ModelType)
	if err != nil {
		return err
	}
	c.Arch = a.Name
	c.QKBias = a.QKBias || hc.AttentionBias
	c.QKNorm = a.QKNorm
	if hc.HiddenAct != "" && hc.HiddenAct != "silu" {
		return fmt.Errorf("hidden_act %q is not supported (silu only)", hc.HiddenAct)
	}
	c.RopeHalves = true // Hugging Face layout: rotate_half
	c.Dim, c.Hidden, c.Layers, c.Heads, c.Vocab = hc.HiddenSize, hc.Intermediate, hc.Layers, hc.Heads, hc.Vocab
	c.KVHeads = hc.KVHeads
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	c.HeadDim = hc.HeadDim
	if c.HeadDim == 0 && c.Heads > 0 {
		c.HeadDim = c.Dim / c.Heads
	}
	c.Context = hc.MaxPos
	if c.Context == 0 {
		c.Context = 2048
	}
	c.NormEps = hc.RMSEps
	if c.NormEps == 0 {
		c.NormEps = 1e-6
	}
	c.RopeTheta = hc.RopeTheta
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
	c.Tied = hc.Tie != nil && *hc.Tie
	if hc.Tie == nil && hc.ModelType != "llama" {
		c.Tied = false
	}
	if len(hc.RopeScaling) > 0 && string(hc.RopeScaling) != "null" {
		var rs struct {
			Type     string  `json:"type"`
			RopeType string  `json:"rope_type"`
			Factor   float64 `json:"factor"`
			Low      float64 `json:"low_freq_factor"`
			High     float64 `json:"high_freq_factor"`
			Orig     int     `json:"original_max_position_embeddings"`
		}
		if err := json.Unmarshal(hc.RopeScaling, &rs); err != nil {
			return fmt.Errorf("rope_scaling: %w", err)
		}
		t := rs.RopeType
		if t == "" {
			t = rs.Type
		}
		if t != "default" {
			c.RopeScaling = &RopeScaling{Type: t, Factor: rs.Factor, LowFreqFactor: rs.Low, HighFreqFactor: rs.High, OriginalContext: rs.Orig}
		}
	}
	return nil
}

// generationEOS reads the end-of-sequence ids of generation_config.json
// (an id or a list of ids), if the file exists.
func generationEOS(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "generation_config.json"))
	if err != nil {
		return nil
	}
	var g struct {
		EOS json.RawMessage `json:"eos_token_id"`
	}
	if json.Unmarshal(b, &g) != nil || len(g.EOS) == 0 {
		return nil
	}
	var one int
	if json.Unmarshal(g.EOS, &one) == nil {
		return []int{one}
	}
	var many []int
	json.Unmarshal(g.EOS, &many)
	return many
}
