package cuda

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/armor-llm/armor/kernels"
)

// Sparse is one 2:4 weight W (M × K) compressed on the device for
// cuSPARSELt: Y = W·X with X K × n and Y M × n column-major (the row-major
// token-major activation buffers), W declared as the column-major K × M
// matrix Wᵀ with op T (see StoredLayout), so the dense pruned buffer
// uploaded for compression is W row-major. It is compressed once, here;
// plans are made per padded token count and cached.
type Sparse struct {
	d          *Device
	M, K       int
	layout     StoredLayout
	vtype      int32
	matA       *opaque
	compressed uintptr
	plans      map[int]*ltPlan
}

type ltPlan struct {
	n                       int
	matB, matC, mm, alg, pl *opaque
	ws                      uintptr
	wsSize                  uint64
}

// NewSparse uploads s (converted to dt, F16 or BF16), checks its 2:4
// pattern on the device (cusparseLtSpMMAPruneCheck2) and compresses it
// (cusparseLtSpMMACompress2). M and K must be multiples of 16.
func (d *Device) NewSparse(s *kernels.Sparse24, dt kernels.DType) (*Sparse, error) {
	if d.ltErr != nil {
		return nil, d.ltErr
	}
	if s.PanelCols() > 0 {
		// The device copies the row-major layout; panels are a CPU layout
		// of a model copied into memory (armor-run maps it for the GPU).
		return nil, fmt.Errorf("cuda: 2:4 weight %d×%d is in column panels, not the row-major layout the device reads", s.Rows, s.Cols)
	}
	if s.Rows%16 != 0 || s.Cols%16 != 0 {
		return nil, fmt.Errorf("cuda: 2:4 weight %d×%d: cuSPARSELt needs both sizes multiples of 16", s.Rows, s.Cols)
	}
	vt, err := cudaType(dt)
	if err != nil {
		return nil, err
	}
	l, err := LayoutFor(s.Rows, s.Cols, OrderCol, OpT)
	if err != nil {
		return nil, err
	}
	host, err := DensePruned(s, l, dt)
	if err != nil {
		return nil, err
	}
	dense, err := d.Alloc(int64(2 * len(host)))
	if err != nil {
		return nil, err
	}
	defer dense.Free()
	if err := dense.Upload(0, host); err != nil {
		return nil, err
	}
	valid, err := d.Alloc(4)
	if err != nil {
		return nil, err
	}
	defer valid.Free()
	sp := &Sparse{d: d, M: s.Rows, K: s.Cols, layout: l, vtype: vt, matA: newOpaque(), plans: map[int]*ltPlan{}}
	lt, h := &d.l.lt, d.lt.p
	err = d.w.do(func() error {
		if err := lt.check("cusparseLtStructuredDescriptorInit", lt.structuredInit(h, sp.matA.p,
			int64(l.Rows), int64(l.Cols), int64(l.LD), 16, vt, OrderCol, ltSparsity50)); err != nil {
			return err
		}
		if err := lt.check("cusparseLtSpMMAPruneCheck2", lt.pruneCheck2(h, sp.matA.p, 1, OpT, dense.Ptr, valid.Ptr, 0)); err != nil {
			return err
		}
		var size, bufSize uint64
		if err := lt.check("cusparseLtSpMMACompressedSize2", lt.compressedSize2(h, sp.matA.p, &size, &bufSize)); err != nil {
			return err
		}
		if err := d.l.drv.check("cuMemAlloc_v2", d.l.drv.cuMemAlloc(&sp.compressed, size)); err != nil {
			return err
		}
		var buf uintptr
		if bufSize > 0 {
			if err := d.l.drv.check("cuMemAlloc_v2", d.l.drv.cuMemAlloc(&buf, bufSize)); err != nil {
				return err
			}
			defer d.l.drv.cuMemFree(buf)
		}
		if err := lt.check("cusparseLtSpMMACompress2", lt.compress2(h, sp.matA.p, 1, OpT, dense.Ptr, sp.compressed, buf, 0)); err != nil {
			return err
		}
		return d.l.drv.check("cuCtxSynchronize", d.l.drv.cuCtxSynchronize())
	})
	if err != nil {
		sp.Free()
		return nil, err
	}
	var v [2]uint16
	if err := valid.Download(v[:], 0); err != nil {
		sp.Free()
		return nil, err
	}
	if v[0] != 0 || v[1] != 0 {
		sp.Free()
		return nil, fmt.Errorf("cuda: cusparseLtSpMMAPruneCheck2 rejects the %d×%d weight: not 2:4 in the orientation declared", s.Rows, s.Cols)
	}
	return sp, nil
}

