package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/armor-llm/armor/internal/testdata"
	"github.com/armor-llm/armor/model/chat"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
	"github.com/armor-llm/armor/runtime"
)

var testDir string

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "armor-serve-test")
	if err != nil {
		panic(err)
	}
	testDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

type testServer struct {
	*httptest.Server
	srv *Server
	eng *Engine
	ld  *runtime.Loaded
}

// tinyModel writes a small synthetic llama GGUF (random weights, a
// placeholder vocabulary) once per test binary.
var tinyModel = sync.OnceValues(func() (string, error) {
	c := synth.TinyGGUFConfigs()["tiny-llama"]
	c.Context = 256
	path := filepath.Join(testDir, "tiny-llama.gguf")
	return path, synth.WriteGGUF(path, c, tensor.F32, 11)
})

func start(t testing.TB, path string, cfg EngineConfig, o Options) *testServer {
	t.Helper()
	ld, err := runtime.Open(path, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Ctx == 0 {
		cfg.Ctx = ld.Tr.Config.Context
	}
	eng, err := NewEngine(ld.Tr, ld.Tok, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if o.ModelName == "" {
		o.ModelName = "tiny"
	}
	srv := NewServer(o)
	tmpl, err := chat.Builtin("plain")
	if err != nil {
		t.Fatal(err)
	}
	srv.Ready(eng, ld.Tok, tmpl)
	ts := &testServer{Server: httptest.NewServer(srv.Handler()), srv: srv, eng: eng, ld: ld}
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := eng.Close(ctx); err != nil {
			t.Errorf("engine close: %v", err)
		}
		ld.Close()
	})
	return ts
}

func startTiny(t testing.TB, cfg EngineConfig, o Options) *testServer {
	t.Helper()
	path, err := tinyModel()
	if err != nil {
		t.Fatal(err)
	}
	return start(t, path, cfg, o)
}

