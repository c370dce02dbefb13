// Package synth writes checkpoints with random weights in the exact layouts
// of real model families: for tests of every architecture path, and for
// speed and memory measurements at real shapes (speed does not depend on the
// weight values).
package synth

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/safetensors"
	"github.com/armor-llm/armor/model/tensor"
)

// Shapes are the real model shapes known by name.
var Shapes = map[string]model.Config{
	"llama-3.2-1b": {Arch: "llama", Dim: 2048, Hidden: 8192, Layers: 16, Heads: 32, KVHeads: 8, HeadDim: 64, Vocab: 128256, Context: 131072,
		NormEps: 1e-5, RopeTheta: 500000, RopeHalves: true, Tied: true,
		RopeScaling: &model.RopeScaling{Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 8192}},
	"qwen2.5-0.5b": {Arch: "qwen2", Dim: 896, Hidden: 4864, Layers: 24, Heads: 14, KVHeads: 2, HeadDim: 64, Vocab: 151936, Context: 32768,
		NormEps: 1e-6, RopeTheta: 1000000, RopeHalves: true, Tied: true, QKBias: true},
	"qwen3-0.6b": {Arch: "qwen3", Dim: 1024, Hidden: 3072, Layers: 28, Heads: 16, KVHeads: 8, HeadDim: 128, Vocab: 151936, Context: 40960,
		NormEps: 1e-6, RopeTheta: 1000000, RopeHalves: true, Tied: true, QKNorm: true},
	"stories110m": {Arch: "llama", Dim: 768, Hidden: 2048, Layers: 12, Heads: 12, KVHeads: 12, HeadDim: 64, Vocab: 32000, Context: 1024,
		NormEps: 1e-5, RopeTheta: 10000, RopeHalves: true, Tied: true},
	"llama-2-7b": {Arch: "llama", Dim: 4096, Hidden: 11008, Layers: 32, Heads: 32, KVHeads: 32, HeadDim: 128, Vocab: 32000, Context: 4096,
		NormEps: 1e-5, RopeTheta: 10000, RopeHalves: true, Tied: false},
	"llama-3-8b": {Arch: "llama", Dim: 4096, Hidden: 14336, Layers: 32, Heads: 32, KVHeads: 8, HeadDim: 128, Vocab: 128256, Context: 8192,
		NormEps: 1e-5, RopeTheta: 500000, RopeHalves: true, Tied: false},
	"llama-3-70b": {Arch: "llama", Dim: 8192, Hidden: 28672, Layers: 80, Heads: 64, KVHeads: 8, HeadDim: 128, Vocab: 128256, Context: 8192,
		NormEps: 1e-5, RopeTheta: 500000, RopeHalves: true, Tied: false},
}

// Names lists the known shapes, sorted, comma separated (for messages and
// --help).
func Names() string { return strings.Join(slices.Sorted(maps.Keys(Shapes)), ", ") }

// Shape returns a named shape or an error listing the known names.
func Shape(name string) (model.Config, error) {
	c, ok := Shapes[name]
	if !ok {
		return c, fmt.Errorf("unknown shape %q (known: %s)", name, Names())
	}
	return c, nil
}

// HFTensor is one tensor of a Hugging Face checkpoint: name and shape.
type HFTensor struct {
	Name  string
	Shape []int
	Kind  string // "linear", "norm", "bias", "embed"
}

// HFTensors lists the tensors of cfg in Hugging Face naming.
func HFTensors(c model.Config) []HFTensor {
	out := []HFTensor{{"model.embed_tokens.weight", []int{c.Vocab, c.Dim}, "embed"}}
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		out = append(out,
			HFTensor{p + "input_layernorm.weight", []int{c.Dim}, "norm"},
			HFTensor{p + "self_attn.q_proj.weight", []int{c.QDim(), c.Dim}, "linear"},
			HFTensor{p + "self_attn.k_proj.weight", []int{c.KVDim(), c.Dim}, "linear"},
			HFTensor{p + "self_attn.v_proj.weight", []int{c.KVDim(), c.Dim}, "linear"},
			HFTensor{p + "self_attn.o_proj.weight", []int{c.Dim, c.QDim()}, "linear"},
			HFTensor{p + "post_attention_layernorm.weight", []int{c.Dim}, "norm"},
			HFTensor{p + "mlp.gate_proj.weight", []int{c.Hidden, c.Dim}, "linear"},
			HFTensor{p + "mlp.up_proj.weight", []int{c.Hidden, c.Dim}, "linear"},
			HFTensor{p + "mlp.down_proj.weight", []int{c.Dim, c.Hidden}, "linear"},
		)
		if c.QKBias {
			out = append(out,
				HFTensor{p + "self_attn.q_proj.bias", []int{c.QDim()}, "bias"},
				HFTensor{p + "self_attn.k_proj.bias", []int{c.KVDim()}, "bias"},
				HFTensor{p + "self_attn.v_proj.bias", []int{c.KVDim()}, "bias"})
		}
		if c.QKNorm {
			out = append(out,
				HFTensor{p + "self_attn.q_norm.weight", []int{c.HeadDim}, "norm"},
				HFTensor{p + "self_attn.k_norm.weight", []int{c.HeadDim}, "norm"})
		}
	}
	out = append(out, HFTensor{"model.norm.weight", []int{c.Dim}, "norm"})
	if !c.Tied {
		out = append(out, HFTensor{"lm_head.weight", []int{c.Vocab, c.Dim}, "linear"})
	}
	return out
}

