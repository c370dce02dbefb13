package testdata

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Greedy is testdata/llamacpp/greedy_once_upon_a_time.json: llama.cpp's
// greedy continuation of "Once upon a time" on stories260K.gguf.
type Greedy struct {
	Prompt            string    `json:"prompt"`
	PromptIDs         []int     `json:"prompt_ids"`
	GeneratedIDs      []int     `json:"generated_ids"`
	Text              string    `json:"text"`
	LogitsAfterPrompt []float64 `json:"logits_after_prompt"`
}

// Tokens is testdata/llamacpp/tokens.json.
type Tokens struct {
	Prompts []struct {
		Text       string `json:"text"`
		IDsWithBOS []int  `json:"ids_with_bos"`
		IDsNoBOS   []int  `json:"ids_no_bos"`
	} `json:"prompts"`
	PerplexityInputs []struct {
		NTokens int    `json:"n_tokens"`
		First   []int  `json:"first_300_ids"`
		Last    []int  `json:"last_20_ids"`
		SHA256  string `json:"sha256_of_ids_joined_by_comma"`
	} `json:"perplexity_inputs"`
}

// Perplexity is testdata/llamacpp/perplexity_c256.json.
type Perplexity struct {
	Full  PPLRun `json:"full"`
	First PPLRun `json:"first_200000_bytes"`
}

// PPLRun is one llama-perplexity run.
type PPLRun struct {
	PPL           float64   `json:"ppl"`
	NTokens       int       `json:"n_tokens"`
	NChunks       int       `json:"n_chunks"`
	NScored       int       `json:"n_scored_tokens"`
	NCtx          int       `json:"n_ctx"`
	CumulativePPL []float64 `json:"cumulative_ppl_per_chunk"`
}

// LlamaCpp reads one of the committed llama.cpp golden files (our own
// generated data in the repository's testdata/llamacpp) into v.
func LlamaCpp(t testing.TB, name string, v any) {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "testdata", "llamacpp", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}
