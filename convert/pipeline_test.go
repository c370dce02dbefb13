package convert

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
	"github.com/armor-llm/armor/runtime"
)

// smallCalib: 16 sequences of 128 tokens of stories' training text.
func smallCalib(t *testing.T) (*model.Model, [][]int) {
	m, tok, text := stories(t, 60000)
	seqs, err := CalibrationSequences(tok, []string{text}, 2048, 128, 1)
	if err != nil {
		t.Fatal(err)
	}
	return m, seqs
}

func decodeF64(t *testing.T, tt *tensor.Tensor) []float64 {
	f := make([]float32, tt.Elements())
	tensor.DecodeF32(f, tt.DType, tt.Data)
	out := make([]float64, len(f))
	for i, v := range f {
		out[i] = float64(v)
	}
	return out
}

// densifyFile rebuilds W of one linear of an .armor model in float64 from
// its stored tensors, decoding the layout of docs/armor-format.md directly (not
// through the kernels).
func densifyFile(t *testing.T, m *model.Model, name string) []float64 {
	t.Helper()
	kind := m.Armor.Linears[name]
	rows, cols := shapeOf(m, name)
	if kind.Kind == "dense" {
		return decodeF64(t, m.Tensors[name+".weight"])
	}
	v := decodeF64(t, m.Tensors[name+".s24_values"])
	idx := m.Tensors[name+".s24_idx"].Data
	stride := (cols + 7) / 8
	S := make([]float64, rows*cols)
	for i := 0; i < rows; i++ {
		for k := 0; k < cols/2; k++ {
			p := int(idx[i*stride+k/4]>>(2*(k%4))) & 3
			S[i*cols+4*(k/2)+p] = v[i*cols/2+k]
		}
	}
	if kind.Kind == "sparse24" {
		return S
	}
	bd := func(tn string, n int) []float64 {
		f := decodeF64(t, m.Tensors[tn])
		out := make([]float64, n*n)
		off := 0
		for r0 := 0; r0 < n; r0 += kind.Block {
			s := min(kind.Block, n-r0)
			for i := 0; i < s; i++ {
				for j := 0; j < s; j++ {
					out[(r0+i)*n+r0+j] = f[off+i*s+j]
				}
			}
			off += s * s
		}
		if off != len(f) {
			t.Fatalf("%s: %d values, blocks use %d", tn, len(f), off)
		}
		return out
	}
	pre, post := bd(name+".pre", cols), bd(name+".post", rows)
	W := make([]float64, rows*cols)
	for i := 0; i < rows; i++ {
		for k := 0; k < rows; k++ {
			a := post[i*rows+k]
			if a == 0 {
				continue
			}
			for q := 0; q < cols; q++ {
				s := S[k*cols+q]
				if s == 0 {
					continue
				}
				for j := 0; j < cols; j++ {
					W[i*cols+j] += a * s * pre[q*cols+j]
				}
			}
		}
	}
	return W
}

