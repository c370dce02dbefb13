package runtime

import (
	"fmt"
	"math"

	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/tensor"
)

// Transformer is a decoder-only model ready to run: Llama, Qwen2 and Qwen3
// differ only in the data held here (biases, q/k norms, RoPE pairing).
type Transformer struct {
	Config model.Config
	embed  *tensor.Tensor
	layers []block
	norm   []float32
	output Linear
	freqs  []float64 // RoPE frequencies, HeadDim/2

	// KVF16 makes the KV caches of States created afterwards hold f16, as
	// llama.cpp's do by default: half the memory, and attention reads half
	// the bytes, for keys and values rounded to f16 (queries, scores and
	// sums stay f32).
	KVF16 bool
}

type block struct {
	attnNorm, ffnNorm          []float32
	qNorm, kNorm               []float32 // nil unless Config.QKNorm
	q, k, v, o, gate, up, down Linear
}

// New builds a Transformer over m's tensors. build may be nil (dense).
func New(m *model.Model, build LinearBuilder) (*Transformer, error) {
	return newTransformer(m, build, nil)
}

// newTransformer is New, telling progress (if set) after each block.
func newTransformer(m *model.Model, build LinearBuilder, progress func(done, total int)) (*Transformer, error) {
	if build == nil {
		build = DenseBuilder
	}
	c := m.Config
	tr := &Transformer{Config: c, embed: m.Tensors["token_embd.weight"], freqs: c.RopeFreqs()}
	if rf := m.Tensors["rope_freqs.weight"]; rf != nil {
		// llama.cpp's precomputed Llama 3 factors divide the frequencies.
		for i, f := range rf.ToF32() {
			tr.freqs[i] /= float64(f)
		}
	}
	vec := func(name string) []float32 {
		if t := m.Tensors[name]; t != nil {
			return t.ToF32()
		}
		return nil
	}
	tr.norm = vec("output_norm.weight")
	var err error
	lin := func(name string, in, out int) Linear {
		if err != nil {
			return nil
		}
		var l Linear
		l, err = build(m, name)
		if err == nil && (l.In() != in || l.Out() != out) {
			err = fmt.Errorf("linear %s is %d×%d, want %d×%d", name, l.Out(), l.In(), out, in)
		}
		if err != nil {
			err = fmt.Errorf("runtime: %s: %w", m.Path, err)
		}
		return l
	}
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		b := block{attnNorm: vec(p + "attn_norm.weight"), ffnNorm: vec(p + "ffn_norm.weight")}
		if c.QKNorm {
			b.qNorm, b.kNorm = vec(p+"attn_q_norm.weight"), vec(p+"attn_k_norm.weight")
		}
		b.q = lin(p+"attn_q", c.Dim, c.QDim())
		b.k = lin(p+"attn_k", c.Dim, c.KVDim())
		b.v = lin(p+"attn_v", c.Dim, c.KVDim())
		b.o = lin(p+"attn_output", c.QDim(), c.Dim)
		b.gate = lin(p+"ffn_gate", c.Dim, c.Hidden)
		b.up = lin(p+"ffn_up", c.Dim, c.Hidden)
		b.down = lin(p+"ffn_down", c.Hidden, c.Dim)
		tr.layers = append(tr.layers, b)
		if progress != nil && err == nil {
			progress(l+1, c.Layers)
		}
	}
	if c.Tied {
		tr.output = lin("token_embd", c.Dim, c.Vocab)
	} else {
		tr.output = lin("output", c.Dim, c.Vocab)
	}
	if err != nil {
		return nil, err
	}
	return tr, nil
}

// WeightBytes is the bytes read per token: every linear layer, the output
// head, norms and one embedding row.
func (tr *Transformer) WeightBytes() int64 {
	n := tr.output.WeightBytes()
	for _, b := range tr.layers {
		for _, l := range []Linear{b.q, b.k, b.v, b.o, b.gate, b.up, b.down} {
			n += l.WeightBytes()
		}
	}
	return n + int64(len(tr.embed.Data)/tr.Config.Vocab)
}

// Linears returns every linear layer of block l in forward order (q, k, v,
// o, gate, up, down), for tools that inspect or replace them.
func (tr *Transformer) Linears(l int) []Linear {
	b := tr.layers[l]
	return []Linear{b.q, b.k, b.v, b.o, b.gate, b.up, b.down}
}

