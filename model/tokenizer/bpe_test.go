package tokenizer

import (
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/armor-llm/armor/internal/testdata"
)

var hfCache sync.Map

// loadHF loads (once per test binary) a tokenizer directory under tokenizers/.
func loadHF(t *testing.T, name string) *BPE {
	t.Helper()
	dir := filepath.Dir(testdata.File(t, "tokenizers/"+name+"/tokenizer.json"))
	if v, ok := hfCache.Load(dir); ok {
		return v.(*BPE)
	}
	start := time.Now()
	tok, err := LoadHFTokenizer(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %s (%d tokens) in %v", name, tok.VocabSize(), time.Since(start))
	hfCache.Store(dir, tok)
	return tok
}

func TestBPEGoldenVectors(t *testing.T) {
	for _, c := range []struct{ tok, vectors string }{
		{"qwen3", "ggml-vocab-qwen2.gguf"},
		{"llama3", "ggml-vocab-llama-bpe.gguf"},
	} {
		t.Run(c.tok, func(t *testing.T) {
			tok := loadHF(t, c.tok)
			vs := readVectors(t, c.vectors)
			for i, v := range vs {
				got := tok.Tokenize(v.text, false, false)
				if !slices.Equal(got, v.ids) {
					t.Errorf("input %d %q:\n got %v\nwant %v", i, v.text, got, v.ids)
				}
				if got := tok.Encode(v.text, false); !slices.Equal(got, v.ids) {
					t.Errorf("Encode (parse special) differs on %q", v.text)
				}
				if dec := tok.Decode(v.ids); dec != v.text {
					t.Errorf("Decode(golden %d) = %q, want %q", i, dec, v.text)
				}
			}
		})
	}
}

// TestBPEFromGGUFStyleConfig rebuilds the tokenizers the way a GGUF file
// describes them (token list with types, "a b" merges, llama.cpp
// pre-tokenizer name, no NFC) and checks the golden vectors again: this is
// the path the GGUF loader takes, with the built-in regexes.
func TestBPEFromGGUFStyleConfig(t *testing.T) {
	for _, c := range []struct{ tok, pre, vectors string }{
		{"qwen3", "qwen2", "ggml-vocab-qwen2.gguf"},
		{"llama3", "llama-bpe", "ggml-vocab-llama-bpe.gguf"},
	} {
		t.Run(c.tok, func(t *testing.T) {
			hf := loadHF(t, c.tok)
			merges := make([]string, 0, len(hf.merges))
			byRank := make(map[int32]string, len(hf.merges))
			maxRank := int32(-1)
			for k, m := range hf.merges {
				byRank[m.rank] = hf.tokens[k>>32] + " " + hf.tokens[uint32(k)]
				maxRank = max(maxRank, m.rank)
			}
			for r := int32(0); r <= maxRank; r++ {
				if s, ok := byRank[r]; ok {
					merges = append(merges, s)
				}
			}
			tok, err := NewBPE(BPEConfig{
				Tokens: hf.tokens, Types: hf.types, Merges: merges, Pre: c.pre,
				BOS: hf.bos, EOS: hf.eos, EOT: -1, AddBOS: hf.addBOS,
			})
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range readVectors(t, c.vectors) {
				if got := tok.Tokenize(v.text, false, false); !slices.Equal(got, v.ids) {
					t.Errorf("input %d %q:\n got %v\nwant %v", i, v.text, got, v.ids)
				}
			}
		})
	}
}
