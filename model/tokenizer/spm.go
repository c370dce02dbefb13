package tokenizer

import (
	"fmt"
	"strings"
)

// SentencePiece is a SentencePiece-BPE tokenizer with byte fallback, with
// llama.cpp's LLAMA_VOCAB_TYPE_SPM semantics: a space is prepended to each
// raw-text fragment that starts the input or follows a special token,
// spaces become "▁", the text is split into UTF-8 characters and adjacent
// symbols are merged, highest piece score first (leftmost on ties), as long
// as the merged string is a piece; characters that are no piece are emitted
// as their <0xNN> byte tokens.
type SentencePiece struct {
	pieces []string
	scores []float32
	types  []int32
	index  map[string]int32
	bos    int
	eos    int
	unk    int
	byteID [256]int32 // <0xNN> token of each byte, -1 if absent

	// AddSpacePrefix is llama.cpp's add_space_prefix (SentencePiece's
	// add_dummy_prefix); true unless the model says otherwise.
	AddSpacePrefix bool
	// AddBOS is the default for AddBOSDefault (true for Llama 2 and
	// TinyStories models, as in llama.cpp).
	AddBOS bool

	specials *specialMatcher
	eog      map[int]bool
}

// NewSentencePiece builds a tokenizer from a vocabulary: pieces with their
// scores and types (TypeNormal...; nil means all normal, with <0xNN>
// pieces taken as byte tokens), and the BOS, EOS and UNK ids (-1 if none).
func NewSentencePiece(pieces []string, scores []float32, types []int32, bos, eos, unk int) (*SentencePiece, error) {
	n := len(pieces)
	if n == 0 {
		return nil, fmt.Errorf("sentencepiece: empty vocabulary")
	}
	if len(scores) != n {
		return nil, fmt.Errorf("sentencepiece: %d pieces but %d scores", n, len(scores))
	}
	if types != nil && len(types) != n {
		return nil, fmt.Errorf("sentencepiece: %d pieces but %d token types", n, len(types))
	}
	for name, id := range map[string]int{"BOS": bos, "EOS": eos, "UNK": unk} {
		if id < -1 || id >= n {
			return nil, fmt.Errorf("sentencepiece: %s id %d outside vocabulary of %d", name, id, n)
		}
	}
	if types == nil {
		types = make([]int32, n)
		for i, p := range pieces {
			types[i] = TypeNormal
			if _, ok := parseByteToken(p); ok {
				types[i] = TypeByte
			}
		}
		for _, id := range []int{bos, eos} {
			if id >= 0 {
				types[id] = TypeControl
			}
		}
		if unk >= 0 {
			types[unk] = TypeUnknown
		}
	}
	t := &SentencePiece{
		pieces: pieces, scores: scores, types: types,
		index: make(map[string]int32, n),
		bos:   bos, eos: eos, unk: unk,
		AddSpacePrefix: true, AddBOS: true,
	}
	for i := range t.byteID {
		t.byteID[i] = -1
	}
	var sp []special
	for i, p := range pieces { // a duplicate piece maps to its last id, as in llama.cpp
		t.index[p] = int32(i)
	}
	for i, p := range pieces {
		switch types[i] {
		case TypeByte:
			if b, ok := parseByteToken(p); ok {
				t.byteID[b] = int32(i)
			}
		case TypeControl, TypeUnknown:
			sp = append(sp, special{text: p, id: i, control: true})
		case TypeUserDefined:
			sp = append(sp, special{text: p, id: i})
		}
	}
	// Characters that are no piece are encoded as byte pieces, else as the
	// unknown token; with neither, encoding would produce id -1.
	if unk < 0 {
		for b := 0; b < 256; b++ {
			if t.byteToken(byte(b)) < 0 {
				return nil, fmt.Errorf("sentencepiece: the vocabulary has no unknown token and no byte piece for byte 0x%02X, so text with characters outside it cannot be encoded", b)
			}
		}
	}
	t.specials = newSpecialMatcher(sp)
	t.eog = markEOG(pieces, types, eos)
	return t, nil
}

