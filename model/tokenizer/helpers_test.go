package tokenizer

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/armor-llm/armor/internal/testdata"
)

type vector struct {
	text string
	ids  []int
}

// readVectors parses llama.cpp's test-tokenizer-0 files: the .inp holds each
// input followed by "\n__ggml_vocab_test__\n", the .out one line of ids per
// input (written by convert_hf_to_gguf_update.py with Hugging Face
// tokenizers, add_special_tokens=False).
func readVectors(t *testing.T, name string) []vector {
	t.Helper()
	inp, err := os.ReadFile(testdata.File(t, "tokenizers/vectors/"+name+".inp"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(testdata.File(t, "tokenizers/vectors/"+name+".out"))
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Split(string(inp), "\n__ggml_vocab_test__\n")
	if texts[len(texts)-1] != "" {
		t.Fatalf("%s.inp does not end with a separator", name)
	}
	texts = texts[:len(texts)-1]
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(texts) {
		t.Fatalf("%s: %d inputs but %d output lines", name, len(texts), len(lines))
	}
	vs := make([]vector, len(texts))
	for i := range texts {
		vs[i].text = texts[i]
		for _, f := range strings.Fields(lines[i]) {
			id, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s.out line %d: %v", name, i+1, err)
			}
			vs[i].ids = append(vs[i].ids, id)
		}
	}
	return vs
}