// State holds the KV cache and the scratch buffers of one sequence.
type State struct {
	tr       *Transformer
	Capacity int // positions the KV cache holds
	Pos      int // positions filled
	maxBatch int
	k, v     [][]float32 // per layer: Capacity × KVDim (nil with an f16 cache)
	k16, v16 [][]uint16  // the same in f16 bits (Transformer.KVF16), else nil
	kw, vw   []float32   // one layer of an f16 cache widened for prompt attention

	x, xb, q, kk, vv, att, hb, hb2, logits []float32
	scores                                 []float32 // Heads × Capacity
	cos, sin                               []float32 // maxBatch × HeadDim/2
	att1                                   attnCall
	attnFn                                 func(lo, hi int) // s.attnHeads, bound once
}

// DefaultBatch is the largest number of prompt tokens run at once.
const DefaultBatch = 512

// NewState allocates a KV cache for ctx positions (≤ the model's context).
func (tr *Transformer) NewState(ctx int) (*State, error) {
	return tr.newState(ctx, min(DefaultBatch, ctx))
}

// newState allocates a KV cache for ctx positions and scratch for batches
// of up to mb tokens.
func (tr *Transformer) newState(ctx, mb int) (*State, error) {
	c := tr.Config
	if ctx <= 0 || ctx > c.Context {
		return nil, fmt.Errorf("runtime: context %d out of range (model context is %d)", ctx, c.Context)
	}
	s := &State{tr: tr, Capacity: ctx, maxBatch: mb}
	for range c.Layers {
		if tr.KVF16 {
			s.k16 = append(s.k16, make([]uint16, ctx*c.KVDim()))
			s.v16 = append(s.v16, make([]uint16, ctx*c.KVDim()))
		} else {
			s.k = append(s.k, make([]float32, ctx*c.KVDim()))
			s.v = append(s.v, make([]float32, ctx*c.KVDim()))
		}
	}
	s.x = make([]float32, mb*c.Dim)
	s.xb = make([]float32, mb*max(c.Dim, c.QDim()))
	s.q = make([]float32, mb*c.QDim())
	s.kk = make([]float32, mb*c.KVDim())
	s.vv = make([]float32, mb*c.KVDim())
	s.att = make([]float32, mb*c.QDim())
	s.hb = make([]float32, mb*c.Hidden)
	s.hb2 = make([]float32, mb*c.Hidden)
	s.scores = make([]float32, c.Heads*ctx)
	s.attnFn = s.attnHeads
	s.cos = make([]float32, mb*c.HeadDim/2)
	s.sin = make([]float32, mb*c.HeadDim/2)
	return s, nil
}

// KVBytes is the size of the KV cache (an f16 cache's one-layer f32
// scratch for prompt attention aside).
func (s *State) KVBytes() int64 {
	c := s.tr.Config
	size := int64(4)
	if s.k16 != nil {
		size = 2
	}
	return 2 * int64(c.Layers) * int64(s.Capacity) * int64(c.KVDim()) * size
}

// Reset empties the KV cache.
func (s *State) Reset() { s.Pos = 0 }

// Truncate drops cached positions from n on.
func (s *State) Truncate(n int) {
	if n < s.Pos {
		s.Pos = max(n, 0)
	}
}

// ErrContextFull is returned when tokens would not fit in the KV cache.
type ErrContextFull struct{ Pos, Add, Capacity int }

func (e *ErrContextFull) Error() string {
	return fmt.Sprintf("context full: %d tokens cached + %d new exceed the context of %d", e.Pos, e.Add, e.Capacity)
}

