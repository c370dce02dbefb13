package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/armor-llm/armor/convert"
	"github.com/armor-llm/armor/internal/testdata"
	"github.com/armor-llm/armor/model"
)

// The default block size fits the model: stories260K's smallest layers are
// 32 wide, so armor-fast without --block-size uses 32 and says so.
func TestDefaultBlockFits(t *testing.T) {
	src := testdata.File(t, "models/stories260K.gguf")
	calib := testdata.File(t, "text/tinystories_train_subset.txt")
	out := filepath.Join(t.TempDir(), "o.armor")
	code, stdout, errs := runCmd("-m", src, "-o", out, "--method", "armor-fast", "--iters", "1",
		"--calib", calib, "--calib-tokens", "512", "--calib-seq", "128", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "block size 32: the default 128 is larger than the smallest layer") {
		t.Errorf("stderr does not say which block size was chosen:\n%s", errs)
	}
	var rep convert.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Block != 32 || len(rep.Notes) != 1 {
		t.Errorf("report block %d, notes %q; want 32 and one note", rep.Block, rep.Notes)
	}
	m, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if l := m.Armor.Linears["blk.0.attn_q"]; l.Kind != "armor" || l.Block != 32 {
		t.Errorf("blk.0.attn_q stored as %+v, want armor with block 32", l)
	}
}

// Magnitude pruning needs no data.
func TestMagnitudeWithoutCalibration(t *testing.T) {
	src := testdata.File(t, "models/stories260K.gguf")
	out := filepath.Join(t.TempDir(), "o.armor")
	code, stdout, errs := runCmd("-m", src, "-o", out, "--method", "magnitude", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep convert.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.CalibTokens != 0 || len(rep.Layers) == 0 || rep.Layers[0].Kind != "sparse24" {
		t.Fatalf("report: %d calibration tokens, layers %v", rep.CalibTokens, rep.Layers)
	}
	m, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
}

// A --resume whose options differ from the checkpoints' says which, instead
// of silently converting everything again; one with the same options says
// how many layers it reuses.
func TestResumeSaysWhy(t *testing.T) {
	src := testdata.File(t, "models/stories260K.gguf")
	calib := testdata.File(t, "text/tinystories_train_subset.txt")
	dir := t.TempDir()
	out := filepath.Join(dir, "o.armor")
	parts := filepath.Join(dir, "parts")
	args := func(extra ...string) []string {
		return append([]string{"-m", src, "-o", out, "--parts", parts, "--calib", calib, "--calib-tokens", "512",
			"--calib-seq", "128", "--iters", "1", "--block-size", "8"}, extra...)
	}
	// A shard leaves its checkpoints in --parts, as an interrupted run does.
	stats := filepath.Join(dir, "stats")
	if code, _, errs := runCmd("-m", src, "--calib", calib, "--calib-tokens", "512", "--calib-seq", "128", "--calib-only", "--stats", stats); code != 0 {
		t.Fatalf("--calib-only: exit %d: %s", code, errs)
	}
	if code, _, errs := runCmd("-m", src, "--stats", stats, "--parts", parts, "--shard", "0/2", "--iters", "1", "--block-size", "8"); code != 0 {
		t.Fatalf("--shard: exit %d: %s", code, errs)
	}
	code, _, errs := runCmd(args("--resume", "--block-size", "4")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "made with other options") || !strings.Contains(errs, "--block-size 4 (the checkpoints have 8)") {
		t.Errorf("a --resume with another block size does not say why nothing was reused:\n%s", errs)
	}
	// Same options: the shard's half is reused.
	os.Remove(out)
	if code, _, errs := runCmd("-m", src, "--stats", stats, "--parts", parts, "--shard", "0/2", "--iters", "1", "--block-size", "8"); code != 0 {
		t.Fatalf("--shard: exit %d: %s", code, errs)
	}
	code, _, errs = runCmd(args("--resume", "--calib-seed", "1")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "--resume: reusing 18 of 35 layers") {
		t.Errorf("a --resume with the same options does not say what it reused:\n%s", errs)
	}
}

// lineWriter signals once something was written.
type lineWriter struct {
	mu   sync.Mutex
	buf  strings.Builder
	once sync.Once
	seen chan struct{}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	w.once.Do(func() { close(w.seen) })
	return len(p), nil
}

// SIGTERM stops a conversion with the shell's 128+15, leaving no output.
func TestSIGTERMExit143(t *testing.T) {
	src := testdata.File(t, "models/stories260K.gguf")
	calib := testdata.File(t, "text/tinystories_train_subset.txt")
	out := filepath.Join(t.TempDir(), "o.armor")
	errs := &lineWriter{seen: make(chan struct{})}
	done := make(chan int)
	go func() {
		done <- run([]string{"-m", src, "-o", out, "--method", "armor", "--iters", "1000000", "--block-size", "8",
			"--calib", calib, "--calib-tokens", "512", "--calib-seq", "128"}, &strings.Builder{}, errs)
	}()
	select {
	case <-errs.seen: // run's signal handler is installed before any output
	case code := <-done:
		t.Fatalf("finished with exit %d before it could be signalled: %s", code, errs.buf.String())
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 143 {
			t.Errorf("exit %d after SIGTERM, want 143", code)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("SIGTERM did not stop the conversion within 60 s")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output written after SIGTERM")
	}
}
