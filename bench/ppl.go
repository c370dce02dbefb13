// Package bench measures models: perplexity, speed and memory, and kernels.
package bench

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/armor-llm/armor/runtime"
)

// PPLResult is a perplexity measurement.
type PPLResult struct {
	Perplexity float64   `json:"perplexity"`
	NLL        float64   `json:"mean_nll"`
	Tokens     int       `json:"tokens"` // tokens in the text
	Scored     int       `json:"scored"` // tokens whose probability counted
	Ctx        int       `json:"ctx"`
	Chunks     int       `json:"chunks"`
	ChunkPPL   []float64 `json:"chunk_ppl"` // running estimate after each chunk, as llama-perplexity prints
	Seconds    float64   `json:"seconds"`
}

// Perplexity computes perplexity the way llama.cpp's llama-perplexity does:
// the text is tokenized once (by the caller, with BOS); it is cut into
// non-overlapping windows of ctx tokens (a partial last window is dropped);
// the first token of each window is replaced by BOS (when the model has one);
// and only the second half of each window is scored: the logits at positions
// ctx/2 … ctx-2 predict the tokens at ctx/2+1 … ctx-1.
func Perplexity(tr *runtime.Transformer, tokens []int, ctx, bos int, progress func(done, total int)) (*PPLResult, error) {
	if ctx < 4 {
		return nil, fmt.Errorf("ppl: --ctx %d is too small", ctx)
	}
	if ctx > tr.Config.Context {
		return nil, fmt.Errorf("ppl: --ctx %d exceeds the model's context of %d", ctx, tr.Config.Context)
	}
	chunks := len(tokens) / ctx
	if chunks < 1 {
		return nil, fmt.Errorf("ppl: the text has %d tokens, fewer than one window of --ctx %d", len(tokens), ctx)
	}
	st, err := tr.NewState(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	res := &PPLResult{Tokens: len(tokens), Ctx: ctx, Chunks: chunks}
	first := ctx / 2
	vocab := tr.Config.Vocab
	window := make([]int, ctx)
	var nll float64
	for c := 0; c < chunks; c++ {
		copy(window, tokens[c*ctx:(c+1)*ctx])
		if bos >= 0 {
			window[0] = bos
		}
		st.Reset()
		logits, err := st.Forward(window, true)
		if err != nil {
			return nil, err
		}
		for j := first; j < ctx-1; j++ {
			nll -= logSoftmaxAt(logits[j*vocab:(j+1)*vocab], window[j+1])
			res.Scored++
		}
		res.ChunkPPL = append(res.ChunkPPL, math.Exp(nll/float64(res.Scored)))
		if progress != nil {
			progress(c+1, chunks)
		}
	}
	res.NLL = nll / float64(res.Scored)
	res.Perplexity = math.Exp(res.NLL)
	res.Seconds = time.Since(start).Seconds()
	if math.IsNaN(res.Perplexity) || math.IsInf(res.Perplexity, 0) {
		return res, errors.New("ppl: perplexity is not finite (the model produced NaN or infinite logits)")
	}
	return res, nil
}

// logSoftmaxAt returns log p(tok) under softmax(logits), in float64.
func logSoftmaxAt(logits []float32, tok int) float64 {
	mx := logits[0]
	for _, v := range logits {
		mx = max(mx, v)
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v - mx))
	}
	return float64(logits[tok]-mx) - math.Log(sum)
}
