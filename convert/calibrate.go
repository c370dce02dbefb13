package convert

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"

	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/tokenizer"
	"github.com/armor-llm/armor/runtime"
)

// Stats holds the calibration statistics of the linear layers of a model,
// keyed by canonical linear name (e.g. "blk.3.ffn_down"). Layers that read
// the same input (q/k/v, gate/up) share the same slices.
type Stats struct {
	Tokens int                  // calibration tokens that passed through the model
	H      map[string][]float64 // h_j = mean over tokens of x_j² (the diagonal of XXᵀ/N)
	Full   map[string][]float64 // XXᵀ/N (In×In, row-major), when CalibOptions.Full
}

// CalibOptions controls Calibrate.
type CalibOptions struct {
	// Full also collects the full XXᵀ/N of every layer input (SparseGPT).
	Full bool
	// Layers restricts the collection to these linear names (nil: all
	// linear layers of every block).
	Layers []string
	// Builder builds the linear layers the calibration runs through (nil:
	// dense from the model's weights). Sequential calibration passes one
	// that uses the already-converted layers.
	Builder runtime.LinearBuilder
	// Progress, if set, is called after every sequence.
	Progress func(done, total int)
	Ctx      context.Context
}

// CalibrationSequences tokenizes the calibration texts and cuts them into
// sequences of seqLen tokens, each made of BOS (when the vocabulary has one)
// followed by seqLen−1 consecutive tokens of one text; windows do not overlap
// and do not straddle texts. It returns ceil(nTokens/seqLen) of them, chosen
// at random with seed (and kept in text order), or an error when the texts
// do not hold that many.
func CalibrationSequences(tok tokenizer.Tokenizer, texts []string, nTokens, seqLen int, seed uint64) ([][]int, error) {
	if seqLen < 2 {
		return nil, fmt.Errorf("convert: calibration sequence length %d is too short (at least 2)", seqLen)
	}
	if nTokens < 1 {
		return nil, fmt.Errorf("convert: calibration token count %d must be positive", nTokens)
	}
	bos := tok.BOS()
	body := seqLen
	if bos >= 0 {
		body--
	}
	var windows [][]int
	total := 0
	for _, text := range texts {
		if strings.TrimSpace(text) == "" {
			continue
		}
		ids, err := tok.TokenizeErr(text, false, false)
		if err != nil {
			return nil, fmt.Errorf("convert: tokenizing the calibration text: %w", err)
		}
		total += len(ids)
		for s := 0; s+body <= len(ids); s += body {
			windows = append(windows, ids[s:s+body])
		}
	}
	if total == 0 {
		return nil, errors.New("convert: the calibration text is empty")
	}
	need := (nTokens + seqLen - 1) / seqLen
	if len(windows) < need {
		return nil, fmt.Errorf("convert: the calibration text has %d tokens, which make %d sequences of %d; --calib-tokens %d needs %d (give more text or lower --calib-tokens)",
			total, len(windows), seqLen, nTokens, need)
	}
	rng := rand.New(rand.NewPCG(seed, 0xca1b))
	pick := rng.Perm(len(windows))[:need]
	slices.Sort(pick)
	out := make([][]int, need)
	for i, k := range pick {
		seq := make([]int, 0, seqLen)
		if bos >= 0 {
			seq = append(seq, bos)
		}
		out[i] = append(seq, windows[k]...)
	}
	return out, nil
}

// accum sums x_j² (and, when full, x xᵀ on and above the diagonal) over the
// tokens that pass through one layer input.
type accum struct {
	in   int
	n    int64
	sum  []float64
	full []float64
}

func (a *accum) add(x []float32, n int) {
	m := a.in
	for t := 0; t < n; t++ {
		row := x[t*m : (t+1)*m]
		for j, v := range row {
			a.sum[j] += float64(v) * float64(v)
		}
	}
	if a.full != nil {
		a.addFull(x, n)
	}
	a.n += int64(n)
}

// fullPanel is how many rows of XXᵀ one product of addFull computes.
const fullPanel = 256

var fullPanelPool = sync.Pool{New: func() any { return new([]float32) }}

// addFull adds the upper triangle of XᵀX for the n tokens of x (n×in) into
// full: per panel of rows [i0, i0+fullPanel), one f32 product
// X[:, i0:]ᵀ·X[:, i0:] over the batch's tokens (kernels.MatMulTNF32),
// added into the float64 sums, the panels spread over the threads. One token
// at a time in float64 this ran at under 1 G multiply-adds per second on
// one core: 5 minutes for 4,096 tokens of one 7B block. The f32 sums run
// over one batch (a sequence) only; the float64 sums across batches are
// what the Cholesky factorizations need, and finish puts the float64
// diagonal (sum) on the diagonal.
func (a *accum) addFull(x []float32, n int) {
	m := a.in
	parallelFor(defaultThreads(0), (m+fullPanel-1)/fullPanel, func(p int) {
		i0 := p * fullPanel
		rows, w := min(fullPanel, m-i0), m-i0
		bp := fullPanelPool.Get().(*[]float32)
		buf := grow32(*bp, rows*w)
		kernels.MatMulTNF32(buf, w, x[i0:], m, rows, n, x[i0:], m, w, false)
		for r := 0; r < rows; r++ {
			dst := a.full[(i0+r)*m+i0 : (i0+r+1)*m]
			src := buf[r*w : (r+1)*w]
			for c := r; c < w; c++ { // upper triangle; finish mirrors it
				dst[c] += float64(src[c])
			}
		}
		*bp = buf
		fullPanelPool.Put(bp)
	})
}

