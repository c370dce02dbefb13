package tokenizer

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"golang.org/x/text/unicode/norm"
)

// TestHFOracle compares against Hugging Face tokenizers (the Rust library)
// on 1,200 random strings rich in exotic whitespace, digits of other
// scripts, combining marks, emoji and added tokens: testdata/hf_fuzz.json,
// written by testdata/hf_oracle.js. HF matches added tokens in text, like
// Encode (parseSpecial=true).
func TestHFOracle(t *testing.T) {
	data, err := os.ReadFile("testdata/hf_fuzz.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []map[string]json.RawMessage `json:"cases"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) < 1000 {
		t.Fatalf("only %d cases", len(f.Cases))
	}
	for _, name := range []string{"qwen3", "llama3"} {
		t.Run(name, func(t *testing.T) {
			tok := loadHF(t, name)
			bad := 0
			for _, c := range f.Cases {
				var text string
				var want []int
				if err := json.Unmarshal(c["text"], &text); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(c[name], &want); err != nil {
					t.Fatal(err)
				}
				got := tok.Encode(text, false)
				if !slices.Equal(got, want) {
					if bad++; bad <= 5 {
						t.Errorf("%q:\n got %v\nwant %v", text, got, want)
					}
				}
				dec := text
				if tok.nfc {
					dec = norm.NFC.String(text)
				}
				if d := tok.Decode(want); d != dec {
					t.Errorf("Decode(HF ids of %q) = %q", text, d)
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d differ", bad, len(f.Cases))
			}
		})
	}
}
