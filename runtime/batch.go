package runtime

import (
	"fmt"
	"math"

	"github.com/armor-llm/armor/kernels"
)

// Batch runs several independent sequences through the model together, as a
// server's continuous batching does. Each sequence lives in a slot with its
// own KV cache; one Forward call takes any number of tokens from any slots
// (one token of each decoding sequence, a chunk of a new prompt) and runs
// all of them through every linear layer as one matrix, so each weight is
// read once per step instead of once per sequence. Attention, which reads
// each sequence's own cache, runs per sequence.
type Batch struct {
	tr        *Transformer
	slots     []*State
	maxTokens int

	x, xb, q, kk, vv, att, ob, hb, hb2, logits []float32
	cos, sin                                   []float32 // maxTokens × HeadDim/2
	used                                       []bool    // per slot, within one Forward
}

// BatchItem is one slot's share of a step: tokens appended at the slot's
// next positions.
type BatchItem struct {
	Slot   int
	Tokens []int
}

// NewBatch allocates slots sequences of up to ctx positions each, and
// scratch for steps of up to maxTokens tokens in all.
func (tr *Transformer) NewBatch(slots, ctx, maxTokens int) (*Batch, error) {
	if slots < 1 {
		return nil, fmt.Errorf("runtime: batch of %d slots", slots)
	}
	if maxTokens < slots {
		return nil, fmt.Errorf("runtime: a step of %d tokens cannot hold one token of each of %d slots", maxTokens, slots)
	}
	b := &Batch{tr: tr, maxTokens: maxTokens, used: make([]bool, slots)}
	for range slots {
		// A slot's State keeps only one token of scratch: its KV cache and
		// attention buffers are used, its forward scratch is the Batch's.
		st, err := tr.newState(ctx, 1)
		if err != nil {
			return nil, err
		}
		b.slots = append(b.slots, st)
	}
	c := tr.Config
	n := maxTokens
	b.x = make([]float32, n*c.Dim)
	b.xb = make([]float32, n*max(c.Dim, c.QDim()))
	b.q = make([]float32, n*c.QDim())
	b.kk = make([]float32, n*c.KVDim())
	b.vv = make([]float32, n*c.KVDim())
	b.att = make([]float32, n*c.QDim())
	b.ob = make([]float32, n*c.Dim)
	b.hb = make([]float32, n*c.Hidden)
	b.hb2 = make([]float32, n*c.Hidden)
	b.cos = make([]float32, n*c.HeadDim/2)
	b.sin = make([]float32, n*c.HeadDim/2)
	return b, nil
}

// Slots is the number of sequences the batch holds.
func (b *Batch) Slots() int { return len(b.slots) }

// Capacity is the positions each slot's KV cache holds.
func (b *Batch) Capacity() int { return b.slots[0].Capacity }

// MaxTokens is the most tokens one Forward call takes.
func (b *Batch) MaxTokens() int { return b.maxTokens }

// Pos is the number of positions slot i has filled.
func (b *Batch) Pos(i int) int { return b.slots[i].Pos }

// Truncate drops slot i's cached positions from n on (0 empties it).
func (b *Batch) Truncate(i, n int) { b.slots[i].Truncate(n) }

// KVBytes is the size of all the slots' KV caches.
func (b *Batch) KVBytes() int64 {
	var n int64
	for _, s := range b.slots {
		n += s.KVBytes()
	}
	return n
}

