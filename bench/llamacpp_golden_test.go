package bench

import (
	"math"
	"os"
	"testing"

	"github.com/armor-llm/armor/internal/testdata"
	"github.com/armor-llm/armor/runtime"
)

// Perplexity of stories260K with --ctx 256 over the first 200,000 bytes of
// the validation text equals llama-perplexity's, window by window.
func TestStoriesPerplexityMatchesLlamaCpp(t *testing.T) {
	if testing.Short() {
		t.Skip("short: 381 windows of 256 tokens")
	}
	var g testdata.Perplexity
	testdata.LlamaCpp(t, "perplexity_c256.json", &g)
	ld, err := runtime.Open(testdata.File(t, "models/stories260K.gguf"), "", true)
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	raw, err := os.ReadFile(testdata.File(t, "text/tinystories_val_subset.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tokens := ld.Tok.Tokenize(string(raw[:200000]), true, false)
	res, err := Perplexity(ld.Tr, tokens, 256, ld.Tok.BOS(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := g.First
	if res.Tokens != want.NTokens || res.Chunks != want.NChunks || res.Scored != want.NScored {
		t.Fatalf("tokens/windows/scored %d/%d/%d, llama.cpp %d/%d/%d", res.Tokens, res.Chunks, res.Scored, want.NTokens, want.NChunks, want.NScored)
	}
	// llama.cpp prints the running estimate to 4 decimals.
	if len(want.CumulativePPL) != want.NChunks {
		t.Fatalf("golden file has %d running estimates for %d windows", len(want.CumulativePPL), want.NChunks)
	}
	for i, w := range want.CumulativePPL {
		if math.Abs(res.ChunkPPL[i]-w) > 2e-4*w {
			t.Fatalf("window %d: running perplexity %.4f, llama.cpp %.4f", i+1, res.ChunkPPL[i], w)
		}
	}
	if rel := math.Abs(res.Perplexity-want.PPL) / want.PPL; rel > 1e-3 {
		t.Fatalf("perplexity %.4f, llama.cpp %.4f", res.Perplexity, want.PPL)
	}
	t.Logf("perplexity %.4f (llama-perplexity %.4f) over %d tokens", res.Perplexity, want.PPL, res.Tokens)
}