func (ts *testServer) post(t testing.TB, path string, body any) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case string:
		r = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	resp, err := http.Post(ts.URL+path, "application/json", r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

type completionResp struct {
	Object  string `json:"object"`
	Choices []struct {
		Text    string `json:"text"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		FinishReason string          `json:"finish_reason"`
		Logprobs     json.RawMessage `json:"logprobs"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

func decodeResp(t testing.TB, b []byte) completionResp {
	t.Helper()
	var c completionResp
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("response does not parse: %v\n%s", err, b)
	}
	if len(c.Choices) != 1 {
		t.Fatalf("%d choices: %s", len(c.Choices), b)
	}
	return c
}

// TestBatchedEqualsAlone is the test that batching is right: greedy
// answers are the same token for token whether a request runs alone or
// beside three others of different lengths, and equal armor-run's
// (runtime.Session.Generate with temperature 0).
func TestBatchedEqualsAlone(t *testing.T) {
	for _, name := range []string{"synthetic", "stories260K"} {
		t.Run(name, func(t *testing.T) {
			var ts *testServer
			if name == "synthetic" {
				ts = startTiny(t, EngineConfig{Parallel: 4, Chunk: 8, Queue: 8}, Options{})
			} else {
				ts = start(t, testdata.File(t, "models/stories260K.gguf"), EngineConfig{Parallel: 4, Chunk: 16, Queue: 8, Ctx: 256}, Options{})
			}
			prompts := []string{"Once upon a time", "The cat", "t300 t301 t302 t303 t304 t305 t306 t307 t308 t309 t310 t311 t312 t313 t314 t315 t316 t317 t318 t319 t320 Lily and Tom went to the park to play with a big red ball", "A"}
			maxTok := []int{40, 25, 33, 60}
			req := func(i int) map[string]any {
				return map[string]any{"prompt": prompts[i], "max_tokens": maxTok[i], "temperature": 0}
			}
			alone := make([]completionResp, len(prompts))
			for i := range prompts {
				resp, b := ts.post(t, "/v1/completions", req(i))
				if resp.StatusCode != 200 {
					t.Fatalf("%d: %s", resp.StatusCode, b)
				}
				alone[i] = decodeResp(t, b)
			}
			// armor-run's path: one Session per prompt.
			for i, p := range prompts {
				sess, err := runtime.NewSession(ts.ld.Tr, ts.ld.Tok, 256, runtime.SamplerConfig{Temp: 0})
				if err != nil {
					t.Fatal(err)
				}
				res, err := sess.Generate(context.Background(), ts.ld.Tok.Encode(p, ts.ld.Tok.AddBOSDefault()), maxTok[i], nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				// The random synthetic model emits stray bytes, which JSON
				// carries as U+FFFD: compare what a client sees.
				want, _ := json.Marshal(res.Text)
				var wantText string
				json.Unmarshal(want, &wantText)
				if got := alone[i].Choices[0].Text; got != wantText {
					t.Errorf("prompt %d: server %q, armor-run %q", i, got, res.Text)
				}
			}
			for round := range 2 {
				var wg sync.WaitGroup
				batched := make([]completionResp, len(prompts))
				for i := range prompts {
					wg.Add(1)
					go func() {
						defer wg.Done()
						resp, b := ts.post(t, "/v1/completions", req(i))
						if resp.StatusCode != 200 {
							t.Errorf("%d: %s", resp.StatusCode, b)
							return
						}
						batched[i] = decodeResp(t, b)
					}()
				}
				wg.Wait()
				for i := range prompts {
					a, b := alone[i].Choices[0], batched[i].Choices[0]
					if a.Text != b.Text || a.FinishReason != b.FinishReason || alone[i].Usage != batched[i].Usage {
						t.Errorf("round %d, prompt %d: alone %q (%s, %+v), batched %q (%s, %+v)", round, i, a.Text, a.FinishReason, alone[i].Usage, b.Text, b.FinishReason, batched[i].Usage)
					}
				}
			}
			t.Logf("4 greedy answers (%d..%d tokens) equal alone, batched and armor-run's", alone[1].Usage.CompletionTokens, alone[3].Usage.CompletionTokens)
		})
	}
}

func TestEndpoints(t *testing.T) {
	ts := startTiny(t, EngineConfig{Parallel: 2}, Options{})
	get := func(path string) (int, string) {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/health"); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("/health: %d %s", code, body)
	}
	if code, body := get("/v1/models"); code != 200 || !strings.Contains(body, `"id":"tiny"`) || !strings.Contains(body, `"object":"list"`) {
		t.Errorf("/v1/models: %d %s", code, body)
	}
	resp, b := ts.post(t, "/tokenize", map[string]any{"content": "t300 t301", "add_special": true})
	var tk struct{ Tokens []int }
	if resp.StatusCode != 200 || json.Unmarshal(b, &tk) != nil || len(tk.Tokens) < 2 || tk.Tokens[0] != 1 {
		t.Fatalf("/tokenize: %d %s", resp.StatusCode, b)
	}
	resp, b = ts.post(t, "/detokenize", map[string]any{"tokens": tk.Tokens[1:]})
	// The placeholder vocabulary spells this text in byte tokens, which
	// decode to SentencePiece's "▁" for spaces.
	if resp.StatusCode != 200 || !strings.Contains(strings.ReplaceAll(string(b), "▁", " "), `"content":" t300 t301"`) {
		t.Errorf("/detokenize: %d %s", resp.StatusCode, b)
	}
	// Chat with every supported field.
	resp, b = ts.post(t, "/v1/chat/completions", map[string]any{
		"model": "tiny", "messages": []map[string]any{{"role": "system", "content": "t5"}, {"role": "user", "content": []map[string]string{{"type": "text", "text": "t300 t301"}}}},
		"max_completion_tokens": 5, "temperature": 0.7, "top_p": 0.9, "seed": 42, "stop": []string{"t7777"}, "presence_penalty": 0.5,
		"frequency_penalty": 0.5, "logprobs": true, "top_logprobs": 3})
	if resp.StatusCode != 200 {
		t.Fatalf("chat: %d %s", resp.StatusCode, b)
	}
	c := decodeResp(t, b)
	if c.Object != "chat.completion" || c.Choices[0].Message.Role != "assistant" || c.Usage.TotalTokens != c.Usage.PromptTokens+c.Usage.CompletionTokens {
		t.Errorf("chat: %s", b)
	}
	var lp struct {
		Content []struct {
			Token       string
			Logprob     float64
			TopLogprobs []struct{ Logprob float64 } `json:"top_logprobs"`
		}
	}
	if err := json.Unmarshal(c.Choices[0].Logprobs, &lp); err != nil || len(lp.Content) != c.Usage.CompletionTokens {
		t.Errorf("chat logprobs: %v %s", err, c.Choices[0].Logprobs)
	}
	for _, e := range lp.Content {
		if e.Logprob > 0 || len(e.TopLogprobs) != 3 || e.TopLogprobs[0].Logprob < e.TopLogprobs[2].Logprob {
			t.Errorf("bad logprob entry %+v", e)
		}
	}
	// The same seed gives the same answer.
	resp2, b2 := ts.post(t, "/v1/chat/completions", map[string]any{
		"model": "tiny", "messages": []map[string]any{{"role": "system", "content": "t5"}, {"role": "user", "content": []map[string]string{{"type": "text", "text": "t300 t301"}}}},
		"max_completion_tokens": 5, "temperature": 0.7, "top_p": 0.9, "seed": 42, "stop": []string{"t7777"}, "presence_penalty": 0.5,
		"frequency_penalty": 0.5, "logprobs": true, "top_logprobs": 3})
	if resp2.StatusCode != 200 || decodeResp(t, b2).Choices[0].Message.Content != c.Choices[0].Message.Content {
		t.Errorf("same seed, different answers:\n%s\n%s", b, b2)
	}
	// Completions with logprobs and a length finish.
	resp, b = ts.post(t, "/v1/completions", map[string]any{"prompt": []string{"t300"}, "max_tokens": 4, "logprobs": 2, "temperature": 0})
	if resp.StatusCode != 200 {
		t.Fatalf("completions: %d %s", resp.StatusCode, b)
	}
	c = decodeResp(t, b)
	if c.Object != "text_completion" || c.Usage.CompletionTokens > 4 || (c.Usage.CompletionTokens == 4) != (c.Choices[0].FinishReason == "length") {
		t.Errorf("completions: %s", b)
	}
	// A stop string cuts the text and finishes with "stop".
	full := c.Choices[0].Text
	if i := strings.Index(strings.TrimSpace(full), " "); i > 0 {
		stop := strings.TrimSpace(full)[i:]
		resp, b = ts.post(t, "/v1/completions", map[string]any{"prompt": "t300", "max_tokens": 4, "temperature": 0, "stop": stop})
		c = decodeResp(t, b)
		if resp.StatusCode != 200 || c.Choices[0].FinishReason != "stop" || strings.Contains(c.Choices[0].Text, stop) {
			t.Errorf("stop %q: %s", stop, b)
		}
	}
	code, body := get("/metrics")
	for _, m := range []string{"armor_requests_total", "armor_prompt_tokens_total", "armor_generated_tokens_total", "armor_queue_depth",
		"armor_active_sequences", "armor_time_to_first_token_seconds_bucket", "armor_inter_token_seconds_bucket",
		`armor_step_seconds_bucket{kind="decode"`, `armor_step_seconds_bucket{kind="mixed"`, `armor_step_tokens_total{kind="mixed"}`} {
		if code != 200 || !strings.Contains(body, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	if !strings.Contains(body, `armor_requests_total{code="200",endpoint="/v1/completions"}`) {
		t.Errorf("/metrics does not count completions:\n%s", body)
	}
}

func TestHealthWhileLoading(t *testing.T) {
	srv := NewServer(Options{ModelName: "m"})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	for _, p := range []string{"/health", "/v1/completions"} {
		var resp *http.Response
		var err error
		if p == "/health" {
			resp, err = http.Get(ts.URL + p)
		} else {
			resp, err = http.Post(ts.URL+p, "application/json", strings.NewReader(`{"prompt":"x"}`))
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Errorf("%s while loading: %d, want 503", p, resp.StatusCode)
		}
	}
}

func TestErrors(t *testing.T) {
	ts := startTiny(t, EngineConfig{Parallel: 1, Ctx: 64}, Options{MaxBody: 4096})
	long := strings.Repeat("t300 ", 100)
	msgs := []map[string]any{{"role": "user", "content": "hi"}}
	for _, c := range []struct {
		path  string
		body  any
		code  int
		param string
		has   string
	}{
		{"/v1/chat/completions", map[string]any{"messages": msgs, "n": 2}, 400, "n", "n = 2"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "tools": []any{map[string]any{"type": "function"}}}, 400, "tools", "tools"},
		{"/v1/chat/completions", map[string]any{"messages": []map[string]any{{"role": "user", "content": []map[string]any{{"type": "image_url", "image_url": map[string]string{"url": "x"}}}}}}, 400, "messages[0].content[0].type", "image_url"},
		{"/v1/chat/completions", map[string]any{"messages": []any{}}, 400, "messages", "at least one"},
		{"/v1/chat/completions", map[string]any{"messages": []map[string]any{{"role": "wizard", "content": "x"}}}, 400, "messages[0].role", "wizard"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "temperature": 3}, 400, "temperature", "between 0 and 2"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "temperature": "hot"}, 400, "temperature", "temperature"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "top_p": 0}, 400, "top_p", "top_p"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "max_tokens": 0}, 400, "max_tokens", "at least 1"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "top_logprobs": 2}, 400, "top_logprobs", "logprobs: true"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "stop": 5}, 400, "stop", "stop"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "presence_penalty": -3}, 400, "presence_penalty", "between -2 and 2"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "stream_options": map[string]any{"include_usage": true}}, 400, "stream_options", "stream"},
		{"/v1/chat/completions", `{"messages": [`, 400, "", "not valid JSON"},
		{"/v1/chat/completions", `{"messages": "hi"}`, 400, "messages", "messages"},
		{"/v1/completions", map[string]any{"prompt": long}, 400, "prompt", "context holds 64"},
		{"/v1/completions", map[string]any{"prompt": []int{1, 2}}, 400, "prompt", "token-id"},
		{"/v1/completions", map[string]any{"max_tokens": 3}, 400, "prompt", "missing"},
		{"/v1/completions", map[string]any{"prompt": "x", "echo": true}, 400, "echo", "echo"},
		{"/v1/completions", map[string]any{"prompt": strings.Repeat("x", 5000)}, 413, "", "4096"},
		{"/detokenize", map[string]any{"tokens": []int{99999}}, 400, "tokens[0]", "out of range"},
		{"/v1/nothing", map[string]any{}, 404, "", "no endpoint"},
	} {
		resp, b := ts.post(t, c.path, c.body)
		var e struct {
			Error struct {
				Message, Type string
				Param         *string
			}
		}
		if resp.StatusCode != c.code || json.Unmarshal(b, &e) != nil || e.Error.Message == "" || !strings.Contains(e.Error.Message, c.has) {
			t.Errorf("%s %v: %d %s, want %d with %q", c.path, c.body, resp.StatusCode, b, c.code, c.has)
			continue
		}
		if c.param != "" && (e.Error.Param == nil || *e.Error.Param != c.param) {
			t.Errorf("%s %v: param %v, want %q", c.path, c.body, e.Error.Param, c.param)
		}
	}
	// The prompt-too-long message names both numbers.
	_, b := ts.post(t, "/v1/completions", map[string]any{"prompt": long})
	if !regexp.MustCompile(`has \d+ tokens but the context holds 64`).Match(b) {
		t.Errorf("prompt too long: %s", b)
	}
}

