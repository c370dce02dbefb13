package runtime

// The builders that turn a model's tensors into linear layers (dense, 2:4,
// ARMOR), and the cache of column panels they share.

import (
	"fmt"
	"sync"

	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/mmap"
	"github.com/armor-llm/armor/model/tensor"
)

// LinearBuilder makes the Linear for a canonical weight name (without
// ".weight"), e.g. "blk.3.attn_q". The default builds Dense layers.
type LinearBuilder func(m *model.Model, name string) (Linear, error)

// DenseBuilder builds a Dense layer from name.weight and name.bias.
func DenseBuilder(m *model.Model, name string) (Linear, error) {
	w := m.Tensors[name+".weight"]
	if w == nil {
		return nil, fmt.Errorf("tensor %s.weight is missing", name)
	}
	bias := m.Tensors[name+".bias"]
	if p, ok := paneled.Load(w); ok {
		// Panels built by an earlier transformer over this model: w's rows
		// were given back, so there is nothing to read from it again.
		d := &Dense{W: *p.(*kernels.Dense)}
		if err := d.setBias(bias); err != nil {
			return nil, err
		}
		return d, nil
	}
	d, err := NewDense(w, bias)
	if err != nil || w == m.Tensors["token_embd.weight"] {
		// A tied output head shares the embedding table, which the
		// forward pass reads by rows: it stays as it is.
		return d, err
	}
	d.W = *panelize(m, &d.W, d.W.Panelize, w)
	return d, nil
}

// builderFor picks how linear layers are built from the file's tensors.
func builderFor(m *model.Model) LinearBuilder {
	if m.Format == "armor" {
		return ArmorFileBuilder(m)
	}
	return DenseBuilder
}

// u16 views (or, when unaligned, copies) f16/bf16 tensor data.
func u16(t *tensor.Tensor) []uint16 {
	if v, ok := t.U16View(); ok {
		return v
	}
	out := make([]uint16, len(t.Data)/2)
	for i := range out {
		out[i] = uint16(t.Data[2*i]) | uint16(t.Data[2*i+1])<<8
	}
	return out
}

// values fills the value slice of a kernel matrix from t.
func values(t *tensor.Tensor) (kernels.DType, []float32, []uint16, error) {
	switch t.DType {
	case tensor.F32:
		return kernels.F32, t.ToF32(), nil, nil
	case tensor.F16:
		return kernels.F16, nil, u16(t), nil
	case tensor.BF16:
		return kernels.BF16, nil, u16(t), nil
	}
	return 0, nil, nil, fmt.Errorf("tensor %s: dtype %v cannot hold packed weights", t.Name, t.DType)
}

// NewSparse24 builds the kernels' 2:4 matrix from NAME.s24_values
// [rows, cols/2] and NAME.s24_idx [rows, ceil(cols/8)] (U8).
func NewSparse24(vals, idx *tensor.Tensor, cols int) (*kernels.Sparse24, error) {
	if len(vals.Shape) != 2 || vals.Shape[1]*2 != cols {
		return nil, fmt.Errorf("tensor %s: shape %v does not hold %d columns of 2:4 values", vals.Name, vals.Shape, cols)
	}
	rows := vals.Shape[0]
	if idx.DType != tensor.U8 || idx.Elements() != rows*kernels.IdxStride(cols) {
		return nil, fmt.Errorf("tensor %s: %v %v, want U8 [%d %d]", idx.Name, idx.DType, idx.Shape, rows, kernels.IdxStride(cols))
	}
	dt, f, h, err := values(vals)
	if err != nil {
		return nil, err
	}
	s := &kernels.Sparse24{DType: dt, Rows: rows, Cols: cols, F32: f, U16: h, Idx: idx.Data}
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("tensor %s: %w", vals.Name, err)
	}
	return s, nil
}

// paneled holds the panels built from a weights tensor whose rows were
// given back, so that another transformer over the same open model reuses
// them.
var paneled sync.Map // *tensor.Tensor → *kernels.Sparse24 or *kernels.Dense

// paneledOrNew is NewSparse24 followed by panelize, or the panels built
// before from the same tensors.
func paneledOrNew(m *model.Model, vals, idx *tensor.Tensor, cols int) (*kernels.Sparse24, error) {
	if p, ok := paneled.Load(vals); ok {
		return p.(*kernels.Sparse24), nil
	}
	s, err := NewSparse24(vals, idx, cols)
	if err != nil {
		return nil, err
	}
	return panelize(m, s, s.Panelize, vals, idx), nil
}

