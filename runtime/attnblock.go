package runtime

import (
	"math"
	"sync"

	"github.com/armor-llm/armor/kernels"
)

// Prompt attention in blocks of queries. Per KV head and block of query
// tokens, the queries of all the heads that share that KV head (GQA) form
// one matrix of up to attnBlockQueries rows; scores against every cached key
// are one matrix product, the causal softmax runs per row, and the weighted
// sum of values is a second product (with V transposed once per block). The
// per-token path computes one dot product per (head, token, position) and
// reduces each across vector lanes, which left prefill attention at a few
// percent of the FMA rate; here both products run on the GEMM kernels.

// attnBlockQueries is the number of query vectors (tokens × heads of a
// group) per block: one 64-token tile of the tokens-in-lanes GEMM.
const attnBlockQueries = 64

// attnBlockMin is the least number of query vectors per KV head for which
// the blocked path runs (the tokens-in-lanes tiles start at 32).
const attnBlockMin = 32

// attnScratch is one worker's buffers for a block.
type attnScratch struct {
	q, s, vt, o []float32
}

var attnScratchPool = sync.Pool{New: func() any { return new(attnScratch) }}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// useBlocks reports whether attention for n new tokens takes the blocked path.
func (s *State) useBlocks(n int) bool {
	c := s.tr.Config
	return n > 1 && n*(c.Heads/c.KVHeads) >= attnBlockMin
}

// attentionBlocks computes causal attention for n new tokens (already in
// the cache of layer l) into out, in parallel over (KV head, query block).
func (s *State) attentionBlocks(l int, q, out []float32, n int) {
	c := s.tr.Config
	group := c.Heads / c.KVHeads
	tb := max(1, attnBlockQueries/group) // tokens per block
	nb := (n + tb - 1) / tb
	if s.k16 != nil {
		// An f16 cache: the layer's keys and values up to the last new
		// position, widened to f32 once for every block's products (one
		// layer's worth of f32 cache, allocated on the first prompt).
		np := (s.Pos + n) * c.KVDim()
		if s.kw == nil {
			s.kw = make([]float32, s.Capacity*c.KVDim())
			s.vw = make([]float32, s.Capacity*c.KVDim())
		}
		kernels.FromF16(s.kw[:np], s.k16[l])
		kernels.FromF16(s.vw[:np], s.v16[l])
	}
	items := c.KVHeads * nb
	kernels.ParallelFor(items, 1, func(lo, hi int) {
		sc := attnScratchPool.Get().(*attnScratch)
		for it := lo; it < hi; it++ {
			// The last blocks attend to the most positions: hand them out
			// first so the dynamic chunks end together.
			b := nb - 1 - it/c.KVHeads
			g := it % c.KVHeads
			t0 := b * tb
			s.attnBlock(sc, l, q, out, g, t0, min(t0+tb, n))
		}
		attnScratchPool.Put(sc)
	})
}

// attnBlock computes the outputs of tokens [t0, t1) for the query heads of
// KV head g.
func (s *State) attnBlock(sc *attnScratch, l int, q, out []float32, g, t0, t1 int) {
	c := s.tr.Config
	qd, kvd, hd := c.QDim(), c.KVDim(), c.HeadDim
	group := c.Heads / c.KVHeads
	m := (t1 - t0) * group // query vectors, row i = (t0 + i/group, head g·group + i%group)
	np := s.Pos + t1       // positions the last token sees
	scale := float32(1 / math.Sqrt(float64(hd)))
	sc.q = grow(sc.q, m*hd)
	sc.s = grow(sc.s, m*np)
	sc.vt = grow(sc.vt, hd*np)
	sc.o = grow(sc.o, m*hd)
	for i := 0; i < m; i++ {
		t, h := t0+i/group, g*group+i%group
		src := q[t*qd+h*hd : t*qd+(h+1)*hd]
		dst := sc.q[i*hd : (i+1)*hd]
		for j, v := range src {
			dst[j] = v * scale
		}
	}
	var kc, vc []float32
	if s.k16 != nil {
		kc, vc = s.kw[g*hd:], s.vw[g*hd:] // widened by attentionBlocks
	} else {
		kc, vc = s.k[l][g*hd:], s.v[l][g*hd:]
	}
	// Scores: s[i, p] = q_i · k_p for p < np.
	kernels.MatMulF32(sc.s, np, kc, kvd, np, hd, sc.q, hd, m)
	for i := 0; i < m; i++ {
		lim := s.Pos + t0 + i/group + 1 // causal: positions ≤ the token's own
		row := sc.s[i*np : (i+1)*np]
		kernels.Softmax(row[:lim])
		clear(row[lim:])
	}
	// Outputs: o[i, d] = Σ_p s[i, p]·v_p[d], with V transposed to hd × np.
	kernels.Transpose(sc.vt, np, vc, kvd, np, hd)
	kernels.MatMulF32(sc.o, hd, sc.vt, np, hd, np, sc.s, np, m)
	for i := 0; i < m; i++ {
		t, h := t0+i/group, g*group+i%group
		copy(out[t*qd+h*hd:t*qd+(h+1)*hd], sc.o[i*hd:(i+1)*hd])
	}
}
