package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
	"golang.org/x/text/unicode/norm"
)

// Pre-tokenizer regexes. The Llama 3 and Qwen2 ones are copied from the
// tokenizer.json files of those models (llama.cpp hard-codes equivalent
// expressions); regexp2 is needed for the (?!\S) look-ahead.
const (
	regexGPT2   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	regexLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	regexQwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// preTokenizers maps llama.cpp's tokenizer.ggml.pre names to regex lists
// (applied in sequence, each splitting the pieces of the previous one) and
// to whether BPE skips merges for words that already are tokens.
var preTokenizers = map[string]struct {
	regexes      []string
	ignoreMerges bool
}{
	"llama-bpe": {[]string{regexLlama3}, true},
	"llama3":    {[]string{regexLlama3}, true},
	"qwen2":     {[]string{regexQwen2}, false},
	"gpt2":      {[]string{regexGPT2}, false},
	"gpt-2":     {[]string{regexGPT2}, false},
	// llama.cpp's fallback for unknown pre-tokenizers.
	"default": {[]string{
		`[\p{P}\$\+<=>\^~\|]+`,
		`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`,
		`\p{N}+`,
		`[0-9][0-9][0-9]`,
	}, false},
}

// BPEConfig describes a byte-level BPE vocabulary, e.g. from GGUF metadata
// (tokenizer.ggml.tokens, .token_type, .merges, .pre, .bos_token_id, ...).
type BPEConfig struct {
	// Tokens are the vocabulary by id: byte-level text (GPT-2's byte to
	// character map, "Ġ" for space) for normal tokens, plain text for
	// control and user-defined ones.
	Tokens []string
	// Types are the token types (TypeNormal...); nil means all normal.
	Types []int32
	// Merges are "left right" pairs, highest priority first.
	Merges []string
	// Pre names the pre-tokenizer as llama.cpp does ("llama-bpe", "qwen2",
	// "gpt2", "default"); ignored when Regexes is set.
	Pre string
	// Regexes, when set, are the pre-tokenizer split patterns in order.
	Regexes []string
	// IgnoreMerges: a word that already is a token is not merged (Llama 3;
	// set automatically for Pre "llama-bpe").
	IgnoreMerges bool
	// NFC normalizes text (not special tokens) before pre-tokenizing, as
	// Qwen's tokenizer.json asks (llama.cpp does not).
	NFC bool
	// BOS, EOS, EOT: ids, -1 if none. Extra end-of-generation ids go in EOG.
	BOS, EOS, EOT int
	EOG           []int
	AddBOS        bool
	// Specials lists extra added tokens matched in text, beyond the tokens
	// typed control or user-defined (Hugging Face added_tokens).
	Specials []AddedToken
}

// AddedToken is a Hugging Face added token.
type AddedToken struct {
	ID             int
	Content        string
	Special        bool // control: only matched when parsing specials
	LStrip, RStrip bool
}

type mergeRes struct{ rank, id int32 }

// BPE is a GPT-2 style byte-level BPE tokenizer (Llama 3, Qwen2/2.5/3).
type BPE struct {
	tokens       []string
	types        []int32
	index        map[string]int32    // byte-level text of normal tokens
	merges       map[uint64]mergeRes // (left id, right id) → rank and result
	byteTok      [256]int32
	regexes      []*regexp2.Regexp
	ignoreMerges bool
	nfc          bool
	bos, eos     int
	addBOS       bool
	specials     *specialMatcher
	isSpecial    []bool // rendered as plain text on decode
	eog          map[int]bool

	// ChatTemplate is the Jinja chat template found with the tokenizer
	// ("" if none); set by LoadHFTokenizer.
	ChatTemplate string
}

// byteToRune is GPT-2's bytes_to_unicode: printable bytes map to
// themselves, the rest to U+0100 onwards, so that every token is text.
var byteToRune, runeToByte = func() ([256]rune, map[rune]byte) {
	var b2r [256]rune
	r2b := map[rune]byte{}
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			b2r[b] = rune(b)
		} else {
			b2r[b] = rune(256 + n)
			n++
		}
		r2b[b2r[b]] = byte(b)
	}
	return b2r, r2b
}()