// Forward runs tokens through the model at positions Pos.. and appends them
// to the KV cache. With all=false it returns the logits of the last token
// (Vocab values); with all=true the logits of every token (len(tokens)×Vocab,
// returned as one fresh slice). The last-token slice is reused by the next
// call.
func (s *State) Forward(tokens []int, all bool) ([]float32, error) {
	if len(tokens) == 0 {
		return nil, fmt.Errorf("runtime: no tokens to run")
	}
	if s.Pos+len(tokens) > s.Capacity {
		return nil, &ErrContextFull{s.Pos, len(tokens), s.Capacity}
	}
	vocab := s.tr.Config.Vocab
	for _, t := range tokens {
		if t < 0 || t >= vocab {
			return nil, fmt.Errorf("runtime: token id %d out of range (vocab %d)", t, vocab)
		}
	}
	var out []float32
	if all {
		out = make([]float32, len(tokens)*vocab)
	}
	for i := 0; i < len(tokens); i += s.maxBatch {
		chunk := tokens[i:min(i+s.maxBatch, len(tokens))]
		last := i+len(chunk) == len(tokens)
		var dst []float32
		if all {
			dst = out[i*vocab : (i+len(chunk))*vocab]
		}
		logits := s.forward(chunk, all, last)
		if all {
			copy(dst, logits)
		} else if last {
			out = logits
		}
	}
	return out, nil
}

// forward runs one batch of at most maxBatch tokens.
func (s *State) forward(tokens []int, all, last bool) []float32 {
	tr, c := s.tr, s.tr.Config
	n := len(tokens)
	dim, qd, kvd := c.Dim, c.QDim(), c.KVDim()
	x := s.x[:n*dim]
	for t, tok := range tokens {
		tr.embed.Row(x[t*dim:(t+1)*dim], tok)
	}
	s.ropeTables(n)
	eps := float32(c.NormEps)
	xb := s.xb[:n*dim]
	for l := range tr.layers {
		b := &tr.layers[l]
		q, k, v := s.q[:n*qd], s.kk[:n*kvd], s.vv[:n*kvd]
		b.attentionInputs(s, c, x, xb, q, k, v, s.cos, s.sin, n)
		if s.k16 != nil {
			kernels.ToF16(s.k16[l][s.Pos*kvd:], k)
			kernels.ToF16(s.v16[l][s.Pos*kvd:], v)
		} else {
			copy(s.k[l][s.Pos*kvd:], k)
			copy(s.v[l][s.Pos*kvd:], v)
		}
		att := s.att[:n*qd]
		s.attention(l, q, att, n)
		// xb doubles as the projections' output buffer: its normed input
		// is used up by then.
		b.outputAndFFN(c, x, xb, att, xb, s.hb[:n*c.Hidden], s.hb2[:n*c.Hidden], n)
	}
	s.Pos += n
	if !all && !last {
		return nil
	}
	rows := n
	if !all {
		rows = 1
		x = x[(n-1)*dim:]
	}
	xb = s.xb[:rows*dim]
	for t := 0; t < rows; t++ {
		kernels.RMSNorm(xb[t*dim:(t+1)*dim], x[t*dim:(t+1)*dim], tr.norm, eps)
	}
	if len(s.logits) < rows*c.Vocab {
		s.logits = make([]float32, rows*c.Vocab)
	}
	logits := s.logits[:rows*c.Vocab]
	tr.output.ForwardBatch(logits, xb, rows)
	return logits
}

// attentionInputs runs the attention norm of n tokens of x into xb, their
// q, k and v projections, and the optional q/k norms and RoPE (cos and sin
// hold half a head per token, at each token's own position).
func (b *block) attentionInputs(s *State, c model.Config, x, xb, q, k, v, cos, sin []float32, n int) {
	dim, qd, kvd, hd := c.Dim, c.QDim(), c.KVDim(), c.HeadDim
	eps := float32(c.NormEps)
	for t := 0; t < n; t++ {
		kernels.RMSNorm(xb[t*dim:(t+1)*dim], x[t*dim:(t+1)*dim], b.attnNorm, eps)
	}
	b.q.ForwardBatch(q, xb, n)
	b.k.ForwardBatch(k, xb, n)
	b.v.ForwardBatch(v, xb, n)
	half := hd / 2
	for t := 0; t < n; t++ {
		cs, sn := cos[t*half:(t+1)*half], sin[t*half:(t+1)*half]
		for h := 0; h < c.Heads; h++ {
			head := q[t*qd+h*hd : t*qd+(h+1)*hd]
			if b.qNorm != nil {
				kernels.RMSNorm(head, head, b.qNorm, eps)
			}
			s.rope(head, cs, sn)
		}
		for h := 0; h < c.KVHeads; h++ {
			head := k[t*kvd+h*hd : t*kvd+(h+1)*hd]
			if b.kNorm != nil {
				kernels.RMSNorm(head, head, b.kNorm, eps)
			}
			s.rope(head, cs, sn)
		}
	}
}

