package bench

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
	"github.com/armor-llm/armor/runtime"
)

func tinyTransformer(t *testing.T) *runtime.Transformer {
	c := model.Config{Arch: "llama", Dim: 32, Hidden: 48, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 8, Vocab: 40, Context: 64,
		NormEps: 1e-5, RopeTheta: 10000, RopeHalves: true, Tied: true}
	dir := t.TempDir()
	if err := synth.WriteHF(dir, c, tensor.F32, 5); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tr, err := runtime.New(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// Perplexity equals a direct statement of llama-perplexity's rule computed
// token by token through the decode path.
func TestPerplexityWindows(t *testing.T) {
	tr := tinyTransformer(t)
	tokens := make([]int, 70) // 4 windows of 16 and 6 left over (dropped)
	for i := range tokens {
		tokens[i] = (i*7 + 3) % 40
	}
	const ctx, bos = 16, 1
	got, err := Perplexity(tr, tokens, ctx, bos, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := tr.NewState(ctx)
	var nll float64
	n := 0
	for c := 0; c < len(tokens)/ctx; c++ {
		st.Reset()
		w := append([]int(nil), tokens[c*ctx:(c+1)*ctx]...)
		w[0] = bos
		for j := 0; j < ctx-1; j++ {
			l, _ := st.Forward([]int{w[j]}, false)
			if j < ctx/2 {
				continue
			}
			var z float64
			for _, v := range l {
				z += math.Exp(float64(v))
			}
			nll -= float64(l[w[j+1]]) - math.Log(z)
			n++
		}
	}
	want := math.Exp(nll / float64(n))
	if got.Chunks != 4 || got.Scored != n || math.Abs(got.Perplexity-want)/want > 1e-5 {
		t.Fatalf("got %+v; want %d windows, %d scored, perplexity %g", got, 4, n, want)
	}
	if _, err := Perplexity(tr, tokens[:10], ctx, bos, nil); err == nil || !strings.Contains(err.Error(), "fewer than one window") {
		t.Fatalf("short text: %v", err)
	}
}

func TestCompareAndTable(t *testing.T) {
	rs := []SpeedResult{
		{Model: "d", Variant: "dense", DType: "f16", PrefillTPS: 100, DecodeTPS: 10, WeightBytes: 1000, BytesPerToken: 800, ReadGBps: 1e-5},
		{Model: "a", Variant: "armor", DType: "f16", PrefillTPS: 150, DecodeTPS: 13, WeightBytes: 700, BytesPerToken: 500, ReadGBps: 1e-5},
		{Model: "x", Variant: "llama.cpp", Error: "did not run"},
	}
	Compare(rs)
	a := rs[1]
	if math.Abs(a.DecodeSpeedupVsDense-1.3) > 1e-9 || math.Abs(a.DecodeBoundSpeedup-1.6) > 1e-9 || math.Abs(a.PrefillSpeedupVsDense-1.5) > 1e-9 || math.Abs(a.WeightFractionOfDense-0.7) > 1e-9 {
		t.Fatalf("ratios %+v", a)
	}
	if math.Abs(a.DecodeRooflineFraction-13/(1e4/500.0)) > 1e-9 {
		t.Fatalf("roofline %v", a.DecodeRooflineFraction)
	}
	tab := FormatSpeedTable(rs)
	if !strings.Contains(tab, "1.30×") || !strings.Contains(tab, "error: did not run") {
		t.Fatalf("table:\n%s", tab)
	}
	p := filepath.Join(t.TempDir(), "c.svg")
	if err := WriteSpeedPlot(p, rs); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); !strings.Contains(string(b), "<svg") || !strings.Contains(string(b), "armor") {
		t.Fatal("plot content")
	}
}

func TestParseLlamaBench(t *testing.T) {
	out := []byte(`[{"build_commit":"abc","model_type":"llama 1B F16","model_size":2471645184,"n_prompt":512,"n_gen":0,"avg_ts":95.5},
{"build_commit":"abc","model_type":"llama 1B F16","model_size":2471645184,"n_prompt":0,"n_gen":128,"avg_ts":13.4}]`)
	rows, err := ParseLlamaBench(out)
	if err != nil || len(rows) != 2 || rows[1].AvgTS != 13.4 {
		t.Fatalf("%v %+v", err, rows)
	}
	if _, err := ParseLlamaBench([]byte("garbage")); err == nil {
		t.Fatal("garbage accepted")
	}
	r := RunLlamaBench(filepath.Join(t.TempDir(), "nope"), "x.gguf", 8, 8, 1, 1)
	if r.Error == "" || r.Variant != "llama.cpp" {
		t.Fatalf("missing llama-bench: %+v", r)
	}
}

// A llama-bench without -d (older builds) still gives a decode figure, and
// the result and the table say that it decoded into an empty cache.
func TestLlamaBenchWithoutDepth(t *testing.T) {
	dir := t.TempDir()
	script := `#!/bin/sh
case "$*" in *" -d "*) echo "error: invalid parameter for argument: -d" >&2; exit 1;; esac
case "$*" in *"-n 0"*) echo '[{"n_prompt":8,"n_gen":0,"avg_ts":50}]';; *) echo '[{"n_prompt":0,"n_gen":4,"avg_ts":5}]';; esac
`
	if err := os.WriteFile(filepath.Join(dir, "llama-bench"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := RunLlamaBench(dir, "x.gguf", 8, 4, 1, 1)
	if r.Error != "" || r.PrefillTPS != 50 || r.DecodeTPS != 5 || r.DecodeDepth != 0 {
		t.Fatalf("%+v", r)
	}
	if tab := FormatSpeedTable([]SpeedResult{r}); !strings.Contains(tab, "empty cache") {
		t.Errorf("table does not say where llama.cpp decoded:\n%s", tab)
	}
}

// With the bandwidth probed before every round, the roofline column is the
// median of the per-round fractions, and Compare keeps it.
func TestRooflinePerRound(t *testing.T) {
	rs := []SpeedResult{
		{Variant: "dense", DecodeTPS: 10, BytesPerToken: 1e9, ReadGBps: 50},
		{Variant: "dense", DecodeTPS: 12, BytesPerToken: 1e9, ReadGBps: 40},
		{Variant: "dense", DecodeTPS: 9, BytesPerToken: 1e9, ReadGBps: 45},
	}
	m := MedianOfRounds(rs)
	if m.ReadGBps != 45 || math.Abs(m.DecodeRooflineFraction-0.2) > 1e-12 {
		t.Fatalf("bandwidth %v, roofline %v; want 45 and the median of 0.2, 0.3, 0.2", m.ReadGBps, m.DecodeRooflineFraction)
	}
	out := []SpeedResult{m}
	Compare(out)
	if math.Abs(out[0].DecodeRooflineFraction-0.2) > 1e-12 {
		t.Errorf("Compare replaced the per-round roofline: %v", out[0].DecodeRooflineFraction)
	}
	if g := NewReadProbe(64 << 20); g.GBps() <= 0 {
		t.Error("read probe measured nothing")
	} else {
		g.Close()
	}
}

func TestMedianOfRounds(t *testing.T) {
	rs := []SpeedResult{{PrefillTPS: 10, DecodeTPS: 3, PeakRSSBytes: 5}, {Error: "x"}, {PrefillTPS: 30, DecodeTPS: 1, PeakRSSBytes: 9}, {PrefillTPS: 20, DecodeTPS: 2, PeakRSSBytes: 7}}
	m := MedianOfRounds(rs)
	if m.PrefillTPS != 20 || m.DecodeTPS != 2 || m.PeakRSSBytes != 9 || m.Error != "" {
		t.Fatalf("%+v", m)
	}
	if m := MedianOfRounds([]SpeedResult{{Error: "x"}}); m.Error != "x" {
		t.Fatalf("all failed: %+v", m)
	}
}

// TestPairRounds: the ratio to dense is the median of within-round ratios,
// not the ratio of medians (which here would pair dense's slow round with
// armor's fast one); a failed round is skipped; llama.cpp, measured
// outside the rounds, keeps the ratio of medians.
func TestPairRounds(t *testing.T) {
	d := func(pre, dec float64) SpeedResult {
		return SpeedResult{Variant: "dense", DType: "f16", PrefillTPS: pre, DecodeTPS: dec}
	}
	a := func(pre, dec float64) SpeedResult {
		return SpeedResult{Variant: "armor", DType: "f16", PrefillTPS: pre, DecodeTPS: dec}
	}
	rounds := [][]SpeedResult{
		{d(100, 20), d(100, 10), d(100, 14), {Variant: "dense", Error: "killed"}},
		{a(130, 26), a(140, 13), a(120, 18.2), a(1000, 1000)},
	}
	rs := []SpeedResult{MedianOfRounds(rounds[0]), MedianOfRounds(rounds[1]), {Variant: "llama.cpp", DType: "f16", PrefillTPS: 50, DecodeTPS: 7}}
	Compare(rs)
	PairRounds(rs, rounds)
	if got := rs[1].PrefillSpeedupVsDense; math.Abs(got-1.3) > 1e-9 {
		t.Errorf("prefill ratio %v, want 1.3 (median of 1.3, 1.4, 1.2)", got)
	}
	if got := rs[1].DecodeSpeedupVsDense; math.Abs(got-1.3) > 1e-9 {
		t.Errorf("decode ratio %v, want 1.3 (each round 1.3)", got)
	}
	if got := rs[2].DecodeSpeedupVsDense; math.Abs(got-7/rs[0].DecodeTPS) > 1e-9 {
		t.Errorf("llama.cpp ratio %v, want %v", got, 7/rs[0].DecodeTPS)
	}
	if got := rs[0].DecodeSpeedupVsDense; got != 1 {
		t.Errorf("dense ratio %v", got)
	}
}

// armor-bench kernels --json: one object per case with the keys the issue
// names, ratios to dense of the same op, and the dense GEMV's fraction of the
// probes beside it. Tiny shapes (one of them wide, so in panels) keep it fast.
func TestKernelsJSON(t *testing.T) {
	var out, errb strings.Builder
	o := KernelOptions{JSON: true, Shapes: [][2]int{{64, 128}, {16, 8224}}, DTypes: []kernels.DType{kernels.F16}, Ops: []string{"gemv", "gemm"},
		Threads: 2, Batch: 16, Block: 16, MinTime: 2 * time.Millisecond, WorkingSet: 1 << 20, Repeat: 2}
	err := Kernels(o, &out, &errb)
	if err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	var rs []map[string]any
	if err := json.Unmarshal([]byte(out.String()), &rs); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	cases := 0
	for _, r := range rs {
		for _, k := range []string{"kernel", "op", "dtype", "rows", "cols", "batch", "block", "threads", "seconds", "gbps", "speedup_vs_dense"} {
			if _, ok := r[k]; !ok {
				t.Fatalf("key %q missing in %v", k, r)
			}
		}
		if r["kernel"] == "bandwidth" {
			continue
		}
		cases++
		if s, _ := r["seconds"].(float64); !(s > 0) {
			t.Errorf("case without a time: %v", r)
		}
		// Dense is 1 by definition; the others are a median of per-round
		// ratios (on these tiny shapes possibly exactly 1 as well). Only
		// their sanity is checked, not a speed: on a shared machine one
		// 2 ms round can be 20 times slower (a CI run saw 0.044).
		if sp, _ := r["speedup_vs_dense"].(float64); (r["kernel"] == "dense" && sp != 1.0) || !(sp > 0 && sp < math.Inf(1)) {
			t.Errorf("%v %v speed-up %v", r["kernel"], r["op"], r["speedup_vs_dense"])
		}
		if r["kernel"] == "dense" && r["op"] == "gemv" {
			f, _ := r["probe_fraction"].(float64)
			d, _ := r["probe_dropped"].(float64)
			if !(f > 0) && d < 2 {
				t.Errorf("dense GEMV without a probe fraction: %v", r)
			}
		}
	}
	if cases != 2*3*2 { // shapes × kernels × ops
		t.Errorf("%d cases, want 12", cases)
	}
}

func TestShortBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "-", 512: "512B", 1015 << 10: "1015K", 480<<20 + 300<<10: "480.3M", 2469606195: "2.30G"} {
		if got := ShortBytes(n); got != want {
			t.Errorf("ShortBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// Verdict: steady rounds with agreeing ratios are clean; a run whose
// bandwidth moved in most rounds, or whose steady ratios disagree, is not;
// one round never is. The per-round table marks moved measurements.
func TestVerdictAndRounds(t *testing.T) {
	res := func(v string, pre, dec float64, moved bool) SpeedResult {
		return SpeedResult{Variant: v, DType: "f16", PrefillTPS: pre, DecodeTPS: dec, BandwidthMoved: moved}
	}
	build := func(rounds [][]SpeedResult) []SpeedResult {
		var out []SpeedResult
		for _, r := range rounds {
			out = append(out, MedianOfRounds(r))
		}
		return out
	}
	clean := [][]SpeedResult{
		{res("dense", 200, 24, false), res("dense", 205, 25, false), res("dense", 190, 23, true)},
		{res("armor", 260, 31, false), res("armor", 268, 32, false), res("armor", 150, 40, false)},
	}
	if ok, line := Verdict(build(clean), clean); !ok || !strings.HasPrefix(line, "verdict: clean") {
		t.Errorf("clean run: %v %q", ok, line)
	}
	table := FormatRoundsTable(build(clean), clean)
	if !strings.Contains(table, "190.0, 23.00 *") || strings.Count(table, "*") != 2 || !strings.Contains(table, "(1.29×)") {
		t.Errorf("rounds table:\n%s", table)
	}
	if r := build(clean)[0]; r.Rounds != 3 || r.RoundsMoved != 1 || !strings.Contains(FormatSpeedTable(build(clean)), "1/3") {
		t.Errorf("moved count: %+v", r)
	}
	moved := [][]SpeedResult{
		{res("dense", 200, 24, true), res("dense", 205, 25, false), res("dense", 190, 23, true)},
		{res("armor", 260, 31, false), res("armor", 268, 32, false), res("armor", 250, 30, false)},
	}
	if ok, line := Verdict(build(moved), moved); ok || !strings.Contains(line, "armor steady in only 1 of 3 rounds") {
		t.Errorf("moved run: %v %q", ok, line)
	}
	spread := [][]SpeedResult{
		{res("dense", 200, 24, false), res("dense", 200, 24, false), res("dense", 200, 24, false)},
		{res("armor", 260, 31, false), res("armor", 260, 20, false), res("armor", 260, 31, false)},
	}
	if ok, line := Verdict(build(spread), spread); ok || !strings.Contains(line, "armor decode ×dense ranged 0.83–1.29") {
		t.Errorf("spread run: %v %q", ok, line)
	}
	one := [][]SpeedResult{{res("dense", 200, 24, false)}, {res("armor", 260, 31, false)}}
	if ok, line := Verdict(build(one), one); ok || !strings.Contains(line, "one round") {
		t.Errorf("one round: %v %q", ok, line)
	}
}
