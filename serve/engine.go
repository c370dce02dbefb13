// Package serve is an OpenAI-compatible HTTP server over runtime: a
// scheduler that runs many requests at once on one runtime.Batch
// (continuous batching), the HTTP handlers, and their metrics.
package serve

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/armor-llm/armor/model/tokenizer"
	"github.com/armor-llm/armor/runtime"
)

// EngineConfig sizes the scheduler.
type EngineConfig struct {
	Parallel int // sequences decoded together, each with its own KV-cache slot
	Ctx      int // positions per slot
	Queue    int // requests waiting for a slot beyond those running; more get ErrQueueFull
	Chunk    int // prompt tokens run per step beside the decoding sequences
}

// Errors of Submit.
var (
	ErrQueueFull = errors.New("serve: the request queue is full")
	ErrClosed    = errors.New("serve: the server is shutting down")
)

// Params are one request's generation settings.
type Params struct {
	MaxTokens                         int // ≥ 1
	Sampler                           runtime.SamplerConfig
	PresencePenalty, FrequencyPenalty float32
	Stops                             []string
	TopLogprobs                       int  // alternatives reported per token
	Logprobs                          bool // report each token's log-probability
	IgnoreEOS                         bool // an end-of-generation token does not end the answer
}

// TokenLogprob is a generated token's log-probability and the most likely
// alternatives at its position.
type TokenLogprob struct {
	Token   int
	Logprob float32
	Top     []TopLogprob
}

// TopLogprob is one alternative.
type TopLogprob struct {
	Token   int
	Logprob float32
}

// Event is what a job reports: a generated token (its text may be empty
// while a stop string or a UTF-8 character is incomplete), or the end.
type Event struct {
	Text     string
	Token    int // -1 on the final event
	Logprob  *TokenLogprob
	Time     time.Time
	Done     bool
	Finish   string // "stop" or "length" on the final event
	Prompt   int    // prompt tokens, on the final event
	Tokens   int    // generated tokens, on the final event
	Err      error  // set on the final event when the job failed or was cancelled
	Panicked bool   // the failure was a recovered panic
}

// Job is one submitted request. Its events are read with Recv.
type Job struct {
	ctx    context.Context
	prompt []int
	p      Params
	start  time.Time

	mu     sync.Mutex
	events []Event
	done   bool
	notify chan struct{}
}

