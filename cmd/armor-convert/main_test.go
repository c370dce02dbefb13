package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/armor-llm/armor/convert"
	"github.com/armor-llm/armor/internal/testdata"
	"github.com/armor-llm/armor/model"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestHelp(t *testing.T) {
	code, _, errs := runCmd("--help")
	if code != 0 {
		t.Fatalf("--help exits %d", code)
	}
	for _, want := range []string{"armor-fast", "sparsegpt", "-calib", "-resume", "-block-size", "-sequential", "-json"} {
		if !strings.Contains(errs, want) {
			t.Errorf("--help does not mention %s", want)
		}
	}
}

// convertStories converts stories260K with armor-fast at b = 8, 2 threads
// and --json, plus extra flags, and returns the parsed report, the output
// file and stderr.
func convertStories(t *testing.T, extra ...string) (rep convert.Report, out, stderr string) {
	t.Helper()
	src := testdata.File(t, "models/stories260K.gguf")
	calib := testdata.File(t, "text/tinystories_train_subset.txt")
	out = filepath.Join(t.TempDir(), "m.armor")
	args := append([]string{"-m", src, "-o", out, "--method", "armor-fast", "--block-size", "8",
		"--calib", calib, "--calib-seq", "128", "--threads", "2", "--json"}, extra...)
	code, stdout, errs := runCmd(args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, stdout)
	}
	return rep, out, errs
}

// A conversion with --json: the report parses, the file loads, and its
// header records what the report says.
func TestConvertJSON(t *testing.T) {
	rep, out, errs := convertStories(t, "--iters", "3", "--calib-tokens", "2048")
	if rep.Method != "armor-fast" || rep.Block != 8 || len(rep.Layers) != 35 || rep.CalibTokens != 2048 || rep.DType != "F16" {
		t.Fatalf("report %+v", rep)
	}
	if !(rep.WrapperOverhead > 0.15 && rep.WrapperOverhead < 0.25) || !(rep.MeanRelNoWagP > 0 && rep.MeanRelNoWagP < 1) {
		t.Fatalf("wrapper overhead %v, proxy loss relative to NoWag-P %v", rep.WrapperOverhead, rep.MeanRelNoWagP)
	}
	if !strings.Contains(errs, "35/35 layers done") {
		t.Errorf("no progress on stderr: %q", errs)
	}
	m, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	hdr := m.Armor
	if hdr.Linears["blk.3.ffn_down"].Kind != "armor" || hdr.Linears["blk.3.ffn_down"].Block != 8 {
		t.Fatalf("linear kinds %v", hdr.Linears)
	}
	for _, l := range rep.Layers {
		if h := hdr.Layers[l.Name]; h.ProxyLoss != l.ProxyLoss || !(h.ProxyLoss > 0 && h.ProxyLoss <= h.NoWagPLoss) {
			t.Fatalf("%s: header records %+v, report %+v", l.Name, h, l)
		}
	}
}

// TestTol: --tol reaches the stopping rule. At 0.5 a sweep counts only if
// it halves the loss, so every layer stops within a few sweeps of the 200
// allowed; at the default (2e-3) stories260K's layers at b = 8 run 37-200.
func TestTol(t *testing.T) {
	rep, _, _ := convertStories(t, "--tol", "0.5", "--calib-tokens", "1024")
	n := 0
	for _, l := range rep.Layers {
		if l.Kind != "armor" {
			continue
		}
		n++
		if l.Iters < 3 || l.Iters > 8 {
			t.Errorf("%s ran %d sweeps at --tol 0.5; want 3 (the patience) to 8", l.Name, l.Iters)
		}
	}
	if n != 35 {
		t.Errorf("%d ARMOR layers in the report, want 35", n)
	}
}

func TestBadInput(t *testing.T) {
	src := testdata.File(t, "models/stories260K.gguf")
	calib := testdata.File(t, "text/tinystories_train_subset.txt")
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	os.WriteFile(empty, nil, 0o644)
	short := filepath.Join(dir, "short.txt")
	os.WriteFile(short, []byte("Once upon a time, there was a little dog."), 0o644)
	out := filepath.Join(dir, "o.armor")
	base := []string{"-m", src, "-o", out}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-o", out, "--method", "dense"}, 2, "-m SRC is required"},
		{append(base, "--method", "wanda"), 2, "needs calibration text"},
		{append(base, "--method", "wanda", "--calib", calib, "--dtype", "q4"), 2, "--dtype"},
		{append(base, "--method", "armor", "--calib", calib, "--block-size", "10"), 2, "not a positive multiple of 4"},
		{append(base, "--method", "armor", "--calib", calib, "--block-size", "64"), 1, "use a block size of at most 32"},
		{append(base, "--method", "wanda", "--calib", empty), 1, "empty"},
		{append(base, "--method", "wanda", "--calib", short), 1, "give more text"},
		{append(base, "--method", "wanda", "--calib", filepath.Join(dir, "nope.txt")), 1, "nope.txt"},
		{[]string{"-m", src, "-o", filepath.Join(dir, "x", "y.armor"), "--method", "dense"}, 1, "the directory " + filepath.Join(dir, "x") + " does not exist"},
		{append(base, "--method", "pruneit", "--calib", calib), 2, "--method \"pruneit\": use one of"},
		{append(base, "--method", "dense", "extra"), 2, "unexpected argument"},
		{append(base, "--method", "armor-fast", "--calib", calib, "--tol", "-0.1"), 2, "--tol -0.1 must be at least 0"},
		{append(base, "--method", "armor-fast", "--calib", calib, "--tol", "NaN"), 2, "--tol NaN"},
		{[]string{"-m", filepath.Join(dir, "none.gguf"), "-o", out, "--method", "dense"}, 1, "none.gguf"},
	}
	for _, c := range cases {
		code, _, errs := runCmd(c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", c.args, code, errs, c.code, c.want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatalf("%v: output written", c.args)
		}
	}
}