// Every method converts stories260K into a file the runtime loads; the
// stored layers are what the report says (their proxy loss, recomputed from
// the file with an independent decoder, matches), they are 2:4 where they
// should be, and on every one of the 35 real layers, both ARMOR variants'
// proxy loss is at most NoWag-P's.
func TestConvertEveryMethod(t *testing.T) {
	m, seqs := smallCalib(t)
	full, err := Calibrate(m, seqs, CalibOptions{Full: true})
	if err != nil {
		t.Fatal(err)
	}
	st := full
	fullH, sgpt := map[string]float64{}, map[string]float64{}
	defer func() {
		// armor-fast-h (b = 8, a few sweeps and rounds) has a lower mean
		// output error (full-Hessian loss) than SparseGPT.
		sumA, sumS := 0.0, 0.0
		for n, v := range fullH {
			sumA += v
			sumS += sgpt[n]
		}
		if len(fullH) == 35 && !(sumA < sumS) {
			t.Errorf("armor-fast-h mean full-Hessian loss %v, SparseGPT's %v", sumA/35, sumS/35)
		}
	}()
	dir := t.TempDir()
	for _, c := range []struct {
		method      string
		block, iter int
	}{{"dense", 0, 0}, {"magnitude", 0, 0}, {"wanda", 0, 0}, {"nowag-p", 0, 0}, {"sparsegpt", 0, 0},
		{"armor", 4, 30}, {"armor-fast", 8, 10}, {"armor-fast", 12, 5}, {"armor-fast-h", 8, 5}} {
		t.Run(c.method, func(t *testing.T) {
			out := filepath.Join(dir, c.method+".armor")
			rep, err := Convert(m, seqs, out, ConvertOptions{Method: c.method, Block: c.block, Iters: c.iter, DType: tensor.F32, Threads: 2, Seed: 1, RefineRounds: 2})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(out + ".parts"); !os.IsNotExist(err) {
				t.Errorf("checkpoint folder left behind: %v", err)
			}
			ld, err := runtime.Open(out, "", true)
			if err != nil {
				t.Fatal(err)
			}
			defer ld.Close()
			if len(rep.Layers) != 35 || rep.CalibTokens != 2048 {
				t.Fatalf("%d layers, %d calibration tokens", len(rep.Layers), rep.CalibTokens)
			}
			hdr := ld.Model.Armor
			if hdr.Provenance["method"] != c.method {
				t.Errorf("provenance %v", hdr.Provenance)
			}
			var wrap int64
			for _, lr := range rep.Layers {
				name := lr.Name
				W := toMatrix(m.Tensors[name+".weight"])
				got := densifyFile(t, ld.Model, name)
				loss, err := ProxyLoss(W, st.H[name], got)
				if err != nil {
					t.Fatal(err)
				}
				if e := math.Abs(loss - lr.ProxyLoss); e > 1e-5*max(lr.ProxyLoss, 1e-3) {
					t.Fatalf("%s: proxy loss of the stored layer %v, reported %v", name, loss, lr.ProxyLoss)
				}
				if hl := hdr.Layers[name]; hl.ProxyLoss != lr.ProxyLoss || hl.NoWagPLoss != lr.NoWagPLoss {
					t.Fatalf("%s: header records %+v, report %+v", name, hl, lr)
				}
				switch c.method {
				case "dense":
					if lr.ProxyLoss > 1e-20 || lr.Kind != "dense" {
						t.Fatalf("%s: dense layer has proxy loss %v, kind %s", name, lr.ProxyLoss, lr.Kind)
					}
				case "nowag-p":
					if relErr(lr.ProxyLoss, lr.NoWagPLoss) > 1e-12 {
						t.Fatalf("%s: NoWag-P's loss %v differs from the NoWag-P reference %v", name, lr.ProxyLoss, lr.NoWagPLoss)
					}
				case "sparsegpt", "armor-fast-h":
					// These minimize the output error under the full XXᵀ.
					fl, err := FullHLoss(W, full.Full[name], got)
					if err != nil {
						t.Fatal(err)
					}
					if e := math.Abs(fl - lr.FullHLoss); !(fl > 0) || e > 1e-5*max(fl, 1e-3) {
						t.Fatalf("%s: full-Hessian loss of the stored layer %v, reported %v", name, fl, lr.FullHLoss)
					}
					if c.method == "armor-fast-h" {
						fullH[name] = lr.FullHLoss
					} else {
						sgpt[name] = lr.FullHLoss
					}
				case "armor", "armor-fast":
					if !(lr.ProxyLoss <= lr.NoWagPLoss*(1+1e-12)) {
						t.Fatalf("%s: %s proxy loss %v above NoWag-P's %v", name, c.method, lr.ProxyLoss, lr.NoWagPLoss)
					}
					if c.method == "armor-fast" && !(lr.ProxyLoss < 0.8*lr.NoWagPLoss) {
						t.Fatalf("%s: armor-fast only reached %v of NoWag-P's %v", name, lr.ProxyLoss, lr.NoWagPLoss)
					}
				}
				if c.method != "dense" && lr.Kind == "dense" {
					t.Fatalf("%s stored dense", name)
				}
				wrap += int64(kernelsBlockDiagLen(lr.Rows, c.block) + kernelsBlockDiagLen(lr.Cols, c.block))
			}
			if c.block > 0 && rep.WrapperParams != wrap {
				t.Fatalf("wrapper parameters %d, want %d", rep.WrapperParams, wrap)
			}
			// The converted model runs and predicts text better than chance.
			st, _ := ld.Tr.NewState(128)
			logits, err := st.Forward(seqs[0], true)
			if err != nil {
				t.Fatal(err)
			}
			nll := 0.0
			V := m.Config.Vocab
			for i := 0; i+1 < len(seqs[0]); i++ {
				row := logits[i*V : (i+1)*V]
				mx := slices.Max(row)
				z := 0.0
				for _, v := range row {
					z += math.Exp(float64(v - mx))
				}
				nll += math.Log(z) - float64(row[seqs[0][i+1]]-mx)
			}
			ppl := math.Exp(nll / float64(len(seqs[0])-1))
			t.Logf("%s: mean proxy loss %.4f (%.3f × NoWag-P), perplexity on one sequence %.2f, wrappers %.1f %%", c.method, rep.MeanProxyLoss, rep.MeanRelNoWagP, ppl, 100*rep.WrapperOverhead)
			if !(ppl < float64(V)/2) { // chance is V
				t.Fatalf("perplexity %v", ppl)
			}
		})
	}
}

