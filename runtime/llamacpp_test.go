package runtime

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/armor-llm/armor/internal/testdata"
	"github.com/armor-llm/armor/kernels"
)

// Greedy decoding of stories260K.gguf equals llama.cpp's, token for token,
// and the logits after the prompt match llama.cpp's within 1e-2 relative,
// with our f32 KV cache (4.4e-3) and with an f16 one (2.6e-3): llama.cpp
// keeps its KV cache in f16 and also rounds q and the attention weights to
// f16 for the attention products.
func TestStoriesGreedyMatchesLlamaCpp(t *testing.T) {
	var g testdata.Greedy
	testdata.LlamaCpp(t, "greedy_once_upon_a_time.json", &g)
	ld, err := Open(testdata.File(t, "models/stories260K.gguf"), "", true)
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	prompt := ld.Tok.Encode(g.Prompt, true)
	if !slices.Equal(prompt, g.PromptIDs) {
		t.Fatalf("prompt ids %v, llama.cpp %v", prompt, g.PromptIDs)
	}
	defer kernels.SetThreads(kernels.Threads())
	for _, f16 := range []bool{false, true} {
		// Both KV caches: our f32 and, like llama.cpp's, f16.
		ld.Tr.KVF16 = f16
		st, _ := ld.Tr.NewState(512)
		logits, err := st.Forward(prompt, false)
		if err != nil {
			t.Fatal(err)
		}
		var worst float64
		for i, want := range g.LogitsAfterPrompt {
			worst = max(worst, math.Abs(float64(logits[i])-want)/(math.Abs(want)+1))
		}
		t.Logf("f16 cache %v: logits after the prompt within %.2g of llama.cpp's (relative)", f16, worst)
		if worst > 1e-2 {
			t.Errorf("f16 cache %v: logits after the prompt differ from llama.cpp's by %g (relative)", f16, worst)
		}
		testGreedyLlamaCpp(t, ld, prompt, g)
	}
}

func testGreedyLlamaCpp(t *testing.T, ld *Loaded, prompt []int, g testdata.Greedy) {
	t.Helper()
	for _, threads := range []int{1, 2} {
		kernels.SetThreads(threads)
		sess, err := NewSession(ld.Tr, ld.Tok, 512, SamplerConfig{Temp: 0, RepeatPenalty: 1})
		if err != nil {
			t.Fatal(err)
		}
		res, err := sess.Generate(context.Background(), prompt, len(g.GeneratedIDs), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.Tokens, g.GeneratedIDs) || res.Text != g.Text {
			t.Fatalf("f16 cache %v: greedy continuation\n got %v %q\nwant %v %q", ld.Tr.KVF16, res.Tokens, res.Text, g.GeneratedIDs, g.Text)
		}
	}
}
