package cuda

import (
	"errors"
	"fmt"

	"github.com/armor-llm/armor/kernels"
)

// Layer is a linear layer whose weights live on the device: dense (one
// cublasGemmEx), 2:4 (cuSPARSELt) or ARMOR (block-diagonal Pre as batched
// cuBLAS GEMMs, the 2:4 core through cuSPARSELt, Post likewise). Forward
// takes and returns host f32 activations (token-major, n × In / n × Out);
// on the device they are 16-bit, with f32 accumulation in every product.
// A Layer is not safe for concurrent Forward calls (it reuses its buffers).
type Layer struct {
	d        *Device
	In, Out  int
	dt       kernels.DType
	vt       int32
	dense    *Buffer
	pre      *Buffer
	post     *Buffer
	preGemm  func(n int) []Gemm
	postGemm func(n int) []Gemm
	core     *Sparse
	Bias     []float32

	cap        int // columns the activation buffers hold
	x, t, u, y *Buffer
	hx, hy     []uint16
}

func to16(dst []uint16, src []float32, dt kernels.DType) {
	for i, v := range src {
		dst[i] = fromF32(v, dt)
	}
}

// values16 returns a matrix's values in dt.
func values16(f32 []float32, u16 []uint16, from, dt kernels.DType) []uint16 {
	if from == dt {
		return u16
	}
	out := make([]uint16, max(len(f32), len(u16)))
	if from == kernels.F32 {
		to16(out, f32, dt)
		return out
	}
	for i, h := range u16 {
		out[i] = fromF32(toF32(h, from), dt)
	}
	return out
}

func (d *Device) upload(v []uint16) (*Buffer, error) {
	b, err := d.Alloc(int64(2 * len(v)))
	if err != nil {
		return nil, err
	}
	if err := b.Upload(0, v); err != nil {
		b.Free()
		return nil, err
	}
	return b, nil
}

// NewDenseLayer puts a dense Out × In weight (and optional bias, applied on
// the host) on the device in dt (F16 or BF16).
func (d *Device) NewDenseLayer(w *kernels.Dense, bias []float32, dt kernels.DType) (*Layer, error) {
	if err := w.Check(); err != nil {
		return nil, err
	}
	if w.PanelCols() > 0 {
		return nil, fmt.Errorf("cuda: dense weight %d×%d is in column panels, not the row-major layout the device reads", w.Rows, w.Cols)
	}
	vt, err := cudaType(dt)
	if err != nil {
		return nil, err
	}
	l := &Layer{d: d, In: w.Cols, Out: w.Rows, dt: dt, vt: vt, Bias: bias}
	if l.dense, err = d.upload(values16(w.F32, w.U16, w.DType, dt)); err != nil {
		return nil, err
	}
	return l, nil
}

// NewArmorLayer puts an ARMOR layer on the device: Pre and Post as
// block-diagonal 16-bit blocks, the core compressed by cuSPARSELt.
func (d *Device) NewArmorLayer(a *kernels.Armor, dt kernels.DType) (*Layer, error) {
	if err := a.Check(); err != nil {
		return nil, err
	}
	vt, err := cudaType(dt)
	if err != nil {
		return nil, err
	}
	l := &Layer{d: d, In: a.In(), Out: a.Out(), dt: dt, vt: vt, Bias: a.Bias}
	if l.core, err = d.NewSparse(a.Core, dt); err != nil {
		return nil, err
	}
	if l.pre, err = d.upload(values16(a.Pre.F32, a.Pre.U16, a.Pre.DType, dt)); err != nil {
		l.Free()
		return nil, err
	}
	if l.post, err = d.upload(values16(a.Post.F32, a.Post.U16, a.Post.DType, dt)); err != nil {
		l.Free()
		return nil, err
	}
	in, out, pb, qb := l.In, l.Out, a.Pre.B, a.Post.B
	l.preGemm = func(n int) []Gemm { g, _ := BlockDiagGemms(in, pb, n, in, in); return g }
	l.postGemm = func(n int) []Gemm { g, _ := BlockDiagGemms(out, qb, n, out, out); return g }
	return l, nil
}

// NewSparseLayer puts a plain 2:4 layer on the device.
func (d *Device) NewSparseLayer(s *kernels.Sparse24, bias []float32, dt kernels.DType) (*Layer, error) {
	vt, err := cudaType(dt)
	if err != nil {
		return nil, err
	}
	l := &Layer{d: d, In: s.Cols, Out: s.Rows, dt: dt, vt: vt, Bias: bias}
	if l.core, err = d.NewSparse(s, dt); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Layer) grow(np int) error {
	if np <= l.cap {
		return nil
	}
	l.freeActs()
	var err error
	alloc := func(elems int) *Buffer {
		if err != nil {
			return nil
		}
		var b *Buffer
		b, err = l.d.Alloc(int64(2 * elems))
		return b
	}
	l.x, l.t, l.u, l.y = alloc(np*l.In), alloc(np*l.In), alloc(np*l.Out), alloc(np*l.Out)
	if err != nil {
		l.freeActs()
		return err
	}
	l.cap = np
	l.hx, l.hy = make([]uint16, np*l.In), make([]uint16, np*l.Out)
	return nil
}

