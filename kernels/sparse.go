package kernels

import (
	"fmt"
	"sync"
)

// Sparse24 is a 2:4 sparse Rows × Cols matrix in the packed layout described
// in docs/sparse24-kernels.md: Rows×Cols/2 kept values (F32 for dtype F32, U16 raw bits
// otherwise) and 2-bit in-group positions in Idx (IdxStride(Cols) bytes per
// row).
type Sparse24 struct {
	DType      DType
	Rows, Cols int
	F32        []float32
	U16        []uint16
	Idx        []uint8
	// panelCols > 0 (set by Panelize only) says that the arrays hold the
	// matrix as column panels of panelCols columns (the last one may be
	// narrower), one after the other, each in the layout above for its
	// own columns.
	panelCols int
}

// IdxStride is the number of index bytes per row of a 2:4 matrix with cols
// columns.
func IdxStride(cols int) int { return (cols + 7) / 8 }

// Bytes is the size of the stored values and indices.
func (s *Sparse24) Bytes() int64 {
	return int64(s.Rows)*int64(s.Cols/2)*int64(s.DType.Size()) + int64(s.Rows)*int64(IdxStride(s.Cols))
}

// PanelCols is the panel width of a matrix made by Panelize (0: whole rows).
func (s *Sparse24) PanelCols() int { return s.panelCols }

// Panelize returns the matrix with wide rows (more than wideCols columns)
// stored as contiguous column panels, in memory from alloc (nil: the Go
// heap); a matrix with shorter rows, or already in panels, comes back as it
// is. A GEMV over a row-major 4096×11008 matrix must walk column strips so
// that its slice of x stays in L1, and each strip of a row is a separate
// run of memory; over panels every run is a whole panel (figures:
// docs/benchmarks.md, "Kernel design choices").
// The result is for the products (MatVec, MatMul, Armor): Check, Unpack
// and PanelCols understand it, but it is not the file layout.
func (s *Sparse24) Panelize(alloc func(bytes int) []byte) *Sparse24 {
	pw := panelWidth(s.Cols)
	if pw == 0 || s.panelCols > 0 {
		return s
	}
	if alloc == nil {
		alloc = func(n int) []byte { return make([]byte, n) }
	}
	p := &Sparse24{DType: s.DType, Rows: s.Rows, Cols: s.Cols, panelCols: pw}
	p.F32, p.U16 = valuesFrom(alloc, s.DType, s.Rows*(s.Cols/2))
	p.Idx = alloc(len(s.Idx))[:len(s.Idx)]
	src, dst := s.view(), p.view()
	for q := 0; q < dst.npanels(); q++ {
		pv, c0 := dst.panel(q)
		for r := 0; r < s.Rows; r++ {
			vs, vd := r*src.ldv+c0/2, r*pv.ldv
			if s.DType == F32 {
				copy(pv.f32[vd:vd+pv.ldv], src.f32[vs:])
			} else {
				copy(pv.u16[vd:vd+pv.ldv], src.u16[vs:])
			}
			copy(pv.idx[r*pv.ldi:(r+1)*pv.ldi], src.idx[r*src.ldi+c0/8:])
		}
	}
	return p
}

// Check validates sizes and the canonical index form (p0 < p1 in every
// group), so that a reader can reject a corrupt tensor before use.
func (s *Sparse24) Check() error {
	if s.Rows < 0 || s.Cols < 0 || s.Cols%4 != 0 {
		return fmt.Errorf("sparse24 %d×%d: columns must be a non-negative multiple of 4", s.Rows, s.Cols)
	}
	nv := s.Rows * (s.Cols / 2)
	switch s.DType {
	case F32:
		if len(s.F32) != nv {
			return fmt.Errorf("sparse24 %d×%d f32: have %d values, want %d", s.Rows, s.Cols, len(s.F32), nv)
		}
	case F16, BF16:
		if len(s.U16) != nv {
			return fmt.Errorf("sparse24 %d×%d %v: have %d values, want %d", s.Rows, s.Cols, s.DType, len(s.U16), nv)
		}
	default:
		return fmt.Errorf("sparse24: unsupported dtype %v", s.DType)
	}
	if want := s.Rows * IdxStride(s.Cols); len(s.Idx) != want {
		return fmt.Errorf("sparse24 %d×%d: have %d index bytes, want %d", s.Rows, s.Cols, len(s.Idx), want)
	}
	v := s.view()
	if v.pw == 0 {
		return s.checkIdx(v.idx, v.cols, 0)
	}
	for q := 0; q < v.npanels(); q++ {
		pv, c0 := v.panel(q)
		if err := s.checkIdx(pv.idx, pv.cols, c0); err != nil {
			return err
		}
	}
	return nil
}

