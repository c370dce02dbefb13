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
}

// SpeedOptions sets the measured workload.
type SpeedOptions struct {
	PromptTokens int // prefill: one batch of this many tokens
	GenTokens    int // decode: this many single-token steps
	Repeat       int // the median of this many runs is reported
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
		t0 := time.Now()
		logits, err := st.Forward(prompt, false)
		if err != nil {
			return 0, 0, 0, err
		}
		pre = append(pre, float64(len(prompt))/time.Since(t0).Seconds())
		tok := armrt.Argmax(logits)
		t0 = time.Now()
		for i := 0; i < o.GenTokens; i++ {
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
	dense := -1
	for i, r := range results {
		if r.Variant == "dense" && r.Error == "" && i < len(rounds) {
			if dense < 0 || (results[dense].DType == "f32" && r.DType != "f32") {
				dense = i
			}
		}
	}
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
	fmt.Fprintf(&b, "%-34s %-9s %-5s %10s %9s %10s %10s %10s %8s %8s %8s %8s\n",
		"model", "variant", "dtype", "prefill/s", "×dense", "decode/s", "×dense", "bound×", "roofline", "weights", "×dense", "peakRSS")
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
		gib := func(n int64) string {
			if n <= 0 {
				return "-"
			}
			return fmt.Sprintf("%.2fG", float64(n)/(1<<30))
		}
		fmt.Fprintf(&b, "%-34s %-9s %-5s %10.1f %9s %10.2f %10s %10s %8s %8s %8s %8s\n",
			name, r.Variant, r.DType, r.PrefillTPS, ratio(r.PrefillSpeedupVsDense), r.DecodeTPS, ratio(r.DecodeSpeedupVsDense),
			ratio(r.DecodeBoundSpeedup), roof, gib(r.WeightBytes), ratio(r.WeightFractionOfDense), gib(r.PeakRSSBytes))
		if r.Variant == "llama.cpp" && r.DecodeDepth == 0 && r.PromptTokens > 0 {
			fmt.Fprintf(&b, "  (this llama-bench has no -d: llama.cpp decoded into an empty cache, not after the %d-token prompt)\n", r.PromptTokens)
		}
	}
	return b.String()
}
