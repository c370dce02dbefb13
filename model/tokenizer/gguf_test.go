package tokenizer

import (
	"encoding/binary"
	"fmt"
	"github.com/armor-llm/armor/internal/testdata"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

// readGGUFMeta is a minimal GGUF metadata reader for tests only (the real
// reader lives in model/gguf): it returns the key/value pairs, arrays as
// []any, and stops before the tensor infos.
func readGGUFMeta(path string) (map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var hdr struct {
		Magic   [4]byte
		Version uint32
		NT, NKV uint64
	}
	if err := binary.Read(f, binary.LittleEndian, &hdr); err != nil {
		return nil, err
	}
	if string(hdr.Magic[:]) != "GGUF" || hdr.Version < 2 {
		return nil, fmt.Errorf("%s: not GGUF v2+", path)
	}
	rd := func(v any) error { return binary.Read(f, binary.LittleEndian, v) }
	str := func() (string, error) {
		var n uint64
		if err := rd(&n); err != nil {
			return "", err
		}
		if n > 1<<20 {
			return "", fmt.Errorf("string of %d bytes", n)
		}
		b := make([]byte, n)
		_, err := io.ReadFull(f, b)
		return string(b), err
	}
	var val func(typ uint32) (any, error)
	val = func(typ uint32) (any, error) {
		switch typ {
		case 0, 1, 7:
			var v uint8
			return int64(v), rd(&v)
		case 2, 3:
			var v uint16
			err := rd(&v)
			return int64(v), err
		case 4:
			var v uint32
			err := rd(&v)
			return int64(v), err
		case 5:
			var v int32
			err := rd(&v)
			return int64(v), err
		case 6:
			var v float32
			err := rd(&v)
			return float64(v), err
		case 8:
			return str()
		case 9:
			var et uint32
			var n uint64
			if err := rd(&et); err != nil {
				return nil, err
			}
			if err := rd(&n); err != nil {
				return nil, err
			}
			if n > 1<<24 {
				return nil, fmt.Errorf("array of %d", n)
			}
			out := make([]any, n)
			for i := range out {
				v, err := val(et)
				if err != nil {
					return nil, err
				}
				out[i] = v
			}
			return out, nil
		case 10, 11:
			var v int64
			err := rd(&v)
			return v, err
		case 12:
			var v float64
			err := rd(&v)
			return v, err
		}
		return nil, fmt.Errorf("unknown GGUF type %d", typ)
	}
	kv := map[string]any{}
	for i := uint64(0); i < hdr.NKV; i++ {
		k, err := str()
		if err != nil {
			return nil, err
		}
		var typ uint32
		if err := rd(&typ); err != nil {
			return nil, err
		}
		if kv[k], err = val(typ); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	return kv, nil
}

// spmFromGGUF builds a SentencePiece tokenizer from GGUF metadata the way
// the model loader is expected to.
func spmFromGGUF(t *testing.T, rel string) (*SentencePiece, map[string]any) {
	kv, err := readGGUFMeta(testdata.File(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	if kv["tokenizer.ggml.model"] != "llama" {
		t.Fatalf("%s: tokenizer model %v", rel, kv["tokenizer.ggml.model"])
	}
	toks := kv["tokenizer.ggml.tokens"].([]any)
	pieces := make([]string, len(toks))
	scores := make([]float32, len(toks))
	types := make([]int32, len(toks))
	for i := range toks {
		pieces[i] = toks[i].(string)
		scores[i] = float32(kv["tokenizer.ggml.scores"].([]any)[i].(float64))
		types[i] = int32(kv["tokenizer.ggml.token_type"].([]any)[i].(int64))
	}
	id := func(k string, def int) int {
		if v, ok := kv[k]; ok {
			return int(v.(int64))
		}
		return def
	}
	tok, err := NewSentencePiece(pieces, scores, types, id("tokenizer.ggml.bos_token_id", -1), id("tokenizer.ggml.eos_token_id", -1), id("tokenizer.ggml.unknown_token_id", -1))
	if err != nil {
		t.Fatal(err)
	}
	return tok, kv
}

func TestSPMFromGGUF(t *testing.T) {
	tok, _ := spmFromGGUF(t, "tokenizers/ggml-vocab-llama-spm.gguf")
	for i, v := range readVectors(t, "ggml-vocab-llama-spm.gguf") {
		if got := tok.Tokenize(v.text, false, false); !slices.Equal(got, v.ids) {
			t.Errorf("input %d %q:\n got %v\nwant %v", i, v.text, got, v.ids)
		}
	}
	// Same vocabulary, scores and types as tokenizer.model.
	m := loadLlama2(t)["model"]
	for i := 0; i < m.VocabSize(); i++ {
		if m.Piece(i) != tok.Piece(i) || m.Score(i) != tok.Score(i) || m.Type(i) != tok.Type(i) {
			t.Fatalf("token %d: model %q %v %d, gguf %q %v %d", i, m.Piece(i), m.Score(i), m.Type(i), tok.Piece(i), tok.Score(i), tok.Type(i))
		}
	}
}

// TestStoriesVocab loads the 512-piece vocabulary embedded in
// stories260K.gguf and checks what can be checked without llama.cpp: round
// trips, byte fallback for characters outside the vocabulary, and that
// merges reach multi-character pieces.
func TestStoriesVocab(t *testing.T) {
	tok, kv := spmFromGGUF(t, "models/stories260K.gguf")
	if tok.VocabSize() != 512 || tok.BOS() != 1 || tok.EOS() != 2 {
		t.Fatalf("vocab %d bos %d eos %d", tok.VocabSize(), tok.BOS(), tok.EOS())
	}
	if v, ok := kv["tokenizer.ggml.add_space_prefix"]; ok {
		t.Logf("add_space_prefix = %v", v)
	}
	ids := tok.Encode("Once upon a time", true)
	t.Logf("Once upon a time -> %v %q", ids, func() []string {
		var s []string
		for _, id := range ids {
			s = append(s, tok.Piece(id))
		}
		return s
	}())
	if ids[0] != 1 || len(ids) > 10 || tok.Decode(ids[1:]) != "Once upon a time" {
		t.Fatalf("Encode = %v, decode %q", ids, tok.Decode(ids[1:]))
	}
	ids = tok.Encode("中", false)
	want := []int{tok.Tokenize(" ", false, false)[0]}
	for _, b := range []byte("中") {
		want = append(want, int(tok.byteID[b]))
	}
	if !slices.Equal(ids, want) || slices.Contains(ids, -1) {
		t.Fatalf("byte fallback: %v, want %v", ids, want)
	}
}

// TestLlama2cMatchesGGUF writes the stories260K vocabulary in llama2.c's
// tokenizer.bin layout (as llama2.c's tokenizer.py exports it: "▁" as " ",
// BOS/EOS as "\n<s>\n", "\n</s>\n") and checks that LoadLlama2cTokenizer
// gets back the GGUF's pieces, scores and types (types are inferred there),
// and the same tokens.
func TestLlama2cMatchesGGUF(t *testing.T) {
	g, _ := spmFromGGUF(t, "models/stories260K.gguf")
	var buf []byte
	buf = binary.LittleEndian.AppendUint32(buf, 64)
	for i := 0; i < g.VocabSize(); i++ {
		p := strings.ReplaceAll(g.Piece(i), "▁", " ")
		switch i {
		case 1:
			p = "\n<s>\n"
		case 2:
			p = "\n</s>\n"
		}
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(g.Score(i)))
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(p)))
		buf = append(buf, p...)
	}
	l, err := LoadLlama2cTokenizer(writeTemp(t, "tok512.bin", buf), g.VocabSize())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < g.VocabSize(); i++ {
		if l.Piece(i) != g.Piece(i) || l.Score(i) != g.Score(i) || l.Type(i) != g.Type(i) {
			t.Fatalf("token %d: llama2.c %q %v %d, gguf %q %v %d", i, l.Piece(i), l.Score(i), l.Type(i), g.Piece(i), g.Score(i), g.Type(i))
		}
	}
	text, err := os.ReadFile(testdata.File(t, "text/tinystories_val_subset.txt"))
	if err != nil {
		t.Fatal(err)
	}
	text = text[:20000]
	a, b := l.Encode(string(text), true), g.Encode(string(text), true)
	if !slices.Equal(a, b) {
		t.Fatal("llama2.c and GGUF vocabularies tokenize differently")
	}
	if l.Decode(a[1:]) != string(text) {
		t.Fatal("stories text does not round-trip")
	}
}