// idxOK says which index bytes are canonical: both groups of the byte (2
// bits a kept value, 2 kept values a group) have p0 < p1. A file's
// matrices are checked byte by byte against it when they are loaded; 6
// calls a group made that a large part of loading a 1B model.
var idxOK = func() (t [256]bool) {
	for b := range t {
		t[b] = b&3 < b>>2&3 && b>>4&3 < b>>6
	}
	return t
}()

// checkIdx checks the row-major index bytes of a rows × cols matrix (or
// of the panel of cols columns starting at column c0, for the messages).
func (s *Sparse24) checkIdx(idx []uint8, cols, c0 int) error {
	ldi, full := IdxStride(cols), cols/8
	// b's low 4 bits are group g of row i.
	notIncreasing := func(i, g int, b uint8) error {
		return fmt.Errorf("sparse24 %d×%d: row %d, group %d: positions %d, %d not increasing", s.Rows, s.Cols, i, c0/4+g, b&3, b>>2&3)
	}
	for i := 0; i < s.Rows; i++ {
		row := idx[i*ldi : (i+1)*ldi]
		for j, b := range row[:full] {
			if !idxOK[b] {
				if b&3 < b>>2&3 { // the first group is fine: the second is not
					return notIncreasing(i, 2*j+1, b>>4)
				}
				return notIncreasing(i, 2*j, b)
			}
		}
		if full < ldi { // one group in the low half of the last byte
			b := row[full]
			if b&3 >= b>>2&3 {
				return notIncreasing(i, 2*full, b)
			}
			if b>>4 != 0 {
				return fmt.Errorf("sparse24 %d×%d: row %d: padding bits of the last index byte are not zero", s.Rows, s.Cols, i)
			}
		}
	}
	return nil
}

// Pack24 packs a row-major rows × cols f32 matrix that is 2:4 sparse (at
// most 2 non-zeros in every group of 4 columns of every row) into dtype dt.
// It rejects other input, naming the first offending row and group. Values
// are rounded to dt; a value that rounds to zero is still kept in its place.
func Pack24(w []float32, rows, cols int, dt DType) (*Sparse24, error) {
	if rows < 0 || cols < 0 || len(w) != rows*cols {
		return nil, fmt.Errorf("Pack24: %d values for a %d×%d matrix", len(w), rows, cols)
	}
	return pack24(rows, cols, dt, func(i int) bool { return w[i] != 0 }, func(dst, src int, s *Sparse24) {
		switch dt {
		case F32:
			s.F32[dst] = w[src]
		case F16:
			s.U16[dst] = F32ToF16(w[src])
		default:
			s.U16[dst] = F32ToBF16(w[src])
		}
	})
}

// Pack24Dense packs a 2:4 sparse Dense matrix, keeping its dtype and bits.
func Pack24Dense(m *Dense) (*Sparse24, error) {
	if err := m.Check(); err != nil {
		return nil, fmt.Errorf("Pack24Dense: %w", err)
	}
	nz := func(i int) bool { return m.U16[i]&0x7fff != 0 }
	if m.DType == F32 {
		nz = func(i int) bool { return m.F32[i] != 0 }
	}
	return pack24(m.Rows, m.Cols, m.DType, nz, func(dst, src int, s *Sparse24) {
		if m.DType == F32 {
			s.F32[dst] = m.F32[src]
		} else {
			s.U16[dst] = m.U16[src]
		}
	})
}

