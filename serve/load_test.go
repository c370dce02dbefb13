package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoad runs 32 clients for 30 s (3 s with -short; ARMOR_SERVE_LOAD
// sets another duration) against one server: chat and completions,
// streamed and not, with random cancellations and malformed requests mixed
// in. Nothing may crash, every completed response must parse, and
// afterwards no goroutine, slot or memory may be left behind.
func TestLoad(t *testing.T) {
	dur := 30 * time.Second
	if testing.Short() {
		dur = 3 * time.Second
	}
	if s := os.Getenv("ARMOR_SERVE_LOAD"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("ARMOR_SERVE_LOAD=%q: %v", s, err)
		}
		dur = d
	}
	ts := startTiny(t, EngineConfig{Parallel: 8, Queue: 16, Chunk: 32}, Options{MaxBody: 1 << 16})
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: tr}
	// Warm up, then take the baseline.
	if resp, err := client.Post(ts.URL+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"t300","max_tokens":2}`)); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	tr.CloseIdleConnections()
	goruntime.GC()
	var before goruntime.MemStats
	goruntime.ReadMemStats(&before)
	g0 := goruntime.NumGoroutine()

	var ok, cancelled, rejected, busy, failed atomic.Int64
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for c := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 99))
			for time.Now().Before(deadline) {
				loadRequest(t, client, ts.URL, rng, &ok, &cancelled, &rejected, &busy, &failed)
			}
		}()
	}
	wg.Wait()
	t.Logf("%s: %d complete answers, %d cancelled, %d malformed requests rejected, %d answered 429", dur, ok.Load(), cancelled.Load(), rejected.Load(), busy.Load())
	if failed.Load() > 0 {
		t.Errorf("%d requests failed", failed.Load())
	}
	if ok.Load() == 0 || rejected.Load() == 0 || cancelled.Load() == 0 {
		t.Errorf("the mix did not happen: %d ok, %d rejected, %d cancelled", ok.Load(), rejected.Load(), cancelled.Load())
	}
	tr.CloseIdleConnections()
	waitFor(t, "every slot and the queue to empty", func() bool { return ts.eng.Active() == 0 && ts.eng.Queued() == 0 })
	waitFor(t, "goroutines to end", func() bool {
		tr.CloseIdleConnections()
		return goruntime.NumGoroutine() <= g0
	})
	goruntime.GC()
	var after goruntime.MemStats
	goruntime.ReadMemStats(&after)
	t.Logf("goroutines %d → %d, heap %.1f → %.1f MiB", g0, goruntime.NumGoroutine(), float64(before.HeapAlloc)/(1<<20), float64(after.HeapAlloc)/(1<<20))
	if after.HeapAlloc > before.HeapAlloc+16<<20 {
		t.Errorf("heap grew from %d to %d bytes", before.HeapAlloc, after.HeapAlloc)
	}
	// The server still answers.
	resp, b := ts.post(t, "/v1/completions", map[string]any{"prompt": "t300", "max_tokens": 3})
	if resp.StatusCode != 200 {
		t.Errorf("after the load: %d %s", resp.StatusCode, b)
	}
}

func loadRequest(t *testing.T, client *http.Client, url string, rng *rand.Rand, ok, cancelled, rejected, busy, failed *atomic.Int64) {
	kind := rng.IntN(10)
	stream := rng.IntN(2) == 0
	var body []byte
	path := "/v1/chat/completions"
	switch {
	case kind == 0: // malformed
		path = []string{"/v1/chat/completions", "/v1/completions"}[rng.IntN(2)]
		body = []byte([]string{`{"messages":`, `{"messages":[],"n":2}`, `{"prompt":5}`, `{"prompt":"x","temperature":9}`,
			`{"messages":[{"role":"user","content":"x"}],"tools":[{}]}`, `{"prompt":"` + strings.Repeat("x", 70000) + `"}`}[rng.IntN(6)])
	case kind < 5:
		body, _ = json.Marshal(map[string]any{"messages": []map[string]any{{"role": "user", "content": strings.Repeat("t301 ", 1+rng.IntN(20))}},
			"max_tokens": 1 + rng.IntN(40), "stream": stream, "seed": rng.IntN(100), "logprobs": rng.IntN(3) == 0})
	default:
		path = "/v1/completions"
		body, _ = json.Marshal(map[string]any{"prompt": strings.Repeat("t302 ", 1+rng.IntN(30)), "max_tokens": 1 + rng.IntN(40),
			"stream": stream, "stop": []string{"t31"}, "temperature": rng.Float64()})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cancelAfter := time.Duration(0)
	if kind == 9 {
		cancelAfter = time.Duration(rng.IntN(20)) * time.Millisecond
		time.AfterFunc(cancelAfter, cancel)
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", url+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			cancelled.Add(1)
			return
		}
		t.Errorf("%s: %v", path, err)
		failed.Add(1)
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			cancelled.Add(1)
			return
		}
		t.Errorf("%s: reading: %v", path, err)
		failed.Add(1)
		return
	}
	switch {
	case kind == 0:
		var e struct{ Error struct{ Message string } }
		if (resp.StatusCode != 400 && resp.StatusCode != 413) || json.Unmarshal(data, &e) != nil || e.Error.Message == "" {
			t.Errorf("malformed %s: %d %s", body[:min(len(body), 80)], resp.StatusCode, data[:min(len(data), 200)])
			failed.Add(1)
			return
		}
		rejected.Add(1)
	case resp.StatusCode == 429:
		busy.Add(1)
	case resp.StatusCode != 200:
		t.Errorf("%s: %d %s", path, resp.StatusCode, data)
		failed.Add(1)
	case stream:
		evs, done := sseEvents(t, bytes.NewReader(data))
		if !done || len(evs) == 0 {
			if ctx.Err() != nil {
				cancelled.Add(1)
				return
			}
			t.Errorf("stream without [DONE]: %s", data)
			failed.Add(1)
			return
		}
		ok.Add(1)
	default:
		var c completionResp
		if err := json.Unmarshal(data, &c); err != nil || len(c.Choices) != 1 || c.Choices[0].FinishReason == "" {
			t.Errorf("answer does not parse: %v %s", err, data)
			failed.Add(1)
			return
		}
		ok.Add(1)
	}
}
