package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/armor-llm/armor/model/tokenizer"
)

// Session generates text from one model with one KV cache. It remembers the
// tokens in the cache, so a follow-up prompt that extends the previous one
// (a chat) only runs its new tokens.
type Session struct {
	Tr      *Transformer
	State   *State
	Tok     tokenizer.Tokenizer
	Sampler *Sampler
	history []int // tokens whose keys and values are in State
}

// NewSession makes a session with a KV cache of ctx positions.
func NewSession(tr *Transformer, tok tokenizer.Tokenizer, ctx int, sc SamplerConfig) (*Session, error) {
	st, err := tr.NewState(ctx)
	if err != nil {
		return nil, err
	}
	return &Session{Tr: tr, State: st, Tok: tok, Sampler: NewSampler(sc)}, nil
}

// Result describes one generation.
type Result struct {
	Tokens       []int  // generated tokens
	Text         string // generated text (stop string excluded)
	StopReason   string // "eog", "length", "stop", "interrupted", "context"
	PromptTokens int    // prompt tokens actually run (not reused from the cache)
	PromptTime   time.Duration
	GenTime      time.Duration
}

// PromptTPS and GenTPS are throughput figures for reports.
func (r *Result) PromptTPS() float64 { return tps(r.PromptTokens, r.PromptTime) }
func (r *Result) GenTPS() float64 {
	// The first generated token comes from the prompt's logits; the rest
	// each cost one decode step.
	return tps(len(r.Tokens)-1, r.GenTime)
}

func tps(n int, d time.Duration) float64 {
	if n <= 0 || d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Generate runs prompt (reusing the cached prefix it shares with earlier
// calls), then samples up to maxNew tokens, passing text to emit as soon as
// it is complete UTF-8 and cannot be the start of a stop string. It stops at
// an end-of-generation token, a stop string, maxNew tokens, a full context or
// when ctx is cancelled (StopReason "interrupted", no error).
func (s *Session) Generate(ctx context.Context, prompt []int, maxNew int, stops []string, emit func(string)) (*Result, error) {
	res := &Result{}
	if len(prompt) == 0 {
		return nil, errors.New("runtime: empty prompt")
	}
	if len(prompt) >= s.State.Capacity {
		return nil, fmt.Errorf("runtime: prompt of %d tokens does not fit the context of %d tokens (raise --ctx up to the model's %d)", len(prompt), s.State.Capacity, s.Tr.Config.Context)
	}
	// Reuse the longest cached prefix, but always run at least one token
	// so there are logits to sample from.
	keep := 0
	for keep < len(s.history) && keep < len(prompt)-1 && s.history[keep] == prompt[keep] {
		keep++
	}
	s.State.Truncate(keep)
	s.history = s.history[:keep]
	s.Sampler.Reset()
	for _, t := range prompt {
		s.Sampler.Accept(t)
	}
	start := time.Now()
	logits, err := s.State.Forward(prompt[keep:], false)
	if err != nil {
		return nil, fmt.Errorf("runtime: prompt: %w", err)
	}
	s.history = append(s.history, prompt[keep:]...)
	res.PromptTokens = len(prompt) - keep
	res.PromptTime = time.Since(start)

	dec := s.Tok.NewStreamDecoder()
	stop := newStopFilter(stops)
	var text strings.Builder
	out := func(piece string) {
		text.WriteString(piece)
		if emit != nil && piece != "" {
			emit(piece)
		}
	}
	start = time.Now()
	defer func() { res.GenTime = time.Since(start) }()
	for {
		if maxNew >= 0 && len(res.Tokens) >= maxNew {
			res.StopReason = "length"
			break
		}
		if ctx.Err() != nil {
			res.StopReason = "interrupted"
			break
		}
		tok := s.Sampler.Sample(logits)
		s.Sampler.Accept(tok)
		res.Tokens = append(res.Tokens, tok)
		if s.Tok.IsEOG(tok) {
			res.StopReason = "eog"
			break
		}
		piece, hit := stop.add(dec.Add(tok))
		out(piece)
		if hit {
			res.StopReason = "stop"
			break
		}
		if s.State.Pos >= s.State.Capacity {
			res.StopReason = "context"
			break
		}
		logits, err = s.State.Forward([]int{tok}, false)
		if err != nil {
			return res, err
		}
		s.history = append(s.history, tok)
	}
	if res.StopReason != "stop" {
		piece, _ := stop.add(dec.Flush())
		out(piece + stop.flush())
	}
	res.Text = text.String()
	return res, nil
}

// stopFilter holds back text that might begin a stop string.
type stopFilter struct {
	stops   []string
	pending string
}

func newStopFilter(stops []string) *stopFilter {
	var s []string
	for _, x := range stops {
		if x != "" {
			s = append(s, x)
		}
	}
	return &stopFilter{stops: s}
}

// add appends text and returns what can be released; hit reports that a
// stop string was found (the text before it is released, the rest dropped).
func (f *stopFilter) add(text string) (release string, hit bool) {
	f.pending += text
	if len(f.stops) == 0 {
		out := f.pending
		f.pending = ""
		return out, false
	}
	for _, s := range f.stops {
		if i := strings.Index(f.pending, s); i >= 0 {
			out := f.pending[:i]
			f.pending = ""
			return out, true
		}
	}
	// Keep the longest suffix that is a prefix of some stop string.
	keep := 0
	for _, s := range f.stops {
		for k := min(len(s)-1, len(f.pending)); k > keep; k-- {
			if strings.HasSuffix(f.pending, s[:k]) {
				keep = k
				break
			}
		}
	}
	out := f.pending[:len(f.pending)-keep]
	f.pending = f.pending[len(f.pending)-keep:]
	return out, false
}

func (f *stopFilter) flush() string {
	out := f.pending
	f.pending = ""
	return out
}