func pack24(rows, cols int, dt DType, nonzero func(int) bool, put func(dst, src int, s *Sparse24)) (*Sparse24, error) {
	if cols%4 != 0 {
		return nil, fmt.Errorf("Pack24: %d×%d: columns not divisible into 2:4 groups of 4", rows, cols)
	}
	if dt > BF16 {
		return nil, fmt.Errorf("Pack24: unsupported dtype %v", dt)
	}
	s := &Sparse24{DType: dt, Rows: rows, Cols: cols, Idx: make([]uint8, rows*IdxStride(cols))}
	if dt == F32 {
		s.F32 = make([]float32, rows*cols/2)
	} else {
		s.U16 = make([]uint16, rows*cols/2)
	}
	for i := 0; i < rows; i++ {
		for g := 0; g < cols/4; g++ {
			var ps [2]int
			n := 0
			for p := 0; p < 4; p++ {
				if nonzero(i*cols + 4*g + p) {
					if n == 2 {
						return nil, fmt.Errorf("Pack24: %d×%d matrix is not 2:4 sparse: row %d, group %d (columns %d..%d) has more than 2 non-zero values", rows, cols, i, g, 4*g, 4*g+3)
					}
					ps[n] = p
					n++
				}
			}
			// Fill a short group with the lowest unused positions, keeping
			// the two positions increasing.
			for p := 0; n < 2; p++ {
				if n == 1 && ps[0] == p {
					continue
				}
				ps[n] = p
				n++
				if ps[0] > ps[1] {
					ps[0], ps[1] = ps[1], ps[0]
				}
			}
			for h := 0; h < 2; h++ {
				k := 2*g + h
				put(i*cols/2+k, i*cols+4*g+ps[h], s)
				s.Idx[i*IdxStride(cols)+k/4] |= uint8(ps[h]) << (2 * (k % 4))
			}
		}
	}
	return s, nil
}

// Unpack returns the dense matrix (same dtype) with zeros in the pruned places.
func (s *Sparse24) Unpack() *Dense {
	m := &Dense{DType: s.DType, Rows: s.Rows, Cols: s.Cols}
	half := s.Cols / 2
	if s.DType == F32 {
		m.F32 = make([]float32, s.Rows*s.Cols)
	} else {
		m.U16 = make([]uint16, s.Rows*s.Cols)
	}
	v := s.view()
	for i := 0; i < s.Rows; i++ {
		for k := 0; k < half; k++ {
			vi, c := v.at(i, k)
			if s.DType == F32 {
				m.F32[i*s.Cols+c] = s.F32[vi]
			} else {
				m.U16[i*s.Cols+c] = s.U16[vi]
			}
		}
	}
	return m
}

// sview is a row view of a Sparse24 (row r0 onwards).
type sview struct {
	dt   DType
	f32  []float32
	u16  []uint16
	idx  []uint8
	ldv  int // kept values per row (Cols/2)
	ldi  int // index bytes per row
	cols int
	// A matrix in column panels (Panelize): f32/u16/idx hold all of it,
	// rows is its row count (the panels' stride) and r0 the view's first
	// row; ldv and ldi are unused. Products split it with panel.
	pw, rows, r0 int
}

func (s *Sparse24) view() sview {
	return sview{dt: s.DType, f32: s.F32, u16: s.U16, idx: s.Idx, ldv: s.Cols / 2, ldi: IdxStride(s.Cols), cols: s.Cols,
		pw: s.panelCols, rows: s.Rows}
}

// npanels is the number of column panels of a paneled view.
func (v sview) npanels() int { return (v.cols + v.pw - 1) / v.pw }

// panelStart returns where panel p of a paneled view starts in its value
// and index arrays (at the view's first row), its first column and width.
func (v sview) panelStart(p int) (vb, ib, c0, w int) {
	c0 = p * v.pw
	w = min(v.pw, v.cols-c0)
	return v.rows*(c0/2) + v.r0*(w/2), v.rows*(c0/8) + v.r0*IdxStride(w), c0, w
}

// panel returns panel p of a paneled view, as a row-major view of its
// columns, and its first column.
func (v sview) panel(p int) (sview, int) {
	vb, ib, c0, w := v.panelStart(p)
	pv := sview{dt: v.dt, ldv: w / 2, ldi: IdxStride(w), cols: w}
	if v.dt == F32 {
		pv.f32 = v.f32[vb:]
	} else {
		pv.u16 = v.u16[vb:]
	}
	pv.idx = v.idx[ib:]
	return pv, c0
}

