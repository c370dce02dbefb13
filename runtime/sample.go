package runtime

import (
	"container/heap"
	"math"
	"math/rand/v2"
	"sort"
)

// SamplerConfig holds the sampling parameters; the defaults follow
// llama.cpp's (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no
// repetition penalty).
type SamplerConfig struct {
	Temp          float32 // ≤ 0: greedy
	TopK          int     // ≤ 0: disabled
	TopP          float32 // ≥ 1: disabled
	MinP          float32 // ≤ 0: disabled
	RepeatPenalty float32 // 1: disabled
	RepeatLastN   int     // how many recent tokens the penalty looks at
	Seed          uint64
}

// DefaultSampler returns llama.cpp's defaults with the given seed.
func DefaultSampler(seed uint64) SamplerConfig {
	return SamplerConfig{Temp: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1, RepeatLastN: 64, Seed: seed}
}

// Sampler picks the next token from logits. It is applied in llama.cpp's
// order: repetition penalty, top-k, top-p, min-p, temperature, draw.
type Sampler struct {
	cfg    SamplerConfig
	rng    *rand.Rand
	recent []int
	cand   []cand
	scaled []float32
}

type cand struct {
	id    int
	logit float32
	p     float64
}

// NewSampler makes a sampler; the same seed gives the same choices.
func NewSampler(cfg SamplerConfig) *Sampler {
	return &Sampler{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0xda3e39cb94b95bdb))}
}

// Accept records a token (prompt or generated) for the repetition penalty.
func (s *Sampler) Accept(tok int) {
	if s.cfg.RepeatLastN <= 0 {
		return
	}
	s.recent = append(s.recent, tok)
	if len(s.recent) > s.cfg.RepeatLastN {
		s.recent = s.recent[len(s.recent)-s.cfg.RepeatLastN:]
	}
}

// Reset forgets recent tokens.
func (s *Sampler) Reset() { s.recent = s.recent[:0] }

// Sample returns the next token. logits is not modified.
func (s *Sampler) Sample(logits []float32) int {
	c := s.cfg
	l := logits
	if c.RepeatPenalty != 1 && c.RepeatPenalty > 0 && len(s.recent) > 0 {
		s.scaled = append(s.scaled[:0], logits...)
		seen := map[int]bool{}
		for _, t := range s.recent {
			if seen[t] || t < 0 || t >= len(l) {
				continue
			}
			seen[t] = true
			if s.scaled[t] > 0 {
				s.scaled[t] /= c.RepeatPenalty
			} else {
				s.scaled[t] *= c.RepeatPenalty
			}
		}
		l = s.scaled
	}
	if c.Temp <= 0 {
		return Argmax(l)
	}
	cs := s.topK(l, c.TopK)
	// Probabilities before temperature, as llama.cpp's top-p and min-p see them.
	softmaxCand(cs, 1)
	if c.TopP > 0 && c.TopP < 1 {
		var cum float64
		for i := range cs {
			cum += cs[i].p
			if cum >= float64(c.TopP) {
				cs = cs[:i+1]
				break
			}
		}
	}
	if c.MinP > 0 {
		keep := 1
		for keep < len(cs) && cs[keep].p >= float64(c.MinP)*cs[0].p {
			keep++
		}
		cs = cs[:keep]
	}
	softmaxCand(cs, c.Temp)
	r := s.rng.Float64()
	for _, x := range cs {
		r -= x.p
		if r < 0 {
			return x.id
		}
	}
	return cs[len(cs)-1].id
}

// Argmax returns the index of the largest logit (the lowest index on ties,
// as llama.cpp's greedy sampler).
func Argmax(l []float32) int {
	best := 0
	for i, v := range l {
		if v > l[best] {
			best = i
		}
	}
	return best
}

// topK returns the k highest logits sorted descending (all if k ≤ 0).
func (s *Sampler) topK(l []float32, k int) []cand {
	s.cand = s.cand[:0]
	if k <= 0 || k >= len(l) {
		for i, v := range l {
			s.cand = append(s.cand, cand{id: i, logit: v})
		}
	} else {
		h := candHeap(s.cand)
		for i, v := range l {
			if len(h) < k {
				heap.Push(&h, cand{id: i, logit: v})
			} else if v > h[0].logit {
				h[0] = cand{id: i, logit: v}
				heap.Fix(&h, 0)
			}
		}
		s.cand = h
	}
	sort.Slice(s.cand, func(i, j int) bool {
		if s.cand[i].logit != s.cand[j].logit {
			return s.cand[i].logit > s.cand[j].logit
		}
		return s.cand[i].id < s.cand[j].id
	})
	return s.cand
}

func softmaxCand(cs []cand, temp float32) {
	mx := cs[0].logit
	var sum float64
	for i := range cs {
		cs[i].p = math.Exp(float64(cs[i].logit-mx) / float64(temp))
		sum += cs[i].p
	}
	for i := range cs {
		cs[i].p /= sum
	}
}

// candHeap is a min-heap on logit for top-k selection.
type candHeap []cand

func (h candHeap) Len() int           { return len(h) }
func (h candHeap) Less(i, j int) bool { return h[i].logit < h[j].logit }
func (h candHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *candHeap) Push(x any)        { *h = append(*h, x.(cand)) }
func (h *candHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