func kernelsBlockDiagLen(n, b int) int {
	if b == 0 {
		return 0
	}
	m := (n + b - 1) / b
	r := n - (m-1)*b
	return (m-1)*b*b + r*r
}

// The dense method in f32 reproduces the source model's logits exactly.
func TestConvertDenseIsExact(t *testing.T) {
	m, seqs := smallCalib(t)
	out := filepath.Join(t.TempDir(), "d.armor")
	if _, err := Convert(m, nil, out, ConvertOptions{Method: "dense", DType: tensor.F32}); err != nil {
		t.Fatal(err)
	}
	ld, err := runtime.Open(out, "", true)
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	ref, err := runtime.New(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	sa, _ := ld.Tr.NewState(128)
	sb, _ := ref.NewState(128)
	a, _ := sa.Forward(seqs[1], true)
	b, _ := sb.Forward(seqs[1], true)
	if !slices.Equal(a, b) {
		t.Fatal("dense f32 conversion changes the logits")
	}
}

// Interrupting a conversion leaves no output; --resume finishes it from the
// checkpoints, with the same result as an uninterrupted run; a corrupted
// checkpoint is recomputed, not trusted.
func TestConvertResume(t *testing.T) {
	m, seqs := smallCalib(t)
	dir := t.TempDir()
	opt := ConvertOptions{Method: "armor-fast", Block: 8, Iters: 3, DType: tensor.F16, Threads: 2}
	whole := filepath.Join(dir, "whole.armor")
	if _, err := Convert(m, seqs, whole, opt); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.armor")
	ctx, cancel := context.WithCancel(context.Background())
	o := opt
	o.Ctx = ctx
	o.Progress = func(p Progress) {
		if p.Stage == "layer" && p.Done >= 10 {
			cancel()
		}
	}
	if _, err := Convert(m, seqs, out, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted conversion: %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatal("an interrupted conversion left an output file")
	}
	ckpts, _ := filepath.Glob(filepath.Join(out+".parts", "*.ckpt"))
	if len(ckpts) < 10 {
		t.Fatalf("%d checkpoints after 10 layers", len(ckpts))
	}
	// Corrupt one checkpoint: it must be redone.
	b, _ := os.ReadFile(ckpts[0])
	b[len(b)/2] ^= 0x40
	os.WriteFile(ckpts[0], b, 0o644)
	o = opt
	o.Resume = true
	rep, err := Convert(m, seqs, out, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Resumed != len(ckpts)-1 {
		t.Fatalf("resumed %d layers, want %d", rep.Resumed, len(ckpts)-1)
	}
	a, err := model.Load(whole)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(a.Tensors) != len(r.Tensors) {
		t.Fatalf("%d tensors, uninterrupted %d", len(r.Tensors), len(a.Tensors))
	}
	for n, ta := range a.Tensors {
		if tr := r.Tensors[n]; tr == nil || !slices.Equal(ta.Data, tr.Data) {
			t.Fatalf("tensor %s differs between the resumed and the uninterrupted run", n)
		}
	}
	// Checkpoints made with other options are not reused.
	o.Resume, o.Iters = true, 4
	o.Ctx, cancel = context.WithCancel(context.Background())
	o.Progress = func(p Progress) {
		if p.Stage == "layer" && p.Done >= 3 {
			cancel()
		}
	}
	Convert(m, seqs, out+"2", o)
	o.Iters, o.Ctx, o.Progress = 3, nil, nil
	if rep, err := Convert(m, seqs, out+"2", o); err != nil || rep.Resumed != 0 {
		t.Fatalf("checkpoints of --iters 4 reused for --iters 3: %d layers (%v)", rep.Resumed, err)
	}
}

// Sequential calibration: block 0 sees the same inputs as in the one-pass
// calibration (nothing precedes it), later blocks see the pruned model.
func TestConvertSequential(t *testing.T) {
	m, seqs := smallCalib(t)
	dir := t.TempDir()
	one, err := Convert(m, seqs, filepath.Join(dir, "a.armor"), ConvertOptions{Method: "nowag-p", DType: tensor.F32})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := Convert(m, seqs, filepath.Join(dir, "b.armor"), ConvertOptions{Method: "nowag-p", DType: tensor.F32, Sequential: true})
	if err != nil {
		t.Fatal(err)
	}
	by := func(r *Report) map[string]LayerReport {
		out := map[string]LayerReport{}
		for _, l := range r.Layers {
			out[l.Name] = l
		}
		return out
	}
	a, b := by(one), by(seq)
	for _, n := range model.LayerLinears(0) {
		if a[n].ProxyLoss != b[n].ProxyLoss {
			t.Fatalf("%s: block 0 differs under sequential calibration: %v vs %v", n, a[n].ProxyLoss, b[n].ProxyLoss)
		}
	}
	differ := 0
	for l := 1; l < m.Config.Layers; l++ {
		for _, n := range model.LayerLinears(l) {
			if a[n].ProxyLoss != b[n].ProxyLoss {
				differ++
			}
		}
	}
	if differ == 0 {
		t.Fatal("sequential calibration changed nothing after block 0")
	}
}

func TestConvertBadInput(t *testing.T) {
	m, seqs := smallCalib(t)
	dir := t.TempDir()
	sparse := filepath.Join(dir, "sparse.armor")
	if _, err := Convert(m, seqs, sparse, ConvertOptions{Method: "magnitude", DType: tensor.F16}); err != nil {
		t.Fatal(err)
	}
	sm, err := model.Load(sparse)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	out := filepath.Join(dir, "out.armor")
	for _, c := range []struct {
		src  *model.Model
		seqs [][]int
		out  string
		opt  ConvertOptions
		want string
	}{
		{m, seqs, out, ConvertOptions{Method: "armor", Block: 6}, "not a positive multiple of 4"},
		{m, seqs, out, ConvertOptions{Method: "armor-fast", Block: 64}, "larger than linear blk.0.attn_k (32×64): use a block size of at most 32"},
		{m, seqs, out, ConvertOptions{Method: "armor-fast", Block: 128}, "block size 128 is larger"},
		{m, nil, out, ConvertOptions{Method: "wanda"}, "needs calibration text"},
		{m, seqs, out, ConvertOptions{Method: "obs"}, "unknown method"},
		{m, seqs, out, ConvertOptions{Method: "wanda", DType: tensor.Q8_0}, "cannot be stored"},
		{m, seqs, filepath.Join(dir, "no", "such", "dir", "x.armor"), ConvertOptions{Method: "wanda"}, "the directory " + filepath.Join(dir, "no", "such", "dir") + " does not exist"},
		{m, seqs, dir, ConvertOptions{Method: "wanda"}, "is a directory"},
		{sm, seqs, out, ConvertOptions{Method: "wanda"}, "stored as sparse24; conversion needs the dense weights"},
		{m, [][]int{make([]int, m.Config.Context+1)}, out, ConvertOptions{Method: "wanda"}, "exceed the model's context"},
	} {
		_, err := Convert(c.src, c.seqs, c.out, c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", c.opt, err, c.want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatalf("%+v: output written", c.opt)
		}
	}
}

// A Hugging Face checkpoint of Qwen2's kind (q/k/v biases, untied output
// head, bf16 weights) with block sizes that leave ragged last blocks: the
// converted file keeps the biases and the head, and runs like the densified
// factorization it stores.
func TestConvertHFQwen2(t *testing.T) {
	c := model.Config{Arch: "qwen2", Dim: 48, Hidden: 72, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 12, Vocab: 64, Context: 64,
		NormEps: 1e-6, RopeTheta: 10000, RopeHalves: true, Tied: false, QKBias: true}
	dir := t.TempDir()
	if err := synth.WriteHF(filepath.Join(dir, "hf"), c, tensor.BF16, 5); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(filepath.Join(dir, "hf"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rng := newRng(8)
	seqs := make([][]int, 8)
	for i := range seqs {
		for j := 0; j < 32; j++ {
			seqs[i] = append(seqs[i], rng.IntN(c.Vocab))
		}
	}
	out := filepath.Join(dir, "q.armor")
	// b = 20 divides none of 24, 48, 72.
	if _, err := Convert(m, seqs, out, ConvertOptions{Method: "armor-fast", Block: 20, Iters: 5, DType: tensor.F32}); err != nil {
		t.Fatal(err)
	}
	ld, err := runtime.Open(out, "", false)
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	cm := ld.Model
	for _, n := range []string{"output.weight", "blk.1.attn_q.bias", "blk.0.attn_v.bias", "output_norm.weight"} {
		if cm.Tensors[n] == nil || !slices.Equal(cm.Tensors[n].ToF32(), m.Tensors[n].ToF32()) {
			t.Fatalf("tensor %s not copied", n)
		}
	}
	dense, err := runtime.New(cm, func(mm *model.Model, name string) (runtime.Linear, error) {
		if _, ok := cm.Armor.Linears[name]; !ok {
			return runtime.DenseBuilder(mm, name)
		}
		rows, cols := shapeOf(cm, name)
		W := densifyFile(t, cm, name)
		f := make([]float32, len(W))
		for i, v := range W {
			f[i] = float32(v)
		}
		wt := &tensor.Tensor{Name: name + ".weight", DType: tensor.F32, Shape: []int{rows, cols}, Data: synth.Encode(f, tensor.F32)}
		return runtime.NewDense(wt, cm.Tensors[name+".bias"])
	})
	if err != nil {
		t.Fatal(err)
	}
	sa, _ := ld.Tr.NewState(32)
	sb, _ := dense.NewState(32)
	la, err := sa.Forward(seqs[0], true)
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := sb.Forward(seqs[0], true)
	var num, den float64
	for i := range la {
		num += float64(la[i]-lb[i]) * float64(la[i]-lb[i])
		den += float64(lb[i]) * float64(lb[i])
	}
	if rel := math.Sqrt(num / den); !(rel < 1e-4) {
		t.Fatalf("converted model's logits differ from its densified layers by %g", rel)
	}
}

// Collecting the full XXᵀ one block per calibration pass (to bound memory)
// gives exactly the statistics of the single pass.
func TestConvertFullPerBlock(t *testing.T) {
	m, seqs := smallCalib(t)
	dir := t.TempDir()
	var reps [2]*Report
	for i, budget := range []int64{0, -1} {
		passes := 0
		var err error
		reps[i], err = Convert(m, seqs, filepath.Join(dir, fmt.Sprint(i, ".armor")), ConvertOptions{Method: "sparsegpt", DType: tensor.F32, FullBudget: budget,
			Progress: func(p Progress) {
				if p.Stage == "calibrate" && p.Done == p.Total {
					passes++
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{1, m.Config.Layers}[i]; passes != want {
			t.Fatalf("budget %d: %d calibration passes, want %d", budget, passes, want)
		}
	}
	for k, l := range reps[0].Layers {
		if l.ProxyLoss != reps[1].Layers[k].ProxyLoss || l.FullHLoss != reps[1].Layers[k].FullHLoss || !(l.FullHLoss > 0) {
			t.Fatalf("%s: one pass %+v, per block %+v", l.Name, l, reps[1].Layers[k])
		}
	}
	if fullBytes(m.Config) != 8*5*(64*64*3+172*172) {
		t.Fatalf("fullBytes(stories260K) = %d", fullBytes(m.Config))
	}
}
