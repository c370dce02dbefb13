package runtime

import (
	"fmt"
	"math"
	"testing"

	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/safetensors"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
)

// refModel is an independent float64 implementation of the Hugging Face
// Llama / Qwen2 / Qwen3 forward pass, written from the transformers source
// semantics (rotate_half RoPE, repeat_kv GQA, q/k RMSNorm before RoPE for
// Qwen3, bias on q/k/v for Qwen2). It reads the safetensors by HF name.
type refModel struct {
	c model.Config
	w map[string][]float64
}

func loadRef(t *testing.T, dir string, c model.Config) *refModel {
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	r := &refModel{c: c, w: map[string][]float64{}}
	for name, tt := range set.Tensors {
		f := make([]float32, tt.Elements())
		tensor.DecodeF32(f, tt.DType, tt.Data)
		d := make([]float64, len(f))
		for i, v := range f {
			d[i] = float64(v)
		}
		r.w[name] = d
	}
	return r
}

func (r *refModel) linear(name string, x []float64, out int) []float64 {
	w := r.w[name+".weight"]
	in := len(x)
	y := make([]float64, out)
	for i := range y {
		for j := 0; j < in; j++ {
			y[i] += w[i*in+j] * x[j]
		}
		if b, ok := r.w[name+".bias"]; ok {
			y[i] += b[i]
		}
	}
	return y
}

func rmsnorm(x, w []float64, eps float64) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	s := 1 / math.Sqrt(ss/float64(len(x))+eps)
	out := make([]float64, len(x))
	for i := range x {
		out[i] = x[i] * s * w[i]
	}
	return out
}

func (r *refModel) invFreq() []float64 {
	c := r.c
	d := c.HeadDim
	f := make([]float64, d/2)
	for i := range f {
		f[i] = math.Pow(c.RopeTheta, -float64(2*i)/float64(d))
	}
	if s := c.RopeScaling; s != nil { // transformers' _compute_llama3_parameters
		lowWL := float64(s.OriginalContext) / s.LowFreqFactor
		highWL := float64(s.OriginalContext) / s.HighFreqFactor
		for i, inv := range f {
			wl := 2 * math.Pi / inv
			v := inv
			if wl > lowWL {
				v = inv / s.Factor
			}
			smooth := (float64(s.OriginalContext)/wl - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor)
			if !(wl < highWL) && !(wl > lowWL) {
				v = (1-smooth)*inv/s.Factor + smooth*inv
			}
			f[i] = v
		}
	}
	return f
}

// rotateHalf applies q*cos + rotate_half(q)*sin with cos/sin duplicated over
// both halves, exactly as transformers' apply_rotary_pos_emb.
func rotateHalf(x []float64, pos int, inv []float64) {
	h := len(x) / 2
	out := make([]float64, len(x))
	for i := range x {
		var rot float64
		if i < h {
			rot = -x[i+h]
		} else {
			rot = x[i-h]
		}
		ang := float64(pos) * inv[i%h]
		out[i] = x[i]*math.Cos(ang) + rot*math.Sin(ang)
	}
	copy(x, out)
}

// forward returns the logits of every position.
func (r *refModel) forward(tokens []int) [][]float64 {
	c := r.c
	n := len(tokens)
	inv := r.invFreq()
	emb := r.w["model.embed_tokens.weight"]
	xs := make([][]float64, n)
	for t, tok := range tokens {
		xs[t] = append([]float64(nil), emb[tok*c.Dim:(tok+1)*c.Dim]...)
	}
	hd := c.HeadDim
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		qs, ks, vs := make([][]float64, n), make([][]float64, n), make([][]float64, n)
		for t := range xs {
			h := rmsnorm(xs[t], r.w[p+"input_layernorm.weight"], c.NormEps)
			qs[t] = r.linear(p+"self_attn.q_proj", h, c.QDim())
			ks[t] = r.linear(p+"self_attn.k_proj", h, c.KVDim())
			vs[t] = r.linear(p+"self_attn.v_proj", h, c.KVDim())
			for hh := 0; hh < c.Heads; hh++ {
				q := qs[t][hh*hd : (hh+1)*hd]
				if c.QKNorm {
					copy(q, rmsnorm(q, r.w[p+"self_attn.q_norm.weight"], c.NormEps))
				}
				rotateHalf(q, t, inv)
			}
			for hh := 0; hh < c.KVHeads; hh++ {
				k := ks[t][hh*hd : (hh+1)*hd]
				if c.QKNorm {
					copy(k, rmsnorm(k, r.w[p+"self_attn.k_norm.weight"], c.NormEps))
				}
				rotateHalf(k, t, inv)
			}
		}
		for t := range xs {
			att := refAttend(c, qs[t], ks[:t+1], vs[:t+1])
			o := r.linear(p+"self_attn.o_proj", att, c.Dim)
			for i := range o {
				xs[t][i] += o[i]
			}
			h := rmsnorm(xs[t], r.w[p+"post_attention_layernorm.weight"], c.NormEps)
			g := r.linear(p+"mlp.gate_proj", h, c.Hidden)
			u := r.linear(p+"mlp.up_proj", h, c.Hidden)
			for i := range g {
				g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
			}
			d := r.linear(p+"mlp.down_proj", g, c.Dim)
			for i := range d {
				xs[t][i] += d[i]
			}
		}
	}
	head := "lm_head"
	if c.Tied {
		head = "model.embed_tokens"
	}
	out := make([][]float64, n)
	for t := range xs {
		out[t] = r.linear(head, rmsnorm(xs[t], r.w["model.norm.weight"], c.NormEps), c.Vocab)
	}
	return out
}

