package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/model"
)

// TestAttentionBlocks checks prompt attention in query blocks against a
// float64 evaluation of causal attention, and the per-token path against
// the same reference, for grouped (GQA) and plain multi-head layouts,
// group sizes that do not divide the block, head widths with SIMD tails,
// an empty and a filled cache, and partial last blocks.
func TestAttentionBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, hc := range [][3]int{{32, 8, 64}, {14, 2, 64}, {8, 8, 8}, {4, 1, 48}, {6, 2, 20}} {
		for _, pos := range []int{0, 37} {
			for _, n := range []int{8, 33, 100} {
				cfg := model.Config{Heads: hc[0], KVHeads: hc[1], HeadDim: hc[2]}
				name := fmt.Sprintf("heads %d/%d hd %d pos %d n %d", hc[0], hc[1], hc[2], pos, n)
				qd, kvd := cfg.QDim(), cfg.KVDim()
				capacity := pos + n
				s := &State{tr: &Transformer{Config: cfg}, Capacity: capacity, Pos: pos}
				s.k = [][]float32{randSlice(r, capacity*kvd)}
				s.v = [][]float32{randSlice(r, capacity*kvd)}
				s.scores = make([]float32, cfg.Heads*capacity)
				s.attnFn = s.attnHeads
				q := randSlice(r, n*qd)
				for i := range q {
					q[i] *= 3 // peaked enough that a wrong mask or scale shows
				}
				want := refAttention(cfg, q, s.k[0], s.v[0], pos, n)
				blocked := make([]float32, n*qd)
				for i := range blocked {
					blocked[i] = float32(math.NaN())
				}
				if got, want := s.useBlocks(n), n*(cfg.Heads/cfg.KVHeads) >= attnBlockMin; got != want {
					t.Fatalf("%s: useBlocks = %v, want %v", name, got, want)
				}
				s.attentionBlocks(0, q, blocked, n)
				perToken := make([]float32, n*qd)
				s.att1 = attnCall{l: 0, q: q, out: perToken, n: n}
				s.attnHeads(0, cfg.Heads)
				s.att1 = attnCall{}
				check := func(what string, want []float64) {
					t.Helper()
					for i := range want {
						// Outputs are convex combinations of values in
						// [-1, 1]: f32 error stays near 1e-6 of that scale.
						if d := math.Abs(float64(blocked[i]) - want[i]); !(d <= 2e-5) {
							t.Fatalf("%s%s: blocked out[%d] = %v, want %v", name, what, i, blocked[i], want[i])
						}
						if d := math.Abs(float64(perToken[i]) - want[i]); !(d <= 2e-5) {
							t.Fatalf("%s%s: per-token out[%d] = %v, want %v", name, what, i, perToken[i], want[i])
						}
					}
				}
				check("", want)

				// The same cache in f16 (Transformer.KVF16), against the
				// reference over the keys and values rounded to f16.
				k16, v16 := make([]uint16, len(s.k[0])), make([]uint16, len(s.v[0]))
				kernels.ToF16(k16, s.k[0])
				kernels.ToF16(v16, s.v[0])
				kr, vr := make([]float32, len(k16)), make([]float32, len(v16))
				kernels.FromF16(kr, k16)
				kernels.FromF16(vr, v16)
				want16 := refAttention(cfg, q, kr, vr, pos, n)
				s.k, s.v, s.k16, s.v16 = nil, nil, [][]uint16{k16}, [][]uint16{v16}
				for i := range blocked {
					blocked[i], perToken[i] = float32(math.NaN()), float32(math.NaN())
				}
				s.attentionBlocks(0, q, blocked, n)
				s.att1 = attnCall{l: 0, q: q, out: perToken, n: n}
				s.attnHeads(0, cfg.Heads)
				s.att1 = attnCall{}
				check(" (f16 cache)", want16)
			}
		}
	}
}

func randSlice(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 2*r.Float32() - 1
	}
	return v
}

// refAttention is causal attention in float64 for n tokens at positions
// pos.. against a flat cache (rows of KVDim), through refAttend.
func refAttention(c model.Config, q, k, v []float32, pos, n int) []float64 {
	qd, kvd := c.QDim(), c.KVDim()
	rows := func(m []float32, w, count int) [][]float64 {
		out := make([][]float64, count)
		for p := range out {
			out[p] = make([]float64, w)
			for j := range out[p] {
				out[p][j] = float64(m[p*w+j])
			}
		}
		return out
	}
	ks, vs, qs := rows(k, kvd, pos+n), rows(v, kvd, pos+n), rows(q, qd, n)
	var out []float64
	for t := 0; t < n; t++ {
		out = append(out, refAttend(c, qs[t], ks[:pos+t+1], vs[:pos+t+1])...)
	}
	return out
}