// ByteLevelEncode maps bytes to GPT-2's byte-level characters.
func ByteLevelEncode(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		sb.WriteRune(byteToRune[s[i]])
	}
	return sb.String()
}

// NewBPE builds a byte-level BPE tokenizer.
func NewBPE(cfg BPEConfig) (*BPE, error) {
	n := len(cfg.Tokens)
	if n == 0 {
		return nil, fmt.Errorf("bpe: empty vocabulary")
	}
	if cfg.Types != nil && len(cfg.Types) != n {
		return nil, fmt.Errorf("bpe: %d tokens but %d token types", n, len(cfg.Types))
	}
	for name, id := range map[string]int{"BOS": cfg.BOS, "EOS": cfg.EOS, "EOT": cfg.EOT} {
		if id < -1 || id >= n {
			return nil, fmt.Errorf("bpe: %s id %d outside vocabulary of %d", name, id, n)
		}
	}
	t := &BPE{
		tokens: cfg.Tokens, types: cfg.Types,
		index:  make(map[string]int32, n),
		merges: make(map[uint64]mergeRes, len(cfg.Merges)),
		bos:    cfg.BOS, eos: cfg.EOS, addBOS: cfg.AddBOS,
		nfc:          cfg.NFC,
		ignoreMerges: cfg.IgnoreMerges,
		isSpecial:    make([]bool, n),
	}
	if t.types == nil {
		t.types = make([]int32, n)
		for i := range t.types {
			t.types[i] = TypeNormal
		}
	}
	regexes := cfg.Regexes
	if len(regexes) == 0 {
		p, ok := preTokenizers[cfg.Pre]
		if !ok {
			return nil, fmt.Errorf("bpe: unknown pre-tokenizer %q (known: llama-bpe, qwen2, gpt2, default)", cfg.Pre)
		}
		regexes = p.regexes
		t.ignoreMerges = t.ignoreMerges || p.ignoreMerges
	}
	for _, r := range regexes {
		re, err := compilePreTokenizer(r)
		if err != nil {
			return nil, fmt.Errorf("bpe: pre-tokenizer regex %q: %w", r, err)
		}
		t.regexes = append(t.regexes, re)
	}

	var sp []special
	for i, tok := range cfg.Tokens {
		switch t.types[i] {
		case TypeControl, TypeUnknown:
			sp = append(sp, special{text: tok, id: i, control: true})
			t.isSpecial[i] = true
		case TypeUserDefined:
			sp = append(sp, special{text: tok, id: i})
			t.isSpecial[i] = true
		case TypeNormal, TypeByte, TypeUndefined:
			t.index[tok] = int32(i) // a duplicate maps to its last id, as in llama.cpp
		}
	}
	for _, a := range cfg.Specials {
		if a.ID < 0 || a.ID >= n {
			return nil, fmt.Errorf("bpe: added token %q id %d outside vocabulary of %d", a.Content, a.ID, n)
		}
		sp = append(sp, special{text: a.Content, id: a.ID, control: a.Special, lstrip: a.LStrip, rstrip: a.RStrip})
		t.isSpecial[a.ID] = true
	}
	// Explicit added tokens come last but must win over type-derived
	// duplicates of the same text: the matcher keeps the first of equal
	// length, so put them first.
	if len(cfg.Specials) > 0 {
		k := len(sp) - len(cfg.Specials)
		sp = append(sp[k:], sp[:k]...)
	}
	t.specials = newSpecialMatcher(sp)

	for b := 0; b < 256; b++ {
		id, ok := t.index[string(byteToRune[b])]
		if !ok {
			return nil, fmt.Errorf("bpe: vocabulary lacks the byte-level token for byte 0x%02X (%q)", b, string(byteToRune[b]))
		}
		t.byteTok[b] = id
	}

	for rank, m := range cfg.Merges {
		sep := strings.IndexByte(m[min(1, len(m)):], ' ') // llama.cpp: find(' ', 1)
		if sep < 0 {
			return nil, fmt.Errorf("bpe: merge %d %q has no space", rank, m)
		}
		sep += min(1, len(m))
		t.addMerge(rank, m[:sep], m[sep+1:])
	}

	eogIDs := append([]int{cfg.EOS, cfg.EOT}, cfg.EOG...)
	t.eog = markEOG(cfg.Tokens, t.types, eogIDs...)
	for _, a := range cfg.Specials {
		if eogNames[a.Content] {
			t.eog[a.ID] = true
		}
	}
	return t, nil
}