// tinyConfigs are small configurations of each family, with odd sizes.
func tinyConfigs() map[string]model.Config {
	return map[string]model.Config{
		"llama": {Arch: "llama", Dim: 48, Hidden: 100, Layers: 2, Heads: 6, KVHeads: 2, HeadDim: 8, Vocab: 97, Context: 64,
			NormEps: 1e-5, RopeTheta: 10000, RopeHalves: true, Tied: false},
		"llama3": {Arch: "llama", Dim: 32, Hidden: 72, Layers: 2, Heads: 4, KVHeads: 1, HeadDim: 8, Vocab: 50, Context: 64,
			NormEps: 1e-5, RopeTheta: 500000, RopeHalves: true, Tied: true,
			RopeScaling: &model.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 16}},
		"qwen2": {Arch: "qwen2", Dim: 40, Hidden: 88, Layers: 2, Heads: 5, KVHeads: 1, HeadDim: 8, Vocab: 61, Context: 64,
			NormEps: 1e-6, RopeTheta: 1000000, RopeHalves: true, Tied: true, QKBias: true},
		"qwen3": {Arch: "qwen3", Dim: 32, Hidden: 64, Layers: 3, Heads: 4, KVHeads: 2, HeadDim: 16, Vocab: 70, Context: 64,
			NormEps: 1e-6, RopeTheta: 1000000, RopeHalves: true, Tied: false, QKNorm: true},
	}
}

func TestSyntheticHFMatchesReference(t *testing.T) {
	for name, c := range tinyConfigs() {
		for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16} {
			t.Run(fmt.Sprintf("%s/%v", name, dt), func(t *testing.T) {
				dir := t.TempDir()
				if err := synth.WriteHF(dir, c, dt, 7); err != nil {
					t.Fatal(err)
				}
				m, err := model.Load(dir)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				tr, err := New(m, nil)
				if err != nil {
					t.Fatal(err)
				}
				ref := loadRef(t, dir, c)
				tokens := []int{1, 5, 9, 33, 2, 17, 40, 3, 11, 0, 25, 49, 8}
				want := ref.forward(tokens)
				// All at once (batched prefill), then one token at a time (decode).
				st, _ := tr.NewState(32)
				got, err := st.Forward(tokens, true)
				if err != nil {
					t.Fatal(err)
				}
				// Batched bf16 products round activations to bf16 (the
				// AVX512-BF16 dot product, as llama.cpp does): 8 mantissa
				// bits give ~0.4 % per product, so prefill with bf16 weights
				// is held to 2e-2; f32 weights and every decode step to 1e-4.
				tolPrefill := 1e-4
				if dt == tensor.BF16 {
					tolPrefill = 2e-2
				}
				check := func(what string, tpos int, g []float32) {
					tol := 1e-4
					if what == "prefill" {
						tol = tolPrefill
					}
					var num, den float64
					for i, v := range want[tpos] {
						num += (float64(g[i]) - v) * (float64(g[i]) - v)
						den += v * v
					}
					if rel := math.Sqrt(num / den); rel > tol || math.IsNaN(rel) {
						t.Fatalf("%s: position %d: relative error %g > %g", what, tpos, rel, tol)
					}
				}
				for p := range tokens {
					check("prefill", p, got[p*c.Vocab:(p+1)*c.Vocab])
				}
				st.Reset()
				for p, tok := range tokens {
					l, err := st.Forward([]int{tok}, false)
					if err != nil {
						t.Fatal(err)
					}
					check("decode", p, l)
				}
			})
		}
	}
}

// refAttend is one token's causal attention in float64: q holds its query
// heads (QDim), ks and vs the keys and values of the positions it sees
// (KVDim each); head h uses KV head h/(Heads/KVHeads).
func refAttend(c model.Config, q []float64, ks, vs [][]float64) []float64 {
	hd := c.HeadDim
	att := make([]float64, c.QDim())
	for h := 0; h < c.Heads; h++ {
		g := h / (c.Heads / c.KVHeads)
		sc := make([]float64, len(ks))
		mx := math.Inf(-1)
		for p := range ks {
			for i := 0; i < hd; i++ {
				sc[p] += q[h*hd+i] * ks[p][g*hd+i]
			}
			sc[p] /= math.Sqrt(float64(hd))
			mx = math.Max(mx, sc[p])
		}
		var sum float64
		for p := range sc {
			sc[p] = math.Exp(sc[p] - mx)
			sum += sc[p]
		}
		for p := range sc {
			for i := 0; i < hd; i++ {
				att[h*hd+i] += sc[p] / sum * vs[p][g*hd+i]
			}
		}
	}
	return att
}
