package tokenizer

import (
	"testing"
	"unicode/utf8"
)

// Fuzz targets of the tokenizer readers, seeded from the real tokenizers
// of ../shared/testdata cut down to a few hundred tokens
// (testdata/fuzz/FuzzXxx, written by internal/fuzzseeds). Whatever loads
// must encode any text to ids inside the vocabulary.

func checkIDs(t *testing.T, tok Tokenizer, text string) {
	ids, err := tok.TokenizeErr(text, true, true)
	if err != nil {
		return
	}
	for _, id := range ids {
		if id < 0 || id >= tok.VocabSize() {
			t.Fatalf("id %d outside vocabulary of %d for %q", id, tok.VocabSize(), text)
		}
	}
	tok.Decode(ids)
}

func FuzzHFTokenizer(f *testing.F) {
	f.Fuzz(func(t *testing.T, tokJSON, cfgJSON []byte, text string) {
		if len(cfgJSON) == 0 {
			cfgJSON = nil
		}
		tok, err := ParseHFTokenizer("tokenizer.json", tokJSON, "tokenizer_config.json", cfgJSON)
		if err != nil {
			return
		}
		checkIDs(t, tok, text)
	})
}

func FuzzSentencePieceModel(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, text string) {
		tok, err := ParseSentencePieceModel("tokenizer.model", data)
		if err != nil {
			return
		}
		checkIDs(t, tok, text)
	})
}

func FuzzLlama2cTokenizer(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, vocab int, text string) {
		tok, err := ParseLlama2cTokenizer("tokenizer.bin", data, vocab)
		if err != nil {
			return
		}
		if !utf8.ValidString(text) {
			text = string([]rune(text))
		}
		checkIDs(t, tok, text)
	})
}
