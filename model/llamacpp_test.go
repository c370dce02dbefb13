package model_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/armor-llm/armor/internal/testdata"
	"github.com/armor-llm/armor/model"
)

// The stories260K vocabulary tokenizes exactly as llama-tokenize does, for
// the sample prompts and for both perplexity inputs as a whole.
func TestStoriesTokensMatchLlamaCpp(t *testing.T) {
	var g testdata.Tokens
	testdata.LlamaCpp(t, "tokens.json", &g)
	m, err := model.Load(testdata.File(t, "models/stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := m.Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range g.Prompts {
		if got := tok.Tokenize(p.Text, true, false); !reflect.DeepEqual(got, p.IDsWithBOS) {
			t.Errorf("%q with BOS:\n got %v\nwant %v", p.Text, got, p.IDsWithBOS)
		}
		if got := tok.Tokenize(p.Text, false, false); !reflect.DeepEqual(got, p.IDsNoBOS) {
			t.Errorf("%q without BOS:\n got %v\nwant %v", p.Text, got, p.IDsNoBOS)
		}
	}
	raw, err := os.ReadFile(testdata.File(t, "text/tinystories_val_subset.txt"))
	if err != nil {
		t.Fatal(err)
	}
	whole := strings.TrimSuffix(string(raw), "\n") // as llama-perplexity -f reads it
	for i, text := range []string{whole, string(raw[:200000])} {
		want := g.PerplexityInputs[i]
		ids := tok.Tokenize(text, true, false)
		var sb strings.Builder
		for k, id := range ids {
			if k > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(strconv.Itoa(id))
		}
		sum := sha256.Sum256([]byte(sb.String()))
		if len(ids) != want.NTokens || hex.EncodeToString(sum[:]) != want.SHA256 {
			t.Errorf("perplexity input %d: %d tokens (llama.cpp %d), ids sha256 match: %v; first ids %v vs %v",
				i, len(ids), want.NTokens, hex.EncodeToString(sum[:]) == want.SHA256, ids[:min(10, len(ids))], want.First[:10])
		}
	}
}
