package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A server that stops sending, before its headers or mid-stream, fails the
// load with an error naming it within the stall limit instead of hanging
// the benchmark.
func TestServeLoadStall(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	for _, midStream := range []bool{false, true} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// With the body read, the server notices the client hanging up.
			io.Copy(io.Discard, r.Body)
			if midStream {
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprint(w, "data: {\"choices\":[{\"text\":\"a\"}]}\n\n")
				w.(http.Flusher).Flush()
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		start := time.Now()
		_, err := RunServeLoad(context.Background(), srv.URL, "m", 2, []ServeRequest{{PromptChars: 4, MaxTokens: 4}}, 200*time.Millisecond)
		took := time.Since(start)
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), "sent nothing for 200ms") || !strings.Contains(err.Error(), srv.URL) {
			t.Errorf("mid-stream %v: err = %v, want the stall named", midStream, err)
		}
		if took > 5*time.Second {
			t.Errorf("mid-stream %v: took %v to give up", midStream, took)
		}
	}
}

// A server that answers in full within the limit is measured as usual.
func TestServeLoadCompletes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for range 3 {
			fmt.Fprint(w, "data: {\"choices\":[{\"text\":\"a\"}]}\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
		}
		fmt.Fprint(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n")
	}))
	defer srv.Close()
	r, err := RunServeLoad(context.Background(), srv.URL, "m", 2, []ServeRequest{{PromptChars: 4, MaxTokens: 3}}, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 2 || r.GenTokens != 6 || r.PromptTokens != 8 {
		t.Errorf("requests %d, tokens %d, prompt %d: want 2, 6, 8", r.Requests, r.GenTokens, r.PromptTokens)
	}
}