// panelize stores a wide matrix in column panels (kernels.Sparse24.Panelize
// and kernels.Dense.Panelize: their GEMVs are faster, see
// docs/benchmarks.md, "Kernel design choices") when the file
// was copied into memory: the panels go to huge-page memory freed with the
// model, and the row-major copy's pages are given back, so memory does not
// grow. A mapped file is used in place, as --mmap yes asks. cut is the
// matrix's Panelize; from are the tensors it was read from.
func panelize[T comparable](m *model.Model, s T, cut func(func(int) []byte) T, from ...*tensor.Tensor) T {
	for _, t := range from {
		if !mmap.Private(t.Data) {
			return s
		}
	}
	p := cut(modelMemory(m))
	if p != s {
		for _, t := range from {
			mmap.Release(t.Data)
		}
		paneled.Store(from[0], p)
		m.OnClose(func() error { paneled.Delete(from[0]); return nil })
	}
	return p
}

// modelMemory allocates huge-page memory that is freed with m.
func modelMemory(m *model.Model) func(n int) []byte {
	return func(n int) []byte {
		b, free, err := mmap.Anon(n)
		if err != nil {
			return make([]byte, n)
		}
		m.OnClose(free)
		return b
	}
}

// NewBlockDiag builds an n × n block-diagonal matrix of block b from t.
func NewBlockDiag(t *tensor.Tensor, n, b int) (*kernels.BlockDiag, error) {
	if t.Elements() != kernels.BlockDiagLen(n, b) {
		return nil, fmt.Errorf("tensor %s: %d values, want %d for %d×%d with blocks of %d", t.Name, t.Elements(), kernels.BlockDiagLen(n, b), n, n, b)
	}
	dt, f, h, err := values(t)
	if err != nil {
		return nil, err
	}
	d := &kernels.BlockDiag{DType: dt, N: n, B: b, F32: f, U16: h}
	if err := d.Check(); err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	return d, nil
}

// ArmorFileBuilder builds the linear layers of an .armor model by the kind
// its header records for each.
func ArmorFileBuilder(m *model.Model) LinearBuilder {
	hdr := m.Armor
	return func(m *model.Model, name string) (Linear, error) {
		kind := model.ArmorLinear{Kind: "dense"}
		if hdr != nil {
			if k, ok := hdr.Linears[name]; ok {
				kind = k
			}
		}
		if kind.Kind == "dense" {
			return DenseBuilder(m, name)
		}
		rows, cols := linearShape(m, name)
		if rows == 0 {
			return nil, fmt.Errorf("linear %s: unknown shape", name)
		}
		vals, idx := m.Tensors[name+".s24_values"], m.Tensors[name+".s24_idx"]
		if vals == nil || idx == nil {
			return nil, fmt.Errorf("linear %s (%s): tensors %s.s24_values and %s.s24_idx are required", name, kind.Kind, name, name)
		}
		core, err := paneledOrNew(m, vals, idx, cols)
		if err != nil {
			return nil, err
		}
		if core.Rows != rows {
			return nil, fmt.Errorf("linear %s: %d rows, want %d", name, core.Rows, rows)
		}
		var bias []float32
		if b := m.Tensors[name+".bias"]; b != nil {
			if b.Elements() != rows {
				return nil, fmt.Errorf("tensor %s: %d elements, want %d", b.Name, b.Elements(), rows)
			}
			bias = b.ToF32()
		}
		if kind.Kind == "sparse24" {
			return &Sparse{W: *core, Bias: bias}, nil
		}
		pre, post := m.Tensors[name+".pre"], m.Tensors[name+".post"]
		if pre == nil || post == nil {
			return nil, fmt.Errorf("linear %s (armor): tensors %s.pre and %s.post are required", name, name, name)
		}
		bp, err := NewBlockDiag(pre, cols, kind.Block)
		if err != nil {
			return nil, err
		}
		bq, err := NewBlockDiag(post, rows, kind.Block)
		if err != nil {
			return nil, err
		}
		a := &kernels.Armor{Pre: bp, Core: core, Post: bq, Bias: bias}
		if err := a.Check(); err != nil {
			return nil, fmt.Errorf("linear %s: %w", name, err)
		}
		return &Armor{L: a}, nil
	}
}

// linearShape gives [d_out, d_in] of a canonical linear name.
func linearShape(m *model.Model, name string) (int, int) {
	c := m.Config
	if name == "output" || name == "token_embd" {
		return c.Vocab, c.Dim
	}
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '.' {
			return c.LinearShape(name[i+1:])
		}
	}
	return 0, 0
}
