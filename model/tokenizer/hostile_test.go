package tokenizer

import (
	"encoding/json"
	"fmt"
	"github.com/armor-llm/armor/internal/hostile"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/armor-llm/armor/model/limits"
)

// hfJSON builds a minimal byte-level BPE tokenizer.json: the 256 byte
// tokens, the given extra vocabulary, and a Split pre-tokenizer pattern.
func hfJSON(pattern string, extra map[string]int) []byte {
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[string(byteToRune[b])] = b
	}
	for k, v := range extra {
		vocab[k] = v
	}
	pre := map[string]any{"type": "Sequence", "pretokenizers": []any{
		map[string]any{"type": "Split", "pattern": map[string]any{"Regex": pattern}, "behavior": "Isolated", "invert": false},
		map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false},
	}}
	b, _ := json.Marshal(map[string]any{"pre_tokenizer": pre, "model": map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{}}})
	return b
}

func writeDir(t *testing.T, tokJSON []byte) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tokJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRegexNestedQuantifierRefused(t *testing.T) {
	for _, p := range []string{`(a+)+$`, `(?:\s*\w)*!`, `((ab)*c)+`, `(\p{L}{2,})*x`} {
		dir := writeDir(t, hfJSON(p, nil))
		hostile.Bounded(t, t.Name(), func() {
			_, err := LoadHFTokenizer(dir)
			if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "tokenizer.json")) || !strings.Contains(err.Error(), "nested quantifiers") {
				t.Errorf("%s: %v", p, err)
			}
		})
	}
	// The real patterns pass.
	for name, p := range preTokenizers {
		for _, r := range p.regexes {
			if err := nestedQuantifier(r); err != nil {
				t.Errorf("%s: %q: %v", name, r, err)
			}
		}
	}
}

func TestRegexProbeRefusesCatastrophic(t *testing.T) {
	// No nested quantifier, but overlapping alternatives under a plus:
	// exponential on a run of a's that does not end the text. The
	// load-time probe catches it.
	dir := writeDir(t, hfJSON(`(a|aa)+$`, nil))
	hostile.Bounded(t, t.Name(), func() {
		_, err := LoadHFTokenizer(dir)
		if err == nil || !strings.Contains(err.Error(), "catastrophic backtracking") || !strings.Contains(err.Error(), dir) {
			t.Errorf("(a|aa)+$: %v", err)
		}
	})
}

func TestRegexTimeoutIsAnError(t *testing.T) {
	// Catastrophic only on x's, which the probe does not try: the match
	// timeout stops it and TokenizeErr reports it.
	dir := writeDir(t, hfJSON(`(x|xx)+$| ?\p{L}+|\s+|[^\s\p{L}]+`, nil))
	tok, err := LoadHFTokenizer(dir)
	if err != nil {
		t.Fatal(err)
	}
	in := strings.Repeat("x", 48) + "!"
	hostile.Within(t, t.Name(), limits.RegexTimeout+500*time.Millisecond, func() {
		_, err = tok.TokenizeErr(in, false, true)
	})
	if err == nil || !strings.Contains(err.Error(), "timeout") || !strings.Contains(err.Error(), "pre-tokenizer regex") {
		t.Fatalf("TokenizeErr: %v", err)
	}
	// Tokenize (no error return) still ends, with the text intact.
	hostile.Within(t, t.Name(), limits.RegexTimeout+500*time.Millisecond, func() {
		ids := tok.Tokenize(in, false, true)
		if got := tok.Decode(ids); got != in {
			t.Errorf("decoded %q", got)
		}
	})
}

func TestHugeTokenID(t *testing.T) {
	// About 100 bytes naming id 16,777,215: refused without allocating
	// for 16M tokens.
	src := []byte(`{"pre_tokenizer":{"type":"ByteLevel","use_regex":true},"model":{"type":"BPE","vocab":{"a":16777215}}}`)
	dir := writeDir(t, src)
	hostile.Bounded(t, t.Name(), func() {
		_, err := LoadHFTokenizer(dir)
		if err == nil || !strings.Contains(err.Error(), "16777215") || !strings.Contains(err.Error(), dir) {
			t.Errorf("huge id: %v", err)
		}
	})
	// An added token likewise.
	src = hfJSON(`\s+`, nil)
	var m map[string]any
	json.Unmarshal(src, &m)
	m["added_tokens"] = []any{map[string]any{"id": 1 << 23, "content": "<x>", "special": true}}
	src, _ = json.Marshal(m)
	dir = writeDir(t, src)
	hostile.Bounded(t, t.Name(), func() {
		_, err := LoadHFTokenizer(dir)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprint(1<<23)) {
			t.Errorf("huge added id: %v", err)
		}
	})
}

func TestSentencePieceWithoutUnknown(t *testing.T) {
	// No unknown token and no byte pieces: refused at load, never id -1.
	_, err := NewSentencePiece([]string{"<s>", "</s>", "▁a", "a"}, []float32{0, 0, -1, -2}, nil, 0, 1, -1)
	if err == nil || !strings.Contains(err.Error(), "no unknown token") {
		t.Fatalf("no unk, no bytes: %v", err)
	}
	// No unknown token but all byte pieces: unknown characters fall back
	// to bytes.
	pieces := []string{"<s>", "</s>", "▁a"}
	for b := 0; b < 256; b++ {
		pieces = append(pieces, fmt.Sprintf("<0x%02X>", b))
	}
	tok, err := NewSentencePiece(pieces, make([]float32, len(pieces)), nil, 0, 1, -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range tok.Encode("a é", false) {
		if id < 0 || id >= tok.VocabSize() {
			t.Fatalf("id %d", id)
		}
	}
}
