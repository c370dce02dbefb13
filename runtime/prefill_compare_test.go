package runtime

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// TestPrefillAlternate (ARMOR_PREFILL_MODELS=a.armor,b.armor,...) loads
// every model into one process and times a 512-token prefill of each in
// alternation, 6 rounds after one warm-up each, then prints each model's
// best tok/s and its ratio to the first model's. Unlike armor-bench speed
// (one process per model), all models see the same moments of a drifting
// machine; the figures in docs/benchmarks.md's 1B section were taken this way with
// the dense and ARMOR files of the llama-3.2-1b synthetic shape.
func TestPrefillAlternate(t *testing.T) {
	env := os.Getenv("ARMOR_PREFILL_MODELS")
	if env == "" {
		t.Skip("set ARMOR_PREFILL_MODELS=first,second,... to time prefill of models in alternation")
	}
	const promptLen, rounds = 512, 6
	paths := strings.Split(env, ",")
	states := make([]*State, len(paths))
	var prompt []int
	for i, p := range paths {
		l, err := Open(p, "", false)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if prompt == nil {
			rng := rand.New(rand.NewPCG(1, 2))
			prompt = make([]int, promptLen)
			for j := range prompt {
				prompt[j] = rng.IntN(l.Tr.Config.Vocab)
			}
		}
		if states[i], err = l.Tr.NewState(promptLen); err != nil {
			t.Fatal(err)
		}
		if _, err := states[i].Forward(prompt, false); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	best := make([]float64, len(paths))
	for r := 0; r < rounds; r++ {
		for i, st := range states {
			st.Reset()
			t0 := time.Now()
			if _, err := st.Forward(prompt, false); err != nil {
				t.Fatal(err)
			}
			best[i] = max(best[i], promptLen/time.Since(t0).Seconds())
		}
	}
	for i, p := range paths {
		fmt.Printf("%-60s prefill %7.1f tok/s  %.3f×\n", p, best[i], best[i]/best[0])
	}
}
