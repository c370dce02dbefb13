package convert

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/mmap"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
)

// Assembling the .armor file from the converted layers (held in memory or
// in their checkpoints) and the source's other tensors.

// ones, in the form runtime.ArmorFileBuilder builds from.
func convertedView(src *model.Model, results map[string]*layerOut) *model.Model {
	v := &model.Model{Path: src.Path, Format: "armor", Config: src.Config, Tensors: map[string]*tensor.Tensor{}, Vocab: src.Vocab}
	for k, t := range src.Tensors {
		v.Tensors[k] = t
	}
	hdr := &model.ArmorHeader{Linears: map[string]model.ArmorLinear{}}
	for n, lo := range results {
		hdr.Linears[n] = lo.Linear
		for _, p := range lo.Parts {
			dt, _ := tensor.ParseDType(p.DType)
			v.Tensors[p.Name] = &tensor.Tensor{Name: p.Name, DType: dt, Shape: p.Shape, Data: p.Data}
		}
	}
	v.Armor = hdr
	return v
}

// buildSpec assembles the file: converted linears, every other tensor of
// src copied (vectors in F32, matrices in the chosen dtype), and the report.
func buildSpec(src *model.Model, results map[string]*layerOut, names []string, opt ConvertOptions, rep *Report) (*model.ArmorSpec, error) {
	spec := &model.ArmorSpec{Config: src.Config, Linears: map[string]model.ArmorLinear{}, Layers: map[string]model.LayerResult{}}
	if src.Vocab != nil {
		v, err := src.Vocab.Embedded(src.Config.Vocab)
		if err != nil {
			return nil, fmt.Errorf("convert: %s: %w", src.Path, err)
		}
		spec.Vocab = v
	}
	cache := &ckptCache{}
	linear := map[string]bool{}
	for _, n := range names {
		linear[n+".weight"] = true
	}
	var other []string
	for k := range src.Tensors {
		if !linear[k] {
			other = append(other, k)
		}
	}
	slices.Sort(other)
	// Embedding first, then the blocks, then the rest, as GGUF orders them.
	slices.SortStableFunc(other, func(a, b string) int { return tensorRank(a) - tensorRank(b) })
	for _, k := range other {
		t := src.Tensors[k]
		dt := opt.DType
		if len(t.Shape) < 2 || t.Elements() == t.Shape[len(t.Shape)-1] {
			dt = tensor.F32 // norms, biases, rope factors
		}
		spec.Parts = append(spec.Parts, model.ArmorPart{Name: k, DType: dt, Shape: slices.Clone(t.Shape), Data: func() ([]byte, error) {
			if t.DType == dt {
				// The source's bytes as they are: no float32 copy of a
				// gigabyte embedding (the writer evicts them after use).
				return t.Data, nil
			}
			b := synth.Encode(t.ToF32(), dt)
			mmap.Evict(t.Data)
			return b, nil
		}})
		bytes, _ := tensor.ByteSize(dt, int64(t.Elements()))
		rep.WeightBytes += bytes
	}
	var sumLoss, sumRel float64
	nRel := 0
	for _, n := range names {
		lo := results[n]
		if lo == nil {
			return nil, fmt.Errorf("convert: layer %s was not converted", n)
		}
		spec.Linears[n] = lo.Linear
		for i, p := range lo.Parts {
			dt, ok := tensor.ParseDType(p.DType)
			if !ok {
				return nil, fmt.Errorf("convert: layer %s: bad dtype %q", n, p.DType)
			}
			spec.Parts = append(spec.Parts, model.ArmorPart{Name: p.Name, DType: dt, Shape: p.Shape, Data: func() ([]byte, error) {
				if p.Data != nil {
					return p.Data, nil
				}
				full, err := cache.load(opt.PartsDir, n, lo.Key)
				if err != nil {
					return nil, err
				}
				return full.Parts[i].Data, nil
			}})
		}
		r := lo.Report
		// No wall-clock times in the file: the same inputs give the same
		// bytes, whether one process or many shards converted the layers
		// (times are in the report).
		spec.Layers[n] = model.LayerResult{Method: opt.Method, ProxyLoss: r.ProxyLoss, NoWagPLoss: r.NoWagPLoss, Iters: r.Iters}
		rep.Layers = append(rep.Layers, r)
		rep.DenseParams += int64(r.Rows * r.Cols)
		rep.StoredParams += r.Params
		rep.WrapperParams += r.WrapParams
		rep.LinearBytes += r.Bytes
		rep.WeightBytes += r.Bytes
		sumLoss += r.ProxyLoss
		if r.NoWagPLoss > 0 {
			sumRel += r.ProxyLoss / r.NoWagPLoss
			nRel++
		}
	}
	if rep.DenseParams > 0 {
		rep.WrapperOverhead = float64(rep.WrapperParams) / float64(rep.DenseParams)
	}
	if len(names) > 0 {
		rep.MeanProxyLoss = sumLoss / float64(len(names))
	}
	if nRel > 0 {
		rep.MeanRelNoWagP = sumRel / float64(nRel)
	}
	prov := map[string]any{"method": opt.Method, "source": filepath.Base(src.Path), "dtype": opt.DType.String(),
		"calib_tokens": rep.CalibTokens, "calib_sequences": rep.CalibSequences, "seed": opt.Seed}
	if isArmor(opt.Method) {
		prov["block"], prov["iters"] = opt.Block, opt.Iters
	}
	if opt.Sequential {
		prov["sequential"] = true
	}
	if n := opt.seqShards(); n > 0 {
		// The blocks at the start of each later shard saw dense inputs.
		prov["sequential_shards"] = n
	}
	for k, v := range opt.Provenance {
		prov[k] = v
	}
	spec.Provenance = prov
	return spec, nil
}

// tensorRank orders the non-linear tensors: embedding, blocks, the rest.
func tensorRank(name string) int {
	switch {
	case strings.HasPrefix(name, "token_embd"):
		return 0
	case strings.HasPrefix(name, "blk."):
		return 1
	}
	return 2
}
