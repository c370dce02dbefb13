package tokenizer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/armor-llm/armor/internal/testdata"
)

func TestQwenSpecials(t *testing.T) {
	tok := loadHF(t, "qwen3")
	// <|im_start|>=151644 user=872 \n=198 Hello=9707 <|im_end|>=151645
	got := tok.Encode("<|im_start|>user\nHello<|im_end|>\n", false)
	want := []int{151644, 872, 198, 9707, 151645, 198}
	if !slices.Equal(got, want) {
		t.Fatalf("Encode chat text = %v, want %v", got, want)
	}
	// Control tokens are plain text without parseSpecial...
	if got := tok.Tokenize("<|im_start|>user", false, false); slices.Contains(got, 151644) {
		t.Fatalf("parseSpecial=false still produced <|im_start|>: %v", got)
	}
	// ...but user-defined added tokens (special=false) are always matched.
	if got := tok.Tokenize("a<think>b</think>", false, false); !slices.Contains(got, 151667) || !slices.Contains(got, 151668) {
		t.Fatalf("<think> not matched: %v", got)
	}
	if tok.TokenID("<|im_end|>") != 151645 || tok.TokenID("Ġworld") != tok.Tokenize(" world", false, false)[0] || tok.TokenID("no such") != -1 {
		t.Fatal("TokenID")
	}
	if tok.BOS() != -1 || tok.EOS() != 151645 || tok.AddBOSDefault() {
		t.Fatalf("bos %d eos %d addBOS %v", tok.BOS(), tok.EOS(), tok.AddBOSDefault())
	}
	if got := tok.Encode("hi", true); got[0] == -1 || len(got) != 1 {
		t.Fatalf("addBOS with no BOS token: %v", got)
	}
	for id, eog := range map[int]bool{151643: true, 151645: true, 151644: false, 198: false, 151667: false} {
		if tok.IsEOG(id) != eog {
			t.Errorf("IsEOG(%d %q) = %v", id, tok.Piece(id), !eog)
		}
	}
	if !strings.Contains(tok.ChatTemplate, "<|im_start|>") {
		t.Errorf("chat template not loaded")
	}
}

func TestLlama3Specials(t *testing.T) {
	tok := loadHF(t, "llama3")
	if tok.BOS() != 128000 || tok.EOS() != 128001 || !tok.AddBOSDefault() {
		t.Fatalf("bos %d eos %d addBOS %v", tok.BOS(), tok.EOS(), tok.AddBOSDefault())
	}
	got := tok.Encode("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", true)
	if len(got) < 6 || got[0] != 128000 || got[1] != 128006 || got[3] != 128007 || got[len(got)-1] != 128009 {
		t.Fatalf("Encode = %v", got)
	}
	for id, eog := range map[int]bool{128001: true, 128009: true, 128000: false, 128006: false} {
		if tok.IsEOG(id) != eog {
			t.Errorf("IsEOG(%d %q) = %v", id, tok.Piece(id), !eog)
		}
	}
	if d := tok.Decode(got); d != "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" {
		t.Errorf("Decode = %q", d)
	}
}

func TestLlama2Specials(t *testing.T) {
	tok := loadLlama2(t)["model"]
	if !tok.AddBOSDefault() || !tok.IsEOG(2) || tok.IsEOG(1) {
		t.Fatalf("addBOS %v eog(2) %v eog(1) %v", tok.AddBOSDefault(), tok.IsEOG(2), tok.IsEOG(1))
	}
	if tok.TokenID("</s>") != 2 || tok.TokenID("▁Hello") != 15043 || tok.TokenID("nope nope") != -1 {
		t.Fatal("TokenID")
	}
	hi := tok.Tokenize("hi", false, false)
	got := tok.Encode("<s>hi</s>", true)
	want := append(append([]int{1, 1}, hi...), 2)
	if !slices.Equal(got, want) {
		t.Fatalf("Encode = %v, want %v", got, want)
	}
	if d := tok.Decode(got); d != "<s><s>hi</s>" {
		t.Fatalf("Decode = %q", d)
	}
}

