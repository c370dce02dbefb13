package runtime

import (
	"math"
	"testing"
)

func TestGreedyAndPenalty(t *testing.T) {
	l := []float32{1, 5, 3, -2}
	s := NewSampler(SamplerConfig{Temp: 0, RepeatPenalty: 1})
	if got := s.Sample(l); got != 1 {
		t.Fatalf("greedy picked %d", got)
	}
	// Penalty 10 on token 1 makes 5 → 0.5, so token 2 wins.
	s = NewSampler(SamplerConfig{Temp: 0, RepeatPenalty: 10, RepeatLastN: 4})
	s.Accept(1)
	if got := s.Sample(l); got != 2 {
		t.Fatalf("penalised greedy picked %d", got)
	}
	if l[1] != 5 {
		t.Fatal("Sample modified logits")
	}
}

// The empirical distribution follows the filtered, tempered softmax.
func TestSamplingDistribution(t *testing.T) {
	l := []float32{2, 1, 0, -1, -8}
	cfg := SamplerConfig{Temp: 0.7, TopK: 3, TopP: 1, MinP: 0, RepeatPenalty: 1, Seed: 42}
	s := NewSampler(cfg)
	const n = 200000
	count := make([]int, len(l))
	for i := 0; i < n; i++ {
		count[s.Sample(l)]++
	}
	var z float64
	want := make([]float64, 3)
	for i := range want {
		want[i] = math.Exp(float64(l[i]) / 0.7)
		z += want[i]
	}
	for i := range want {
		got := float64(count[i]) / n
		if math.Abs(got-want[i]/z) > 0.005 {
			t.Errorf("token %d: frequency %.4f, want %.4f", i, got, want[i]/z)
		}
	}
	if count[3]+count[4] != 0 {
		t.Errorf("top-k 3 let through %d and %d", count[3], count[4])
	}
	// Same seed, same sequence.
	a, b := NewSampler(cfg), NewSampler(cfg)
	for i := 0; i < 100; i++ {
		if a.Sample(l) != b.Sample(l) {
			t.Fatal("same seed gave different samples")
		}
	}
}

func TestTopPAndMinP(t *testing.T) {
	// probabilities ≈ 0.64, 0.24, 0.09, 0.03
	l := []float32{3, 2, 1, 0}
	s := NewSampler(SamplerConfig{Temp: 1, TopP: 0.7, RepeatPenalty: 1, Seed: 1})
	for i := 0; i < 2000; i++ {
		if tok := s.Sample(l); tok > 1 {
			t.Fatalf("top-p 0.7 sampled token %d", tok)
		}
	}
	s = NewSampler(SamplerConfig{Temp: 1, MinP: 0.2, RepeatPenalty: 1, Seed: 1})
	for i := 0; i < 2000; i++ {
		if tok := s.Sample(l); tok > 1 { // 0.09/0.64 < 0.2
			t.Fatalf("min-p 0.2 sampled token %d", tok)
		}
	}
}

// Sampling with every filter on allocates nothing per token.
func TestSampleDoesNotAllocate(t *testing.T) {
	l := make([]float32, 1000)
	for i := range l {
		l[i] = float32(i%37) / 10
	}
	s := NewSampler(SamplerConfig{Temp: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1.1, RepeatLastN: 64, Seed: 1})
	for i := 0; i < 64; i++ {
		s.Accept(i)
	}
	s.Sample(l)
	if a := testing.AllocsPerRun(100, func() { s.Accept(s.Sample(l)) }); a != 0 {
		t.Fatalf("Sample allocates %v times per token", a)
	}
}
