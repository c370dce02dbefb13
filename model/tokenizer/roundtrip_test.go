package tokenizer

import (
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// alphabet mixes the character classes the pre-tokenizers and merges treat
// differently, plus combining marks (NFC composes them) and emoji.
var alphabet = []string{
	"a", "b", "e", "t", "Z", "Q", " ", " ", "  ", "\n", "\t", "\r\n", "0", "7", "123", ".", ",", "'", "'s", "!",
	"é", "ü", "ß", "ñ", "e\u0301", "a\u0308", "\u0301", "д", "Ж", "中", "文", "日本", "ก", "ល", "🦙", "😀", "🚀",
	"\u200d", "️", "½", "∑", "\u00a0", "\u3000", "€", "<", ">", "|", "<s>", "hello", " world", "don't",
}

func randomText(r *rand.Rand, invalid bool) string {
	var sb strings.Builder
	n := r.Intn(40)
	for i := 0; i < n; i++ {
		switch {
		case invalid && r.Intn(10) == 0:
			sb.WriteByte(byte(0x80 + r.Intn(0x80))) // stray or truncated sequence bytes
		case r.Intn(8) == 0:
			// any valid code point, surrogates excluded
			c := rune(r.Intn(0x10FFFF))
			if !utf8.ValidRune(c) {
				c = 'x'
			}
			sb.WriteRune(c)
		default:
			sb.WriteString(alphabet[r.Intn(len(alphabet))])
		}
	}
	return sb.String()
}

// TestRoundTrip checks Decode(Tokenize(x)) on random strings: exact for the
// SentencePiece tokenizer (valid UTF-8) and Llama 3 (any bytes), NFC(x) for
// Qwen, whose tokenizer.json normalizes. Streaming gives the same bytes and
// emits only valid UTF-8 for valid input.
func TestRoundTrip(t *testing.T) {
	type tc struct {
		name    string
		tok     Tokenizer
		nfc     bool
		invalid bool
	}
	var cases []tc
	for name, tok := range loadLlama2(t) {
		// Not invalid UTF-8: like llama.cpp, a stray lead byte swallows the
		// next byte into its "character", which can split a "▁" into
		// byte tokens that decode to "▁" rather than " ".
		cases = append(cases, tc{"llama2-" + name, tok, false, false})
	}
	cases = append(cases, tc{"llama3", loadHF(t, "llama3"), false, true}, tc{"qwen3", loadHF(t, "qwen3"), true, false})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewSource(1))
			for i := 0; i < 400; i++ {
				x := randomText(r, c.invalid)
				want := x
				if c.nfc {
					want = norm.NFC.String(x)
				}
				for _, parse := range []bool{false, true} {
					ids := c.tok.Tokenize(x, false, parse)
					if got := c.tok.Decode(ids); got != want {
						t.Fatalf("parseSpecial=%v: Decode(Tokenize(%q)) = %q, ids %v", parse, x, got, ids)
					}
					for _, id := range ids {
						if id < 0 || id >= c.tok.VocabSize() {
							t.Fatalf("id %d out of range for %q", id, x)
						}
					}
				}
				// Without parsed specials, the only SentencePiece
				// space prefix is the leading one.
				ids := c.tok.Tokenize(x, false, false)
				sd := c.tok.NewStreamDecoder()
				var sb strings.Builder
				for _, id := range ids {
					s := sd.Add(id)
					if !c.invalid && !utf8.ValidString(s) {
						t.Fatalf("stream piece %q of %q is not valid UTF-8", s, x)
					}
					sb.WriteString(s)
				}
				sb.WriteString(sd.Flush())
				streamed := sb.String()
				if _, spm := c.tok.(*SentencePiece); spm && len(ids) > 0 {
					// The stream keeps the space prefix Decode removes.
					streamed = strings.TrimPrefix(streamed, " ")
				}
				if streamed != want {
					t.Fatalf("streamed %q, want %q", streamed, want)
				}
			}
		})
	}
}