// plan returns the plan for n (a multiple of 16) columns, making it once.
// Runs on the worker thread.
func (sp *Sparse) plan(n int) (*ltPlan, error) {
	if p := sp.plans[n]; p != nil {
		return p, nil
	}
	d, lt, h := sp.d, &sp.d.l.lt, sp.d.lt.p
	p := &ltPlan{n: n, matB: newOpaque(), matC: newOpaque(), mm: newOpaque(), alg: newOpaque(), pl: newOpaque()}
	if err := lt.check("cusparseLtDenseDescriptorInit", lt.denseInit(h, p.matB.p, int64(sp.K), int64(n), int64(sp.K), 16, sp.vtype, OrderCol)); err != nil {
		return nil, err
	}
	if err := lt.check("cusparseLtDenseDescriptorInit", lt.denseInit(h, p.matC.p, int64(sp.M), int64(n), int64(sp.M), 16, sp.vtype, OrderCol)); err != nil {
		return nil, err
	}
	if err := lt.check("cusparseLtMatmulDescriptorInit", lt.matmulInit(h, p.mm.p, OpT, OpN, sp.matA.p, p.matB.p, p.matC.p, p.matC.p, d.Lt.ComputeHalf)); err != nil {
		return nil, err
	}
	if err := lt.check("cusparseLtMatmulAlgSelectionInit", lt.algInit(h, p.alg.p, p.mm.p, ltMatmulAlgDf)); err != nil {
		return nil, err
	}
	if err := lt.check("cusparseLtMatmulPlanInit", lt.planInit(h, p.pl.p, p.mm.p, p.alg.p)); err != nil {
		return nil, err
	}
	if err := lt.check("cusparseLtMatmulGetWorkspace", lt.getWorkspace(h, p.pl.p, &p.wsSize)); err != nil {
		return nil, err
	}
	if p.wsSize > 0 {
		if err := d.l.drv.check("cuMemAlloc_v2", d.l.drv.cuMemAlloc(&p.ws, p.wsSize)); err != nil {
			return nil, err
		}
	}
	sp.plans[n] = p
	return p, nil
}

// run computes Y (M × n) = W·X (K × n), both column-major with leading
// dimensions M and K, n a multiple of 16. Runs on the worker thread.
func (sp *Sparse) run(x, y uintptr, n int) error {
	p, err := sp.plan(n)
	if err != nil {
		return err
	}
	alpha, beta := float32(1), float32(0)
	lt := &sp.d.l.lt
	return lt.check("cusparseLtMatmul", lt.matmul(sp.d.lt.p, p.pl.p, unsafe.Pointer(&alpha), sp.compressed, x,
		unsafe.Pointer(&beta), y, y, p.ws, nil, 0))
}

// search lets cuSPARSELt time its kernel configurations for n columns on
// the given buffers and keep the fastest in the plan (cusparseLtMatmulSearch;
// the result is overwritten). Runs on the worker thread.
func (sp *Sparse) search(x, y uintptr, n int) error {
	p, err := sp.plan(n)
	if err != nil {
		return err
	}
	lt := &sp.d.l.lt
	if lt.matmulSearch == nil {
		return fmt.Errorf("cuda: this cuSPARSELt has no cusparseLtMatmulSearch")
	}
	alpha, beta := float32(1), float32(0)
	return lt.check("cusparseLtMatmulSearch", lt.matmulSearch(sp.d.lt.p, p.pl.p, unsafe.Pointer(&alpha), sp.compressed, x,
		unsafe.Pointer(&beta), y, y, p.ws, nil, 0))
}

// Tune runs search as its own worker job (x K × n, y M × n column-major).
func (sp *Sparse) Tune(x, y *Buffer, n int) error {
	if n%16 != 0 || x.Size < int64(2*sp.K*n) || y.Size < int64(2*sp.M*n) {
		return fmt.Errorf("cuda: Sparse.Tune: n = %d (want a multiple of 16) or buffers too small", n)
	}
	return sp.d.w.do(func() error { return sp.search(x.Ptr, y.Ptr, n) })
}

// Run is run as its own worker job (tests and benchmarks).
func (sp *Sparse) Run(x, y *Buffer, n int) error {
	if n%16 != 0 || x.Size < int64(2*sp.K*n) || y.Size < int64(2*sp.M*n) {
		return fmt.Errorf("cuda: Sparse.Run: n = %d (want a multiple of 16) or buffers too small", n)
	}
	return sp.d.w.do(func() error { return sp.run(x.Ptr, y.Ptr, n) })
}

// Free releases the plans, descriptors and compressed weight.
func (sp *Sparse) Free() error {
	d, lt := sp.d, &sp.d.l.lt
	return d.w.do(func() error {
		var errs []error
		for _, p := range sp.plans {
			errs = append(errs, lt.check("cusparseLtMatmulPlanDestroy", lt.planDestroy(p.pl.p)))
			if lt.algDestroy != nil {
				errs = append(errs, lt.check("cusparseLtMatmulAlgSelectionDestroy", lt.algDestroy(p.alg.p)))
			}
			errs = append(errs, lt.check("cusparseLtMatDescriptorDestroy", lt.matDestroy(p.matB.p)))
			errs = append(errs, lt.check("cusparseLtMatDescriptorDestroy", lt.matDestroy(p.matC.p)))
			if p.ws != 0 {
				d.l.drv.cuMemFree(p.ws)
			}
		}
		sp.plans = map[int]*ltPlan{}
		errs = append(errs, lt.check("cusparseLtMatDescriptorDestroy", lt.matDestroy(sp.matA.p)))
		if sp.compressed != 0 {
			errs = append(errs, d.l.drv.check("cuMemFree_v2", d.l.drv.cuMemFree(sp.compressed)))
			sp.compressed = 0
		}
		return errors.Join(errs...)
	})
}