// at returns the index of kept value k of row r in the value array and its
// column (within the view).
func (v sview) at(r, k int) (vi, col int) {
	if v.pw > 0 {
		vb, _, c0, w := v.panelStart(2 * k / v.pw)
		kl := k - c0/2
		return vb + r*(w/2) + kl, c0 + 4*(kl/2) + int(v.idxByte(r, k)>>(2*(kl%4)))&3
	}
	return r*v.ldv + k, 4*(k/2) + int(v.idxByte(r, k)>>(2*(k%4)))&3
}

// idxByte returns the index byte holding the position of kept value k of
// row r.
func (v sview) idxByte(r, k int) uint8 {
	if v.pw > 0 {
		_, ib, c0, w := v.panelStart(2 * k / v.pw)
		return v.idx[ib+r*IdxStride(w)+(k-c0/2)/4]
	}
	return v.idx[r*v.ldi+k/4]
}

func (v sview) sub(r0 int) sview {
	if v.pw > 0 {
		v.r0 += r0
		return v
	}
	if v.dt == F32 {
		v.f32 = v.f32[r0*v.ldv:]
	} else {
		v.u16 = v.u16[r0*v.ldv:]
	}
	v.idx = v.idx[r0*v.ldi:]
	return v
}

// kept returns the column (within the view) and the value of kept value k
// of row r.
func (v sview) kept(r, k int) (col int, w float32) {
	vi, col := v.at(r, k)
	switch v.dt {
	case F32:
		w = v.f32[vi]
	case F16:
		w = F16ToF32(v.u16[vi])
	default:
		w = BF16ToF32(v.u16[vi])
	}
	return col, w
}

// dotTail returns Σ over kept values k0 ≤ k < cols/2 of row r with x.
func (v sview) dotTail(r, k0 int, x []float32) float32 {
	var s float32
	for k := k0; k < v.cols/2; k++ {
		j, w := v.kept(r, k)
		s += w * x[j]
	}
	return s
}

// strip returns the view of columns [j0, j0+w) (j0 a multiple of 8).
func (v sview) strip(j0, w int) sview {
	k0 := j0 / 2
	if v.dt == F32 {
		v.f32 = v.f32[k0:]
	} else {
		v.u16 = v.u16[k0:]
	}
	v.idx = v.idx[k0/4:]
	v.cols = w
	return v
}

// spmv computes y[r] = Σ_j S[r,j]·x[j] for r < rows.
func spmv(y []float32, v sview, rows int, x []float32) {
	if rows <= 0 {
		return
	}
	_ = y[rows-1]
	x = x[:v.cols]
	if v.pw > 0 {
		// Panels: each block of rows goes panel by panel, every panel's
		// rows one run of memory; the first panel writes y, the others add.
		var part [256]float32
		for r0 := 0; r0 < rows; r0 += len(part) {
			rb := min(len(part), rows-r0)
			vr := v.sub(r0)
			for p := 0; p < v.npanels(); p++ {
				pv, c0 := vr.panel(p)
				if p == 0 {
					spmv(y[r0:r0+rb], pv, rb, x[c0:c0+pv.cols])
					continue
				}
				spmv(part[:rb], pv, rb, x[c0:c0+pv.cols])
				Axpy(1, part[:rb], y[r0:r0+rb])
			}
		}
		return
	}
	if v.cols > wideCols && level != Generic {
		// Wide rows: walk column strips over blocks of rows so that the
		// strip of x stays in L1 (a 2:4 kernel reads 3.5 bytes of x per
		// byte of weights).
		ns := (v.cols + stripCols - 1) / stripCols
		sw := (v.cols/ns + 7) &^ 7
		var part [64]float32 // rows per block: few strip switches, each costing un-prefetched rows
		for r0 := 0; r0 < rows; r0 += len(part) {
			rb := min(len(part), rows-r0)
			vr := v.sub(r0)
			clear(y[r0 : r0+rb])
			for j0 := 0; j0 < v.cols; j0 += sw {
				jw := min(sw, v.cols-j0)
				spmv(part[:rb], vr.strip(j0, jw), rb, x[j0:j0+jw])
				for i, p := range part[:rb] {
					y[r0+i] += p
				}
			}
		}
		return
	}
	done := 0
	if level != Generic && v.cols > 0 {
		done = spmvArch(y, v, rows, x)
	}
	for r := 0; r < rows; r++ {
		if done == 0 {
			y[r] = v.dotTail(r, 0, x)
		} else if done < v.cols/2 {
			y[r] += v.dotTail(r, done, x)
		}
	}
}