// Forward runs every item's tokens at its slot's next positions, appends
// them to the slot's KV cache and returns the logits of each item's last
// token (Vocab values per item, in the order of items). The slices are
// reused by the next call. A slot may appear once per call.
func (b *Batch) Forward(items []BatchItem) ([][]float32, error) {
	c := b.tr.Config
	total := 0
	clear(b.used)
	for _, it := range items {
		if it.Slot < 0 || it.Slot >= len(b.slots) {
			return nil, fmt.Errorf("runtime: slot %d out of range (%d slots)", it.Slot, len(b.slots))
		}
		if b.used[it.Slot] {
			return nil, fmt.Errorf("runtime: slot %d appears twice in one step", it.Slot)
		}
		b.used[it.Slot] = true
		if len(it.Tokens) == 0 {
			return nil, fmt.Errorf("runtime: slot %d: no tokens to run", it.Slot)
		}
		st := b.slots[it.Slot]
		if st.Pos+len(it.Tokens) > st.Capacity {
			return nil, &ErrContextFull{st.Pos, len(it.Tokens), st.Capacity}
		}
		for _, t := range it.Tokens {
			if t < 0 || t >= c.Vocab {
				return nil, fmt.Errorf("runtime: token id %d out of range (vocab %d)", t, c.Vocab)
			}
		}
		total += len(it.Tokens)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("runtime: no tokens to run")
	}
	if total > b.maxTokens {
		return nil, fmt.Errorf("runtime: a step of %d tokens exceeds the batch's %d", total, b.maxTokens)
	}
	return b.forward(items, total), nil
}

func (b *Batch) forward(items []BatchItem, n int) [][]float32 {
	tr, c := b.tr, b.tr.Config
	dim, qd, kvd, hd := c.Dim, c.QDim(), c.KVDim(), c.HeadDim
	half := hd / 2
	x := b.x[:n*dim]
	row := 0
	for _, it := range items {
		pos := b.slots[it.Slot].Pos
		for j, tok := range it.Tokens {
			tr.embed.Row(x[row*dim:(row+1)*dim], tok)
			p := float64(pos + j)
			for i, f := range tr.freqs {
				sn, cs := math.Sincos(p * f)
				b.cos[row*half+i], b.sin[row*half+i] = float32(cs), float32(sn)
			}
			row++
		}
	}
	eps := float32(c.NormEps)
	xb := b.xb[:n*dim]
	st0 := b.slots[0]
	for l := range tr.layers {
		blk := &tr.layers[l]
		q, k, v := b.q[:n*qd], b.kk[:n*kvd], b.vv[:n*kvd]
		blk.attentionInputs(st0, c, x, xb, q, k, v, b.cos, b.sin, n)
		att := b.att[:n*qd]
		row = 0
		for _, it := range items {
			// Each sequence's keys and values go to its own cache, and
			// its queries attend to that cache only.
			st, m := b.slots[it.Slot], len(it.Tokens)
			ks, vs := k[row*kvd:(row+m)*kvd], v[row*kvd:(row+m)*kvd]
			if st.k16 != nil {
				kernels.ToF16(st.k16[l][st.Pos*kvd:], ks)
				kernels.ToF16(st.v16[l][st.Pos*kvd:], vs)
			} else {
				copy(st.k[l][st.Pos*kvd:], ks)
				copy(st.v[l][st.Pos*kvd:], vs)
			}
			st.attention(l, q[row*qd:(row+m)*qd], att[row*qd:(row+m)*qd], m)
			row += m
		}
		blk.outputAndFFN(c, x, xb, att, b.ob[:n*dim], b.hb[:n*c.Hidden], b.hb2[:n*c.Hidden], n)
	}
	// The last token of each item goes through the final norm and the
	// output head, all items as one batch.
	rows := len(items)
	xl := b.xb[:rows*dim]
	row = 0
	for i, it := range items {
		row += len(it.Tokens)
		kernels.RMSNorm(xl[i*dim:(i+1)*dim], x[(row-1)*dim:row*dim], tr.norm, eps)
		b.slots[it.Slot].Pos += len(it.Tokens)
	}
	if len(b.logits) < rows*c.Vocab {
		b.logits = make([]float32, rows*c.Vocab)
	}
	logits := b.logits[:rows*c.Vocab]
	tr.output.ForwardBatch(logits, xl, rows)
	out := make([][]float32, rows)
	for i := range out {
		out[i] = logits[i*c.Vocab : (i+1)*c.Vocab]
	}
	return out
}