// refBPE is a direct O(n²) BPE: repeatedly merge the lowest-ranked adjacent
// pair, leftmost first, on strings.
func refBPE(tok *BPE, ranks map[[2]string]int, word string) []int {
	w := ByteLevelEncode(word)
	if tok.ignoreMerges {
		if id, ok := tok.index[w]; ok {
			return []int{int(id)}
		}
	}
	var parts []string
	for _, c := range w {
		parts = append(parts, string(c))
	}
	for {
		best, bestRank := -1, math.MaxInt
		for i := 0; i+1 < len(parts); i++ {
			if r, ok := ranks[[2]string{parts[i], parts[i+1]}]; ok && r < bestRank {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		parts[best] += parts[best+1]
		parts = append(parts[:best+1], parts[best+2:]...)
	}
	ids := make([]int, len(parts))
	for i, p := range parts {
		ids[i] = int(tok.index[p])
	}
	return ids
}

func TestBPEMatchesReference(t *testing.T) {
	for _, name := range []string{"llama3", "qwen3"} {
		t.Run(name, func(t *testing.T) {
			tok := loadHF(t, name)
			ranks := make(map[[2]string]int, len(tok.merges))
			for k, m := range tok.merges {
				ranks[[2]string{tok.tokens[k>>32], tok.tokens[uint32(k)]}] = int(m.rank)
			}
			r := rand.New(rand.NewSource(2))
			words := []string{"", "a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", strings.Repeat(" ", 37), "unbelievableness", "🦙🦙🦙"}
			for i := 0; i < 300; i++ {
				var sb strings.Builder
				for j := r.Intn(30); j > 0; j-- {
					sb.WriteString(alphabet[r.Intn(len(alphabet))])
				}
				words = append(words, sb.String())
				// long letter runs exercise many merges in one word
				sb.Reset()
				for j := 5 + r.Intn(60); j > 0; j-- {
					sb.WriteByte("abcdeinrst"[r.Intn(10)])
				}
				words = append(words, sb.String())
			}
			for _, w := range words {
				got := tok.encodeWord(w, nil)
				want := refBPE(tok, ranks, w)
				if w == "" {
					want = nil
				}
				if !slices.Equal(got, want) {
					t.Fatalf("word %q: got %v, reference %v", w, got, want)
				}
			}
		})
	}
}

// refSPM is a direct O(n²) SentencePiece BPE: repeatedly merge the adjacent
// pair whose concatenation is the highest-scoring piece, leftmost first.
func refSPM(tok *SentencePiece, text string) []int {
	var parts []string
	for i := 0; i < len(text); {
		n := min(utf8LenFromLead(text[i]), len(text)-i)
		parts = append(parts, text[i:i+n])
		i += n
	}
	for {
		best, bestScore := -1, float32(math.Inf(-1))
		for i := 0; i+1 < len(parts); i++ {
			if id, ok := tok.index[parts[i]+parts[i+1]]; ok && (best < 0 || tok.scores[id] > bestScore) {
				best, bestScore = i, tok.scores[id]
			}
		}
		if best < 0 {
			break
		}
		parts[best] += parts[best+1]
		parts = append(parts[:best+1], parts[best+2:]...)
	}
	var ids []int
	for _, p := range parts {
		if id, ok := tok.index[p]; ok {
			ids = append(ids, int(id))
			continue
		}
		for j := 0; j < len(p); j++ {
			ids = append(ids, int(tok.byteID[p[j]]))
		}
	}
	return ids
}

func TestSPMMatchesReference(t *testing.T) {
	tok := loadLlama2(t)["model"]
	r := rand.New(rand.NewSource(3))
	var inputs []string
	for i := 0; i < 300; i++ {
		inputs = append(inputs, randomText(r, true))
		// runs of one character make equal-score pairs: tie-breaking
		inputs = append(inputs, strings.Repeat(alphabet[r.Intn(len(alphabet))], 1+r.Intn(12)))
	}
	for _, x := range inputs {
		got := tok.Tokenize(x, false, false)
		want := refSPM(tok, strings.ReplaceAll(" "+x, " ", "▁"))
		if x == "" {
			want = nil
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%q: got %v, reference %v", x, got, want)
		}
	}
}