// spmm computes y[t*ldy+r] = Σ_j S[r,j]·x[t*ldx+j] for r < rows, t < n.
func spmm(y []float32, ldy int, v sview, rows int, x []float32, ldx, n int) {
	if rows <= 0 || n <= 0 {
		return
	}
	_ = y[(n-1)*ldy+rows-1]
	_ = x[(n-1)*ldx+v.cols-1]
	if v.pw > 0 {
		// Panels: the first writes y, the others go through a scratch
		// block and are added.
		bp := xtScratch.Get().(*[]float32)
		tmp := growF32(bp, n*rows)
		for p := 0; p < v.npanels(); p++ {
			pv, c0 := v.panel(p)
			if p == 0 {
				spmm(y, ldy, pv, rows, x[c0:], ldx, n)
				continue
			}
			spmm(tmp, rows, pv, rows, x[c0:], ldx, n)
			for t := 0; t < n; t++ {
				Axpy(1, tmp[t*rows:(t+1)*rows], y[t*ldy:t*ldy+rows])
			}
		}
		xtScratch.Put(bp)
		return
	}
	if level == Generic || !spmmArch(y, ldy, v, rows, x, ldx, n) {
		for t := 0; t < n; t++ {
			spmv(y[t*ldy:], v, rows, x[t*ldx:])
		}
	}
}

// MatVec computes y = S·x (len(x) ≥ Cols, len(y) ≥ Rows) in parallel over
// rows.
func (s *Sparse24) MatVec(y, x []float32) {
	t := newTask(opSpmv)
	t.s, t.x, t.y = s.view(), x[:s.Cols], y[:s.Rows]
	runTask(t, s.Rows, 16)
}

// MatMul computes Y = X·Sᵀ for n tokens: x is n×Cols, y is n×Rows.
func (s *Sparse24) MatMul(y, x []float32, n int) {
	if n == 1 {
		s.MatVec(y, x)
		return
	}
	if n <= 0 {
		return
	}
	tile := spmmTile(n)
	if p := spmmPad(n); p != n && tile == 0 {
		// As Dense.MatMul: zero tokens up to the kernels' block of 4
		// instead of one pass over the weights per leftover token.
		pd := padTokens(x, n, p, s.Cols, s.Rows)
		s.MatMul(pd.y, pd.x, p)
		pd.done(y, n, s.Rows)
		return
	}
	if h := tileHead(n, tile); h < n {
		s.MatMul(y, x, h)
		s.MatMul(y[h*s.Rows:], x[h*s.Cols:], n-h)
		return
	}
	t := newTask(opSpmm)
	t.s, t.x, t.y, t.n, t.ldx, t.ldy = s.view(), x[:n*s.Cols], y[:n*s.Rows], n, s.Cols, s.Rows
	if tile > 0 {
		// Transpose the tokens once for all threads.
		bp := xtScratch.Get().(*[]float32)
		t.op, t.tile = opSpmmXT, tile
		t.xt = growF32(bp, xtLen(s.Cols, n, tile))
		transposeTiles(t.xt, t.x, s.Cols, s.Cols, n, tile)
		runTask(t, s.Rows, 16)
		xtScratch.Put(bp)
		return
	}
	runTask(t, s.Rows, 16)
}

// splitTiles makes the tokens-in-lanes products run a token count that is
// not a whole number of tiles as whole tiles plus a product of its own for
// the rest (tileHead), instead of padding the last tile.
var splitTiles = true

// tileHead returns how many of n tokens a tokens-in-lanes product with
// tiles of tile tokens (0: no tiles, all n) should run, the rest going to a
// product of its own.
// A tile costs the same however few of its lanes are used, so a remainder
// under three quarters of a tile runs apart, by the kernels its own size
// picks (72 tokens: 64 + 8; 100: 64 + 32 + 4). From there up the remainder
// would take a tile of the same size anyway (64-token tiles from 48
// tokens), and padding the last one saves a pass over the weights.
func tileHead(n, tile int) int {
	if !splitTiles || tile <= 0 || n < tile {
		return n
	}
	r := n % tile
	if r == 0 || 4*r >= 3*tile {
		return n
	}
	return n - r
}