func TestSpecialMatcher(t *testing.T) {
	m := newSpecialMatcher([]special{
		{text: "<a>", id: 1, control: true},
		{text: "<ab>", id: 2, control: true},
		{text: "<a", id: 3},
		{text: "[L]", id: 4, lstrip: true},
		{text: "[R]", id: 5, rstrip: true},
	})
	type frag = fragment
	for _, c := range []struct {
		in    string
		parse bool
		want  []frag
	}{
		{"x<ab>y", true, []frag{{"x", -1}, {"", 2}, {"y", -1}}},
		{"x<a>y", true, []frag{{"x", -1}, {"", 1}, {"y", -1}}},
		{"x<a>y", false, []frag{{"x", -1}, {"", 3}, {">y", -1}}}, // control skipped
		{"<a><a>", true, []frag{{"", 1}, {"", 1}}},
		{"p  [L]  q", true, []frag{{"p", -1}, {"", 4}, {"  q", -1}}},
		{"p  [R]  q", true, []frag{{"p  ", -1}, {"", 5}, {"q", -1}}},
		{"plain", true, []frag{{"plain", -1}}},
		{"", true, nil},
	} {
		got := m.split(c.in, c.parse)
		if !slices.Equal(got, c.want) {
			t.Errorf("split(%q, %v) = %v, want %v", c.in, c.parse, got, c.want)
		}
	}
}