// outputAndFFN adds the attention output projection of att to the n
// tokens of x, then the SwiGLU feed-forward of their norm (xb), with ob, hb
// and hb2 as scratch (ob may be xb).
func (b *block) outputAndFFN(c model.Config, x, xb, att, ob, hb, hb2 []float32, n int) {
	dim, eps := c.Dim, float32(c.NormEps)
	b.o.ForwardBatch(ob, att, n)
	for i := range x {
		x[i] += ob[i]
	}
	for t := 0; t < n; t++ {
		kernels.RMSNorm(xb[t*dim:(t+1)*dim], x[t*dim:(t+1)*dim], b.ffnNorm, eps)
	}
	b.gate.ForwardBatch(hb, xb, n)
	b.up.ForwardBatch(hb2, xb, n)
	kernels.SiLUMul(hb, hb2)
	b.down.ForwardBatch(ob, hb, n)
	for i := range x {
		x[i] += ob[i]
	}
}

func (s *State) rope(head, cos, sin []float32) {
	if s.tr.Config.RopeHalves {
		kernels.RoPEHalves(head, cos, sin)
	} else {
		kernels.RoPEPairs(head, cos, sin)
	}
}

// ropeTables fills cos/sin for positions Pos..Pos+n-1, in float64 so that
// long positions keep their precision.
func (s *State) ropeTables(n int) {
	half := s.tr.Config.HeadDim / 2
	for t := 0; t < n; t++ {
		p := float64(s.Pos + t)
		for i, f := range s.tr.freqs {
			sn, cs := math.Sincos(p * f)
			s.cos[t*half+i], s.sin[t*half+i] = float32(cs), float32(sn)
		}
	}
}

// attention computes causal multi-head attention for n new tokens against
// the cache of layer l, in parallel over heads.
func (s *State) attention(l int, q, out []float32, n int) {
	c := s.tr.Config
	if s.useBlocks(n) {
		s.attentionBlocks(l, q, out, n)
		return
	}
	s.att1 = attnCall{l: l, q: q, out: out, n: n}
	if 2*c.Heads*n*(s.Pos+n)*c.HeadDim < 1<<15 { // too little work to wake the pool
		s.attnHeads(0, c.Heads)
	} else {
		kernels.ParallelFor(c.Heads, 1, s.attnFn)
	}
	s.att1 = attnCall{}
}

// attnCall holds the arguments of the attention call in progress, so the
// per-head function handed to the pool is one method value made in NewState
// instead of a closure allocated per layer and token.
type attnCall struct {
	l      int
	q, out []float32
	n      int
}

// attnHeads computes attention for heads [lo, hi) of the call in s.att1.
func (s *State) attnHeads(lo, hi int) {
	c := s.tr.Config
	qd, kvd, hd := c.QDim(), c.KVDim(), c.HeadDim
	group := c.Heads / c.KVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	a := &s.att1
	var kc, vc []float32
	var kc16, vc16 []uint16
	if s.k16 != nil {
		kc16, vc16 = s.k16[a.l], s.v16[a.l]
	} else {
		kc, vc = s.k[a.l], s.v[a.l]
	}
	for h := lo; h < hi; h++ {
		kvh := h / group
		sc := s.scores[h*s.Capacity : (h+1)*s.Capacity]
		for t := 0; t < a.n; t++ {
			qh := a.q[t*qd+h*hd : t*qd+(h+1)*hd]
			npos := s.Pos + t + 1
			// Scores against this head's keys: rows of the cache at
			// stride kvd, then softmax, then the weighted sum of values.
			if kc16 != nil {
				kernels.DotRowsF16(sc[:npos], kc16[kvh*hd:], kvd, qh)
			} else {
				kernels.DotRows(sc[:npos], kc[kvh*hd:], kvd, qh)
			}
			for p := range sc[:npos] {
				sc[p] *= scale
			}
			kernels.Softmax(sc[:npos])
			o := a.out[t*qd+h*hd : t*qd+(h+1)*hd]
			clear(o)
			if vc16 != nil {
				kernels.AxpyRowsF16(o, sc[:npos], vc16[kvh*hd:], kvd)
			} else {
				kernels.AxpyRows(o, sc[:npos], vc[kvh*hd:], kvd)
			}
		}
	}
}
