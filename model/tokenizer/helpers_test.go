package tokenizer

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/armor-llm/armor/internal/testdata"
)

// testdataDir finds the shared test data (internal/testdata.Dir: skip, or
// fail under ARMOR_REQUIRE_TESTDATA=1, when it is absent).
func testdataDir(t testing.TB) string { return testdata.Dir(t) }

// needFile returns path under the test data dir, skipping (or failing with
// ARMOR_REQUIRE_TESTDATA=1) when the file is missing.
func needFile(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(testdataDir(t), rel)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("ARMOR_REQUIRE_TESTDATA") == "1" {
			t.Fatalf("test data file missing: %v", err)
		}
		t.Skipf("test data file missing: %v", err)
	}
	return p
}

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
	inp, err := os.ReadFile(needFile(t, "tokenizers/vectors/"+name+".inp"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(needFile(t, "tokenizers/vectors/"+name+".out"))
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
