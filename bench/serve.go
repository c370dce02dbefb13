package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// ServeRequest is one request of the serving benchmark's fixed mix.
type ServeRequest struct {
	PromptChars int // ASCII letters, about one token each with a byte-level fallback vocabulary
	MaxTokens   int
}

// ServeMix is the fixed mix of prompt and answer lengths every client runs
// through (starting at a different request each), scaled by gen.
func ServeMix(gen float64) []ServeRequest {
	base := []ServeRequest{{32, 64}, {128, 32}, {64, 96}, {256, 48}}
	for i := range base {
		base[i].MaxTokens = max(1, int(float64(base[i].MaxTokens)*gen))
	}
	return base
}

// ServeResult is one server's measurement at one number of clients.
type ServeResult struct {
	Model    string `json:"model"`
	Variant  string `json:"variant"` // dense, armor, llama.cpp
	Server   string `json:"server"`  // armor-serve or llama-server
	Shape    string `json:"shape,omitempty"`
	Clients  int    `json:"clients"`
	Parallel int    `json:"parallel"`
	Threads  int    `json:"threads"`
	KVType   string `json:"kv_type"`

	Requests     int     `json:"requests"`
	PromptTokens int     `json:"prompt_tokens"`
	GenTokens    int     `json:"gen_tokens"`
	Seconds      float64 `json:"seconds"`
	AggregateTPS float64 `json:"aggregate_tps"` // generated tokens of all clients ÷ wall time
	TTFTP50Ms    float64 `json:"ttft_p50_ms"`
	TTFTP99Ms    float64 `json:"ttft_p99_ms"`
	ITLP50Ms     float64 `json:"itl_p50_ms"` // time between streamed tokens
	ITLP99Ms     float64 `json:"itl_p99_ms"`

	// Where armor-serve's scheduler spent the run (not for llama-server):
	// steps that ran only decoding tokens, and steps with a prompt chunk.
	DecodeSteps       int     `json:"decode_steps,omitempty"`
	DecodeStepSeconds float64 `json:"decode_step_seconds,omitempty"`
	DecodeStepTokens  int     `json:"decode_step_tokens,omitempty"`
	MixedSteps        int     `json:"mixed_steps,omitempty"`
	MixedStepSeconds  float64 `json:"mixed_step_seconds,omitempty"`
	MixedStepTokens   int     `json:"mixed_step_tokens,omitempty"`

	ScalingVsOneClient float64 `json:"scaling_vs_one_client,omitempty"` // AggregateTPS ÷ the same server's at 1 client
	VsDense            float64 `json:"vs_dense,omitempty"`              // AggregateTPS ÷ dense armor-serve's at the same clients
	Load1              float64 `json:"load1"`                           // the machine's 1-minute load average at the start
	CPU                string  `json:"cpu"`
	Error              string  `json:"error,omitempty"`
}