// Recv waits for events and returns those pending; the last one has Done.
// It returns ctx's error if ctx ends first.
func (j *Job) Recv(ctx context.Context) ([]Event, error) {
	for {
		j.mu.Lock()
		if len(j.events) > 0 {
			ev := j.events
			j.events = nil
			j.mu.Unlock()
			return ev, nil
		}
		j.mu.Unlock()
		select {
		case <-j.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (j *Job) push(e Event) {
	j.mu.Lock()
	if j.done {
		j.mu.Unlock()
		return
	}
	j.done = e.Done
	j.events = append(j.events, e)
	j.mu.Unlock()
	select {
	case j.notify <- struct{}{}:
	default:
	}
}

// seq is a job running in a slot.
type seq struct {
	job     *Job
	slot    int
	fed     int // prompt tokens in the cache
	next    int // token to run next in decode (-1: still in prompt)
	gen     int
	counts  map[int]int
	sampler *runtime.Sampler
	dec     *tokenizer.StreamDecoder
	stop    *runtime.StopFilter
	last    time.Time // time of the last token event
}

// Engine owns a runtime.Batch and runs submitted jobs on it from one
// goroutine: each step runs one token of every decoding sequence and a
// chunk of at most Chunk prompt tokens, as one batch.
type Engine struct {
	cfg     EngineConfig
	tok     tokenizer.Tokenizer
	batch   *runtime.Batch
	queue   chan *Job
	seqs    []*seq  // per slot, nil when free
	history [][]int // tokens in each slot's cache, for prompt-prefix reuse
	order   []*seq  // running sequences in admission order (prompt chunks go first come, first served)

	queued, active atomic.Int64
	closed         atomic.Bool
	submitMu       sync.RWMutex
	closeOnce      sync.Once
	quit, finished chan struct{}
	abort          chan struct{}
	abortOnce      sync.Once

	metrics *metrics
	// stepHook, when set (tests), runs for each sequence before sampling.
	stepHook func(j *Job)
	// stepSizes, when set (tests), hears each step's decoding and prompt
	// tokens.
	stepSizes func(decode, prompt int)

	statsMu sync.Mutex
	stats   StepStats
}

// StepStats is where the scheduler's time has gone: steps that ran only
// the decoding sequences' next tokens, and steps that also ran a prompt
// chunk (with the decoding tokens riding along). Seconds cover the forward
// pass and the sampling of the step.
type StepStats struct {
	DecodeSteps, MixedSteps     int
	DecodeTokens, MixedTokens   int // tokens run; a mixed step's prompt and decoding tokens
	DecodeSeconds, MixedSeconds float64
}

// Sub is s − o, the steps between two readings.
func (s StepStats) Sub(o StepStats) StepStats {
	return StepStats{s.DecodeSteps - o.DecodeSteps, s.MixedSteps - o.MixedSteps,
		s.DecodeTokens - o.DecodeTokens, s.MixedTokens - o.MixedTokens,
		s.DecodeSeconds - o.DecodeSeconds, s.MixedSeconds - o.MixedSeconds}
}

// StepStats returns the totals since the engine started.
func (e *Engine) StepStats() StepStats {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	return e.stats
}

// NewEngine allocates the batch and starts the scheduler.
func NewEngine(tr *runtime.Transformer, tok tokenizer.Tokenizer, cfg EngineConfig) (*Engine, error) {
	if cfg.Parallel < 1 {
		return nil, fmt.Errorf("serve: --parallel %d: must be at least 1", cfg.Parallel)
	}
	if cfg.Chunk < 1 {
		cfg.Chunk = 128
	}
	if cfg.Queue < 0 {
		cfg.Queue = 0
	}
	b, err := tr.NewBatch(cfg.Parallel, cfg.Ctx, cfg.Parallel+cfg.Chunk)
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, tok: tok, batch: b, queue: make(chan *Job, cfg.Queue+cfg.Parallel),
		seqs: make([]*seq, cfg.Parallel), history: make([][]int, cfg.Parallel),
		quit: make(chan struct{}), finished: make(chan struct{}), abort: make(chan struct{})}
	go e.loop()
	return e, nil
}

// Ctx is the positions each request may use (prompt and answer).
func (e *Engine) Ctx() int { return e.cfg.Ctx }

// Queued and Active count jobs waiting and running.
func (e *Engine) Queued() int { return int(e.queued.Load()) }
func (e *Engine) Active() int { return int(e.active.Load()) }

// KVBytes is the memory of all slots' KV caches.
func (e *Engine) KVBytes() int64 { return e.batch.KVBytes() }

// Submit queues a job. The prompt must leave room for at least one token.
// A job whose ctx ends is cancelled and frees its slot within one step.
func (e *Engine) Submit(ctx context.Context, prompt []int, p Params) (*Job, error) {
	if len(prompt) == 0 {
		return nil, errors.New("serve: empty prompt")
	}
	if len(prompt) >= e.cfg.Ctx {
		return nil, fmt.Errorf("serve: prompt of %d tokens does not fit the context of %d tokens", len(prompt), e.cfg.Ctx)
	}
	j := &Job{ctx: ctx, prompt: prompt, p: p, start: time.Now(), notify: make(chan struct{}, 1)}
	// Close sets closed under the write lock, so no job is queued after
	// the scheduler has drained the queue and stopped.
	e.submitMu.RLock()
	defer e.submitMu.RUnlock()
	if e.closed.Load() {
		return nil, ErrClosed
	}
	e.queued.Add(1)
	select {
	case e.queue <- j:
		return j, nil
	default:
		e.queued.Add(-1)
		return nil, ErrQueueFull
	}
}

// Close stops accepting jobs, lets queued and running ones finish and
// stops the scheduler; with ctx ending first it cancels the rest.
func (e *Engine) Close(ctx context.Context) error {
	e.submitMu.Lock()
	e.closed.Store(true)
	e.submitMu.Unlock()
	e.closeOnce.Do(func() { close(e.quit) })
	select {
	case <-e.finished:
		return nil
	case <-ctx.Done():
		e.abortOnce.Do(func() { close(e.abort) })
		<-e.finished
		return ctx.Err()
	}
}

func (e *Engine) loop() {
	defer close(e.finished)
	for {
		e.admit()
		if len(e.order) == 0 {
			select {
			case j := <-e.queue:
				e.start(j)
			case <-e.quit:
				if len(e.queue) == 0 {
					return
				}
				// Drain what was queued before Close.
				e.start(<-e.queue)
			}
			continue
		}
		e.step()
	}
}

// admit moves queued jobs into free slots.
func (e *Engine) admit() {
	for len(e.order) < len(e.seqs) {
		select {
		case j := <-e.queue:
			e.start(j)
		default:
			return
		}
	}
}

// start puts j into the free slot whose cache shares the longest prefix
// with its prompt (a chat's next turn reruns only its new tokens).
func (e *Engine) start(j *Job) {
	e.queued.Add(-1)
	if err := j.ctx.Err(); err != nil {
		j.push(Event{Token: -1, Done: true, Err: err})
		return
	}
	select {
	case <-e.abort:
		j.push(Event{Token: -1, Done: true, Err: ErrClosed})
		return
	default:
	}
	best, keep := -1, -1
	for i, s := range e.seqs {
		if s != nil {
			continue
		}
		k := 0
		h := e.history[i]
		for k < len(h) && k < len(j.prompt)-1 && h[k] == j.prompt[k] {
			k++
		}
		if k > keep {
			best, keep = i, k
		}
	}
	e.batch.Truncate(best, keep)
	e.history[best] = e.history[best][:keep]
	s := &seq{job: j, slot: best, fed: keep, next: -1, counts: map[int]int{},
		sampler: runtime.NewSampler(j.p.Sampler), dec: e.tok.NewStreamDecoder(), stop: runtime.NewStopFilter(j.p.Stops)}
	for _, t := range j.prompt {
		s.sampler.Accept(t)
	}
	e.seqs[best] = s
	e.order = append(e.order, s)
	e.active.Add(1)
	if e.metrics != nil {
		e.metrics.promptTokens.Add(float64(len(j.prompt)))
	}
}

// finish ends s with its final event and frees its slot.
func (e *Engine) finish(s *seq, ev Event) {
	if ev.Err == nil {
		piece := ""
		if ev.Finish != "stop" || s.next == -2 {
			piece, _ = s.stop.Add(s.dec.Flush())
			piece += s.stop.Flush()
		}
		if piece != "" {
			s.job.push(Event{Text: piece, Token: -1, Time: time.Now()})
		}
	}
	ev.Token, ev.Done, ev.Prompt, ev.Tokens = -1, true, len(s.job.prompt), s.gen
	ev.Time = time.Now()
	s.job.push(ev)
	e.seqs[s.slot] = nil
	e.order = slices.DeleteFunc(e.order, func(x *seq) bool { return x == s })
	e.active.Add(-1)
}

// step runs one batch and samples every sequence whose prompt is done.
func (e *Engine) step() {
	aborting := false
	select {
	case <-e.abort:
		aborting = true
	default:
	}
	for _, s := range slices.Clone(e.order) {
		if aborting {
			e.finish(s, Event{Err: ErrClosed})
		} else if err := s.job.ctx.Err(); err != nil {
			e.finish(s, Event{Err: err})
		}
	}
	if len(e.order) == 0 {
		return
	}
	var items []runtime.BatchItem
	var owners []*seq
	for _, s := range e.order {
		if s.next >= 0 {
			items = append(items, runtime.BatchItem{Slot: s.slot, Tokens: []int{s.next}})
			owners = append(owners, s)
		}
	}
	// The decoding tokens ride in the same products as the prompt chunk:
	// a step of Chunk tokens in all, not Chunk plus them, keeps it a whole
	// number of the GEMM's token tiles (64 tokens; a 136-token step pads
	// to 192), while the chunk keeps at least half its size.
	ndec := len(items)
	budget := max(e.cfg.Chunk-ndec, (e.cfg.Chunk+1)/2)
	for _, s := range e.order {
		if s.next >= 0 || budget == 0 {
			continue
		}
		n := min(budget, len(s.job.prompt)-s.fed)
		items = append(items, runtime.BatchItem{Slot: s.slot, Tokens: s.job.prompt[s.fed : s.fed+n]})
		owners = append(owners, s)
		budget -= n
	}
	prompt := 0
	for _, it := range items[ndec:] {
		prompt += len(it.Tokens)
	}
	if e.stepSizes != nil {
		e.stepSizes(ndec, prompt)
	}
	t0 := time.Now()
	defer e.countStep(t0, ndec, prompt)
	out, err := e.batch.Forward(items)
	if err != nil {
		// Inputs were checked at Submit; a failure here is a bug, which
		// fails the sequences of this step but not the server.
		for _, s := range owners {
			e.finish(s, Event{Err: fmt.Errorf("serve: forward: %w", err)})
		}
		return
	}
	for k, s := range owners {
		it := items[k]
		e.history[s.slot] = append(e.history[s.slot], it.Tokens...)
		if s.next < 0 {
			s.fed += len(it.Tokens)
			if s.fed < len(s.job.prompt) {
				continue
			}
		}
		e.sample(s, out[k])
	}
}

// countStep adds a step that began at t0 to the step statistics.
func (e *Engine) countStep(t0 time.Time, decode, prompt int) {
	d := time.Since(t0).Seconds()
	kind := "decode"
	e.statsMu.Lock()
	if prompt == 0 {
		e.stats.DecodeSteps++
		e.stats.DecodeTokens += decode
		e.stats.DecodeSeconds += d
	} else {
		kind = "mixed"
		e.stats.MixedSteps++
		e.stats.MixedTokens += decode + prompt
		e.stats.MixedSeconds += d
	}
	e.statsMu.Unlock()
	if m := e.metrics; m != nil {
		m.stepSeconds.WithLabelValues(kind).Observe(d)
		m.stepTokens.WithLabelValues(kind).Add(float64(decode + prompt))
	}
}

// sample picks s's next token from logits and reports it; a panic here
// fails this sequence only.
func (e *Engine) sample(s *seq, logits []float32) {
	defer func() {
		if r := recover(); r != nil {
			e.finish(s, Event{Err: fmt.Errorf("serve: internal error: %v", r), Panicked: true})
		}
	}()
	if e.stepHook != nil {
		e.stepHook(s.job)
	}
	p := s.job.p
	var lp *TokenLogprob
	var lse float32
	var top []TopLogprob
	if p.Logprobs {
		// Log-probabilities of the model's distribution, before penalties.
		lse = logSumExp(logits)
		top = topLogprobs(logits, lse, p.TopLogprobs)
	}
	if p.PresencePenalty != 0 || p.FrequencyPenalty != 0 {
		// OpenAI's penalties: each generated token's logit is lowered by
		// frequency × its count, and by presence once it has appeared.
		for t, n := range s.counts {
			logits[t] -= p.FrequencyPenalty*float32(n) + p.PresencePenalty
		}
	}
	tok := s.sampler.Sample(logits)
	s.sampler.Accept(tok)
	s.counts[tok]++
	s.gen++
	now := time.Now()
	if m := e.metrics; m != nil {
		m.genTokens.Inc()
		if s.gen == 1 {
			m.ttft.Observe(now.Sub(s.job.start).Seconds())
		} else {
			m.interToken.Observe(now.Sub(s.last).Seconds())
		}
	}
	s.last = now
	if p.Logprobs {
		lp = &TokenLogprob{Token: tok, Logprob: logits[tok] - lse}
		if p.PresencePenalty != 0 || p.FrequencyPenalty != 0 {
			lp.Logprob += float32(s.counts[tok]-1)*p.FrequencyPenalty + b2f(s.counts[tok] > 1)*p.PresencePenalty
		}
		lp.Top = top
	}
	if e.tok.IsEOG(tok) && !p.IgnoreEOS {
		s.job.push(Event{Token: tok, Logprob: lp, Time: now})
		s.next = -2
		e.finish(s, Event{Finish: "stop"})
		return
	}
	piece, hit := s.stop.Add(s.dec.Add(tok))
	s.job.push(Event{Text: piece, Token: tok, Logprob: lp, Time: now})
	switch {
	case hit:
		e.finish(s, Event{Finish: "stop"})
	case s.gen >= p.MaxTokens || e.batch.Pos(s.slot) >= e.batch.Capacity():
		e.finish(s, Event{Finish: "length"})
	default:
		s.next = tok
	}
}

func b2f(b bool) float32 {
	if b {
		return 1
	}
	return 0
}

func logSumExp(l []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range l {
		m = max(m, v)
	}
	var sum float64
	for _, v := range l {
		sum += math.Exp(float64(v - m))
	}
	return m + float32(math.Log(sum))
}

// topLogprobs returns the k most likely tokens of logits, most likely first.
func topLogprobs(l []float32, lse float32, k int) []TopLogprob {
	if k <= 0 {
		return nil
	}
	var top []TopLogprob
	for i, v := range l {
		if len(top) < k || v > top[len(top)-1].Logprob+lse {
			t := TopLogprob{Token: i, Logprob: v - lse}
			j, _ := slices.BinarySearchFunc(top, t, func(a, b TopLogprob) int {
				switch {
				case a.Logprob > b.Logprob:
					return -1
				case a.Logprob < b.Logprob:
					return 1
				}
				return 0
			})
			top = slices.Insert(top, j, t)
			if len(top) > k {
				top = top[:k]
			}
		}
	}
	return top
}