func (l *Layer) freeActs() {
	for _, b := range []*Buffer{l.x, l.t, l.u, l.y} {
		b.Free()
	}
	l.x, l.t, l.u, l.y, l.cap = nil, nil, nil, nil, 0
}

// Forward computes y (n × Out) from x (n × In), token-major f32 on the host.
func (l *Layer) Forward(y, x []float32, n int) error {
	if n <= 0 {
		return nil
	}
	if len(x) < n*l.In || len(y) < n*l.Out {
		return fmt.Errorf("cuda: Layer.Forward: %d tokens need x of %d and y of %d values, have %d and %d", n, n*l.In, n*l.Out, len(x), len(y))
	}
	np := n
	if l.core != nil {
		np = PadCols(n) // cuSPARSELt: column count a multiple of 16
	}
	if err := l.grow(np); err != nil {
		return err
	}
	to16(l.hx[:n*l.In], x[:n*l.In], l.dt)
	clear(l.hx[n*l.In : np*l.In])
	if err := l.x.Upload(0, l.hx[:np*l.In]); err != nil {
		return err
	}
	if err := l.forwardDev(l.y, l.x, n, np); err != nil {
		return err
	}
	if err := l.y.Download(l.hy[:n*l.Out], 0); err != nil {
		return err
	}
	for i, h := range l.hy[:n*l.Out] {
		y[i] = toF32(h, l.dt)
	}
	if l.Bias != nil {
		for t := 0; t < n; t++ {
			for i, b := range l.Bias {
				y[t*l.Out+i] += b
			}
		}
	}
	return nil
}

// ForwardDev computes the layer on device-resident 16-bit activations: x
// holds n tokens × In and y n × Out, token-major (In × n and Out × n column-
// major), without host transfers or bias. For 2:4 and ARMOR layers n must
// be a multiple of 16 (PadCols) and the buffers that large; the layer's own
// scratch holds the intermediate products. For a device-resident forward
// pass.
func (l *Layer) ForwardDev(y, x *Buffer, n int) error {
	np := n
	if l.core != nil {
		if n%16 != 0 {
			return fmt.Errorf("cuda: ForwardDev: %d tokens, want a multiple of 16 for 2:4 layers", n)
		}
	}
	if n <= 0 || x.Size < int64(2*n*l.In) || y.Size < int64(2*n*l.Out) {
		return fmt.Errorf("cuda: ForwardDev: %d tokens need %d and %d bytes, buffers have %d and %d", n, 2*n*l.In, 2*n*l.Out, x.Size, y.Size)
	}
	if err := l.grow(np); err != nil {
		return err
	}
	return l.forwardDev(y, x, n, np)
}

func (l *Layer) forwardDev(y, x *Buffer, n, np int) error {
	return l.d.w.do(func() error {
		switch {
		case l.dense != nil:
			g := Gemm{TransA: OpT, TransB: OpN, M: l.Out, N: n, K: l.In, LDA: l.In, LDB: l.In, LDC: l.Out, Batch: 1}
			return l.d.gemm16(g, l.vt, l.dense.Ptr, x.Ptr, y.Ptr)
		case l.pre == nil:
			return l.core.run(x.Ptr, y.Ptr, np)
		}
		for _, g := range l.preGemm(np) {
			if err := l.d.gemm16(g, l.vt, l.pre.Ptr, x.Ptr, l.t.Ptr); err != nil {
				return err
			}
		}
		if err := l.core.run(l.t.Ptr, l.u.Ptr, np); err != nil {
			return err
		}
		for _, g := range l.postGemm(np) {
			if err := l.d.gemm16(g, l.vt, l.post.Ptr, l.u.Ptr, y.Ptr); err != nil {
				return err
			}
		}
		return nil
	})
}

// WeightBytes is the device memory the weights take (the compressed core
// counted as values plus 2:4 metadata, as cuSPARSELt sizes it roughly).
func (l *Layer) WeightBytes() int64 {
	var n int64
	for _, b := range []*Buffer{l.dense, l.pre, l.post} {
		if b != nil {
			n += b.Size
		}
	}
	if l.core != nil {
		n += int64(l.core.M) * int64(l.core.K) * 9 / 16 // f16 kept values + 2-bit indices
	}
	return n + 4*int64(len(l.Bias))
}

// Free releases the layer's device memory.
func (l *Layer) Free() error {
	var errs []error
	l.freeActs()
	for _, b := range []*Buffer{l.dense, l.pre, l.post} {
		errs = append(errs, b.Free())
	}
	if l.core != nil {
		errs = append(errs, l.core.Free())
	}
	return errors.Join(errs...)
}
