// Package bench holds the armor benchmarks behind cmd/armor-bench.
package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/model/mmap"
)

// KernelResult is one timed case of `armor-bench kernels`.
type KernelResult struct {
	Kernel  string  `json:"kernel"` // dense, sparse24, armor, or bandwidth (the read probe)
	Op      string  `json:"op"`     // gemv, gemm, or read
	DType   string  `json:"dtype"`
	Rows    int     `json:"rows"`  // d_out
	Cols    int     `json:"cols"`  // d_in
	Batch   int     `json:"batch"` // tokens; 1 for GEMV
	Block   int     `json:"block"` // ARMOR block size, 0 otherwise
	Threads int     `json:"threads"`
	ISA     string  `json:"isa"`
	Seconds float64 `json:"seconds"` // median per call, in the fastest round
	Bytes   int64   `json:"bytes"`   // weight bytes read per call
	GBps    float64 `json:"gbps"`    // Bytes / Seconds
	// GFlops counts the multiply-adds of the dense product (2·rows·cols·batch),
	// so sparse and ARMOR figures are "dense-equivalent" rates.
	GFlops float64 `json:"gflops"`
	// ProbeGBps is the read probe measured just before this shape and dtype
	// (bandwidth drifts by tens of percent over minutes on a shared machine).
	ProbeGBps float64 `json:"probe_gbps"`
	// SpeedupVsDense is dense's seconds over these (same op, dtype, shape
	// and threads) in each round, which times the kinds one after the
	// other, and the median over rounds: a ratio of the two fastest
	// rounds could pair a dense round in a high-bandwidth spell with a
	// sparse one in a low one.
	SpeedupVsDense float64 `json:"speedup_vs_dense"`
	// ProbeFraction (dense GEMV only) is the median over rounds of its
	// GB/s over the mean of two probes taken just before and just after
	// it, rounds whose probes differ by more than 15 % left out
	// (ProbeDropped of them).
	ProbeFraction float64 `json:"probe_fraction,omitempty"`
	ProbeDropped  int     `json:"probe_dropped,omitempty"`
}

type linear interface {
	MatMul(y, x []float32, n int)
}

// KernelOptions sets what `armor-bench kernels` times.
type KernelOptions struct {
	Threads    int             // threads used by the kernels
	Batch      int             // tokens of the GEMM cases
	Block      int             // block size of the ARMOR transforms
	MinTime    time.Duration   // minimum time per case
	Shapes     [][2]int        // d_out × d_in
	DTypes     []kernels.DType // weight dtypes
	Ops        []string        // gemv, gemm
	Repeat     int             // rounds, each timing every kind of a case in turn
	WorkingSet int64           // bytes of copies of each matrix cycled through, so weights come from memory
	JSON       bool            // one JSON array instead of a table
}

// DefaultKernelOptions are the command's defaults.
func DefaultKernelOptions() KernelOptions {
	return KernelOptions{Threads: runtime.NumCPU(), Batch: 64, Block: 128, MinTime: 400 * time.Millisecond,
		Shapes: [][2]int{{4096, 4096}, {8192, 4096}, {4096, 11008}, {11008, 4096}},
		DTypes: []kernels.DType{kernels.F32, kernels.F16}, Ops: []string{"gemv", "gemm"}, Repeat: 1, WorkingSet: 128 << 20}
}

// ParseShapes reads "ROWSxCOLS,..." (COLS a multiple of 4).
func ParseShapes(list string) ([][2]int, error) {
	var shapes [][2]int
	for _, s := range strings.Split(list, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(s), "x")
		r, err1 := strconv.Atoi(a)
		c, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || r < 1 || c < 4 || c%4 != 0 {
			return nil, fmt.Errorf("bad shape %q (want ROWSxCOLS with COLS a multiple of 4)", s)
		}
		shapes = append(shapes, [2]int{r, c})
	}
	return shapes, nil
}

