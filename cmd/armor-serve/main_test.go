package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
)

// The test binary runs armor-serve's main when this variable is set, so a
// test can start the command as a real process and signal it.
func TestMain(m *testing.M) {
	if os.Getenv("ARMOR_SERVE_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no model"},
		{[]string{"-m", "x", "--parallel", "0"}, "--parallel 0"},
		{[]string{"-m", "x", "--port", "70000"}, "--port 70000"},
		{[]string{"-m", "x", "--top-p", "0"}, "--top-p 0 is out of range: must be more than 0, at most 1"},
		{[]string{"-m", "x", "--temp", "NaN"}, "--temp NaN is out of range"},
		{[]string{"-m", "x", "--min-p", "1.5"}, "--min-p 1.5 is out of range"},
		{[]string{"-m", "x", "--chunk", "0"}, "--chunk 0 is out of range: must be at least 1"},
		{[]string{"-m", "x", "extra"}, `unexpected argument "extra"`},
	} {
		_, err := parse(c.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	o, err := parse([]string{"-m", "dir/model.gguf"}, io.Discard)
	if err != nil || o.host != "127.0.0.1" || o.parallel != 4 || o.alias != "model.gguf" {
		t.Errorf("defaults: %+v %v", o, err)
	}
	var help bytes.Buffer
	if code := run([]string{"-h"}, io.Discard, &help); code != 0 || !strings.Contains(help.String(), "--parallel") {
		t.Errorf("-h: %d %s", code, help.String())
	}
	if code := run([]string{"-m", filepath.Join(t.TempDir(), "missing.gguf"), "--port", "0"}, io.Discard, io.Discard); code != 1 {
		t.Errorf("missing model: exit %d, want 1", code)
	}
}

// TestSIGTERM starts the server, begins a streamed answer, sends SIGTERM:
// the answer completes, new connections are refused, and the exit code is 0.
func TestSIGTERM(t *testing.T) {
	c := synth.TinyGGUFConfigs()["tiny-llama"]
	c.Context = 8192
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := synth.WriteGGUF(path, c, tensor.F32, 1); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-m", path, "--port", "0", "--parallel", "2", "--threads", "1", "--ctx", "8192")
	cmd.Env = append(os.Environ(), "ARMOR_SERVE_TEST_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var addr string
	var log []string
	timeout := time.After(20 * time.Second)
	for addr == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("armor-serve ended:\n%s", strings.Join(log, "\n"))
			}
			log = append(log, l)
			if m := regexp.MustCompile(`ready: (http://\S+)`).FindStringSubmatch(l); m != nil {
				addr = m[1]
			}
		case <-timeout:
			t.Fatalf("armor-serve not ready:\n%s", strings.Join(log, "\n"))
		}
	}
	if !strings.HasPrefix(addr, "http://127.0.0.1:") {
		t.Errorf("bound to %s, want 127.0.0.1", addr)
	}
	body, _ := json.Marshal(map[string]any{"prompt": "t300", "max_tokens": 8000, "stream": true, "temperature": 0, "stop": "never"})
	resp, err := http.Post(addr+"/v1/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if _, err := r.ReadString('\n'); err != nil { // the first event: generation runs
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("stream broken by SIGTERM: %v", err)
	}
	if !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Errorf("the running answer did not finish: ...%q", rest[max(0, len(rest)-200):])
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("armor-serve did not exit after SIGTERM")
	}
	if _, err := http.Get(addr + "/health"); err == nil {
		t.Error("still accepting connections after exit")
	}
	for l := range lines {
		log = append(log, l)
	}
	all := strings.Join(log, "\n")
	// The answer was still running when the signal came.
	for _, want := range []string{"shutting down: no new requests; 1 running", "POST /v1/completions 200", "stopped"} {
		if !strings.Contains(all, want) {
			t.Errorf("log lacks %q:\n%s", want, all)
		}
	}
}