func TestSynthetic(t *testing.T) {
	out := filepath.Join(t.TempDir(), "s.armor")
	code, stdout, stderr := runCmd("--synthetic", "stories110m", "--method", "sparse24", "-o", out)
	if code != 0 || !strings.Contains(stdout, "synthetic stories110m") {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	m, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Config.Dim != 768 || m.Config.Layers != 12 || m.Armor.Linears["blk.11.ffn_down"].Kind != "sparse24" {
		t.Fatalf("config %+v", m.Config)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--synthetic", "llama-9b", "--method", "armor", "-o", out}, "unknown shape"},
		{[]string{"--synthetic", "stories110m", "--method", "wanda", "-o", out}, "dense, sparse24 or armor"},
		{[]string{"--synthetic", "stories110m", "--method", "armor", "--block-size", "6", "-o", out}, "multiple of 4"},
	} {
		if code, _, stderr := runCmd(c.args...); code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %s", c.args, code, stderr)
		}
	}
}

// --calib-seed picks the calibration sample on its own: with it fixed, the
// statistics (and so NoWag-P, which has no sampling) do not follow --seed; left
// out, it follows --seed. The file records the seed that was used.
func TestCalibSeed(t *testing.T) {
	src := testdata.File(t, "models/stories260K.gguf")
	calib := testdata.File(t, "text/tinystories_train_subset.txt")
	convertNoWag := func(seedArgs ...string) (float64, any) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "m.armor")
		args := append([]string{"-m", src, "-o", out, "--method", "nowag-p", "--calib", calib,
			"--calib-tokens", "2048", "--calib-seq", "128", "--threads", "2", "--json"}, seedArgs...)
		code, stdout, errs := runCmd(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", seedArgs, code, errs)
		}
		var rep convert.Report
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatal(err)
		}
		m, err := model.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		return rep.Layers[0].ProxyLoss, m.Armor.Provenance["calib_seed"]
	}
	fixed, rec := convertNoWag("--seed", "1", "--calib-seed", "2")
	followed, rec2 := convertNoWag("--seed", "2")
	other, rec3 := convertNoWag("--seed", "1")
	if fixed != followed {
		t.Errorf("--seed 1 --calib-seed 2 gives loss %v, --seed 2 gives %v: the calibration sample should be the same", fixed, followed)
	}
	if fixed == other {
		t.Errorf("--calib-seed 2 and 1 give the same loss %v: the seed did not reach the calibration sample", fixed)
	}
	if rec != 2.0 || rec2 != 2.0 || rec3 != 1.0 {
		t.Errorf("recorded calib_seed %v, %v, %v; want 2, 2, 1", rec, rec2, rec3)
	}
}

// The sharded workflow from the command line: --calib-only, two --shard
// processes, merge; the file equals a single run's, byte for byte.
func TestShardedCLI(t *testing.T) {
	src := testdata.File(t, "models/stories260K.gguf")
	calib := testdata.File(t, "text/tinystories_train_subset.txt")
	dir := t.TempDir()
	conv := []string{"--method", "armor-fast", "--block-size", "8", "--iters", "2", "--threads", "2"}
	calibArgs := []string{"--calib", calib, "--calib-tokens", "2048", "--calib-seq", "128"}
	whole := filepath.Join(dir, "whole.armor")
	if code, _, errs := runCmd(append(append([]string{"-m", src, "-o", whole}, conv...), calibArgs...)...); code != 0 {
		t.Fatalf("single run: exit %d: %s", code, errs)
	}
	stats, parts := filepath.Join(dir, "stats"), filepath.Join(dir, "parts")
	if code, _, errs := runCmd(append(append([]string{"-m", src, "--calib-only", "--stats", stats}, conv...), calibArgs...)...); code != 0 {
		t.Fatalf("--calib-only: exit %d: %s", code, errs)
	}
	for _, sh := range []string{"0/2", "1/2"} {
		if code, out, errs := runCmd(append([]string{"-m", src, "--stats", stats, "--shard", sh, "--parts", parts}, conv...)...); code != 0 || !strings.Contains(out, "layers converted") {
			t.Fatalf("--shard %s: exit %d: %s%s", sh, code, out, errs)
		}
	}
	merged := filepath.Join(dir, "merged.armor")
	if code, _, errs := runCmd(append([]string{"merge", "-m", src, "--stats", stats, "--parts", parts, "-o", merged}, conv...)...); code != 0 {
		t.Fatalf("merge: exit %d: %s", code, errs)
	}
	a, _ := os.ReadFile(whole)
	b, _ := os.ReadFile(merged)
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("merged file (%d bytes) differs from the single run's (%d bytes)", len(b), len(a))
	}
	if code, _, errs := runCmd("-m", src, "--stats", stats, "--shard", "2/2", "--parts", parts); code != 2 || !strings.Contains(errs, "0 <= I < N") {
		t.Fatalf("--shard 2/2: exit %d: %s", code, errs)
	}
}

