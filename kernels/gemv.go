package kernels

// Internal row-product machinery shared by Dense, BlockDiag and Armor.
//
// A wview is a row-major weight view: row r starts at element r*ld of F32
// (dtype F32) or U16 (f16/bf16 bits). The SIMD kernels handle a prefix of
// the columns (a multiple of their vector width); the Go code here adds the
// remaining columns, so every size works at every level.

type wview struct {
	dt  DType
	f32 []float32
	u16 []uint16
	ld  int
	// A Dense in column panels (Panelize): pw > 0, f32/u16 hold all of it,
	// rows is its row count (the panels' stride), r0 the view's first row
	// and cols its width; ld is unused. gemv, gemm and gemmXT split it
	// with panel, so the row-major code below them never sees one.
	pw, rows, r0, cols int
}

func (m *Dense) view() wview {
	return wview{dt: m.DType, f32: m.F32, u16: m.U16, ld: m.Cols, pw: m.panelCols, rows: m.Rows, cols: m.Cols}
}

// npanels is the number of column panels of a paneled view.
func (w wview) npanels() int { return (w.cols + w.pw - 1) / w.pw }

// panel returns panel p of a paneled view as a row-major view of its
// columns (from the view's first row), its first column and its width.
func (w wview) panel(p int) (pv wview, c0, width int) {
	c0 = p * w.pw
	width = min(w.pw, w.cols-c0)
	base := w.rows*c0 + w.r0*width
	pv = wview{dt: w.dt, ld: width}
	if w.dt == F32 {
		pv.f32 = w.f32[base:]
	} else {
		pv.u16 = w.u16[base:]
	}
	return pv, c0, width
}

// at returns the weight at row r, column j as f32.
func (w wview) at(r, j int) float32 {
	if w.pw > 0 {
		pv, c0, _ := w.panel(j / w.pw)
		return pv.at(r, j-c0)
	}
	switch w.dt {
	case F32:
		return w.f32[r*w.ld+j]
	case F16:
		return F16ToF32(w.u16[r*w.ld+j])
	default:
		return BF16ToF32(w.u16[r*w.ld+j])
	}
}

// sub returns the view starting at row r0.
func (w wview) sub(r0 int) wview {
	if w.pw > 0 {
		w.r0 += r0
		return w
	}
	if w.dt == F32 {
		w.f32 = w.f32[r0*w.ld:]
	} else {
		w.u16 = w.u16[r0*w.ld:]
	}
	return w
}

// Wide rows (more than wideCols columns: x no longer fits in L1 next to
// the weight stream) are handled differently: dense GEMV uses the kernels
// that share each x load between 4 rows, and 2:4 GEMV (which reads 3.5
// bytes of x per byte of weights) walks column strips of at most
// stripCols columns over blocks of 16 rows. Elsewhere one row at a time is
// faster: 4 rows whose strides are multiples of 4 KiB alias in L1 (figures:
// docs/benchmarks.md, "Kernel design choices").
const (
	wideCols  = 8192
	stripCols = 6144
)

// panelMax is the widest column panel (Dense.Panelize, Sparse24.Panelize):
// its slice of x (16 KiB of f32) stays in L1 while the rows stream past,
// as it does for 4096-column matrices, whose GEMVs keep up with the read
// probe.
const panelMax = 4096

// panelWidth is the width of the column panels Panelize cuts a matrix of
// cols columns into, or 0 where rows are short enough to stream whole: as
// even as possible, at most about panelMax, a multiple of 32 columns (16
// kept 2:4 values: the SIMD kernels' widest step).
func panelWidth(cols int) int {
	if cols <= wideCols {
		return 0
	}
	np := (cols + panelMax - 1) / panelMax
	return (cols/np + 31) &^ 31
}

// dotTail returns Σ_{j0≤j<cols} w[r,j]·x[j].
func (w wview) dotTail(r, j0, cols int, x []float32) float32 {
	var s float32
	switch w.dt {
	case F32:
		row := w.f32[r*w.ld : r*w.ld+cols]
		for j := j0; j < cols; j++ {
			s += row[j] * x[j]
		}
	case F16:
		row := w.u16[r*w.ld : r*w.ld+cols]
		for j := j0; j < cols; j++ {
			s += F16ToF32(row[j]) * x[j]
		}
	default:
		row := w.u16[r*w.ld : r*w.ld+cols]
		for j := j0; j < cols; j++ {
			s += BF16ToF32(row[j]) * x[j]
		}
	}
	return s
}

// gemv computes y[r] = Σ_j w[r,j]·x[j] for r < rows, j < cols.
func gemv(y []float32, w wview, rows, cols int, x []float32) {
	if rows <= 0 {
		return
	}
	_ = y[rows-1]
	x = x[:cols]
	if w.pw > 0 {
		// Panels: each block of rows goes panel by panel, every panel's
		// rows one run of memory; the first panel writes y, the others add
		// (spmv does the same for 2:4; a shared helper taking a func
		// value made y and the scratch escape, and Dot allocate).
		var part [256]float32
		for r0 := 0; r0 < rows; r0 += len(part) {
			rb := min(len(part), rows-r0)
			wr := w.sub(r0)
			for p := 0; p < w.npanels(); p++ {
				pv, c0, pw := wr.panel(p)
				if p == 0 {
					gemv(y[r0:r0+rb], pv, rb, pw, x[c0:c0+pw])
					continue
				}
				gemv(part[:rb], pv, rb, pw, x[c0:c0+pw])
				Axpy(1, part[:rb], y[r0:r0+rb])
			}
		}
		return
	}
	done := 0
	if level != Generic && cols > 0 {
		done = gemvArch(y, w, rows, cols, x)
	}
	if done == 0 {
		for r := 0; r < rows; r++ {
			y[r] = w.dotTail(r, 0, cols, x)
		}
		return
	}
	if done < cols {
		for r := 0; r < rows; r++ {
			y[r] += w.dotTail(r, done, cols, x)
		}
	}
}

// gemm computes y[t*ldy+r] = Σ_j w[r,j]·x[t*ldx+j] for r < rows, t < n.
// It blocks over columns so that a strip of x stays in cache while the rows
// stream past, and the SIMD micro-kernels block over rows and tokens.
func gemm(y []float32, ldy int, w wview, rows, cols int, x []float32, ldx, n int) {
	if rows <= 0 || n <= 0 {
		return
	}
	_ = y[(n-1)*ldy+rows-1]
	_ = x[(n-1)*ldx+cols-1]
	if w.pw > 0 {
		// Panels: the first writes y, the others go through a scratch
		// block and are added.
		bp := xtScratch.Get().(*[]float32)
		tmp := growF32(bp, n*rows)
		for p := 0; p < w.npanels(); p++ {
			pv, c0, pw := w.panel(p)
			if p == 0 {
				gemm(y, ldy, pv, rows, pw, x[c0:], ldx, n)
				continue
			}
			gemm(tmp, rows, pv, rows, pw, x[c0:], ldx, n)
			for t := 0; t < n; t++ {
				Axpy(1, tmp[t*rows:(t+1)*rows], y[t*ldy:t*ldy+rows])
			}
		}
		xtScratch.Put(bp)
		return
	}
	if level == Generic || cols == 0 || !gemmArch(y, ldy, w, rows, cols, x, ldx, n) {
		for t := 0; t < n; t++ {
			gemv(y[t*ldy:], w, rows, cols, x[t*ldx:])
		}
	}
}
