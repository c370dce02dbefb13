package tokenizer

import (
	"slices"
	"testing"

	"github.com/armor-llm/armor/internal/testdata"
)

func loadLlama2(t *testing.T) map[string]*SentencePiece {
	m, err := LoadSentencePieceModel(testdata.File(t, "tokenizers/llama2-tokenizer.model"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadLlama2cTokenizer(testdata.File(t, "tokenizers/llama2-tokenizer.bin"), 32000)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*SentencePiece{"model": m, "bin": b}
}

func TestSPMGoldenVectors(t *testing.T) {
	vs := readVectors(t, "ggml-vocab-llama-spm.gguf")
	for name, tok := range loadLlama2(t) {
		if tok.VocabSize() != 32000 || tok.BOS() != 1 || tok.EOS() != 2 {
			t.Fatalf("%s: vocab %d bos %d eos %d", name, tok.VocabSize(), tok.BOS(), tok.EOS())
		}
		bad := 0
		for i, v := range vs {
			got := tok.Tokenize(v.text, false, false)
			if !slices.Equal(got, v.ids) {
				bad++
				t.Errorf("%s: input %d %q:\n got %v\nwant %v", name, i, v.text, got, v.ids)
			}
			if got := tok.Encode(v.text, false); !slices.Equal(got, v.ids) {
				t.Errorf("%s: Encode (parse special) differs on %q", name, v.text)
			}
			if dec := tok.Decode(v.ids); dec != v.text {
				t.Errorf("%s: Decode(golden %d) = %q, want %q", name, i, dec, v.text)
			}
		}
		if bad == 0 {
			t.Logf("%s: %d/%d golden vectors match", name, len(vs), len(vs))
		}
	}
}
