package runtime

import (
	"math"
	"math/rand/v2"
	"slices"
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
	seen   map[int]bool // tokens already penalized in this step, reused
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
		if s.seen == nil {
			s.seen = map[int]bool{}
		}
		clear(s.seen)
		seen := s.seen
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

// topK returns the k highest logits sorted descending (all if k ≤ 0). The
// selection is a min-heap of size k kept by hand: container/heap would box
// every candidate into an interface, an allocation per vocabulary entry.
func (s *Sampler) topK(l []float32, k int) []cand {
	s.cand = s.cand[:0]
	if k <= 0 || k >= len(l) {
		for i, v := range l {
			s.cand = append(s.cand, cand{id: i, logit: v})
		}
	} else {
		h := s.cand
		for i, v := range l {
			switch {
			case len(h) < k:
				h = append(h, cand{id: i, logit: v})
				siftUp(h, len(h)-1)
			case v > h[0].logit:
				h[0] = cand{id: i, logit: v}
				siftDown(h, 0)
			}
		}
		s.cand = h
	}
	slices.SortFunc(s.cand, func(a, b cand) int {
		switch {
		case a.logit > b.logit:
			return -1
		case a.logit < b.logit:
			return 1
		}
		return a.id - b.id
	})
	return s.cand
}

// siftUp and siftDown keep h a min-heap on logit.
func siftUp(h []cand, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h[p].logit <= h[i].logit {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func siftDown(h []cand, i int) {
	for {
		m, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && h[l].logit < h[m].logit {
			m = l
		}
		if r < len(h) && h[r].logit < h[m].logit {
			m = r
		}
		if m == i {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
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
