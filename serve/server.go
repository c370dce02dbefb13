package serve

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/armor-llm/armor/model/chat"
	"github.com/armor-llm/armor/model/tokenizer"
)

// Options configure a Server.
type Options struct {
	ModelName string // reported by /v1/models and in responses
	APIKey    string // when set, every endpoint but /health needs "Authorization: Bearer KEY"
	MaxBody   int64  // request body limit in bytes (0: 8 MiB)
	Defaults  defaults
	Log       *log.Logger // one line per request; nil: none
	NoBOS     bool
}

// Defaults are the sampling settings of requests that leave them out:
// llama-server's (temperature 0.8, top-p 0.95, top-k 40, min-p 0.05) and
// an answer of at most maxTokens tokens.
func Defaults(temp, topP, minP float64, topK, maxTokens int) defaults {
	return defaults{Temp: temp, TopP: topP, MinP: minP, TopK: topK, MaxTokens: maxTokens}
}

// Server is the HTTP front of an Engine. It answers /health with 503 until
// Ready is called, so it can listen while the model loads.
type Server struct {
	opts    Options
	ready   atomic.Pointer[backend]
	m       *metrics
	keyHash [32]byte
	created int64
	// panicHook, when set (tests), runs in every handler after the body is read.
	panicHook func(model string)
}

type backend struct {
	eng  *Engine
	tok  tokenizer.Tokenizer
	tmpl chat.Template
	bos  string
}

// NewServer makes a server that is not ready yet.
func NewServer(o Options) *Server {
	if o.MaxBody <= 0 {
		o.MaxBody = 8 << 20
	}
	if o.Defaults.MaxTokens <= 0 {
		o.Defaults = Defaults(0.8, 0.95, 0.05, 40, 256)
	}
	s := &Server{opts: o, created: time.Now().Unix()}
	s.keyHash = sha256.Sum256([]byte(o.APIKey))
	s.m = newMetrics(func() float64 { return s.gauge((*Engine).Queued) }, func() float64 { return s.gauge((*Engine).Active) })
	return s
}

func (s *Server) gauge(f func(*Engine) int) float64 {
	if b := s.ready.Load(); b != nil {
		return float64(f(b.eng))
	}
	return 0
}

// Ready makes the server answer with eng: tok encodes prompts, tmpl renders
// chats.
func (s *Server) Ready(eng *Engine, tok tokenizer.Tokenizer, tmpl chat.Template) {
	eng.metrics = s.m
	bos := ""
	if b := tok.BOS(); b >= 0 {
		bos = tok.Piece(b)
	}
	s.ready.Store(&backend{eng: eng, tok: tok, tmpl: tmpl, bos: bos})
}

// Engine is the engine given to Ready, or nil.
func (s *Server) Engine() *Engine {
	if b := s.ready.Load(); b != nil {
		return b.eng
	}
	return nil
}

// Handler routes the endpoints, behind logging, panic recovery, the body
// limit and the API key check.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.health)
	mux.HandleFunc("GET /v1/models", s.models)
	mux.HandleFunc("POST /v1/chat/completions", s.chatCompletions)
	mux.HandleFunc("POST /v1/completions", s.completions)
	mux.HandleFunc("POST /tokenize", s.tokenize)
	mux.HandleFunc("POST /detokenize", s.detokenize)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound, Message: fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path)})
	})
	return s.wrap(mux)
}

// statusWriter remembers the status code for the log and the metrics.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.code, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var endpoints = map[string]bool{"/health": true, "/v1/models": true, "/v1/chat/completions": true, "/v1/completions": true,
	"/tokenize": true, "/detokenize": true, "/metrics": true}

func (s *Server) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w := &statusWriter{ResponseWriter: rw}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				if s.opts.Log != nil {
					s.opts.Log.Printf("panic serving %s %s: %v\n%s", r.Method, r.URL.Path, p, debug.Stack())
				}
				if !w.wrote {
					writeError(w, &apiError{Status: http.StatusInternalServerError, Message: "internal server error"})
				} else {
					// Headers are out (a stream): all that is left is to
					// cut the connection so the client sees a failure.
					defer func() { recover() }()
					panic(http.ErrAbortHandler)
				}
			}
			ep := r.URL.Path
			if !endpoints[ep] {
				ep = "other"
			}
			s.m.requests.WithLabelValues(ep, fmt.Sprint(w.code)).Inc()
			if s.opts.Log != nil {
				s.opts.Log.Printf("%s %s %d %.1fms %s", r.Method, r.URL.Path, w.code, float64(time.Since(start).Microseconds())/1000, r.RemoteAddr)
			}
		}()
		if s.opts.APIKey != "" && r.URL.Path != "/health" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			// Hashes have a fixed length, so the comparison time says
			// nothing about the key's length either.
			h := sha256.Sum256([]byte(strings.TrimSpace(got)))
			if !ok || subtle.ConstantTimeCompare(h[:], s.keyHash[:]) != 1 {
				writeError(w, &apiError{Status: http.StatusUnauthorized, Message: "missing or invalid API key: send Authorization: Bearer KEY", Type: "invalid_request_error"})
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBody)
		next.ServeHTTP(w, r)
	})
}

