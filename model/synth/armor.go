package synth

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/gguf"
	"github.com/armor-llm/armor/model/tensor"
)

// Variant is how the linear layers of a synthetic model are stored.
type Variant string

const (
	Dense    Variant = "dense"
	Sparse24 Variant = "sparse24"
	Armor    Variant = "armor"
)

// Part is one canonical tensor of a model of config c.
type Part struct {
	Name  string
	Shape []int
	Kind  string // "linear", "norm", "bias", "embed"
}

// Parts lists the canonical (GGUF-named) tensors of c.
func Parts(c model.Config) []Part {
	out := []Part{{"token_embd.weight", []int{c.Vocab, c.Dim}, "embed"}}
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		out = append(out, Part{p + "attn_norm.weight", []int{c.Dim}, "norm"})
		if c.QKNorm {
			out = append(out, Part{p + "attn_q_norm.weight", []int{c.HeadDim}, "norm"}, Part{p + "attn_k_norm.weight", []int{c.HeadDim}, "norm"})
		}
		for _, name := range model.LayerLinears(l) {
			kind := name[len(p):]
			r, cc := c.LinearShape(kind)
			out = append(out, Part{name + ".weight", []int{r, cc}, "linear"})
			if c.QKBias && (kind == "attn_q" || kind == "attn_k" || kind == "attn_v") {
				out = append(out, Part{name + ".bias", []int{r}, "bias"})
			}
		}
		out = append(out, Part{p + "ffn_norm.weight", []int{c.Dim}, "norm"})
	}
	out = append(out, Part{"output_norm.weight", []int{c.Dim}, "norm"})
	if !c.Tied {
		out = append(out, Part{"output.weight", []int{c.Vocab, c.Dim}, "linear"})
	}
	return out
}

func rngFor(seed uint64, name string) *rand.Rand {
	h := seed
	for _, b := range []byte(name) {
		h = (h ^ uint64(b)) * 0x100000001b3
	}
	return rand.New(rand.NewPCG(seed, h))
}

// ArmorOptions selects what WriteArmor produces.
type ArmorOptions struct {
	Variant  Variant
	DType    tensor.DType // values of weights: F32, F16 or BF16
	Block    int          // ARMOR block size
	Seed     uint64
	Progress func(done, total int)
}

// WriteArmor writes a model of shape c with random weights as an .armor
// file: linear layers dense, 2:4 (random valid masks) or ARMOR (2:4 core
// with near-identity block-diagonal wrappers). The output head stays dense.
// One tensor is in memory at a time.
func WriteArmor(path string, c model.Config, o ArmorOptions) error {
	if o.Variant == Armor && o.Block <= 0 {
		return fmt.Errorf("synth: ARMOR needs a block size > 0")
	}
	spec := &model.ArmorSpec{Config: c, Linears: map[string]model.ArmorLinear{}, Progress: o.Progress,
		Provenance: map[string]any{"method": "synthetic-" + string(o.Variant), "seed": o.Seed, "note": "random weights: for speed and memory measurements only"}}
	for _, p := range Parts(c) {
		p := p
		if p.Kind != "linear" || p.Name == "output.weight" || o.Variant == Dense {
			dt := o.DType
			if p.Kind == "norm" || p.Kind == "bias" {
				dt = tensor.F32
			}
			spec.Parts = append(spec.Parts, model.ArmorPart{Name: p.Name, DType: dt, Shape: p.Shape, Data: func() ([]byte, error) {
				return Encode(Random(rngFor(o.Seed, p.Name), p.Kind, p.Shape), dt), nil
			}})
			if p.Kind == "linear" {
				spec.Linears[p.Name[:len(p.Name)-len(".weight")]] = model.ArmorLinear{Kind: "dense"}
			}
			continue
		}
		name := p.Name[:len(p.Name)-len(".weight")]
		rows, cols := p.Shape[0], p.Shape[1]
		if cols%4 != 0 {
			return fmt.Errorf("synth: %s has %d columns, not a multiple of 4", name, cols)
		}
		spec.Linears[name] = model.ArmorLinear{Kind: string(o.Variant), Block: map[bool]int{true: o.Block}[o.Variant == Armor]}
		stride := kernels.IdxStride(cols)
		spec.Parts = append(spec.Parts,
			model.ArmorPart{Name: name + ".s24_values", DType: o.DType, Shape: []int{rows, cols / 2}, Data: func() ([]byte, error) {
				rng := rngFor(o.Seed, name+".values")
				v := make([]float32, rows*cols/2)
				Uniform(rng, v, 0, float32(math.Sqrt(2/float64(cols))))
				return Encode(v, o.DType), nil
			}},
			model.ArmorPart{Name: name + ".s24_idx", DType: tensor.U8, Shape: []int{rows, stride}, Data: func() ([]byte, error) {
				return randomIdx(rngFor(o.Seed, name+".idx"), rows, cols), nil
			}})
		if o.Variant == Armor {
			for _, w := range []struct {
				suffix string
				n      int
			}{{".pre", cols}, {".post", rows}} {
				w := w
				spec.Parts = append(spec.Parts, model.ArmorPart{Name: name + w.suffix, DType: o.DType, Shape: []int{kernels.BlockDiagLen(w.n, o.Block)},
					Data: func() ([]byte, error) {
						return Encode(randomBlockDiag(rngFor(o.Seed, name+w.suffix), w.n, o.Block), o.DType), nil
					}})
			}
		}
	}
	return model.WriteArmor(path, spec)
}