// Random fills n values for a tensor kind: norms near 1, linears with the
// usual 1/sqrt(fan-in) scale so activations stay O(1) through many layers.
// Values are uniform with that standard deviation (cheaper to draw than
// normal ones, which matters for multi-gigabyte synthetic models).
func Random(rng *rand.Rand, kind string, shape []int) []float32 {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	mean, sd := 0.0, 1/math.Sqrt(float64(shape[len(shape)-1]))
	switch kind {
	case "norm":
		mean, sd = 1, 0.1
	case "bias":
		sd = 0.1
	case "embed":
		sd = 1
	}
	Uniform(rng, v, float32(mean), float32(sd))
	return v
}

// Uniform fills v with uniform values of the given mean and standard deviation.
func Uniform(rng *rand.Rand, v []float32, mean, sd float32) {
	a := sd * float32(math.Sqrt(3)) / (1 << 31) // half-width 1.732·sd over 2^31
	for i := 0; i+1 < len(v); i += 2 {
		u := rng.Uint64()
		v[i] = mean + a*float32(int32(u))
		v[i+1] = mean + a*float32(int32(u>>32))
	}
	if len(v)%2 == 1 {
		v[len(v)-1] = mean + a*float32(int32(rng.Uint64()))
	}
}

// Encode stores f32 values as dtype d (F32, F16 or BF16) little-endian.
func Encode(v []float32, d tensor.DType) []byte {
	switch d {
	case tensor.F16:
		b := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[2*i:], kernels.F32ToF16(x))
		}
		return b
	case tensor.BF16:
		b := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[2*i:], kernels.F32ToBF16(x))
		}
		return b
	}
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// WriteHF writes config.json and model.safetensors for c into dir, with
// random weights from seed, linear weights in dtype d (norms and biases stay
// F32 as in real checkpoints of mixed precision... HF stores them in the
// checkpoint dtype, which is what we do).
func WriteHF(dir string, c model.Config, d tensor.DType, seed uint64) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var ts []*tensor.Tensor
	for _, h := range HFTensors(c) {
		ts = append(ts, &tensor.Tensor{Name: h.Name, DType: d, Shape: h.Shape, Data: Encode(Random(rng, h.Kind, h.Shape), d)})
	}
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts); err != nil {
		return err
	}
	cfg := map[string]any{
		"model_type":              c.Arch,
		"architectures":           []string{map[string]string{"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[c.Arch]},
		"hidden_size":             c.Dim,
		"intermediate_size":       c.Hidden,
		"num_hidden_layers":       c.Layers,
		"num_attention_heads":     c.Heads,
		"num_key_value_heads":     c.KVHeads,
		"head_dim":                c.HeadDim,
		"vocab_size":              c.Vocab,
		"max_position_embeddings": c.Context,
		"rms_norm_eps":            c.NormEps,
		"rope_theta":              c.RopeTheta,
		"tie_word_embeddings":     c.Tied,
		"hidden_act":              "silu",
		"torch_dtype":             map[tensor.DType]string{tensor.F32: "float32", tensor.F16: "float16", tensor.BF16: "bfloat16"}[d],
	}
	if c.Arch == "llama" {
		cfg["attention_bias"] = c.QKBias
	}
	if s := c.RopeScaling; s != nil {
		cfg["rope_scaling"] = map[string]any{"rope_type": s.Type, "factor": s.Factor, "low_freq_factor": s.LowFreqFactor,
			"high_freq_factor": s.HighFreqFactor, "original_max_position_embeddings": s.OriginalContext}
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	return os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
}

// TinyGGUFConfigs are small models of each family, checked against
// llama.cpp's greedy output (bench/llamacpp/synthetic.sh).
func TinyGGUFConfigs() map[string]model.Config {
	return map[string]model.Config{
		"tiny-llama": {Arch: "llama", Dim: 64, Hidden: 160, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16, Vocab: 320, Context: 128,
			NormEps: 1e-5, RopeTheta: 10000, Tied: false},
		"tiny-qwen2": {Arch: "qwen2", Dim: 64, Hidden: 128, Layers: 2, Heads: 4, KVHeads: 1, HeadDim: 16, Vocab: 320, Context: 128,
			NormEps: 1e-6, RopeTheta: 1000000, RopeHalves: true, Tied: true, QKBias: true},
		"tiny-qwen3": {Arch: "qwen3", Dim: 64, Hidden: 128, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 32, Vocab: 320, Context: 128,
			NormEps: 1e-6, RopeTheta: 1000000, RopeHalves: true, Tied: false, QKNorm: true},
	}
}