func (a *accum) finish() (h, full []float64) {
	h = make([]float64, a.in)
	if a.n == 0 {
		return h, nil
	}
	inv := 1 / float64(a.n)
	for j, v := range a.sum {
		h[j] = v * inv
	}
	if a.full != nil {
		// In place: the accumulator becomes the result, so the statistics
		// are held once.
		m := a.in
		full = a.full
		for i := 0; i < m; i++ {
			full[i*m+i] = a.sum[i] // the float64 sums: h on the diagonal exactly
			for j := i; j < m; j++ {
				v := full[i*m+j] * inv
				full[i*m+j], full[j*m+i] = v, v
			}
		}
		a.full = nil
	}
	return h, full
}

// recorder is a Linear that records its inputs before computing.
type recorder struct {
	runtime.Linear
	acc *accum // nil: a layer sharing its input with one that records
}

func (r *recorder) Forward(y, x []float32) {
	if r.acc != nil {
		r.acc.add(x, 1)
	}
	r.Linear.Forward(y, x)
}

func (r *recorder) ForwardBatch(y, x []float32, n int) {
	if r.acc != nil {
		r.acc.add(x, n)
	}
	r.Linear.ForwardBatch(y, x, n)
}

// inputGroup names the input a linear layer reads: q, k and v read the same
// normalized hidden state, and so do gate and up.
func inputGroup(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return name
	}
	switch name[i+1:] {
	case "attn_q", "attn_k", "attn_v":
		return name[:i] + ".attn_in"
	case "ffn_gate", "ffn_up":
		return name[:i] + ".ffn_in"
	}
	return name
}

// Calibrate runs the calibration sequences through the model with batched
// prefill (each sequence from an empty cache) and returns the input
// statistics of its linear layers. The result depends only on the model and
// the sequences: sums run in a fixed order, in float64.
func Calibrate(m *model.Model, seqs [][]int, opt CalibOptions) (*Stats, error) {
	if len(seqs) == 0 {
		return nil, errors.New("convert: no calibration sequences")
	}
	maxLen := 0
	for _, s := range seqs {
		maxLen = max(maxLen, len(s))
	}
	if maxLen > m.Config.Context {
		return nil, fmt.Errorf("convert: calibration sequences of %d tokens exceed the model's context of %d (lower --calib-seq)", maxLen, m.Config.Context)
	}
	want := map[string]bool{}
	if opt.Layers == nil {
		for l := 0; l < m.Config.Layers; l++ {
			for _, n := range model.LayerLinears(l) {
				want[n] = true
			}
		}
	} else {
		for _, n := range opt.Layers {
			want[n] = true
		}
	}
	wantGroup := map[string]bool{}
	for n := range want {
		wantGroup[inputGroup(n)] = true
	}
	build := opt.Builder
	if build == nil {
		build = runtime.DenseBuilder
	}
	accs := map[string]*accum{}
	recording := func(mm *model.Model, name string) (runtime.Linear, error) {
		l, err := build(mm, name)
		if err != nil {
			return nil, err
		}
		g := inputGroup(name)
		if !wantGroup[g] {
			return l, nil
		}
		if accs[g] != nil {
			return &recorder{Linear: l}, nil
		}
		a := &accum{in: l.In(), sum: make([]float64, l.In())}
		if opt.Full {
			a.full = make([]float64, l.In()*l.In())
		}
		accs[g] = a
		return &recorder{Linear: l, acc: a}, nil
	}
	tr, err := runtime.New(m, recording)
	if err != nil {
		return nil, err
	}
	st, err := tr.NewState(maxLen)
	if err != nil {
		return nil, err
	}
	tokens := 0
	for i, s := range seqs {
		if opt.Ctx != nil {
			if err := opt.Ctx.Err(); err != nil {
				return nil, err
			}
		}
		st.Reset()
		if _, err := st.Forward(s, false); err != nil {
			return nil, fmt.Errorf("convert: calibration sequence %d: %w", i, err)
		}
		tokens += len(s)
		if opt.Progress != nil {
			opt.Progress(i+1, len(seqs))
		}
	}
	out := &Stats{Tokens: tokens, H: map[string][]float64{}}
	if opt.Full {
		out.Full = map[string][]float64{}
	}
	done := map[string][2][]float64{}
	for n := range want {
		g := inputGroup(n)
		a := accs[g]
		if a == nil {
			return nil, fmt.Errorf("convert: calibration saw no input for linear %s", n)
		}
		r, ok := done[g]
		if !ok {
			h, full := a.finish()
			r = [2][]float64{h, full}
			done[g] = r
		}
		out.H[n] = r[0]
		if opt.Full {
			out.Full[n] = r[1]
		}
	}
	return out, nil
}