// Kernels times dense, 2:4 and ARMOR products of random matrices, with read
// probes beside them, and prints a table or JSON to stdout.
func Kernels(o KernelOptions, stdout, stderr io.Writer) error {
	if o.Threads < 1 || o.Batch < 1 || o.Block < 1 || o.WorkingSet < 0 || o.Repeat < 1 || len(o.Shapes) == 0 || len(o.DTypes) == 0 {
		return fmt.Errorf("kernels: threads, batch, block and repeat must be ≥ 1, with at least one shape and dtype")
	}
	for _, op := range o.Ops {
		if op != "gemv" && op != "gemm" {
			return fmt.Errorf("kernels: unknown op %q (gemv or gemm)", op)
		}
	}
	kernels.SetThreads(o.Threads)
	isa := kernels.ISA().String()
	ws := o.WorkingSet
	var res []KernelResult

	// Weights and the probe's buffer live in huge-page memory, as a model's
	// weights do when armor-run copies them in (mmap.Copy).
	var hm, probeMem hugeMem
	defer probeMem.free()
	buf := hugeSlice[float32](&probeMem, int(max(ws, 256<<20)/4))
	for i := range buf {
		buf[i] = 1
	}
	best := func(fn func(int)) float64 {
		sec := math.Inf(1)
		for range o.Repeat {
			sec = min(sec, timeIt(o.MinTime, fn))
		}
		return sec
	}
	// quickProbe is one read-bandwidth figure in GB/s, taken beside a
	// timed case.
	quickProbe := func() float64 {
		return float64(len(buf)) * 4 / timeIt(o.MinTime/4, func(int) { kernels.Sum(buf) }) / 1e9
	}
	probe := func() KernelResult {
		// The faster of a plain and a prefetching read loop.
		sec := min(best(func(int) { kernels.Sum(buf) }), best(func(int) { kernels.SumPrefetch(buf) }))
		b := int64(len(buf)) * 4
		return KernelResult{Kernel: "bandwidth", Op: "read", DType: "f32", Rows: len(buf), Cols: 1, Batch: 1,
			Threads: o.Threads, ISA: isa, Seconds: sec, Bytes: b, GBps: float64(b) / sec / 1e9}
	}
	rng := newRNG(1)
	var pr KernelResult
	for _, sh := range o.Shapes {
		rows, cols := sh[0], sh[1]
		for _, dt := range o.DTypes {
			pr = probe()
			pr.ProbeGBps = pr.GBps
			res = append(res, pr)
			// Build all three variants first, then time them in alternation
			// (round by round, keeping each one's fastest round), so that
			// bandwidth drift on a shared machine hits them alike.
			kinds := []string{"dense", "sparse24", "armor"}
			layers := make([][]linear, len(kinds))
			bytes := make([]int64, len(kinds))
			for k, kind := range kinds {
				var mk func() linear
				switch kind {
				case "dense":
					bytes[k] = int64(rows) * int64(cols) * int64(dt.Size())
					mk = func() linear { return randDense(&hm, rng, dt, rows, cols) }
				case "sparse24":
					bytes[k] = (&kernels.Sparse24{DType: dt, Rows: rows, Cols: cols}).Bytes()
					mk = func() linear { return randSparse(&hm, rng, dt, rows, cols) }
				case "armor":
					a := randArmor(&hm, rng, dt, rows, cols, o.Block)
					bytes[k] = a.Bytes()
					mk = func() linear { return randArmor(&hm, rng, dt, rows, cols, o.Block) }
				}
				copies := int(max(1, (ws+bytes[k]-1)/bytes[k]))
				for range copies {
					layers[k] = append(layers[k], mk())
				}
			}
			for _, op := range o.Ops {
				n := 1
				if op == "gemm" {
					n = o.Batch
				}
				x := make([]float32, n*cols)
				for i := range x {
					x[i] = float32(rng.float() - 0.5)
				}
				y := make([]float32, n*rows)
				secs := make([]float64, len(kinds))
				for k := range secs {
					secs[k] = math.Inf(1)
				}
				// ratios[k] holds kind k's speed-up over dense in each round.
				ratios := make([][]float64, len(kinds))
				var frac []float64
				dropped := 0
				for range o.Repeat {
					var dsec float64
					for k := range kinds {
						ls := layers[k]
						beside := op == "gemv" && kinds[k] == "dense"
						var p1 float64
						if beside {
							p1 = quickProbe()
						}
						sec := timeIt(o.MinTime, func(i int) { ls[i%len(ls)].MatMul(y, x, n) })
						secs[k] = min(secs[k], sec)
						if k == 0 {
							dsec = sec
						}
						ratios[k] = append(ratios[k], dsec/sec)
						if beside {
							p2 := quickProbe()
							if max(p1, p2) > 1.15*min(p1, p2) {
								dropped++
							} else {
								frac = append(frac, float64(bytes[k])/sec/1e9/((p1+p2)/2))
							}
						}
					}
				}
				for k, kind := range kinds {
					sec := secs[k]
					r := KernelResult{Kernel: kind, Op: op, DType: dt.String(), Rows: rows, Cols: cols, Batch: n,
						Threads: o.Threads, ISA: isa, Seconds: sec, Bytes: bytes[k], GBps: float64(bytes[k]) / sec / 1e9,
						GFlops: 2 * float64(rows) * float64(cols) * float64(n) / sec / 1e9, ProbeGBps: pr.GBps,
						SpeedupVsDense: median(ratios[k])}
					if kind == "armor" {
						r.Block = o.Block
					}
					if kind == "dense" && op == "gemv" {
						r.ProbeDropped = dropped
						if len(frac) > 0 {
							sort.Float64s(frac)
							r.ProbeFraction = frac[len(frac)/2]
						}
					}
					res = append(res, r)
				}
			}
			layers = nil
			hm.free()
			runtime.GC()
		}
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintf(stdout, "armor-bench kernels: %d threads, ISA %s (detected %s), GEMM batch %d, ARMOR block %d\n",
		o.Threads, isa, kernels.DetectedISA(), o.Batch, o.Block)
	fmt.Fprintf(stdout, "%-9s %-4s %-4s %6s %6s %5s %10s %8s %8s %8s\n", "kernel", "op", "type", "rows", "cols", "batch", "ms/call", "GB/s", "GFLOP/s", "×dense")
	for _, r := range res {
		sp := ""
		if r.SpeedupVsDense > 0 {
			sp = fmt.Sprintf("%.2f", r.SpeedupVsDense)
		}
		fmt.Fprintf(stdout, "%-9s %-4s %-4s %6d %6d %5d %10.3f %8.1f %8.1f %8s\n", r.Kernel, r.Op, r.DType, r.Rows, r.Cols, r.Batch,
			r.Seconds*1e3, r.GBps, r.GFlops, sp)
	}
	for _, r := range res {
		if r.Kernel == "dense" && r.Op == "gemv" {
			fmt.Fprintf(stdout, "dense %s GEMV %dx%d: %.0f%% of the read probe measured just before the shape (%.1f GB/s)",
				r.DType, r.Rows, r.Cols, 100*r.GBps/r.ProbeGBps, r.ProbeGBps)
			if r.ProbeFraction > 0 {
				fmt.Fprintf(stdout, "; %.0f%% of probes taken beside it (median of %d rounds", 100*r.ProbeFraction, o.Repeat-r.ProbeDropped)
				if r.ProbeDropped > 0 {
					fmt.Fprintf(stdout, "; %d left out, the bandwidth moved", r.ProbeDropped)
				}
				fmt.Fprint(stdout, ")")
			}
			fmt.Fprintln(stdout)
		}
	}
	return nil
}

// timeIt calls fn(i) for i = 0, 1, ... (one warm-up call first) until at
// least minTime has passed and at least 5 calls were timed; it returns the
// median seconds per call.
func timeIt(minTime time.Duration, fn func(i int)) float64 {
	fn(0)
	var ts []float64
	start := time.Now()
	for i := 1; len(ts) < 5 || time.Since(start) < minTime; i++ {
		t0 := time.Now()
		fn(i)
		ts = append(ts, time.Since(t0).Seconds())
		if len(ts) >= 10000 {
			break
		}
	}
	sort.Float64s(ts)
	return ts[len(ts)/2]
}

// rng is a small xorshift generator: the weights only need to be non-special
// numbers, and filling hundreds of MiB must be fast.
type rng struct{ s uint64 }

func newRNG(seed uint64) *rng { return &rng{seed*0x9E3779B97F4A7C15 + 1} }

func (r *rng) next() uint64 {
	r.s ^= r.s << 13
	r.s ^= r.s >> 7
	r.s ^= r.s << 17
	return r.s
}

func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// fill writes values of magnitude in [2⁻⁵, 2⁻¹) with random signs.
func fill(r *rng, dt kernels.DType, f32 []float32, u16 []uint16) {
	if dt == kernels.F32 {
		for i := range f32 {
			v := r.next()
			f32[i] = math.Float32frombits(uint32(v>>32)&0x807fffff | uint32(122+v%4)<<23)
		}
		return
	}
	for i := range u16 {
		v := r.next()
		if dt == kernels.F16 {
			u16[i] = uint16(v>>48)&0x83ff | uint16(10+v%4)<<10
		} else {
			u16[i] = uint16(v>>48)&0x807f | uint16(122+v%4)<<7
		}
	}
}

func randDense(hm *hugeMem, r *rng, dt kernels.DType, rows, cols int) *kernels.Dense {
	m := &kernels.Dense{DType: dt, Rows: rows, Cols: cols}
	if dt == kernels.F32 {
		m.F32 = hugeSlice[float32](hm, rows*cols)
	} else {
		m.U16 = hugeSlice[uint16](hm, rows*cols)
	}
	fill(r, dt, m.F32, m.U16)
	// Wide matrices in column panels, as armor-run holds them (see
	// randSparse).
	return m.Panelize(func(n int) []byte { return hugeSlice[byte](hm, n) })
}

// pairs are the six canonical in-group position pairs, as index nibbles.
var pairs = [6]uint8{0 | 1<<2, 0 | 2<<2, 0 | 3<<2, 1 | 2<<2, 1 | 3<<2, 2 | 3<<2}

func randSparse(hm *hugeMem, r *rng, dt kernels.DType, rows, cols int) *kernels.Sparse24 {
	s := &kernels.Sparse24{DType: dt, Rows: rows, Cols: cols}
	if dt == kernels.F32 {
		s.F32 = hugeSlice[float32](hm, rows*cols/2)
	} else {
		s.U16 = hugeSlice[uint16](hm, rows*cols/2)
	}
	fill(r, dt, s.F32, s.U16)
	st := kernels.IdxStride(cols)
	s.Idx = hugeSlice[uint8](hm, rows*st)
	for i := 0; i < rows; i++ {
		for g := 0; g < cols/4; g++ {
			s.Idx[i*st+g/2] |= pairs[r.next()%6] << (4 * (g % 2))
		}
	}
	// Wide matrices in column panels, as armor-run holds them (--mmap no,
	// or auto with a model that fits).
	return s.Panelize(func(n int) []byte { return hugeSlice[byte](hm, n) })
}

func randBlockDiag(hm *hugeMem, r *rng, dt kernels.DType, n, b int) *kernels.BlockDiag {
	d := &kernels.BlockDiag{DType: dt, N: n, B: b}
	if dt == kernels.F32 {
		d.F32 = hugeSlice[float32](hm, kernels.BlockDiagLen(n, b))
	} else {
		d.U16 = hugeSlice[uint16](hm, kernels.BlockDiagLen(n, b))
	}
	fill(r, dt, d.F32, d.U16)
	return d
}

func randArmor(hm *hugeMem, r *rng, dt kernels.DType, rows, cols, b int) *kernels.Armor {
	return &kernels.Armor{Pre: randBlockDiag(hm, r, dt, cols, b), Core: randSparse(hm, r, dt, rows, cols), Post: randBlockDiag(hm, r, dt, rows, b)}
}

// hugeMem hands out slices of private memory on 2 MiB transparent huge
// pages (mmap.Anon; Go's heap is on 4 KiB pages here) and frees them
// together.
type hugeMem struct{ frees []func() error }

func hugeSlice[T any](h *hugeMem, n int) []T {
	var z T
	size := n * int(unsafe.Sizeof(z))
	if n == 0 {
		return []T{}
	}
	b, free, err := mmap.Anon(size)
	if err != nil {
		return make([]T, n)
	}
	h.frees = append(h.frees, free)
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

func (h *hugeMem) free() {
	for _, f := range h.frees {
		f()
	}
	h.frees = nil
}