// randomIdx draws a valid canonical 2:4 index array: two distinct,
// increasing positions per group.
func randomIdx(rng *rand.Rand, rows, cols int) []byte {
	stride := kernels.IdxStride(cols)
	pairs := [6][2]int{{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}}
	b := make([]byte, rows*stride)
	for i := 0; i < rows; i++ {
		for g := 0; g < cols/4; g++ {
			pr := pairs[rng.IntN(6)]
			for j, p := range pr {
				k := 2*g + j
				b[i*stride+k/4] |= byte(p) << (2 * (k % 4))
			}
		}
	}
	return b
}

// randomBlockDiag is identity plus small noise, so activations keep their
// scale through the wrappers.
func randomBlockDiag(rng *rand.Rand, n, b int) []float32 {
	v := make([]float32, kernels.BlockDiagLen(n, b))
	off := 0
	for r0 := 0; r0 < n; r0 += b {
		s := min(b, n-r0)
		for i := 0; i < s; i++ {
			for j := 0; j < s; j++ {
				x := 0.02 * rng.NormFloat64() / math.Sqrt(float64(s))
				if i == j {
					x += 1
				}
				v[off+i*s+j] = float32(x)
			}
		}
		off += s * s
	}
	return v
}

// WriteGGUF writes a dense model of shape c with random weights as GGUF, in
// llama.cpp's conventions (so llama.cpp can run and time it), with a
// placeholder SentencePiece vocabulary of c.Vocab pieces (<unk>, <s>, </s>,
// the 256 byte pieces llama.cpp requires, then filler).
func WriteGGUF(path string, c model.Config, d tensor.DType, seed uint64) error {
	arch := c.Arch
	kvs := []gguf.KV{
		kv("general.architecture", arch),
		kv("general.name", "armor-synthetic"),
		kv(arch+".context_length", uint32(c.Context)),
		kv(arch+".embedding_length", uint32(c.Dim)),
		kv(arch+".feed_forward_length", uint32(c.Hidden)),
		kv(arch+".block_count", uint32(c.Layers)),
		kv(arch+".attention.head_count", uint32(c.Heads)),
		kv(arch+".attention.head_count_kv", uint32(c.KVHeads)),
		kv(arch+".attention.key_length", uint32(c.HeadDim)),
		kv(arch+".attention.value_length", uint32(c.HeadDim)),
		kv(arch+".rope.dimension_count", uint32(c.HeadDim)),
		kv(arch+".rope.freq_base", float32(c.RopeTheta)),
		kv(arch+".attention.layer_norm_rms_epsilon", float32(c.NormEps)),
		kv(arch+".vocab_size", uint32(c.Vocab)),
		kv("general.file_type", uint32(map[tensor.DType]int{tensor.F32: 0, tensor.F16: 1, tensor.BF16: 32}[d])),
	}
	toks := make([]string, c.Vocab)
	scores := make([]float32, c.Vocab)
	types := make([]int32, c.Vocab)
	for i := range toks {
		switch {
		case i < 3:
			toks[i], types[i] = []string{"<unk>", "<s>", "</s>"}[i], []int32{2, 3, 3}[i]
		case i < 3+256:
			toks[i], types[i] = fmt.Sprintf("<0x%02X>", i-3), 6
		default:
			toks[i], types[i], scores[i] = fmt.Sprintf("▁t%d", i), 1, -float32(i)
		}
	}
	kvs = append(kvs, kv("tokenizer.ggml.model", "llama"), kv("tokenizer.ggml.tokens", toks),
		kv("tokenizer.ggml.scores", scores), kv("tokenizer.ggml.token_type", types),
		kv("tokenizer.ggml.bos_token_id", uint32(1)), kv("tokenizer.ggml.eos_token_id", uint32(2)),
		kv("tokenizer.ggml.unknown_token_id", uint32(0)))
	var ts []*tensor.Tensor
	for _, p := range Parts(c) {
		dt := d
		if p.Kind == "norm" || p.Kind == "bias" {
			dt = tensor.F32
		}
		ts = append(ts, &tensor.Tensor{Name: p.Name, DType: dt, Shape: p.Shape, Data: Encode(Random(rngFor(seed, p.Name), p.Kind, p.Shape), dt)})
	}
	return gguf.Write(path, kvs, ts)
}

func kv(k string, v any) gguf.KV { return gguf.KV{Key: k, Value: v} }