// RunServeLoad runs clients concurrent clients against an OpenAI-compatible
// server at base (e.g. http://127.0.0.1:8080): each sends every request of
// mix once, in turn, as a streamed /v1/completions at temperature 0 with
// ignore_eos (so answers have their full length on random-weight models),
// and the time to each streamed token is recorded. A request that receives
// nothing for stall (a server that died or hangs) fails with an error
// saying so instead of waiting for ever; 0 means no limit.
func RunServeLoad(ctx context.Context, base, model string, clients int, mix []ServeRequest, stall time.Duration) (ServeResult, error) {
	r := ServeResult{Clients: clients, Load1: LoadAverage(), CPU: CPUName()}
	type reqStats struct {
		ttft    time.Duration
		gaps    []time.Duration
		prompt  int
		tokens  int
		err     error
		chunks  int
		usageOK bool
	}
	var mu sync.Mutex
	var all []reqStats
	client := &http.Client{}
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range mix {
				q := mix[(c+k)%len(mix)]
				st := reqStats{}
				st.ttft, st.gaps, st.prompt, st.tokens, st.chunks, st.usageOK, st.err = streamOne(ctx, client, base, model, prompt(q.PromptChars, c, k), q.MaxTokens, stall)
				mu.Lock()
				all = append(all, st)
				mu.Unlock()
				if st.err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	r.Seconds = time.Since(start).Seconds()
	var ttft, gaps []float64
	for _, s := range all {
		if s.err != nil {
			return r, s.err
		}
		r.Requests++
		r.PromptTokens += s.prompt
		if !s.usageOK {
			s.tokens = s.chunks
		}
		r.GenTokens += s.tokens
		ttft = append(ttft, ms(s.ttft))
		for _, g := range s.gaps {
			gaps = append(gaps, ms(g))
		}
	}
	r.AggregateTPS = float64(r.GenTokens) / r.Seconds
	r.TTFTP50Ms, r.TTFTP99Ms = percentile(ttft, 0.5), percentile(ttft, 0.99)
	r.ITLP50Ms, r.ITLP99Ms = percentile(gaps, 0.5), percentile(gaps, 0.99)
	return r, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// percentile is the nearest-rank percentile of v (0 when empty).
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// prompt makes a prompt of n lowercase letters, different per client and
// request so no server can reuse another request's cache.
func prompt(n, client, k int) string {
	var b strings.Builder
	for i := range n {
		b.WriteByte(byte('a' + (i*7+client*3+k*5)%26))
	}
	return b.String()
}

// streamOne sends one streamed completion and times its tokens.
func streamOne(ctx context.Context, client *http.Client, base, model, text string, maxTokens int, stall time.Duration) (ttft time.Duration, gaps []time.Duration, promptToks, genToks, chunks int, usageOK bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	alive := func() {}
	if stall > 0 {
		stalled := fmt.Errorf("%s sent nothing for %v: the server stopped answering", base, stall)
		t := time.AfterFunc(stall, func() { cancel(stalled) })
		defer t.Stop()
		alive = func() { t.Reset(stall) }
	}
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = context.Cause(ctx)
		}
	}()
	body, _ := json.Marshal(map[string]any{"model": model, "prompt": text, "max_tokens": maxTokens, "stream": true, "temperature": 0,
		"ignore_eos": true, "stream_options": map[string]any{"include_usage": true}})
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/v1/completions", bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	// Let the transport resend the request when a kept-alive connection
	// turns out to be closed before anything was read: llama-server's HTTP
	// library closes connections after a few requests, and a POST that
	// races that close failed a whole 8-client row with "EOF". An empty
	// Idempotency-Key marks the request replayable and is not sent.
	req.Header["Idempotency-Key"] = []string{}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
		err = fmt.Errorf("%s: %s: %s", base, resp.Status, strings.TrimSpace(string(b)))
		return
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	last := t0
	for sc.Scan() {
		alive()
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			break
		}
		var ev struct {
			Choices []struct {
				Text string `json:"text"`
			} `json:"choices"`
			Usage *struct {
				PromptTokens     int `json:"prompt_tokens"`
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if json.Unmarshal([]byte(data), &ev) != nil {
			continue
		}
		now := time.Now()
		if len(ev.Choices) > 0 && ev.Choices[0].Text != "" {
			if chunks == 0 {
				ttft = now.Sub(t0)
			} else {
				gaps = append(gaps, now.Sub(last))
			}
			last = now
			chunks++
		}
		if ev.Usage != nil && ev.Usage.CompletionTokens > 0 {
			promptToks, genToks, usageOK = ev.Usage.PromptTokens, ev.Usage.CompletionTokens, true
		}
	}
	err = sc.Err()
	return
}

// LoadAverage is the 1-minute load average (Linux), or 0.
func LoadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	fmt.Sscan(string(b), &l)
	return l
}

// CompareServe fills each result's ratio to its own 1-client run and to
// dense armor-serve at the same number of clients.
func CompareServe(rs []ServeResult) {
	one := map[string]float64{}
	dense := map[int]float64{}
	for _, r := range rs {
		if r.Error != "" {
			continue
		}
		if r.Clients == 1 {
			one[r.Model+"|"+r.Server] = r.AggregateTPS
		}
		if r.Variant == "dense" && r.Server == "armor-serve" {
			if _, ok := dense[r.Clients]; !ok {
				dense[r.Clients] = r.AggregateTPS
			}
		}
	}
	for i := range rs {
		r := &rs[i]
		if r.Error != "" {
			continue
		}
		if o := one[r.Model+"|"+r.Server]; o > 0 {
			r.ScalingVsOneClient = r.AggregateTPS / o
		}
		if d := dense[r.Clients]; d > 0 {
			r.VsDense = r.AggregateTPS / d
		}
	}
}

// FormatServeTable prints serve results as an aligned text table.
func FormatServeTable(rs []ServeResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-30s %-9s %-12s %7s %8s %8s %10s %8s %8s %9s %9s %8s %8s %6s\n",
		"model", "variant", "server", "clients", "requests", "gen tok", "agg tok/s", "×1 cl.", "×dense", "TTFT p50", "TTFT p99", "ITL p50", "ITL p99", "load")
	for _, r := range rs {
		name := filepath.Base(r.Model)
		if len(name) > 30 {
			name = "…" + name[len(name)-29:]
		}
		if r.Error != "" {
			fmt.Fprintf(&b, "%-30s %-9s %-12s %7d  error: %s\n", name, r.Variant, r.Server, r.Clients, r.Error)
			continue
		}
		ratio := func(v float64) string {
			if v == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f×", v)
		}
		fmt.Fprintf(&b, "%-30s %-9s %-12s %7d %8d %8d %10.2f %8s %8s %7.1fms %7.1fms %6.1fms %6.1fms %6.2f\n",
			name, r.Variant, r.Server, r.Clients, r.Requests, r.GenTokens, r.AggregateTPS, ratio(r.ScalingVsOneClient), ratio(r.VsDense),
			r.TTFTP50Ms, r.TTFTP99Ms, r.ITLP50Ms, r.ITLP99Ms, r.Load1)
	}
	return b.String()
}
