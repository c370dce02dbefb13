// Package tokenizer implements the two tokenizer families the runtime needs:
// SentencePiece BPE with scores and byte fallback (Llama 2, TinyStories models)
// and GPT-2 style byte-level BPE (Llama 3, Qwen2/2.5/3). Both follow llama.cpp's
// semantics so that token ids match llama.cpp (and Hugging Face tokenizers,
// which produced the golden vectors) token for token.
package tokenizer

import (
	"sort"
	"strings"
	"unicode/utf8"
)

// Token types, numbered as in GGUF's tokenizer.ggml.token_type and in
// SentencePiece's ModelProto.SentencePiece.Type.
const (
	TypeUndefined   int32 = 0
	TypeNormal      int32 = 1
	TypeUnknown     int32 = 2
	TypeControl     int32 = 3
	TypeUserDefined int32 = 4
	TypeUnused      int32 = 5
	TypeByte        int32 = 6
)

// Tokenizer is what the runtime uses; *SentencePiece and *BPE implement it.
type Tokenizer interface {
	// Encode tokenizes text, recognising special and added tokens written in
	// the text (llama.cpp's parse_special=true), prefixed by BOS when addBOS
	// and the vocabulary has one.
	Encode(text string, addBOS bool) []int
	// Tokenize is Encode with the choice of parsing control tokens
	// (<|im_start|>, <s>, ...) in the text; user-defined added tokens are
	// always recognised, as in llama.cpp. llama-perplexity tokenizes with
	// parseSpecial=false.
	Tokenize(text string, addBOS, parseSpecial bool) []int
	// TokenizeErr is Tokenize that reports work the tokenizer had to cut
	// short (a pre-tokenizer regex past its match timeout) as an error;
	// tools that tokenize untrusted input with an untrusted tokenizer use it.
	TokenizeErr(text string, addBOS, parseSpecial bool) ([]int, error)
	// Decode turns ids back into text. Every token is rendered, control
	// tokens as their text (like Hugging Face's skip_special_tokens=False).
	Decode(ids []int) string
	// NewStreamDecoder returns a decoder for streaming generated tokens:
	// pieces come out when they form whole UTF-8 characters; control tokens
	// (BOS, <|im_start|>...) render as nothing, as llama.cpp prints them.
	NewStreamDecoder() *StreamDecoder
	// Piece is the raw vocabulary string of id ("" when out of range).
	Piece(id int) string
	// TokenID is the id whose raw vocabulary string is piece, -1 if none
	// (e.g. TokenID("<|im_end|>"), or TokenID("▁Hello") for SentencePiece).
	TokenID(piece string) int
	VocabSize() int
	BOS() int // -1 if none
	EOS() int // -1 if none
	// IsEOG reports an end-of-generation token: EOS, EOT and the well-known
	// end-of-turn tokens (<|im_end|>, <|eot_id|>, <|end_of_text|>, ...).
	IsEOG(id int) bool
	// AddBOSDefault says whether prompts for this model start with BOS.
	AddBOSDefault() bool
}

// eogNames are texts of control/added tokens that end generation; the list
// is llama.cpp's (llama-vocab.cpp, special_eog_ids).
var eogNames = map[string]bool{
	"<|eot_id|>":          true,
	"<|im_end|>":          true,
	"<|end|>":             true,
	"<end_of_turn>":       true,
	"<|endoftext|>":       true,
	"<|end_of_text|>":     true,
	"<|eom_id|>":          true,
	"<EOT>":               true,
	"_<EOT>":              true,
	"<｜end▁of▁sentence｜>": true,
	"<|return|>":          true,
	"<|call|>":            true,
}

// special is a token matched literally in the input text before the
// model-specific tokenizer runs.
type special struct {
	text    string
	id      int
	control bool // only matched when parseSpecial
	lstrip  bool // swallows whitespace on its left
	rstrip  bool // swallows whitespace on its right
}

// specialMatcher finds special tokens in text, leftmost first and, at one
// position, longest first (Hugging Face's added-token extraction).
type specialMatcher struct {
	byFirst map[byte][]special // sorted by decreasing length
}

func newSpecialMatcher(sp []special) *specialMatcher {
	m := &specialMatcher{byFirst: map[byte][]special{}}
	for _, s := range sp {
		if s.text == "" {
			continue
		}
		m.byFirst[s.text[0]] = append(m.byFirst[s.text[0]], s)
	}
	for _, l := range m.byFirst {
		sort.SliceStable(l, func(i, j int) bool { return len(l[i].text) > len(l[j].text) })
	}
	return m
}

// fragment is either raw text (id < 0) or one special token.
type fragment struct {
	text string
	id   int
}

// split cuts text into raw-text fragments and special tokens.
func (m *specialMatcher) split(text string, parseSpecial bool) []fragment {
	var out []fragment
	start := 0 // start of the pending raw text
	for i := 0; i < len(text); i++ {
		cands := m.byFirst[text[i]]
		if len(cands) == 0 {
			continue
		}
		var hit *special
		for k := range cands {
			c := &cands[k]
			if c.control && !parseSpecial {
				continue
			}
			if strings.HasPrefix(text[i:], c.text) {
				hit = c
				break
			}
		}
		if hit == nil {
			continue
		}
		raw := text[start:i]
		if hit.lstrip {
			raw = strings.TrimRight(raw, " \t\n\r\v\f")
		}
		if raw != "" {
			out = append(out, fragment{text: raw, id: -1})
		}
		out = append(out, fragment{id: hit.id})
		end := i + len(hit.text)
		if hit.rstrip {
			for end < len(text) && strings.IndexByte(" \t\n\r\v\f", text[end]) >= 0 {
				end++
			}
		}
		start = end
		i = end - 1
	}
	if start < len(text) {
		out = append(out, fragment{text: text[start:], id: -1})
	}
	return out
}

// StreamDecoder turns a stream of token ids into text, holding back bytes
// until they form complete UTF-8 characters (a character may be split over
// several byte-fallback or byte-level tokens).
type StreamDecoder struct {
	bytesOf func(id int) []byte
	buf     []byte
}

// Add appends one token and returns the text that became complete (maybe "").
func (d *StreamDecoder) Add(id int) string {
	d.buf = append(d.buf, d.bytesOf(id)...)
	n := completePrefix(d.buf)
	s := string(d.buf[:n])
	d.buf = append(d.buf[:0], d.buf[n:]...)
	return s
}

// Flush returns whatever is held back, complete or not, and resets.
func (d *StreamDecoder) Flush() string {
	s := string(d.buf)
	d.buf = d.buf[:0]
	return s
}

// completePrefix is the length of b minus a trailing incomplete (but so far
// valid) UTF-8 sequence. Invalid bytes are not held: they never complete.
func completePrefix(b []byte) int {
	for k := 1; k <= 3 && k <= len(b); k++ {
		p := len(b) - k
		if utf8.RuneStart(b[p]) {
			if !utf8.FullRune(b[p:]) {
				return p
			}
			return len(b)
		}
	}
	return len(b)
}

// markEOG returns the end-of-generation set for a vocabulary.
func markEOG(texts []string, types []int32, ids ...int) map[int]bool {
	eog := map[int]bool{}
	for _, id := range ids {
		if id >= 0 {
			eog[id] = true
		}
	}
	for id, t := range texts {
		tt := TypeNormal
		if types != nil {
			tt = types[id]
		}
		if (tt == TypeControl || tt == TypeUserDefined) && eogNames[t] {
			eog[id] = true
		}
	}
	return eog
}
