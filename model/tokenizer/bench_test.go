package tokenizer

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/armor-llm/armor/internal/testdata"
)

// TestLongInputs guards against quadratic behaviour: one 200,000-byte word
// and 200 kB of text must tokenize in well under the limits below
// (generous, for a loaded 2-core machine; typical figures are logged).
func TestLongInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("long inputs take seconds; skipped with -short")
	}
	text, err := os.ReadFile(testdata.File(t, "text/tinyshakespeare.txt"))
	if err != nil {
		t.Fatal(err)
	}
	text = text[:200000] // ends inside ASCII text: no split character
	long := strings.Repeat("abcdefghij", 20000)
	cases := []struct {
		name string
		tok  Tokenizer
	}{{"llama3", loadHF(t, "llama3")}, {"qwen3", loadHF(t, "qwen3")}, {"llama2", loadLlama2(t)["model"]}}
	for _, c := range cases {
		start := time.Now()
		ids := c.tok.Tokenize(long, false, false)
		dWord := time.Since(start)
		if c.tok.Decode(ids) != long {
			t.Fatalf("%s: long word does not round-trip", c.name)
		}
		start = time.Now()
		ids = c.tok.Tokenize(string(text), false, false)
		dText := time.Since(start)
		t.Logf("%s: 200 kB word in %v; tinyshakespeare head (%d bytes) -> %d tokens in %v (%.1f MB/s)",
			c.name, dWord, len(text), len(ids), dText, float64(len(text))/dText.Seconds()/1e6)
		if dWord > 5*time.Second || dText > 30*time.Second {
			t.Errorf("%s: too slow", c.name)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	text, err := os.ReadFile(testdata.File(b, "text/tinystories_val_subset.txt"))
	if err != nil {
		b.Fatal(err)
	}
	text = text[:100000]
	for _, name := range []string{"llama3", "qwen3"} {
		tok, err := LoadHFTokenizer(testdata.File(b, "tokenizers/"+name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				tok.Tokenize(string(text), false, false)
			}
		})
	}
}

func BenchmarkLoadQwen3(b *testing.B) {
	dir := testdata.File(b, "tokenizers/qwen3")
	for b.Loop() {
		if _, err := LoadHFTokenizer(dir); err != nil {
			b.Fatal(err)
		}
	}
}
