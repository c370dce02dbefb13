package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/armor-llm/armor/kernels"
	armrt "github.com/armor-llm/armor/runtime"
)

// SpeedResult is one model variant's speed and memory, as armor-bench
// speed reports it (one JSON object per variant).
type SpeedResult struct {
	Model   string `json:"model"`
	Variant string `json:"variant"` // dense, sparse24, armor or llama.cpp
	DType   string `json:"dtype"`
	Shape   string `json:"shape,omitempty"`
	Threads int    `json:"threads"`

	PromptTokens int     `json:"prompt_tokens"`
	GenTokens    int     `json:"gen_tokens"`
	DecodeDepth  int     `json:"decode_depth"` // positions in the KV cache when decode starts
	PrefillTPS   float64 `json:"prefill_tps"`
	DecodeTPS    float64 `json:"decode_tps"`

	WeightBytes   int64 `json:"weight_bytes"`    // all tensors of the file
	BytesPerToken int64 `json:"bytes_per_token"` // weights read per decoded token
	KVBytes       int64 `json:"kv_cache_bytes"`
	PeakRSSBytes  int64 `json:"peak_rss_bytes"`
	// WeightsHeld says how the file was held: "mapped" (mmap of the page
	// cache) or "copied" (private memory on huge pages); see --mmap.
	WeightsHeld string `json:"weights_held,omitempty"`

	ReadGBps               float64 `json:"read_gbps"`                // memory-read bandwidth measured just before (median over rounds)
	DecodeRooflineTPS      float64 `json:"decode_roofline_tps"`      // ReadGBps / BytesPerToken
	DecodeRooflineFraction float64 `json:"decode_roofline_fraction"` // DecodeTPS / DecodeRooflineTPS
	DecodeBoundSpeedup     float64 `json:"decode_bound_speedup"`     // dense bytes/token ÷ these bytes/token
	DecodeSpeedupVsDense   float64 `json:"decode_speedup_vs_dense"`
	PrefillSpeedupVsDense  float64 `json:"prefill_speedup_vs_dense"`
	WeightFractionOfDense  float64 `json:"weight_fraction_of_dense"`

	CPU       string `json:"cpu"`
	ISA       string `json:"isa"`
	GoVersion string `json:"go_version"`
	Error     string `json:"error,omitempty"`
	// KVType is the KV cache's element type (f32 or f16, --kv-type).
	KVType string `json:"kv_type,omitempty"`

	// BandwidthMoved marks one round's measurement during which the read
	// bandwidth, probed just before and just after it, moved by more than
	// a fifth. Rounds and RoundsMoved summarize them over the rounds.
	BandwidthMoved bool `json:"bandwidth_moved,omitempty"`
	Rounds         int  `json:"rounds,omitempty"`
	RoundsMoved    int  `json:"rounds_bandwidth_moved,omitempty"`
}

// BandwidthMoved reports whether a read bandwidth probed before and after a
// measurement moved by more than a fifth.
func BandwidthMoved(before, after float64) bool {
	lo, hi := min(before, after), max(before, after)
	return hi > 1.2*lo
}

// SpeedOptions sets the measured workload.
type SpeedOptions struct {
	PromptTokens int // prefill: one batch of this many tokens
	GenTokens    int // decode: this many single-token steps
	Repeat       int // the median of this many runs is reported
	// Progress, if set, is called as the measurement goes: stage is
	// "warm-up", "prefill" or "decode", done of total its steps.
	Progress func(stage string, done, total int)
}