// useSp24T6 selects the 6-row 2:4 kernels for 64-token tiles (AVX-512;
// benchmarks compare them with the 4-row ones).
var useSp24T6 = true

// xtScratch holds transposed token tiles of Sparse24.MatMul.
var xtScratch = sync.Pool{New: func() any { return new([]float32) }}

// padScratch holds the zero-padded tokens and outputs of a small MatMul.
var padScratch = sync.Pool{New: func() any { return new([]float32) }}

// padded is a product's n tokens of in values padded with zero tokens to p
// (gemmPad, spmmPad), with room for p outputs of out values.
type padded struct {
	bp   *[]float32
	x, y []float32
}

func padTokens(x []float32, n, p, in, out int) padded {
	bp := padScratch.Get().(*[]float32)
	buf := growF32(bp, p*(in+out))
	pd := padded{bp: bp, x: buf[:p*in], y: buf[p*in : p*(in+out)]}
	copy(pd.x, x[:n*in])
	clear(pd.x[n*in:])
	return pd
}

// done copies the outputs of the n real tokens to y and frees the scratch.
func (pd padded) done(y []float32, n, out int) {
	copy(y[:n*out], pd.y[:n*out])
	padScratch.Put(pd.bp)
}

func growF32(bp *[]float32, n int) []float32 {
	if cap(*bp) < n {
		*bp = make([]float32, n)
	}
	return (*bp)[:n]
}

// xtLen is the size of the transposed tiles of n tokens of cols values.
func xtLen(cols, n, tile int) int { return (n + tile - 1) / tile * tile * cols }

// transposeTiles writes the tokens of x (n × cols, row stride ldx) as tiles
// of tile tokens, each cols × tile (column c of tile k at
// xt[k·tile·cols + c·tile]), padding the last tile with zeros. The columns
// are split across threads.
func transposeTiles(xt, x []float32, ldx, cols, n, tile int) {
	t := newTask(opTranspose)
	t.xt, t.x, t.ldx, t.ldy, t.n, t.tile = xt, x, ldx, cols, n, tile
	runTask(t, cols, 16)
}

// transposeCols is transposeTiles for columns [c0, c1) of all tiles.
func transposeCols(xt, x []float32, ldx, cols, n, tile, c0, c1 int) {
	for t0 := 0; t0 < n; t0 += tile {
		transposeTile(xt[t0*cols:(t0+tile)*cols], x[t0*ldx:], ldx, c0, c1, min(tile, n-t0), tile)
	}
}

// transposeTile writes xt[c*tile+t] = x[t*ldx+c] for c0 ≤ c < c1, t < nt,
// and zeros for nt ≤ t < tile (padding tokens whose results are dropped).
func transposeTile(xt, x []float32, ldx, c0, c1, nt, tile int) {
	if c1 <= c0 {
		return
	}
	transposeBlock(xt[c0*tile:], tile, x[c0:], ldx, nt, c1-c0)
	if nt < tile {
		for c := c0; c < c1; c++ {
			clear(xt[c*tile+nt : (c+1)*tile])
		}
	}
}

// transposeBlock writes dst[j*ldd+i] = src[i*lds+j] for i < rows, j < cols:
// 16×16 blocks in registers where the level has a kernel for it, the edges
// one element at a time.
func transposeBlock(dst []float32, ldd int, src []float32, lds int, rows, cols int) {
	if rows <= 0 || cols <= 0 {
		return
	}
	_ = src[(rows-1)*lds+cols-1]
	_ = dst[(cols-1)*ldd+rows-1]
	r16, c16 := 0, 0
	if rows >= 16 && cols >= 16 && transpose16Arch(dst, ldd, src, lds, rows&^15, cols&^15) {
		r16, c16 = rows&^15, cols&^15
	}
	for i := 0; i < rows; i++ {
		j0 := 0
		if i < r16 {
			j0 = c16
		}
		for j, v := range src[i*lds+j0 : i*lds+cols] {
			dst[(j0+j)*ldd+i] = v
		}
	}
}