func (s *Server) backend(w http.ResponseWriter) *backend {
	b := s.ready.Load()
	if b == nil {
		w.Header().Set("Retry-After", "5")
		writeError(w, &apiError{Status: http.StatusServiceUnavailable, Message: "the model is loading"})
	}
	return b
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if s.ready.Load() == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "loading"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []any{
		map[string]any{"id": s.opts.ModelName, "object": "model", "created": s.created, "owned_by": "armor"}}})
}

func (s *Server) tokenize(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Content    *string `json:"content"`
		AddSpecial bool    `json:"add_special"`
		WithPieces bool    `json:"with_pieces"`
	}
	if e := decode(r.Body, &req); e != nil {
		writeError(w, e)
		return
	}
	s.hook(r, "")
	if req.Content == nil {
		writeError(w, badRequest("content", "content is missing"))
		return
	}
	b := s.backend(w)
	if b == nil {
		return
	}
	ids, err := b.tok.TokenizeErr(*req.Content, req.AddSpecial && b.tok.AddBOSDefault(), true)
	if err != nil {
		writeError(w, badRequest("content", "%v", err))
		return
	}
	if !req.WithPieces {
		writeJSON(w, http.StatusOK, map[string]any{"tokens": ids})
		return
	}
	pieces := make([]map[string]any, len(ids))
	for i, id := range ids {
		pieces[i] = map[string]any{"id": id, "piece": b.tok.Decode([]int{id})}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": pieces})
}

func (s *Server) detokenize(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Tokens []int `json:"tokens"`
	}
	if e := decode(r.Body, &req); e != nil {
		writeError(w, e)
		return
	}
	b := s.backend(w)
	if b == nil {
		return
	}
	for i, t := range req.Tokens {
		if t < 0 || t >= b.tok.VocabSize() {
			writeError(w, badRequest(fmt.Sprintf("tokens[%d]", i), "tokens[%d] = %d is out of range (vocabulary of %d)", i, t, b.tok.VocabSize()))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"content": b.tok.Decode(req.Tokens)})
}

func (s *Server) hook(r *http.Request, model string) {
	if s.panicHook != nil {
		s.panicHook(model)
	}
}

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if e := decode(r.Body, &req); e != nil {
		writeError(w, e)
		return
	}
	s.hook(r, req.Model)
	if e := req.check(); e != nil {
		writeError(w, e)
		return
	}
	maxTok, maxParam := req.MaxTokens, "max_tokens"
	if req.MaxCompletionTokens != nil {
		maxTok, maxParam = req.MaxCompletionTokens, "max_completion_tokens"
	}
	p, e := req.params(s.opts.Defaults, maxTok, maxParam)
	if e != nil {
		writeError(w, e)
		return
	}
	if req.Logprobs != nil && *req.Logprobs {
		p.Logprobs = true
		if req.TopLogprobs != nil {
			p.TopLogprobs = *req.TopLogprobs
		}
	}
	msgs, e := req.messages()
	if e != nil {
		writeError(w, e)
		return
	}
	b := s.backend(w)
	if b == nil {
		return
	}
	turns := make([]chat.Message, len(msgs))
	for i, m := range msgs {
		turns[i] = chat.Message{Role: m.Role, Content: m.Content}
	}
	text, err := b.tmpl.Render(turns, true)
	if err != nil {
		writeError(w, badRequest("messages", "the chat template cannot render these messages: %v", err))
		return
	}
	addBOS := b.tok.AddBOSDefault() && !s.opts.NoBOS && !chat.StartsWithBOS(text, b.bos)
	// Client text is untrusted too: a pre-tokenizer regex that runs out
	// of time is the request's error, not a stall of the server.
	prompt, err := b.tok.TokenizeErr(text, addBOS, true)
	if err != nil {
		writeError(w, badRequest("messages", "%v", err))
		return
	}
	s.generate(w, r, b, prompt, p, &req.samplingFields, true, "messages")
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	if e := decode(r.Body, &req); e != nil {
		writeError(w, e)
		return
	}
	s.hook(r, req.Model)
	text, e := req.promptText()
	if e != nil {
		writeError(w, e)
		return
	}
	p, e := req.params(s.opts.Defaults, req.MaxTokens, "max_tokens")
	if e != nil {
		writeError(w, e)
		return
	}
	if req.Logprobs != nil {
		p.Logprobs, p.TopLogprobs = true, *req.Logprobs
	}
	b := s.backend(w)
	if b == nil {
		return
	}
	prompt, err := b.tok.TokenizeErr(text, b.tok.AddBOSDefault() && !s.opts.NoBOS, true)
	if err != nil {
		writeError(w, badRequest("prompt", "%v", err))
		return
	}
	s.generate(w, r, b, prompt, p, &req.samplingFields, false, "prompt")
}