// --sequential in block-range shards from the command line: one shard and
// the merge give the single sequential run's file byte for byte; two
// shards merge; a merge told another number of shards, and --stats with
// --sequential, are refused.
func TestSequentialShardedCLI(t *testing.T) {
	src := testdata.File(t, "models/stories260K.gguf")
	calib := testdata.File(t, "text/tinystories_train_subset.txt")
	dir := t.TempDir()
	conv := []string{"--method", "armor-fast", "--block-size", "8", "--iters", "2", "--threads", "2", "--sequential",
		"--calib", calib, "--calib-tokens", "2048", "--calib-seq", "128"}
	with := func(args ...string) []string { return append(args, conv...) }
	whole := filepath.Join(dir, "whole.armor")
	if code, _, errs := runCmd(with("-m", src, "-o", whole)...); code != 0 {
		t.Fatalf("single sequential run: exit %d: %s", code, errs)
	}
	for _, n := range []int{1, 2} {
		parts := filepath.Join(dir, fmt.Sprintf("parts%d", n))
		for i := 0; i < n; i++ {
			sh := fmt.Sprintf("%d/%d", i, n)
			if code, out, errs := runCmd(with("-m", src, "--shard", sh, "--parts", parts)...); code != 0 || !strings.Contains(out, "layers converted") {
				t.Fatalf("--sequential --shard %s: exit %d: %s%s", sh, code, out, errs)
			}
		}
		if n == 2 {
			code, _, errs := runCmd(with("merge", "-m", src, "--shards", "3", "--parts", parts, "-o", filepath.Join(dir, "bad.armor"))...)
			if code != 1 || !strings.Contains(errs, "sequential shards (N of --shard I/N) 3 (the checkpoints have 2)") {
				t.Fatalf("merge of 2 sequential shards as 3: exit %d: %s", code, errs)
			}
		}
		merged := filepath.Join(dir, fmt.Sprintf("merged%d.armor", n))
		if code, _, errs := runCmd(with("merge", "-m", src, "--shards", fmt.Sprint(n), "--parts", parts, "-o", merged)...); code != 0 {
			t.Fatalf("merge of %d sequential shards: exit %d: %s", n, code, errs)
		}
		if n == 1 {
			a, _ := os.ReadFile(whole)
			b, _ := os.ReadFile(merged)
			if len(a) == 0 || !bytes.Equal(a, b) {
				t.Fatalf("one sequential shard merged (%d bytes) differs from the single sequential run (%d bytes)", len(b), len(a))
			}
		}
	}
	if code, _, errs := runCmd(with("-m", src, "--shard", "0/2", "--stats", dir, "--parts", dir)...); code != 2 || !strings.Contains(errs, "not --stats") {
		t.Fatalf("--sequential --stats: exit %d: %s", code, errs)
	}
	if code, _, errs := runCmd(with("merge", "-m", src, "--parts", dir, "-o", filepath.Join(dir, "x.armor"))...); code != 2 || !strings.Contains(errs, "--shards N") {
		t.Fatalf("merge --sequential without --shards: exit %d: %s", code, errs)
	}
}

// A temporary file that a killed run left beside the output is removed by
// the next run of that output (even one that then fails), and only it.
func TestStaleTempRemoved(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "s.armor")
	stale := filepath.Join(dir, ".tmp-s.armor-12345.armor")
	other := filepath.Join(dir, ".tmp-other.armor-12345.armor")
	os.WriteFile(stale, []byte("ARMR partial"), 0o644)
	os.WriteFile(other, []byte("ARMR partial"), 0o644)
	_, _, stderr := runCmd("--synthetic", "no-such-shape", "-o", out)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another output's temporary file was touched: %v", err)
	}
	if !strings.Contains(stderr, "removed "+stale) {
		t.Errorf("stderr does not say what was removed: %s", stderr)
	}
}
