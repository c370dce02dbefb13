package bench

import (
	"context"
	"fmt"
	"io"
	"net"
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

// A server that closes a kept-alive connection instead of answering the
// next request on it (as llama-server's HTTP library does after a few
// requests) costs a resend on a new connection, not the row.
func TestServeLoadResendsOnClosedConnection(t *testing.T) {
	type connKey struct{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n := r.Context().Value(connKey{}).(*int) // requests on this connection
		*n++
		if *n > 1 {
			c, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			c.Close()
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"text\":\"a\"}]}\n\n")
		fmt.Fprint(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n")
	}))
	srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, new(int))
	}
	srv.Start()
	defer srv.Close()
	mix := []ServeRequest{{PromptChars: 4, MaxTokens: 1}, {PromptChars: 4, MaxTokens: 1}, {PromptChars: 4, MaxTokens: 1}}
	r, err := RunServeLoad(context.Background(), srv.URL, "m", 1, mix, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 3 || r.GenTokens != 3 {
		t.Errorf("requests %d, tokens %d: want 3, 3", r.Requests, r.GenTokens)
	}
}