func TestAPIKey(t *testing.T) {
	ts := startTiny(t, EngineConfig{Parallel: 1}, Options{APIKey: "sekret"})
	do := func(path, key string) int {
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		path, key string
		want      int
	}{{"/health", "", 200}, {"/v1/models", "", 401}, {"/v1/models", "wrong", 401}, {"/v1/models", "sekre", 401},
		{"/metrics", "", 401}, {"/v1/models", "sekret", 200}, {"/metrics", "sekret", 200}} {
		if got := do(c.path, c.key); got != c.want {
			t.Errorf("%s with key %q: %d, want %d", c.path, c.key, got, c.want)
		}
	}
}

// sseEvents reads a stream's data lines until [DONE] or the end.
func sseEvents(t testing.TB, r io.Reader) (events []map[string]any, done bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			if line != "" {
				t.Errorf("unexpected SSE line %q", line)
			}
			continue
		}
		if data == "[DONE]" {
			return events, true
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Errorf("SSE data does not parse: %v: %s", err, data)
		}
		events = append(events, ev)
	}
	return events, false
}

func TestStreaming(t *testing.T) {
	ts := startTiny(t, EngineConfig{Parallel: 2}, Options{})
	body := map[string]any{"messages": []map[string]any{{"role": "user", "content": "t300"}}, "max_tokens": 12, "temperature": 0,
		"stream": true, "stream_options": map[string]any{"include_usage": true}}
	j, _ := json.Marshal(body)
	resp, err := http.Post(ts.URL+"/v1/chat/completions", "application/json", bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	evs, done := sseEvents(t, resp.Body)
	if !done {
		t.Fatal("stream did not end with [DONE]")
	}
	var text strings.Builder
	finish := ""
	for i, ev := range evs {
		if ev["object"] != "chat.completion.chunk" {
			t.Errorf("event %d: object %v", i, ev["object"])
		}
		ch := ev["choices"].([]any)
		if len(ch) == 0 {
			continue
		}
		c := ch[0].(map[string]any)
		if d, ok := c["delta"].(map[string]any); ok {
			if s, ok := d["content"].(string); ok {
				text.WriteString(s)
			}
			if i == 0 && d["role"] != "assistant" {
				t.Errorf("first chunk has no assistant role: %v", ev)
			}
		}
		if f, ok := c["finish_reason"].(string); ok {
			finish = f
		}
	}
	last := evs[len(evs)-1]
	u, _ := last["usage"].(map[string]any)
	if u == nil || len(last["choices"].([]any)) != 0 || finish == "" {
		t.Fatalf("last event has no usage or no finish: %v", last)
	}
	// The same request without streaming gives the same text.
	delete(body, "stream")
	delete(body, "stream_options")
	_, b := ts.post(t, "/v1/chat/completions", body)
	c := decodeResp(t, b)
	if c.Choices[0].Message.Content != text.String() || c.Choices[0].FinishReason != finish || float64(c.Usage.CompletionTokens) != u["completion_tokens"] {
		t.Errorf("stream %q (%s, %v) differs from whole %q (%s, %+v)", text.String(), finish, u, c.Choices[0].Message.Content, c.Choices[0].FinishReason, c.Usage)
	}
	// Completions stream too.
	j, _ = json.Marshal(map[string]any{"prompt": "t300", "max_tokens": 5, "stream": true})
	resp2, err := http.Post(ts.URL+"/v1/completions", "application/json", bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	evs, done = sseEvents(t, resp2.Body)
	if !done || len(evs) == 0 || evs[0]["object"] != "text_completion" {
		t.Errorf("completion stream: done %v, %v", done, evs)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestCancelFreesSlot(t *testing.T) {
	ts := startTiny(t, EngineConfig{Parallel: 1, Ctx: 256}, Options{})
	steps := make(chan struct{}, 1000)
	ts.eng.stepHook = func(*Job) { steps <- struct{}{}; time.Sleep(2 * time.Millisecond) }
	ctx, cancel := context.WithCancel(context.Background())
	j, _ := json.Marshal(map[string]any{"prompt": "t300", "max_tokens": 200, "stream": true, "stop": "never-said"})
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/completions", bytes.NewReader(j))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	<-steps
	if ts.eng.Active() != 1 {
		t.Fatalf("active %d, want 1", ts.eng.Active())
	}
	cancel()
	resp.Body.Close()
	waitFor(t, "the slot to be freed", func() bool { return ts.eng.Active() == 0 })
	n := len(steps)
	if n > 150 {
		t.Errorf("the cancelled sequence ran %d steps", n)
	}
	// The slot serves the next request.
	ts.eng.stepHook = nil
	r2, b := ts.post(t, "/v1/completions", map[string]any{"prompt": "t300", "max_tokens": 3})
	if r2.StatusCode != 200 {
		t.Errorf("after cancel: %d %s", r2.StatusCode, b)
	}
}

func TestQueueFull(t *testing.T) {
	ts := startTiny(t, EngineConfig{Parallel: 1, Queue: 0}, Options{})
	release := make(chan struct{})
	entered := make(chan struct{}, 100)
	ts.eng.stepHook = func(*Job) { entered <- struct{}{}; <-release }
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := ts.post(t, "/v1/completions", map[string]any{"prompt": "t300", "max_tokens": 2})
			codes[i] = resp.StatusCode
		}()
		if i == 0 {
			<-entered // the first holds the slot, blocked in the scheduler
		}
	}
	waitFor(t, "the second request to queue", func() bool { return ts.eng.Queued() == 1 })
	resp, b := ts.post(t, "/v1/completions", map[string]any{"prompt": "t300", "max_tokens": 2})
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "rate_limit") {
		t.Errorf("third request: %d %q %s, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	close(release)
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Errorf("the running and the queued request got %v", codes)
	}
}

func TestPanicIs500(t *testing.T) {
	ts := startTiny(t, EngineConfig{Parallel: 2}, Options{})
	ts.srv.panicHook = func(model string) {
		if model == "panic-handler" {
			panic("boom")
		}
	}
	ts.eng.stepHook = func(j *Job) {
		if j.p.MaxTokens == 77 {
			panic("boom in the scheduler")
		}
	}
	resp, b := ts.post(t, "/v1/completions", map[string]any{"model": "panic-handler", "prompt": "t300"})
	if resp.StatusCode != 500 || !strings.Contains(string(b), `"error"`) {
		t.Errorf("handler panic: %d %s", resp.StatusCode, b)
	}
	resp, b = ts.post(t, "/v1/completions", map[string]any{"prompt": "t300", "max_tokens": 77})
	if resp.StatusCode != 500 || !strings.Contains(string(b), "internal server error") {
		t.Errorf("scheduler panic: %d %s", resp.StatusCode, b)
	}
	if ts.eng.Active() != 0 {
		t.Errorf("the failed sequence holds its slot")
	}
	resp, b = ts.post(t, "/v1/completions", map[string]any{"prompt": "t300", "max_tokens": 3})
	if resp.StatusCode != 200 {
		t.Errorf("after panics: %d %s", resp.StatusCode, b)
	}
}

func TestEngineCloseDrains(t *testing.T) {
	path, err := tinyModel()
	if err != nil {
		t.Fatal(err)
	}
	ld, err := runtime.Open(path, "", true)
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	eng, err := NewEngine(ld.Tr, ld.Tok, EngineConfig{Parallel: 1, Ctx: 128, Queue: 4})
	if err != nil {
		t.Fatal(err)
	}
	var jobs []*Job
	for range 3 {
		j, err := eng.Submit(context.Background(), []int{1, 300}, Params{MaxTokens: 5, Sampler: runtime.SamplerConfig{Temp: 0}})
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	if err := eng.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Submit(context.Background(), []int{1}, Params{MaxTokens: 1}); err != ErrClosed {
		t.Errorf("submit after close: %v", err)
	}
	for i, j := range jobs {
		var last Event
		for !last.Done {
			evs, err := j.Recv(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			last = evs[len(evs)-1]
		}
		if last.Err != nil || last.Finish == "" {
			t.Errorf("job %d: %+v", i, last)
		}
	}
}

// A prompt chunk shares its step with the decoding sequences without making
// the step longer than Chunk tokens in all (so the GEMM's token tiles stay
// whole), and keeps at least half of Chunk for the prompt.
func TestStepBudget(t *testing.T) {
	const chunk = 8
	ts := startTiny(t, EngineConfig{Parallel: 3, Chunk: chunk, Ctx: 256, Queue: 4}, Options{})
	var mu sync.Mutex
	type size struct{ decode, prompt int }
	var sizes []size
	ts.eng.stepSizes = func(d, p int) {
		mu.Lock()
		sizes = append(sizes, size{d, p})
		mu.Unlock()
	}
	// The engine stops at its first sampled token (a's) until the long
	// prompts are queued, so that a is still decoding when they run: on a
	// fast machine the tiny model used to finish a's 60 tokens before the
	// test read its first event, and the test then waited forever for an
	// end it had already consumed.
	gate := make(chan struct{})
	var sampled atomic.Bool
	ts.eng.stepHook = func(*Job) {
		if !sampled.Swap(true) {
			<-gate
		}
	}
	ctx := context.Background()
	p := Params{MaxTokens: 60, IgnoreEOS: true}
	a, err := ts.eng.Submit(ctx, ts.ld.Tok.Encode("t300 t301", false), p)
	if err != nil {
		t.Fatal(err)
	}
	var long []string
	for i := range 6 {
		long = append(long, fmt.Sprintf("t%d", 300+i))
	}
	prompt := ts.ld.Tok.Encode(strings.Join(long, " "), false)
	if len(prompt) < 3*chunk {
		t.Fatalf("prompt of %d tokens, want at least %d", len(prompt), 3*chunk)
	}
	var jobs []*Job
	for range 2 {
		j, err := ts.eng.Submit(ctx, prompt, Params{MaxTokens: 2, IgnoreEOS: true})
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	close(gate)
	for _, j := range append(jobs, a) {
		for done := false; !done; {
			evs, err := j.Recv(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				done = done || e.Done
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	full := 0
	for _, s := range sizes {
		if s.prompt == 0 {
			continue
		}
		if s.decode+s.prompt > max(chunk, s.decode+(chunk+1)/2) {
			t.Errorf("step of %d decoding and %d prompt tokens: more than the chunk of %d", s.decode, s.prompt, chunk)
		}
		if s.decode > 0 && s.decode+s.prompt == chunk {
			full++
		}
	}
	if full == 0 {
		t.Errorf("no step filled the chunk beside decoding sequences: %v", sizes)
	}
}

// TestStepStats checks the scheduler's step accounting: one request of P
// prompt tokens and G answer tokens runs P tokens in steps with a prompt
// chunk and G−1 in decode steps (its last token is reported, never run),
// and a second reading minus the first is what ran in between.
func TestStepStats(t *testing.T) {
	const chunk = 4
	ts := startTiny(t, EngineConfig{Parallel: 2, Chunk: chunk, Ctx: 256, Queue: 4}, Options{})
	ctx := context.Background()
	run := func(prompt []int, g int) {
		j, err := ts.eng.Submit(ctx, prompt, Params{MaxTokens: g, IgnoreEOS: true})
		if err != nil {
			t.Fatal(err)
		}
		for done := false; !done; {
			ev, err := j.Recv(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ev {
				if e.Err != nil {
					t.Fatal(e.Err)
				}
				done = done || e.Done
			}
		}
	}
	prompt := ts.ld.Tok.Encode("t300 t301 t302 t303 t304 t305", false)
	if len(prompt) <= chunk {
		t.Fatalf("prompt of %d tokens: want more than one chunk of %d", len(prompt), chunk)
	}
	const g = 7
	run(prompt, g)
	s1 := ts.eng.StepStats()
	want := StepStats{DecodeSteps: g - 1, MixedSteps: (len(prompt) + chunk - 1) / chunk, DecodeTokens: g - 1, MixedTokens: len(prompt)}
	got := s1
	got.DecodeSeconds, got.MixedSeconds = 0, 0
	if got != want {
		t.Errorf("after one request: %+v, want %+v", s1, want)
	}
	if s1.DecodeSeconds <= 0 || s1.MixedSeconds <= 0 {
		t.Errorf("after one request: %+v, want time in both kinds", s1)
	}
	// The second request reuses the cached prefix it shares with the
	// first, so only the rest of its prompt runs.
	prompt2 := ts.ld.Tok.Encode("t300 t301 t310 t311", false)
	shared := 0
	for shared < len(prompt2)-1 && prompt2[shared] == prompt[shared] {
		shared++
	}
	if shared == 0 {
		t.Fatal("the two prompts share no first token: the test needs a reused prefix")
	}
	run(prompt2, 3)
	d := ts.eng.StepStats().Sub(s1)
	rest := len(prompt2) - shared
	if d.DecodeTokens != 2 || d.MixedTokens != rest || d.DecodeSteps != 2 || d.MixedSteps != (rest+chunk-1)/chunk {
		t.Errorf("second request: %+v, want 2 decode steps of 1 token and %d prompt tokens (%d of %d cached)", d, rest, shared, len(prompt2))
	}
}