// MeasureSpeed times prefill and decode on tr with random token ids (speed
// does not depend on them) and returns the median tokens/s of each.
func MeasureSpeed(tr *armrt.Transformer, o SpeedOptions) (prefill, decode float64, kvBytes int64, err error) {
	ctx := o.PromptTokens + o.GenTokens + 1
	if ctx > tr.Config.Context {
		return 0, 0, 0, fmt.Errorf("speed: %d prompt + %d generated tokens exceed the model's context of %d", o.PromptTokens, o.GenTokens, tr.Config.Context)
	}
	st, err := tr.NewState(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	progress := o.Progress
	if progress == nil {
		progress = func(string, int, int) {}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	prompt := make([]int, o.PromptTokens)
	for i := range prompt {
		prompt[i] = rng.IntN(tr.Config.Vocab)
	}
	// One untimed prefill and a few decode steps first, as llama-bench's
	// warm-up run does: the first pass in a process also pays for mapping
	// the weights' pages and growing scratch buffers, which is not the
	// throughput being measured.
	if len(prompt) > 0 {
		progress("warm-up", 0, 1)
		if _, err := st.Forward(prompt, false); err != nil {
			return 0, 0, 0, err
		}
		for i := 0; i < min(4, o.GenTokens); i++ {
			if _, err := st.Forward([]int{prompt[i%len(prompt)]}, false); err != nil {
				return 0, 0, 0, err
			}
		}
	}
	var pre, dec []float64
	for r := 0; r < max(1, o.Repeat); r++ {
		st.Reset()
		progress("prefill", 0, 1)
		t0 := time.Now()
		logits, err := st.Forward(prompt, false)
		if err != nil {
			return 0, 0, 0, err
		}
		pre = append(pre, float64(len(prompt))/time.Since(t0).Seconds())
		tok := armrt.Argmax(logits)
		t0 = time.Now()
		for i := 0; i < o.GenTokens; i++ {
			progress("decode", i, o.GenTokens)
			logits, err = st.Forward([]int{tok}, false)
			if err != nil {
				return 0, 0, 0, err
			}
			tok = armrt.Argmax(logits)
		}
		dec = append(dec, float64(o.GenTokens)/time.Since(t0).Seconds())
	}
	return median(pre), median(dec), st.KVBytes(), nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// MedianOfRounds combines one variant's results from several rounds: the
// median prefill and decode speed, the largest peak RSS, and where rounds
// carry the read bandwidth measured just before them, its median and the
// median of the per-round roofline fractions; a round that failed is
// ignored unless all did.
func MedianOfRounds(rs []SpeedResult) SpeedResult {
	var ok []SpeedResult
	for _, r := range rs {
		if r.Error == "" {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return rs[0]
	}
	out := ok[0]
	var pre, dec, bw, roof []float64
	for _, r := range ok {
		pre, dec = append(pre, r.PrefillTPS), append(dec, r.DecodeTPS)
		out.PeakRSSBytes = max(out.PeakRSSBytes, r.PeakRSSBytes)
		if r.ReadGBps > 0 {
			bw = append(bw, r.ReadGBps)
			if r.BytesPerToken > 0 {
				roof = append(roof, r.DecodeTPS*float64(r.BytesPerToken)/(r.ReadGBps*1e9))
			}
		}
	}
	out.PrefillTPS, out.DecodeTPS = median(pre), median(dec)
	out.BandwidthMoved, out.Rounds, out.RoundsMoved = false, len(rs), 0
	for _, r := range rs {
		if r.BandwidthMoved {
			out.RoundsMoved++
		}
	}
	if len(bw) > 0 {
		out.ReadGBps = median(bw)
	}
	if len(roof) > 0 {
		out.DecodeRooflineFraction = median(roof)
		out.DecodeRooflineTPS = out.ReadGBps * 1e9 / float64(out.BytesPerToken)
	}
	return out
}

// ReadProbe measures the memory-read bandwidth with the current thread
// count over a buffer much larger than the caches, in huge-page memory like
// the weights armor-run copies in.
type ReadProbe struct {
	buf []float32
	mem hugeMem
}

// NewReadProbe allocates and fills a probe buffer of about bytes bytes.
func NewReadProbe(bytes int) *ReadProbe {
	p := &ReadProbe{}
	p.buf = hugeSlice[float32](&p.mem, bytes/4)
	for i := range p.buf {
		p.buf[i] = 1
	}
	return p
}

// GBps is the best of three parallel read passes over the buffer, in GB/s.
func (p *ReadProbe) GBps() float64 {
	best := 0.0
	sums := make([]float32, len(p.buf)/(1<<16)+1)
	for r := 0; r < 3; r++ {
		t0 := time.Now()
		kernels.ParallelFor(len(p.buf), 1<<16, func(lo, hi int) {
			sums[lo>>16] = kernels.Sum(p.buf[lo:hi])
		})
		sec := time.Since(t0).Seconds()
		benchSink += sums[0]
		best = max(best, float64(4*len(p.buf))/sec/1e9)
	}
	return best
}

// Close frees the buffer.
func (p *ReadProbe) Close() { p.mem.free() }

// benchSink keeps the probe's sums alive so the reads are not optimized away.
var benchSink float32

// CPUName returns the processor model from /proc/cpuinfo, or GOARCH.
func CPUName() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

// Environment fills the fields that say what produced a result.
func (r *SpeedResult) Environment() {
	r.CPU, r.ISA, r.GoVersion = CPUName(), kernels.ISA().String(), runtime.Version()
}

// Compare fills the ratios of every result to the dense variant of the
// same shape (or model) measured in the same run.
func Compare(rs []SpeedResult) {
	var dense *SpeedResult
	for i := range rs {
		if rs[i].Variant == "dense" && rs[i].Error == "" && rs[i].DType != "f32" {
			dense = &rs[i]
			break
		}
	}
	if dense == nil {
		for i := range rs {
			if rs[i].Variant == "dense" && rs[i].Error == "" {
				dense = &rs[i]
				break
			}
		}
	}
	for i := range rs {
		r := &rs[i]
		if r.ReadGBps > 0 && r.BytesPerToken > 0 && r.DecodeRooflineFraction == 0 {
			r.DecodeRooflineTPS = r.ReadGBps * 1e9 / float64(r.BytesPerToken)
			r.DecodeRooflineFraction = r.DecodeTPS / r.DecodeRooflineTPS
		}
		if dense == nil || r.Error != "" {
			continue
		}
		if r.BytesPerToken > 0 {
			r.DecodeBoundSpeedup = float64(dense.BytesPerToken) / float64(r.BytesPerToken)
		}
		if dense.DecodeTPS > 0 {
			r.DecodeSpeedupVsDense = r.DecodeTPS / dense.DecodeTPS
		}
		if dense.PrefillTPS > 0 {
			r.PrefillSpeedupVsDense = r.PrefillTPS / dense.PrefillTPS
		}
		if dense.WeightBytes > 0 && r.WeightBytes > 0 {
			r.WeightFractionOfDense = float64(r.WeightBytes) / float64(dense.WeightBytes)
		}
	}
}

// PairRounds replaces the prefill and decode ratios to dense that Compare
// computed from each variant's median with the median over rounds of the
// ratio within each round: rounds[i][r] is results[i]'s measurement in
// round r. Memory bandwidth on a shared machine drifts by tens of percent
// over minutes, and a variant's median may come from a fast round while
// dense's came from a slow one; a ratio within a round sees the same
// conditions on both sides. Results without rounds (llama.cpp) keep
// Compare's ratio.
func PairRounds(results []SpeedResult, rounds [][]SpeedResult) {
	dense := denseIndex(results, rounds)
	if dense < 0 {
		return
	}
	for i := range results {
		if i >= len(rounds) || results[i].Error != "" {
			continue
		}
		var pre, dec []float64
		for k := range rounds[i] {
			if k >= len(rounds[dense]) {
				break
			}
			a, d := rounds[i][k], rounds[dense][k]
			if a.Error != "" || d.Error != "" || d.PrefillTPS <= 0 || d.DecodeTPS <= 0 {
				continue
			}
			pre, dec = append(pre, a.PrefillTPS/d.PrefillTPS), append(dec, a.DecodeTPS/d.DecodeTPS)
		}
		if len(pre) > 0 {
			results[i].PrefillSpeedupVsDense, results[i].DecodeSpeedupVsDense = median(pre), median(dec)
		}
	}
}

// FormatSpeedTable prints results as an aligned text table.
func FormatSpeedTable(rs []SpeedResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-34s %-9s %-5s %10s %9s %10s %10s %10s %8s %8s %8s %8s %6s\n",
		"model", "variant", "dtype", "prefill/s", "×dense", "decode/s", "×dense", "bound×", "roofline", "weights", "×dense", "peakRSS", "moved")
	for _, r := range rs {
		name := filepath.Base(r.Model)
		if len(name) > 34 {
			name = "…" + name[len(name)-33:]
		}
		if r.Error != "" {
			fmt.Fprintf(&b, "%-34s %-9s %-5s  error: %s\n", name, r.Variant, r.DType, r.Error)
			continue
		}
		ratio := func(v float64) string {
			if v == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f×", v)
		}
		roof := "-"
		if r.DecodeRooflineFraction > 0 {
			roof = fmt.Sprintf("%.0f%%", 100*r.DecodeRooflineFraction)
		}
		fmt.Fprintf(&b, "%-34s %-9s %-5s %10.1f %9s %10.2f %10s %10s %8s %8s %8s %8s %6s\n",
			name, r.Variant, r.DType, r.PrefillTPS, ratio(r.PrefillSpeedupVsDense), r.DecodeTPS, ratio(r.DecodeSpeedupVsDense),
			ratio(r.DecodeBoundSpeedup), roof, ShortBytes(r.WeightBytes), ratio(r.WeightFractionOfDense), ShortBytes(r.PeakRSSBytes), moved(r))
		if r.Variant == "llama.cpp" && r.DecodeDepth == 0 && r.PromptTokens > 0 {
			fmt.Fprintf(&b, "  (this llama-bench has no -d: llama.cpp decoded into an empty cache, not after the %d-token prompt)\n", r.PromptTokens)
		}
	}
	return b.String()
}

// moved is the table's "moved" cell: in how many of the rounds the read
// bandwidth moved by more than a fifth during this variant's measurement.
func moved(r SpeedResult) string {
	if r.Rounds == 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d", r.RoundsMoved, r.Rounds)
}

// ShortBytes formats a byte count in the unit that fits it, in at most 6
// characters: 512B, 1015K, 480.3M, 2.30G.
func ShortBytes(n int64) string {
	switch {
	case n <= 0:
		return "-"
	case n < 1<<10:
		return fmt.Sprintf("%dB", n)
	case n < 1<<20:
		return fmt.Sprintf("%.0fK", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2fG", float64(n)/(1<<30))
}

// denseIndex is the result the ratios are taken to: the first dense variant
// that is not f32 (the f16 file is the one the others are compared with),
// else the first dense one; -1 when none has rounds.
func denseIndex(results []SpeedResult, rounds [][]SpeedResult) int {
	dense := -1
	for i, r := range results {
		if r.Variant == "dense" && r.Error == "" && i < len(rounds) {
			if dense < 0 || (results[dense].DType == "f32" && r.DType != "f32") {
				dense = i
			}
		}
	}
	return dense
}

// labels names the results for the per-round table: the variant, with the
// dtype and then a number where that is not unique.
func labels(results []SpeedResult) []string {
	out := make([]string, len(results))
	count := map[string]int{}
	for i, r := range results {
		out[i] = r.Variant
		count[r.Variant]++
	}
	for i, r := range results {
		if count[r.Variant] > 1 {
			out[i] = r.Variant + " " + r.DType
		}
	}
	seen := map[string]int{}
	for i := range out {
		seen[out[i]]++
		if n := seen[out[i]]; n > 1 {
			out[i] = fmt.Sprintf("%s #%d", out[i], n)
		}
	}
	return out
}

// FormatRoundsTable prints every round's measurements, prefill and decode
// tokens/s and the decode ratio to dense in that round, with the
// measurements during which the read bandwidth moved marked "*".
func FormatRoundsTable(results []SpeedResult, rounds [][]SpeedResult) string {
	var b strings.Builder
	n := 0
	for _, r := range rounds {
		n = max(n, len(r))
	}
	if n == 0 {
		return ""
	}
	dense := denseIndex(results, rounds)
	names := labels(results)
	fmt.Fprintf(&b, "per round: prefill/s, decode/s (decode ×dense in that round); * = the read bandwidth moved by more than a fifth during it\n%-6s", "round")
	for _, name := range names {
		fmt.Fprintf(&b, " %-27s", name)
	}
	b.WriteString("\n")
	for k := 0; k < n; k++ {
		fmt.Fprintf(&b, "%-6d", k+1)
		for i := range results {
			cell := "-"
			if i < len(rounds) && k < len(rounds[i]) {
				r := rounds[i][k]
				if r.Error != "" {
					cell = "error"
				} else {
					cell = fmt.Sprintf("%.1f, %.2f", r.PrefillTPS, r.DecodeTPS)
					if dense >= 0 && i != dense && k < len(rounds[dense]) && rounds[dense][k].DecodeTPS > 0 {
						cell += fmt.Sprintf(" (%.2f×)", r.DecodeTPS/rounds[dense][k].DecodeTPS)
					}
					if r.BandwidthMoved {
						cell += " *"
					}
				}
			}
			fmt.Fprintf(&b, " %-27s", cell)
		}
		b.WriteString("\n")
	}
	// No trailing blanks on the lines.
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// Verdict says in one line whether a run was clean enough to trust its
// ratios to dense: for every variant, more than half of the rounds (and at
// least 2) must be steady, the read bandwidth held within a fifth during
// both its and dense's measurement, and in those rounds its prefill and
// decode ratios to dense must agree within 10 %.
func Verdict(results []SpeedResult, rounds [][]SpeedResult) (clean bool, line string) {
	dense := denseIndex(results, rounds)
	if dense < 0 {
		return false, "verdict: no dense variant to compare with"
	}
	names := labels(results)
	total := len(rounds[dense])
	if total < 2 {
		return false, "verdict: one round cannot show whether the machine was steady; run --repeat 3 or more before trusting the ratios"
	}
	var problems []string
	for i := range results {
		if i == dense || i >= len(rounds) || results[i].Error != "" {
			continue
		}
		var pre, dec []float64
		for k := 0; k < len(rounds[i]) && k < total; k++ {
			a, d := rounds[i][k], rounds[dense][k]
			if a.Error != "" || d.Error != "" || a.BandwidthMoved || d.BandwidthMoved || d.PrefillTPS <= 0 || d.DecodeTPS <= 0 {
				continue
			}
			pre, dec = append(pre, a.PrefillTPS/d.PrefillTPS), append(dec, a.DecodeTPS/d.DecodeTPS)
		}
		if len(dec) < 2 || 2*len(dec) <= total {
			problems = append(problems, fmt.Sprintf("%s steady in only %d of %d rounds", names[i], len(dec), total))
			continue
		}
		for _, c := range []struct {
			what string
			v    []float64
		}{{"prefill", pre}, {"decode", dec}} {
			lo, hi := c.v[0], c.v[0]
			for _, x := range c.v {
				lo, hi = min(lo, x), max(hi, x)
			}
			if hi > 1.1*lo {
				problems = append(problems, fmt.Sprintf("%s %s ×dense ranged %.2f–%.2f over the steady rounds", names[i], c.what, lo, hi))
			}
		}
	}
	if len(problems) > 0 {
		return false, "verdict: NOT clean (" + strings.Join(problems, "; ") + "): the ×dense columns are unreliable; rerun on a quieter machine or with a larger --repeat"
	}
	return true, fmt.Sprintf("verdict: clean: the bandwidth held in most of the %d rounds for every variant, and their ratios to dense agree within 10 %%; the ×dense columns can be trusted", total)
}
