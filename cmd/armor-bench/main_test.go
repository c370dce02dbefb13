package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/armor-llm/armor/bench"
	"github.com/armor-llm/armor/internal/testdata"
	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
)

// TestMain lets the test binary act as armor-bench when speed re-executes
// itself for each model.
func TestMain(m *testing.M) {
	if os.Getenv("ARMOR_BENCH_AS_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func runBench(args ...string) (int, string, string) {
	var o, e bytes.Buffer
	code := run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestSpeedJSON(t *testing.T) {
	c := model.Config{Arch: "llama", Dim: 64, Hidden: 128, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16, Vocab: 300, Context: 128,
		NormEps: 1e-5, RopeTheta: 10000, RopeHalves: true, Tied: true}
	dir := t.TempDir()
	var args []string
	for _, v := range []synth.Variant{synth.Dense, synth.Sparse24, synth.Armor} {
		p := filepath.Join(dir, string(v)+".armor")
		if err := synth.WriteArmor(p, c, synth.ArmorOptions{Variant: v, DType: tensor.F16, Block: 16, Seed: 1}); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-m", p)
	}
	plot := filepath.Join(dir, "chart.svg")
	// A llama-bench that exists (never run: no GGUF among the models); one
	// that does not exist is an error (TestSpeedBadInput).
	fakeLlama := filepath.Join(dir, "llama-bench")
	os.WriteFile(fakeLlama, []byte("#!/bin/sh\nexit 1\n"), 0o755)
	code, out, errs := runBench(append([]string{"speed", "--prompt-tokens", "16", "--gen-tokens", "4", "--json", "--plot", plot,
		"--llamacpp", fakeLlama, "--kv-type", "f16"}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rs []bench.SpeedResult
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(rs) != 3 {
		t.Fatalf("%d results: %s", len(rs), out)
	}
	for i, want := range []string{"dense", "sparse24", "armor"} {
		r := rs[i]
		// KV: 2 layers × 2 (k, v) × 21 positions × KVDim 32 × 2 bytes.
		if r.Variant != want || r.Error != "" || r.DecodeTPS <= 0 || r.PrefillTPS <= 0 || r.PeakRSSBytes <= 0 || r.DType != "f16" ||
			r.KVType != "f16" || r.KVBytes != 2*2*21*32*2 ||
			r.DecodeSpeedupVsDense <= 0 || r.DecodeBoundSpeedup <= 0 || r.CPU == "" || r.GoVersion == "" {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	if rs[1].WeightBytes >= rs[0].WeightBytes || rs[1].DecodeBoundSpeedup <= 1 {
		t.Errorf("2:4 weights %d vs dense %d, bound %.2f", rs[1].WeightBytes, rs[0].WeightBytes, rs[1].DecodeBoundSpeedup)
	}
	if !strings.Contains(errs, "no GGUF among the models") {
		t.Errorf("--llamacpp without a GGUF: %s", errs)
	}
	if _, err := os.Stat(plot); err != nil {
		t.Errorf("plot: %v", err)
	}
}

func TestSpeedBadInput(t *testing.T) {
	code, _, errs := runBench("speed", "--synthetic", "llama-9000")
	if code == 0 || !strings.Contains(errs, "unknown shape") {
		t.Fatalf("unknown shape: exit %d, %s", code, errs)
	}
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.gguf")
	os.WriteFile(junk, []byte("GGUF"), 0o644)
	// A (sparse) file far larger than memory is refused before loading.
	huge := filepath.Join(dir, "huge.armor")
	f, _ := os.Create(huge)
	f.Truncate(1 << 42)
	f.Close()
	code, out, errs := runBench("speed", "-m", junk, "-m", huge, "--prompt-tokens", "4", "--gen-tokens", "2")
	// Every variant failed: the table still prints with the errors, and
	// the exit status says the command failed.
	if code == 0 || !strings.Contains(out, "error") || !strings.Contains(out, "junk.gguf") || !strings.Contains(out, "do not fit") || !strings.Contains(errs, "every variant failed") {
		t.Fatalf("broken models: exit %d, the table should still print with the errors:\n%s\n%s", code, out, errs)
	}
	// --llamacpp pointing nowhere fails at once.
	code, _, errs = runBench("speed", "-m", junk, "--llamacpp", filepath.Join(dir, "no-such-llama-bench"))
	if code == 0 || !strings.Contains(errs, "--llamacpp") || !strings.Contains(errs, "no-such-llama-bench") {
		t.Fatalf("--llamacpp nowhere: exit %d, %s", code, errs)
	}
}

func TestPPLCommand(t *testing.T) {
	m := testdata.File(t, "models/stories260K.gguf")
	text := filepath.Join(t.TempDir(), "t.txt")
	raw, _ := os.ReadFile(testdata.File(t, "text/tinystories_val_subset.txt"))
	os.WriteFile(text, raw[:20000], 0o644)
	code, out, errs := runBench("ppl", "-m", m, "--text", text, "--ctx", "128", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var r struct {
		Perplexity float64 `json:"perplexity"`
		Tokens     int     `json:"tokens"`
		Ctx        int     `json:"ctx"`
		KVType     string  `json:"kv_type"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Perplexity < 2 || r.Perplexity > 10 || r.Ctx != 128 || r.Tokens < 1000 || r.KVType != "f32" {
		t.Fatalf("%v: %s", err, out)
	}
	// An f16 KV cache moves the figure by rounding only.
	code, out16, errs := runBench("ppl", "-m", m, "--text", text, "--ctx", "128", "--json", "--kv-type", "f16")
	var r16 struct {
		Perplexity float64 `json:"perplexity"`
		KVType     string  `json:"kv_type"`
	}
	if err := json.Unmarshal([]byte(out16), &r16); code != 0 || err != nil || r16.KVType != "f16" || math.Abs(r16.Perplexity/r.Perplexity-1) > 1e-3 {
		t.Fatalf("--kv-type f16: exit %d, %v: %s %s", code, err, out16, errs)
	}
	if code, _, errs := runBench("ppl", "-m", m); code == 0 || !strings.Contains(errs, "--text") {
		t.Fatalf("missing --text: %d %s", code, errs)
	}
	if code, _, errs := runBench("ppl", "-m", m, "--text", text, "--ctx", "100000"); code == 0 || !strings.Contains(errs, "context") {
		t.Fatalf("huge ctx: %d %s", code, errs)
	}
	for _, bad := range [][]string{{"--ctx", "0"}, {"--ctx", "-4"}, {"--max-bytes", "-1"}} {
		if code, _, errs := runBench(append([]string{"ppl", "-m", m, "--text", text}, bad...)...); code == 0 || !strings.Contains(errs, bad[0]+" "+bad[1]+" is out of range") {
			t.Errorf("%v: exit %d, %s", bad, code, errs)
		}
	}
}

// TestSpeedLlamaInRounds: with --llamacpp and a GGUF, llama-bench (here a
// stand-in script) runs once per round, one repetition each, and its row
// gets a ratio to dense like the others.
func TestSpeedLlamaInRounds(t *testing.T) {
	c := model.Config{Arch: "llama", Dim: 64, Hidden: 128, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16, Vocab: 300, Context: 128,
		NormEps: 1e-5, RopeTheta: 10000, RopeHalves: true, Tied: true}
	dir := t.TempDir()
	gguf := filepath.Join(dir, "m.gguf")
	if err := synth.WriteGGUF(gguf, c, tensor.F16, 1); err != nil {
		t.Fatal(err)
	}
	calls := filepath.Join(dir, "calls")
	script := "#!/bin/sh\necho \"$@\" >> " + calls + "\n" +
		`echo '[{"n_prompt":16,"n_gen":0,"avg_ts":100.0},{"n_prompt":0,"n_gen":4,"avg_ts":10.0}]'` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "llama-bench"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runBench("speed", "--prompt-tokens", "16", "--gen-tokens", "4", "--repeat", "3", "--json",
		"--llamacpp", dir, "-m", gguf)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rs []bench.SpeedResult
	if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != 2 {
		t.Fatalf("%v: %s", err, out)
	}
	l := rs[1]
	if l.Variant != "llama.cpp" || l.PrefillTPS != 100 || l.DecodeTPS != 10 || l.DecodeSpeedupVsDense <= 0 || l.PrefillSpeedupVsDense <= 0 {
		t.Errorf("llama.cpp row: %+v", l)
	}
	b, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	// Per round: prefill, then decode at the depth of our prompt.
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 6 || !strings.Contains(lines[0], "-r 1") || !strings.Contains(lines[0], "-p 16 -n 0") ||
		!strings.Contains(lines[1], "-p 0 -n 4 -d 16") {
		t.Errorf("llama-bench calls: %q", lines)
	}
	if l.DecodeDepth != 16 || rs[0].DecodeDepth != 16 {
		t.Errorf("decode depths: ours %d, llama.cpp %d; want 16", rs[0].DecodeDepth, l.DecodeDepth)
	}
}

// The demo form (flags without a command) runs 3 alternating rounds by
// default and ends with the per-round table and a one-line verdict.
func TestDemoRoundsAndVerdict(t *testing.T) {
	c := model.Config{Arch: "llama", Dim: 64, Hidden: 128, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16, Vocab: 300, Context: 128,
		NormEps: 1e-5, RopeTheta: 10000, RopeHalves: true, Tied: true}
	dir := t.TempDir()
	var args []string
	for _, v := range []synth.Variant{synth.Dense, synth.Armor} {
		p := filepath.Join(dir, string(v)+".armor")
		if err := synth.WriteArmor(p, c, synth.ArmorOptions{Variant: v, DType: tensor.F16, Block: 16, Seed: 1}); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-m", p)
	}
	code, out, errs := runBench(append([]string{"--prompt-tokens", "16", "--gen-tokens", "4"}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if n := strings.Count(errs, "round 3/3: timing"); n != 2 {
		t.Errorf("want 3 rounds of 2 models, stderr:\n%s", errs)
	}
	lines := strings.Split(out, "\n")
	var verdicts, roundRows int
	for _, l := range lines {
		if strings.HasPrefix(l, "verdict: ") {
			verdicts++
		}
		for _, k := range []string{"1 ", "2 ", "3 "} {
			if strings.HasPrefix(l, k) {
				roundRows++
			}
		}
	}
	// (Whether the verdict is clean depends on the machine; that it is
	// given, once, does not.)
	if verdicts != 1 || roundRows != 3 || !strings.Contains(out, " moved") {
		t.Errorf("want a moved column, 3 round rows and one verdict line:\n%s", out)
	}
	// --repeat still wins over the demo's default.
	code, out, errs = runBench(append([]string{"--prompt-tokens", "16", "--gen-tokens", "4", "--repeat", "1"}, args...)...)
	if code != 0 || strings.Contains(errs, "round 2/") || !strings.Contains(out, "verdict: one round") {
		t.Errorf("--repeat 1: exit %d\n%s\n%s", code, out, errs)
	}
}

// The measuring child reports its progress on stderr, which the parent
// separates from its messages.
func TestChildProgress(t *testing.T) {
	c := model.Config{Arch: "llama", Dim: 64, Hidden: 128, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16, Vocab: 300, Context: 128,
		NormEps: 1e-5, RopeTheta: 10000, RopeHalves: true, Tied: true}
	p := filepath.Join(t.TempDir(), "dense.armor")
	if err := synth.WriteArmor(p, c, synth.ArmorOptions{Variant: synth.Dense, DType: tensor.F16, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runBench(internalSpeedOne, "-m", p, "--prompt-tokens", "8", "--gen-tokens", "4")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rest bytes.Buffer
	var stages []string
	w := &progressWriter{rest: &rest, progress: func(stage string, done, total int) { stages = append(stages, stage) }}
	w.Write([]byte(errs[:len(errs)/2]))
	w.Write([]byte(errs[len(errs)/2:] + "a message\n"))
	got := strings.Join(stages, ",")
	for _, want := range []string{"load", "building", "warm-up", "prefill", "decode"} {
		if !strings.Contains(got, want) {
			t.Errorf("stages %q lack %s (stderr %q)", got, want, errs)
		}
	}
	if rest.String() != "a message\n" {
		t.Errorf("other stderr lines: %q", rest.String())
	}
}

func TestKernelsFlags(t *testing.T) {
	if code, _, errs := runBench("kernels", "--help"); code != 0 || !strings.Contains(errs, "--shapes") && !strings.Contains(errs, "-shapes") {
		t.Errorf("kernels --help: exit %d, %s", code, errs)
	}
	for _, c := range []struct{ args, want string }{
		{"--ops gemx", `unknown operation "gemx"`},
		{"--shapes 4x5", "bad shape"},
		{"--dtypes f8", "--dtypes"},
		{"--threads 0", "--threads"},
	} {
		code, _, errs := runBench(append([]string{"kernels"}, strings.Fields(c.args)...)...)
		if code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("kernels %s: exit %d, %s; want %q", c.args, code, errs, c.want)
		}
	}
	if code, _, _ := runBench("kernels", "--bogus"); code != 2 {
		t.Errorf("kernels --bogus: exit %d, want 2", code)
	}
}

func TestServeCommand(t *testing.T) {
	if code, _, errs := runBench("serve", "--synthetic", "stories110m", "--stall", "-1s"); code != 1 || !strings.Contains(errs, "--stall -1s") {
		t.Errorf("negative --stall: exit %d, %s", code, errs)
	}
	c := synth.TinyGGUFConfigs()["tiny-llama"]
	c.Context = 512
	dir := t.TempDir()
	gguf := filepath.Join(dir, "tiny.gguf")
	if err := synth.WriteGGUF(gguf, c, tensor.F16, 1); err != nil {
		t.Fatal(err)
	}
	arm := filepath.Join(dir, "tiny.armor")
	if err := synth.WriteArmor(arm, c, synth.ArmorOptions{Variant: synth.Armor, DType: tensor.F16, Block: 16, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runBench("serve", "-m", gguf, "-m", arm, "--tokenizer", gguf, "--clients", "1,3", "--gen-scale", "0.1",
		"--threads", "1", "--json", "--llamacpp", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rs []bench.ServeResult
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(rs) != 6 {
		t.Fatalf("%d results, want 2 models × 2 client counts + 2 llama-server rows: %s", len(rs), out)
	}
	for i, r := range rs[:4] {
		want := []int{1, 3, 1, 3}[i]
		// The mix: 4 requests per client, answers 6+3+9+4 tokens at --gen-scale 0.1.
		if r.Error != "" || r.Clients != want || r.Requests != 4*want || r.GenTokens != 22*want || r.AggregateTPS <= 0 ||
			r.TTFTP50Ms <= 0 || r.TTFTP99Ms < r.TTFTP50Ms || r.ITLP99Ms < r.ITLP50Ms || r.ScalingVsOneClient <= 0 || r.VsDense <= 0 {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	if rs[0].Variant != "dense" || rs[2].Variant != "armor" {
		t.Errorf("variants %s, %s", rs[0].Variant, rs[2].Variant)
	}
	if !strings.Contains(rs[4].Error, "no llama-server") || rs[5].Server != "llama-server" {
		t.Errorf("llama-server row: %+v", rs[4])
	}
	code, _, errs = runBench("serve", "-m", gguf, "--clients", "0")
	if code == 0 || !strings.Contains(errs, "--clients") {
		t.Errorf("--clients 0: exit %d %s", code, errs)
	}
}