// addMerge records a merge whose parts and result are tokens; others can
// never apply and are dropped.
func (t *BPE) addMerge(rank int, left, right string) {
	l, ok1 := t.index[left]
	r, ok2 := t.index[right]
	res, ok3 := t.index[left+right]
	if !ok1 || !ok2 || !ok3 {
		return
	}
	key := uint64(uint32(l))<<32 | uint64(uint32(r))
	if _, dup := t.merges[key]; !dup {
		t.merges[key] = mergeRes{rank: int32(rank), id: res}
	}
}

func (t *BPE) VocabSize() int      { return len(t.tokens) }
func (t *BPE) BOS() int            { return t.bos }
func (t *BPE) EOS() int            { return t.eos }
func (t *BPE) AddBOSDefault() bool { return t.addBOS }
func (t *BPE) IsEOG(id int) bool   { return t.eog[id] }

// Piece returns the raw vocabulary string (byte-level form for normal tokens).
func (t *BPE) Piece(id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// TokenID returns the id of a token by its raw vocabulary text, -1 if none.
func (t *BPE) TokenID(piece string) int {
	if id, ok := t.index[piece]; ok {
		return int(id)
	}
	for i, s := range t.tokens {
		if s == piece {
			return i
		}
	}
	return -1
}

func (t *BPE) Encode(text string, addBOS bool) []int {
	return t.Tokenize(text, addBOS, true)
}

// Tokenize is TokenizeErr for callers that cannot handle an error: text
// that a pre-tokenizer regex could not split in time is encoded as it is
// (one pre-token), which is bounded and still decodes to the text.
func (t *BPE) Tokenize(text string, addBOS, parseSpecial bool) []int {
	out, _ := t.tokenize(text, addBOS, parseSpecial, false)
	return out
}

// TokenizeErr is Tokenize that fails when a pre-tokenizer regex exceeds
// its match timeout (limits.RegexTimeout) instead of carrying on.
func (t *BPE) TokenizeErr(text string, addBOS, parseSpecial bool) ([]int, error) {
	return t.tokenize(text, addBOS, parseSpecial, true)
}

func (t *BPE) tokenize(text string, addBOS, parseSpecial, strict bool) ([]int, error) {
	var out []int
	timedOut := false
	if addBOS && t.bos >= 0 {
		out = append(out, t.bos)
	}
	for _, f := range t.specials.split(text, parseSpecial) {
		if f.id >= 0 {
			out = append(out, f.id)
			continue
		}
		s := f.text
		if t.nfc {
			s = norm.NFC.String(s)
		}
		words := []string{s}
		for _, re := range t.regexes {
			if timedOut {
				break
			}
			var next []string
			for _, w := range words {
				if timedOut {
					next = append(next, w)
					continue
				}
				var err error
				if next, err = regexSplit(re, w, next); err != nil {
					if strict {
						return nil, fmt.Errorf("tokenizer: pre-tokenizer regex %q on %d bytes of text: %w", re.String(), len(w), err)
					}
					// One timeout per call at most: the rest of the text
					// is encoded without regex splitting.
					timedOut = true
				}
			}
			words = next
		}
		for _, w := range words {
			out = t.encodeWord(w, out)
		}
	}
	return out, nil
}

// regexSplit appends to out the matches of re in s and the text between
// them (Hugging Face's Split with behavior Isolated). Offsets are kept in
// bytes so that invalid UTF-8 (seen by the regex as U+FFFD) is preserved.
// A match that runs past the regex's timeout ends the split with an error,
// the unsplit rest of s appended as one piece.
func regexSplit(re *regexp2.Regexp, s string, out []string) ([]string, error) {
	if s == "" {
		return out, nil
	}
	runes := make([]rune, 0, len(s))
	offs := make([]int, 0, len(s)+1)
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		runes = append(runes, r)
		offs = append(offs, i)
		i += w
	}
	offs = append(offs, len(s))
	last := 0
	m, err := re.FindRunesMatch(runes)
	for err == nil && m != nil {
		a, b := m.Index, m.Index+m.Length
		if a > last {
			out = append(out, s[offs[last]:offs[a]])
		}
		if b > a {
			out = append(out, s[offs[a]:offs[b]])
		}
		last = b
		m, err = re.FindNextMatch(m)
	}
	// regexp2 only errors on a match timeout.
	if last < len(runes) {
		out = append(out, s[offs[last]:])
	}
	return out, err
}