// generate runs prompt and writes the answer as one JSON object or, with
// stream, as server-sent events ending with "data: [DONE]".
func (s *Server) generate(w http.ResponseWriter, r *http.Request, b *backend, prompt []int, p Params, f *samplingFields, isChat bool, promptParam string) {
	start := time.Now()
	ctxLen := b.eng.Ctx()
	if len(prompt) == 0 {
		writeError(w, badRequest(promptParam, "the prompt is empty"))
		return
	}
	if len(prompt) >= ctxLen {
		writeError(w, badRequest(promptParam, "the prompt has %d tokens but the context holds %d (one more is needed for the answer; raise --ctx)", len(prompt), ctxLen))
		return
	}
	job, err := b.eng.Submit(r.Context(), prompt, p)
	switch {
	case errors.Is(err, ErrQueueFull):
		w.Header().Set("Retry-After", "1")
		writeError(w, &apiError{Status: http.StatusTooManyRequests, Message: fmt.Sprintf("the server is busy: %d requests are running and the queue is full; retry later", b.eng.cfg.Parallel)})
		return
	case errors.Is(err, ErrClosed):
		writeError(w, &apiError{Status: http.StatusServiceUnavailable, Message: "the server is shutting down"})
		return
	case err != nil:
		writeError(w, badRequest(promptParam, "%v", err))
		return
	}
	defer func() { s.m.dur.Observe(time.Since(start).Seconds()) }()
	id := newID(isChat)
	resp := &responder{s: s, w: w, b: b, id: id, isChat: isChat, created: time.Now().Unix(), logprobs: p.Logprobs}
	if f.Stream {
		resp.stream(r.Context(), job, f.StreamOptions != nil && f.StreamOptions.IncludeUsage)
	} else {
		resp.whole(r.Context(), job)
	}
}

func newID(isChat bool) string {
	var b [12]byte
	rand.Read(b[:])
	if isChat {
		return "chatcmpl-" + hex.EncodeToString(b[:])
	}
	return "cmpl-" + hex.EncodeToString(b[:])
}

// responder writes one request's answer.
type responder struct {
	s        *Server
	w        http.ResponseWriter
	b        *backend
	id       string
	isChat   bool
	created  int64
	logprobs bool
	offset   int // completion logprobs: text offset of the next token
}

func (r *responder) modelName() string { return r.s.opts.ModelName }

func usage(ev Event) map[string]int {
	return map[string]int{"prompt_tokens": ev.Prompt, "completion_tokens": ev.Tokens, "total_tokens": ev.Prompt + ev.Tokens}
}

func failure(ev Event) *apiError {
	msg := "internal server error"
	if ev.Err != nil && !ev.Panicked {
		msg = ev.Err.Error()
	}
	if errors.Is(ev.Err, ErrClosed) {
		return &apiError{Status: http.StatusServiceUnavailable, Message: msg}
	}
	return &apiError{Status: http.StatusInternalServerError, Message: msg}
}

// tokenText is how a token reads in logprobs.
func (r *responder) tokenText(id int) string { return r.b.tok.Decode([]int{id}) }

func (r *responder) chatLogprob(lp *TokenLogprob) map[string]any {
	entry := func(id int, v float32) map[string]any {
		t := r.tokenText(id)
		return map[string]any{"token": t, "logprob": v, "bytes": []byte(t)}
	}
	e := entry(lp.Token, lp.Logprob)
	top := make([]map[string]any, 0, len(lp.Top))
	for _, t := range lp.Top {
		top = append(top, entry(t.Token, t.Logprob))
	}
	e["top_logprobs"] = top
	return e
}

// completionLogprobs is the legacy completions logprobs object.
type completionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float32            `json:"token_logprobs"`
	TopLogprobs   []map[string]float32 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