func TestStreamDecoderHoldsPartialUTF8(t *testing.T) {
	// Byte tokens of "é🦙" arrive one at a time.
	tok := loadLlama2(t)["model"]
	var ids []int
	for _, b := range []byte("é🦙") {
		ids = append(ids, int(tok.byteID[b]))
	}
	sd := tok.NewStreamDecoder()
	var outs []string
	for _, id := range ids {
		outs = append(outs, sd.Add(id))
	}
	want := []string{"", "é", "", "", "", "🦙"}
	if !slices.Equal(outs, want) {
		t.Fatalf("stream pieces %q, want %q", outs, want)
	}
	// An invalid byte is not held back forever; an incomplete tail is
	// returned by Flush.
	if s := sd.Add(int(tok.byteID[0xFF])); s != "\xff" {
		t.Fatalf("invalid byte gave %q", s)
	}
	if s := sd.Add(int(tok.byteID[0xE2])); s != "" {
		t.Fatalf("lead byte gave %q", s)
	}
	if s := sd.Flush(); s != "\xe2" {
		t.Fatalf("Flush = %q", s)
	}
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadInputs(t *testing.T) {
	bin, err := os.ReadFile(testdata.File(t, "tokenizers/llama2-tokenizer.bin"))
	if err != nil {
		t.Fatal(err)
	}
	model, err := os.ReadFile(testdata.File(t, "tokenizers/llama2-tokenizer.model"))
	if err != nil {
		t.Fatal(err)
	}
	expectErr := func(what string, err error, mention string) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", what)
		} else if !strings.Contains(err.Error(), mention) {
			t.Errorf("%s: error %q does not mention %q", what, err, mention)
		} else {
			t.Logf("%s: %v", what, err)
		}
	}
	p := writeTemp(t, "trunc.bin", bin[:len(bin)/2])
	_, err = LoadLlama2cTokenizer(p, 32000)
	expectErr("truncated tokenizer.bin", err, p)
	p = writeTemp(t, "tok.bin", bin)
	_, err = LoadLlama2cTokenizer(p, 1<<30)
	expectErr("huge vocab size", err, "cannot hold")
	bad := slices.Clone(bin)
	bad[4+4+3] = 0x7f // first token length becomes huge
	p = writeTemp(t, "badlen.bin", bad)
	_, err = LoadLlama2cTokenizer(p, 32000)
	expectErr("bad token length", err, "bad length")
	_, err = LoadLlama2cTokenizer(filepath.Join(t.TempDir(), "missing.bin"), 32000)
	expectErr("missing file", err, "missing.bin")

	p = writeTemp(t, "trunc.model", model[:len(model)-100])
	_, err = LoadSentencePieceModel(p)
	expectErr("truncated tokenizer.model", err, p)
	p = writeTemp(t, "garbage.model", []byte("this is not a protobuf at all, just text"))
	_, err = LoadSentencePieceModel(p)
	expectErr("garbage tokenizer.model", err, p)

	dir := t.TempDir()
	_, err = LoadHFTokenizer(dir)
	expectErr("missing tokenizer.json", err, "tokenizer.json")
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"model": {"type": "WordPiece", "vocab": {"a": 0}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadHFTokenizer(dir)
	expectErr("WordPiece tokenizer.json", err, "WordPiece")
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"model": {"type": "BPE", "vocab": {"a": 0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadHFTokenizer(dir)
	expectErr("truncated tokenizer.json", err, "tokenizer.json")

	_, err = NewSentencePiece([]string{"a", "b"}, []float32{0}, nil, 1, -1, 0)
	expectErr("scores length", err, "scores")
	_, err = NewSentencePiece([]string{"a", "b"}, []float32{0, 0}, nil, 5, -1, 0)
	expectErr("bos out of range", err, "BOS")
	var toks []string
	for b := 0; b < 256; b++ {
		toks = append(toks, string(byteToRune[b]))
	}
	_, err = NewBPE(BPEConfig{Tokens: toks, Pre: "no-such-pre", BOS: -1, EOS: -1, EOT: -1})
	expectErr("unknown pre-tokenizer", err, "no-such-pre")
	_, err = NewBPE(BPEConfig{Tokens: toks[:200], Pre: "gpt2", BOS: -1, EOS: -1, EOT: -1})
	expectErr("missing byte tokens", err, "byte")
}

// TestNewBPESmall builds a tiny vocabulary by hand (the GGUF path) and
// checks merges, ignore-merges and decoding.
func TestNewBPESmall(t *testing.T) {
	var toks []string
	for b := 0; b < 256; b++ {
		toks = append(toks, string(byteToRune[b]))
	}
	toks = append(toks, "ab", "abc", "Ġab", "<|eot|>", "abcd")
	tps := make([]int32, len(toks))
	for i := range tps {
		tps[i] = TypeNormal
	}
	tps[259] = TypeControl
	cfg := BPEConfig{Tokens: toks, Types: tps, Merges: []string{"a b", "ab c", "Ġ ab"}, Pre: "gpt2", BOS: -1, EOS: 259, EOT: -1}
	tok, err := NewBPE(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// "abcd": merges give abc + d; "abcd" itself is a token but only
	// ignore-merges pre-tokenizers use it directly.
	got := tok.Encode("abcd ab<|eot|>", false)
	want := []int{257, 'd', 258, 259}
	if !slices.Equal(got, want) {
		t.Fatalf("Encode = %v, want %v", got, want)
	}
	cfg.IgnoreMerges = true
	tok2, err := NewBPE(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok2.Encode("abcd", false); !slices.Equal(got, []int{260}) {
		t.Fatalf("ignore-merges Encode = %v", got)
	}
	if d := tok.Decode(got); d != "abcd ab<|eot|>" {
		t.Fatalf("Decode = %q", d)
	}
	if !tok.IsEOG(259) {
		t.Fatal("EOS is not EOG")
	}
}

func TestLoadDir(t *testing.T) {
	tok, err := LoadDir(filepath.Dir(testdata.File(t, "tokenizers/qwen3/tokenizer.json")))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tok.(*BPE); !ok {
		t.Fatalf("qwen3 dir gave %T", tok)
	}
	// A Llama 2 style directory: byte-fallback tokenizer.json beside
	// tokenizer.model, and a config that turns BOS off.
	dir := t.TempDir()
	if err := os.Symlink(testdata.File(t, "tokenizers/llama2-tokenizer.model"), filepath.Join(dir, "tokenizer.model")); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"tokenizer.json":        `{"model": {"type": "BPE", "byte_fallback": true, "vocab": {"a": 0}, "merges": []}}`,
		"tokenizer_config.json": `{"add_bos_token": false, "bos_token": {"content": "<s>"}, "eos_token": "</s>", "chat_template": [{"name": "default", "template": "T"}]}`,
	}
	for name, s := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tok, err = LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	sp, ok := tok.(*SentencePiece)
	if !ok || sp.AddBOSDefault() || sp.VocabSize() != 32000 {
		t.Fatalf("llama2 dir gave %T addBOS %v", tok, tok.AddBOSDefault())
	}
	conf, err := LoadHFConfig(dir)
	if err != nil || conf.BOSToken != "<s>" || conf.EOSToken != "</s>" || conf.ChatTemplate != "T" {
		t.Fatalf("config %+v, %v", conf, err)
	}
	if _, err := LoadDir(t.TempDir()); err == nil {
		t.Fatal("empty dir accepted")
	}
}

// TestStreamSkipsControl: streamed output shows no control tokens (as
// llama.cpp prints generations) but does show user-defined ones.
func TestStreamSkipsControl(t *testing.T) {
	stream := func(tok Tokenizer, ids []int) string {
		d := tok.NewStreamDecoder()
		var sb strings.Builder
		for _, id := range ids {
			sb.WriteString(d.Add(id))
		}
		return sb.String() + d.Flush()
	}
	q := loadHF(t, "qwen3")
	if s := stream(q, q.Encode("<|im_start|><think>\nok</think>Hi<|im_end|>", false)); s != "<think>\nok</think>Hi" {
		t.Errorf("qwen3 stream %q", s)
	}
	l := loadLlama2(t)["model"]
	if s := stream(l, l.Encode("<s>Hi</s><unk>", false)); s != " Hi" {
		t.Errorf("llama2 stream %q", s)
	}
	if d := l.Decode(l.Encode("<unk>Hi", false)); d != "<unk>Hi" {
		t.Errorf("llama2 Decode %q", d)
	}
}
