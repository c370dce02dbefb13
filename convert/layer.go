package convert

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
)

// convertLayer prunes or factorizes one linear layer by opt.Method, and
// measures it: proxy loss (with NoWag-P's for comparison) when h is given,
// full-XXᵀ loss when full is.
//
// With sweeps set, armor-fast checkpoints its iterate there every few
// minutes and, under opt.Resume, continues from the one found there.
func convertLayer(ctx context.Context, src *model.Model, name string, h, full []float64, opt ConvertOptions, threads int, sweeps *sweepFile, progress func(int, float64)) (*layerOut, error) {
	t0 := time.Now()
	m := methodByName(opt.Method)
	if m == nil {
		return nil, fmt.Errorf("convert: unknown method %q", opt.Method)
	}
	w := toMatrix(src.Tensors[name+".weight"])
	rows, cols := w.Rows, w.Cols
	dt := opt.DType
	lo := &layerOut{Report: LayerReport{Name: name, Rows: rows, Cols: cols}}
	wrap := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("convert: %s (%s): %w", name, opt.Method, err)
	}
	var nowag float64
	if h != nil {
		np, err := NoWagP(w, h)
		if err != nil {
			return nil, wrap(err)
		}
		if nowag, err = ProxyLoss(w, h, np.W); err != nil {
			return nil, wrap(err)
		}
	}
	job := &layerJob{w: w, h: h, full: full, opt: opt,
		options: Options{Block: opt.Block, Iters: opt.Iters, RTol: opt.Tol, Seed: opt.Seed, Threads: threads, Progress: progress, Ctx: ctx}}
	if sweeps != nil {
		if opt.Resume {
			job.options.resume = sweeps.load()
		}
		job.options.checkpoint = sweeps.save
		job.options.checkpointEvery = opt.SweepCheckpoint
	}
	var approx []float64 // the layer's weights as converted, for the losses
	switch {
	case m.factor != nil:
		w = Matrix{} // the job may hand the weights over (takeW)
		f, err := m.factor(job)
		if err != nil {
			return nil, wrap(err)
		}
		if w = job.w; w.Data == nil {
			w = toMatrix(src.Tensors[name+".weight"])
		}
		d := f.Deployed()
		parts, err := encode24(name, d.S, rows, cols, dt)
		if err != nil {
			return nil, err
		}
		pre, post := flatBlocks(d.B), flatBlocks(d.A)
		lo.Parts = append(parts,
			part{Name: name + ".pre", DType: dt.String(), Shape: []int{len(pre)}, Data: encode(pre, dt)},
			part{Name: name + ".post", DType: dt.String(), Shape: []int{len(post)}, Data: encode(post, dt)})
		lo.Linear = model.ArmorLinear{Kind: "armor", Block: opt.Block}
		lo.Report.Iters = f.Iters
		if r := job.options.resume; r != nil && f.History[0].Iter == r.Iters {
			lo.Report.ResumedSweeps = r.Iters
		}
		lo.Report.MulAdds = f.MulAdds
		lo.Report.ProductGFLOPS = f.ProductGFLOPS
		lo.Report.WrapParams = int64(len(pre) + len(post))
		lo.Report.Params = int64(rows*cols/2) + lo.Report.WrapParams
		approx = f.Dense()
	case m.prune != nil:
		s24, err := m.prune(job)
		if err != nil {
			return nil, wrap(err)
		}
		if lo.Parts, err = encode24(name, s24.W, rows, cols, dt); err != nil {
			return nil, err
		}
		lo.Linear = model.ArmorLinear{Kind: "sparse24"}
		lo.Report.Params = int64(rows * cols / 2)
		approx = s24.W
	default: // dense
		lo.Linear = model.ArmorLinear{Kind: "dense"}
		lo.Parts = []part{{Name: name + ".weight", DType: dt.String(), Shape: []int{rows, cols}, Data: encode(w.Data, dt)}}
		lo.Report.Params = int64(rows * cols)
		approx = w.Data
	}
	lo.Report.Kind = lo.Linear.Kind
	for _, p := range lo.Parts {
		lo.Report.Bytes += int64(len(p.Data))
	}
	if h != nil {
		loss, err := ProxyLoss(w, h, approx)
		if err != nil {
			return nil, wrap(err)
		}
		lo.Report.ProxyLoss, lo.Report.NoWagPLoss = loss, nowag
	}
	if full != nil {
		var err error
		if lo.Report.FullHLoss, err = FullHLoss(w, full, approx); err != nil {
			return nil, wrap(err)
		}
	}
	lo.Report.Seconds = time.Since(t0).Seconds()
	if lo.Report.MulAdds > 0 && lo.Report.Seconds > 0 {
		lo.Report.GFLOPS = 2 * float64(lo.Report.MulAdds) / lo.Report.Seconds / 1e9
	}
	return lo, nil
}

// toMatrix reads a weight tensor in float64.
func toMatrix(t *tensor.Tensor) Matrix {
	f := t.ToF32()
	w := Matrix{Rows: t.Shape[0], Cols: t.Shape[1], Data: make([]float64, len(f))}
	for i, v := range f {
		w.Data[i] = float64(v)
	}
	return w
}

func encode(v []float64, dt tensor.DType) []byte {
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return synth.Encode(f, dt)
}

// encode24 packs a 2:4 matrix (zeros off the mask) into the kernels' layout.
func encode24(name string, s []float64, rows, cols int, dt tensor.DType) ([]part, error) {
	kd, _ := dt.Kernel()
	f := make([]float32, len(s))
	for i, x := range s {
		f[i] = float32(x)
	}
	p, err := kernels.Pack24(f, rows, cols, kd)
	if err != nil {
		return nil, fmt.Errorf("convert: %s: %w", name, err)
	}
	var vals []byte
	if p.DType == kernels.F32 {
		vals = synth.Encode(p.F32, tensor.F32)
	} else {
		vals = make([]byte, 2*len(p.U16))
		for i, u := range p.U16 {
			binary.LittleEndian.PutUint16(vals[2*i:], u)
		}
	}
	return []part{
		{Name: name + ".s24_values", DType: dt.String(), Shape: []int{rows, cols / 2}, Data: vals},
		{Name: name + ".s24_idx", DType: tensor.U8.String(), Shape: []int{rows, kernels.IdxStride(cols)}, Data: p.Idx},
	}, nil
}

func flatBlocks(blocks [][]float64) []float64 {
	var out []float64
	for _, b := range blocks {
		out = append(out, b...)
	}
	return out
}