// parseByteToken recognises "<0xNN>".
func parseByteToken(p string) (byte, bool) {
	if len(p) != 6 || p[:3] != "<0x" || p[5] != '>' {
		return 0, false
	}
	var v byte
	for _, c := range []byte(p[3:5]) {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | (c - '0')
		case c >= 'A' && c <= 'F':
			v = v<<4 | (c - 'A' + 10)
		case c >= 'a' && c <= 'f':
			v = v<<4 | (c - 'a' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}

func (t *SentencePiece) VocabSize() int      { return len(t.pieces) }
func (t *SentencePiece) BOS() int            { return t.bos }
func (t *SentencePiece) EOS() int            { return t.eos }
func (t *SentencePiece) AddBOSDefault() bool { return t.AddBOS }
func (t *SentencePiece) IsEOG(id int) bool   { return t.eog[id] }

// Piece returns the raw vocabulary piece ("▁" for spaces).
func (t *SentencePiece) Piece(id int) string {
	if id < 0 || id >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}

// TokenID returns the id of a piece, -1 if none.
func (t *SentencePiece) TokenID(piece string) int {
	if id, ok := t.index[piece]; ok {
		return int(id)
	}
	return -1
}

// Score returns the piece's score (0 when out of range).
func (t *SentencePiece) Score(id int) float32 {
	if id < 0 || id >= len(t.scores) {
		return 0
	}
	return t.scores[id]
}

// Type returns the piece's type (TypeNormal...).
func (t *SentencePiece) Type(id int) int32 {
	if id < 0 || id >= len(t.types) {
		return TypeUndefined
	}
	return t.types[id]
}

func (t *SentencePiece) Encode(text string, addBOS bool) []int {
	return t.Tokenize(text, addBOS, true)
}

// TokenizeErr is Tokenize: SentencePiece runs no regexes and cannot fail.
func (t *SentencePiece) TokenizeErr(text string, addBOS, parseSpecial bool) ([]int, error) {
	return t.Tokenize(text, addBOS, parseSpecial), nil
}

func (t *SentencePiece) Tokenize(text string, addBOS, parseSpecial bool) []int {
	var out []int
	if addBOS && t.bos >= 0 {
		out = append(out, t.bos)
	}
	prevSpecial := true // the first fragment gets the space prefix
	for _, f := range t.specials.split(text, parseSpecial) {
		if f.id >= 0 {
			out = append(out, f.id)
			prevSpecial = true
			continue
		}
		s := f.text
		if t.AddSpacePrefix && prevSpecial {
			s = " " + s
		}
		out = t.encodeRaw(strings.ReplaceAll(s, " ", "▁"), out)
		prevSpecial = false
	}
	return out
}

type spmSymbol struct {
	start, n   int // byte range in the text; n == 0 once merged away
	prev, next int
}

type spmBigram struct {
	left, right int
	score       float32
	size        int
}

// spmBetter orders the work queue: higher score first, then leftmost.
func spmBetter(a, b spmBigram) bool {
	return a.score > b.score || (a.score == b.score && a.left < b.left)
}

// encodeRaw is llama.cpp's llm_tokenizer_spm_session::tokenize.
func (t *SentencePiece) encodeRaw(text string, out []int) []int {
	if text == "" {
		return out
	}
	syms := make([]spmSymbol, 0, len(text))
	for off := 0; off < len(text); {
		n := utf8LenFromLead(text[off])
		if off+n > len(text) {
			n = len(text) - off
		}
		i := len(syms)
		syms = append(syms, spmSymbol{start: off, n: n, prev: i - 1, next: i + 1})
		off += n
	}
	syms[len(syms)-1].next = -1

	q := heap[spmBigram]{less: spmBetter}
	tryAdd := func(l, r int) {
		if l < 0 || r < 0 {
			return
		}
		s := text[syms[l].start : syms[l].start+syms[l].n+syms[r].n]
		id, ok := t.index[s]
		if !ok {
			return
		}
		q.push(spmBigram{left: l, right: r, score: t.scores[id], size: len(s)})
	}
	for i := 1; i < len(syms); i++ {
		tryAdd(i-1, i)
	}
	for q.len() > 0 {
		b := q.pop()
		l, r := &syms[b.left], &syms[b.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != b.size {
			continue // stale: one side was merged into something else
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		tryAdd(l.prev, b.left)
		tryAdd(b.left, l.next)
	}
	for i := 0; i != -1; i = syms[i].next {
		s := text[syms[i].start : syms[i].start+syms[i].n]
		if id, ok := t.index[s]; ok {
			out = append(out, int(id))
			continue
		}
		// Only single characters can miss the vocabulary (merges always
		// produce pieces), so llama.cpp's rev_merge path never applies.
		for j := 0; j < len(s); j++ {
			out = append(out, t.byteToken(s[j]))
		}
	}
	return out
}

func (t *SentencePiece) byteToken(b byte) int {
	if id := t.byteID[b]; id >= 0 {
		return int(id)
	}
	if id, ok := t.index[string([]byte{b})]; ok { // llama.cpp's second try
		return int(id)
	}
	return t.unk
}

// utf8LenFromLead is llama.cpp's unicode_len_utf8: the sequence length
// announced by a lead byte (1 for continuation or invalid bytes).
func utf8LenFromLead(b byte) int {
	switch {
	case b < 0x80:
		return 1
	case b < 0xC0:
		return 1
	case b < 0xE0:
		return 2
	case b < 0xF0:
		return 3
	case b < 0xF8:
		return 4
	}
	return 1
}

// tokenBytes renders one token: "▁" → space, byte tokens → their byte,
// control and unknown tokens their text (or nothing when !special, like
// llama.cpp's token_to_piece), others their text.
func (t *SentencePiece) tokenBytes(id int, special bool) []byte {
	if id < 0 || id >= len(t.pieces) {
		return nil
	}
	p := t.pieces[id]
	switch t.types[id] {
	case TypeByte:
		if b, ok := parseByteToken(p); ok {
			return []byte{b}
		}
	case TypeControl, TypeUnknown:
		if !special {
			return nil
		}
		return []byte(p)
	case TypeUserDefined:
		return []byte(p)
	}
	return []byte(strings.ReplaceAll(p, "▁", " "))
}

// Decode renders ids. The space that Tokenize prefixes to a text fragment
// (at the start, or after a special token) is removed again, so that
// Decode(Tokenize(x, _, _)) == x for every byte string x when the text
// holds no special token whose neighbour is swallowed by lstrip/rstrip.
func (t *SentencePiece) Decode(ids []int) string {
	var sb []byte
	prevSpecial := true
	for _, id := range ids {
		b := t.tokenBytes(id, true)
		special := id >= 0 && id < len(t.types) && (t.types[id] == TypeControl || t.types[id] == TypeUserDefined || t.types[id] == TypeUnknown)
		if !special && prevSpecial && t.AddSpacePrefix && len(b) > 0 && b[0] == ' ' {
			b = b[1:]
		}
		sb = append(sb, b...)
		prevSpecial = special
	}
	return string(sb)
}

// NewStreamDecoder decodes a continuation token by token; unlike Decode it
// keeps every leading space (the text continues a prompt) and, like
// llama.cpp's printing of generated tokens, renders control and unknown
// tokens as nothing.
func (t *SentencePiece) NewStreamDecoder() *StreamDecoder {
	return &StreamDecoder{bytesOf: func(id int) []byte { return t.tokenBytes(id, false) }}
}

// UnknownID is the id of the unknown-piece token (-1 if none).
func (t *SentencePiece) UnknownID() int { return t.unk }