type bpeSym struct {
	id         int32
	prev, next int
}

type bpeBigram struct {
	rank, res   int32
	left, right int
	lid, rid    int32
}

// bpeBetter orders merges: lowest rank first, then leftmost (llama.cpp and
// Hugging Face agree on this order).
func bpeBetter(a, b bpeBigram) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.left < b.left)
}

// encodeWord applies the merges to one pre-tokenized word, using a priority
// queue so long words cost O(n log n).
func (t *BPE) encodeWord(w string, out []int) []int {
	if w == "" {
		return out
	}
	if t.ignoreMerges {
		if id, ok := t.index[ByteLevelEncode(w)]; ok {
			return append(out, int(id))
		}
	}
	if len(w) == 1 {
		return append(out, int(t.byteTok[w[0]]))
	}
	syms := make([]bpeSym, len(w))
	for i := 0; i < len(w); i++ {
		syms[i] = bpeSym{id: t.byteTok[w[i]], prev: i - 1, next: i + 1}
	}
	syms[len(w)-1].next = -1
	q := heap[bpeBigram]{less: bpeBetter}
	tryAdd := func(l, r int) {
		if l < 0 || r < 0 {
			return
		}
		lid, rid := syms[l].id, syms[r].id
		m, ok := t.merges[uint64(uint32(lid))<<32|uint64(uint32(rid))]
		if ok {
			q.push(bpeBigram{rank: m.rank, res: m.id, left: l, right: r, lid: lid, rid: rid})
		}
	}
	for i := 1; i < len(w); i++ {
		tryAdd(i-1, i)
	}
	for q.len() > 0 {
		b := q.pop()
		l, r := &syms[b.left], &syms[b.right]
		// Stale entries: a side was merged away or changed since pushed.
		if l.id != b.lid || r.id != b.rid || l.next != b.right || r.id < 0 {
			continue
		}
		l.id = b.res
		l.next = r.next
		r.id = -1
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		tryAdd(l.prev, b.left)
		tryAdd(b.left, l.next)
	}
	for i := 0; i != -1; i = syms[i].next {
		out = append(out, int(syms[i].id))
	}
	return out
}

// tokenBytes renders one token: added tokens as their text (control ones
// only when special, like llama.cpp's token_to_piece), others through the
// byte-level map.
func (t *BPE) tokenBytes(id int, special bool) []byte {
	if id < 0 || id >= len(t.tokens) {
		return nil
	}
	s := t.tokens[id]
	if t.isSpecial[id] {
		if !special && (t.types[id] == TypeControl || t.types[id] == TypeUnknown) {
			return nil
		}
		return []byte(s)
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if c, ok := runeToByte[r]; ok {
			b = append(b, c)
		} else {
			b = utf8.AppendRune(b, r)
		}
	}
	return b
}

// Decode renders ids; Decode(Tokenize(x, false, _)) == x for valid UTF-8 x
// (NFC(x) when the tokenizer normalizes), and byte for byte for any x.
func (t *BPE) Decode(ids []int) string {
	var b []byte
	for _, id := range ids {
		b = append(b, t.tokenBytes(id, true)...)
	}
	return string(b)
}

// NewStreamDecoder decodes generated tokens one by one; like llama.cpp's
// printing of generated tokens, control tokens render as nothing
// (user-defined ones such as <think> as their text).
func (t *BPE) NewStreamDecoder() *StreamDecoder {
	return &StreamDecoder{bytesOf: func(id int) []byte { return t.tokenBytes(id, false) }}
}