func (r *responder) addCompletionLogprob(c *completionLogprobs, lp *TokenLogprob) {
	t := r.tokenText(lp.Token)
	c.Tokens = append(c.Tokens, t)
	c.TokenLogprobs = append(c.TokenLogprobs, lp.Logprob)
	top := map[string]float32{}
	for _, x := range lp.Top {
		top[r.tokenText(x.Token)] = x.Logprob
	}
	c.TopLogprobs = append(c.TopLogprobs, top)
	c.TextOffset = append(c.TextOffset, r.offset)
	r.offset += len(t)
}

// whole collects the answer and writes it as one object.
func (r *responder) whole(ctx context.Context, job *Job) {
	var text strings.Builder
	var chatLP []map[string]any
	var compLP completionLogprobs
	for {
		evs, err := job.Recv(ctx)
		if err != nil {
			return // the client left; the engine cancels the job
		}
		for _, ev := range evs {
			if ev.Logprob != nil {
				if r.isChat {
					chatLP = append(chatLP, r.chatLogprob(ev.Logprob))
				} else {
					r.addCompletionLogprob(&compLP, ev.Logprob)
				}
			}
			text.WriteString(ev.Text)
			if !ev.Done {
				continue
			}
			if ev.Err != nil {
				writeError(r.w, failure(ev))
				return
			}
			choice := map[string]any{"index": 0, "finish_reason": ev.Finish, "logprobs": nil}
			obj := map[string]any{"id": r.id, "created": r.created, "model": r.modelName(), "usage": usage(ev),
				"system_fingerprint": "armor"}
			if r.isChat {
				obj["object"] = "chat.completion"
				choice["message"] = map[string]any{"role": "assistant", "content": text.String()}
				if r.logprobs {
					if chatLP == nil {
						chatLP = []map[string]any{}
					}
					choice["logprobs"] = map[string]any{"content": chatLP}
				}
			} else {
				obj["object"] = "text_completion"
				choice["text"] = text.String()
				if r.logprobs {
					choice["logprobs"] = compLP
				}
			}
			obj["choices"] = []any{choice}
			writeJSON(r.w, http.StatusOK, obj)
			return
		}
	}
}

// stream writes the answer as server-sent events as tokens come.
func (r *responder) stream(ctx context.Context, job *Job, includeUsage bool) {
	h := r.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	r.w.WriteHeader(http.StatusOK)
	flusher, _ := r.w.(http.Flusher)
	send := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(r.w, "data: %s\n\n", b); err != nil {
			return err
		}
		return nil
	}
	chunk := func(delta map[string]any, text string, finish any, lp any) map[string]any {
		choice := map[string]any{"index": 0, "finish_reason": finish, "logprobs": lp}
		obj := map[string]any{"id": r.id, "created": r.created, "model": r.modelName(), "system_fingerprint": "armor"}
		if r.isChat {
			obj["object"] = "chat.completion.chunk"
			choice["delta"] = delta
		} else {
			obj["object"] = "text_completion"
			choice["text"] = text
		}
		obj["choices"] = []any{choice}
		return obj
	}
	if r.isChat {
		if send(chunk(map[string]any{"role": "assistant", "content": ""}, "", nil, nil)) != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
	for {
		evs, err := job.Recv(ctx)
		if err != nil {
			return
		}
		for _, ev := range evs {
			if ev.Done {
				if ev.Err != nil {
					// Headers are sent: report the failure as an event,
					// as OpenAI's streams do, and end without [DONE].
					e := failure(ev)
					send(map[string]any{"error": e})
					if flusher != nil {
						flusher.Flush()
					}
					return
				}
				var fin map[string]any
				if r.isChat {
					fin = chunk(map[string]any{}, "", ev.Finish, nil)
				} else {
					fin = chunk(nil, "", ev.Finish, nil)
				}
				if send(fin) != nil {
					return
				}
				if includeUsage {
					u := map[string]any{"id": r.id, "created": r.created, "model": r.modelName(), "choices": []any{}, "usage": usage(ev),
						"object": map[bool]string{true: "chat.completion.chunk", false: "text_completion"}[r.isChat]}
					if send(u) != nil {
						return
					}
				}
				io.WriteString(r.w, "data: [DONE]\n\n")
				if flusher != nil {
					flusher.Flush()
				}
				return
			}
			if ev.Text == "" && ev.Logprob == nil {
				continue
			}
			var lp any
			if ev.Logprob != nil {
				if r.isChat {
					lp = map[string]any{"content": []any{r.chatLogprob(ev.Logprob)}}
				} else {
					var c completionLogprobs
					r.addCompletionLogprob(&c, ev.Logprob)
					lp = c
				}
			}
			if send(chunk(map[string]any{"content": ev.Text}, ev.Text, nil, lp)) != nil {
				return
			}
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}
