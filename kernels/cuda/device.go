package cuda

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// worker runs closures on one goroutine locked to its OS thread: the CUDA
// context is made current on that thread once and every call of the Device
// runs there. The goroutine never unlocks, so when it ends (Close) its
// thread ends with it rather than going back to the Go scheduler with a
// context current.
type worker struct {
	jobs chan func()
	once sync.Once
}

func newWorker() *worker {
	w := &worker{jobs: make(chan func())}
	started := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		close(started)
		for f := range w.jobs {
			f()
		}
	}()
	<-started
	return w
}

// do runs f on the worker thread and returns its error. It must not be
// called from inside f (it would wait for itself).
func (w *worker) do(f func() error) error {
	done := make(chan error, 1)
	w.jobs <- func() { done <- f() }
	return <-done
}

func (w *worker) stop() { w.once.Do(func() { close(w.jobs) }) }

// libs are the loaded libraries, shared by all Devices of the process (a
// library is loaded once; dlopen of the same path returns the same handle).
type libs struct {
	drv       driverAPI
	blas      cublasAPI
	lt        ltAPI
	hasLt     bool
	ltErr     error // why cuSPARSELt is unavailable (2:4 products then fail with it)
	paths     map[string]string
	driverVer int32
}

var (
	libsOnce sync.Once
	libsVal  *libs
	libsErr  error
)

// loadLibs finds and binds the driver, cuBLAS and cuSPARSELt. The driver and
// cuBLAS are required; cuSPARSELt missing leaves dense products working and
// records why 2:4 products cannot run.
func loadLibs() (*libs, error) {
	libsOnce.Do(func() { libsVal, libsErr = loadLibsOnce(Search{}) })
	return libsVal, libsErr
}

func loadLibsOnce(s Search) (*libs, error) {
	if !dlSupported {
		_, err := dlopen("")
		return nil, err
	}
	l := &libs{paths: map[string]string{}}
	open := func(s Search, lib Lib) (uintptr, string, error) {
		p, err := s.Find(lib)
		if err != nil {
			return 0, "", err
		}
		h, err := dlopenDeps(p, s)
		if err != nil {
			return 0, "", err
		}
		l.paths[lib.Name] = p
		return h, p, nil
	}
	h, p, err := open(s, LibDriver)
	if err != nil {
		return nil, err
	}
	if err := bind(h, p, l.drv.syms()); err != nil {
		return nil, err
	}
	// cuBLAS needs cuBLASLt; load the one beside it first (pip wheels and
	// toolkits keep them together) so the dependency resolves even when that
	// folder is not on the loader's path.
	bp, err := s.Find(LibCublas)
	if err != nil {
		return nil, err
	}
	ltSearch := s
	ltSearch.Getenv = func(k string) string {
		if k == "ARMOR_CUDA_LIBS" {
			return libDir(bp) + ":" + s.getenv(k)
		}
		return s.getenv(k)
	}
	if _, _, err := open(ltSearch, LibCublasLt); err != nil {
		return nil, fmt.Errorf("cuda: cuBLAS at %s needs cuBLASLt: %w", bp, err)
	}
	h, p, err = open(s, LibCublas)
	if err != nil {
		return nil, err
	}
	if err := bind(h, p, l.blas.syms()); err != nil {
		return nil, err
	}
	if h, p, err := open(s, LibSparseLt); err != nil {
		l.ltErr = err
	} else if err := bind(h, p, l.lt.syms()); err != nil {
		l.ltErr = err
	} else {
		if l.lt.algDestroy == nil {
			if q, err := dlsym(h, "cusparseLtAlgSelectionDestroy"); err == nil && q != 0 {
				registerFunc(&l.lt.algDestroy, q)
			}
		}
		l.hasLt = true
	}
	if r := l.drv.cuInit(0); r != 0 {
		return nil, fmt.Errorf("cuda: driver %s: %w", l.paths[LibDriver.Name], l.drv.check("cuInit", r))
	}
	l.drv.cuDriverGetVersion(&l.driverVer)
	return l, nil
}

var missingDep = regexp.MustCompile(`([^\s:/]+\.so[0-9.]*): cannot open shared object file`)

// dlopenDeps dlopens path; when that fails because a library it needs is
// not on the loader's path (pip wheels keep each library in its own folder,
// and LD_LIBRARY_PATH is read only at process start), it finds that library
// in the same places as ours, loads it first (symbols global) and tries
// again, up to 8 dependencies deep.
func dlopenDeps(path string, s Search) (uintptr, error) {
	var loaded []string
	for {
		h, err := dlopen(path)
		if err == nil {
			return h, nil
		}
		m := missingDep.FindStringSubmatch(err.Error())
		if m == nil || len(loaded) == 8 || filepath.Base(path) == m[1] {
			return 0, err
		}
		dep, ferr := s.Find(Lib{Name: m[1] + " (needed by " + filepath.Base(path) + ")", Files: []string{m[1]}, Pip: "*"})
		if ferr != nil {
			return 0, fmt.Errorf("%w\n%v", err, ferr)
		}
		if _, derr := dlopenDeps(dep, s); derr != nil {
			return 0, derr
		}
		loaded = append(loaded, dep)
	}
}

// Device is one GPU with its primary context, a cuBLAS handle and (when the
// library is present) a cuSPARSELt handle. All its calls run on one locked
// OS thread. Methods are safe for concurrent use (they are serialized).
type Device struct {
	w      *worker
	l      *libs
	dev    int32
	ctx    uintptr
	blas   uintptr
	lt     *opaque
	Lt     LtEnums
	ltErr  error
	Name   string
	Major  int
	Minor  int
	Memory uint64
	closed bool
}

// Open opens GPU ordinal, retaining its primary context (shared with any
// runtime-API user in the process, like cuBLAS and cuSPARSELt themselves).
func Open(ordinal int) (*Device, error) {
	l, err := loadLibs()
	if err != nil {
		return nil, err
	}
	return openLibs(l, ordinal)
}

// OpenSearch is Open with the libraries looked for as s says (Open uses
// the system's places and environment, and loads them once per process).
func OpenSearch(s Search, ordinal int) (*Device, error) {
	l, err := loadLibsOnce(s)
	if err != nil {
		return nil, err
	}
	return openLibs(l, ordinal)
}

func openLibs(l *libs, ordinal int) (*Device, error) {
	d := &Device{l: l, w: newWorker(), ltErr: l.ltErr}
	err := d.w.do(func() error {
		var n int32
		if err := l.drv.check("cuDeviceGetCount", l.drv.cuDeviceGetCount(&n)); err != nil {
			return err
		}
		if ordinal < 0 || int(ordinal) >= int(n) {
			return fmt.Errorf("cuda: device %d requested, %d present", ordinal, n)
		}
		if err := l.drv.check("cuDeviceGet", l.drv.cuDeviceGet(&d.dev, int32(ordinal))); err != nil {
			return err
		}
		name := make([]byte, 256)
		if err := l.drv.check("cuDeviceGetName", l.drv.cuDeviceGetName(&name[0], int32(len(name)), d.dev)); err != nil {
			return err
		}
		d.Name = strings.TrimRight(string(name), "\x00")
		var maj, min int32
		l.drv.cuDeviceGetAttribute(&maj, 75, d.dev) // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
		l.drv.cuDeviceGetAttribute(&min, 76, d.dev) // ..._MINOR
		d.Major, d.Minor = int(maj), int(min)
		l.drv.cuDeviceTotalMem(&d.Memory, d.dev)
		if err := l.drv.check("cuDevicePrimaryCtxRetain", l.drv.cuDevicePrimaryCtxRetain(&d.ctx, d.dev)); err != nil {
			return err
		}
		if err := l.drv.check("cuCtxSetCurrent", l.drv.cuCtxSetCurrent(d.ctx)); err != nil {
			return err
		}
		if err := l.blas.check("cublasCreate_v2", l.blas.cublasCreate(&d.blas)); err != nil {
			return err
		}
		if l.hasLt {
			if d.Major < 8 {
				d.ltErr = fmt.Errorf("cuda: %s (sm_%d%d) has no sparse tensor cores (cuSPARSELt needs sm_80 or newer)", d.Name, d.Major, d.Minor)
				return nil
			}
			d.lt = newOpaque()
			if err := l.lt.check("cusparseLtInit", l.lt.init(d.lt.p)); err != nil {
				d.lt, d.ltErr = nil, err
				return nil
			}
			var v int32
			if err := l.lt.check("cusparseLtGetVersion", l.lt.getVersion(d.lt.p, &v)); err != nil {
				d.ltErr = err
				return nil
			}
			e, err := LtEnumsFor(int(v))
			if err != nil {
				d.ltErr = err
				return nil
			}
			// From 0.8 algorithm selections must be destroyed; if the symbol
			// is under neither name tried, products still work and each
			// plan's selection leaks its (small) resources until exit.
			d.Lt = e
		}
		return nil
	})
	if err != nil {
		d.w.stop()
		return nil, err
	}
	return d, nil
}

// HasSparse reports whether 2:4 products can run, and if not, why.
func (d *Device) HasSparse() error { return d.ltErr }

// String describes the device and the libraries in use.
func (d *Device) String() string {
	s := fmt.Sprintf("%s (sm_%d%d, %.1f GiB), driver API %d.%d (%s), cuBLAS %s",
		d.Name, d.Major, d.Minor, float64(d.Memory)/(1<<30), d.l.driverVer/1000, d.l.driverVer%1000/10,
		d.l.paths[LibDriver.Name], d.l.paths[LibCublas.Name])
	if d.ltErr != nil {
		return s + "; 2:4 unavailable: " + d.ltErr.Error()
	}
	return s + fmt.Sprintf(", cuSPARSELt %s (%s)", LtVersionString(d.Lt.Version), d.l.paths[LibSparseLt.Name])
}

// Close releases the handles and the context and stops the worker thread.
func (d *Device) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	err := d.w.do(func() error {
		var errs []error
		if d.lt != nil && d.ltErr == nil {
			errs = append(errs, d.l.lt.check("cusparseLtDestroy", d.l.lt.destroy(d.lt.p)))
		}
		errs = append(errs, d.l.blas.check("cublasDestroy_v2", d.l.blas.cublasDestroy(d.blas)))
		errs = append(errs, d.l.drv.check("cuDevicePrimaryCtxRelease_v2", d.l.drv.cuDevicePrimaryCtxRelease(d.dev)))
		return errors.Join(errs...)
	})
	d.w.stop()
	return err
}

// Sync waits for all work queued on the device.
func (d *Device) Sync() error {
	return d.w.do(func() error { return d.l.drv.check("cuCtxSynchronize", d.l.drv.cuCtxSynchronize()) })
}

// Buffer is device memory.
type Buffer struct {
	d    *Device
	Ptr  uintptr
	Size int64
}

// Alloc allocates bytes of device memory (zeroed).
func (d *Device) Alloc(bytes int64) (*Buffer, error) {
	if bytes <= 0 {
		return nil, fmt.Errorf("cuda: Alloc of %d bytes", bytes)
	}
	b := &Buffer{d: d, Size: bytes}
	err := d.w.do(func() error { return d.alloc(b) })
	if err != nil {
		return nil, err
	}
	return b, nil
}

func (d *Device) alloc(b *Buffer) error {
	if err := d.l.drv.check("cuMemAlloc_v2", d.l.drv.cuMemAlloc(&b.Ptr, uint64(b.Size))); err != nil {
		return fmt.Errorf("%w (%d bytes)", err, b.Size)
	}
	return d.l.drv.check("cuMemsetD8_v2", d.l.drv.cuMemsetD8(b.Ptr, 0, uint64(b.Size)))
}

// Free releases the memory.
func (b *Buffer) Free() error {
	if b == nil || b.Ptr == 0 {
		return nil
	}
	err := b.d.w.do(func() error { return b.d.l.drv.check("cuMemFree_v2", b.d.l.drv.cuMemFree(b.Ptr)) })
	b.Ptr = 0
	return err
}

func (b *Buffer) span(off, n int64) error {
	if off < 0 || n < 0 || off+n > b.Size {
		return fmt.Errorf("cuda: %d bytes at offset %d outside a buffer of %d", n, off, b.Size)
	}
	return nil
}

// Upload copies src (f16/bf16 bits) to the buffer at byte offset off.
func (b *Buffer) Upload(off int64, src []uint16) error {
	n := int64(2 * len(src))
	if err := b.span(off, n); err != nil || n == 0 {
		return err
	}
	return b.d.w.do(func() error {
		return b.d.l.drv.check("cuMemcpyHtoD_v2", b.d.l.drv.cuMemcpyHtoD(b.Ptr+uintptr(off), unsafe.Pointer(&src[0]), uint64(n)))
	})
}

// Download copies len(dst) values from byte offset off into dst.
func (b *Buffer) Download(dst []uint16, off int64) error {
	n := int64(2 * len(dst))
	if err := b.span(off, n); err != nil || n == 0 {
		return err
	}
	return b.d.w.do(func() error {
		return b.d.l.drv.check("cuMemcpyDtoH_v2", b.d.l.drv.cuMemcpyDtoH(unsafe.Pointer(&dst[0]), b.Ptr+uintptr(off), uint64(n)))
	})
}

// UploadF32 and DownloadF32 copy float32 data.
func (b *Buffer) UploadF32(off int64, src []float32) error {
	n := int64(4 * len(src))
	if err := b.span(off, n); err != nil || n == 0 {
		return err
	}
	return b.d.w.do(func() error {
		return b.d.l.drv.check("cuMemcpyHtoD_v2", b.d.l.drv.cuMemcpyHtoD(b.Ptr+uintptr(off), unsafe.Pointer(&src[0]), uint64(n)))
	})
}

func (b *Buffer) DownloadF32(dst []float32, off int64) error {
	n := int64(4 * len(dst))
	if err := b.span(off, n); err != nil || n == 0 {
		return err
	}
	return b.d.w.do(func() error {
		return b.d.l.drv.check("cuMemcpyDtoH_v2", b.d.l.drv.cuMemcpyDtoH(unsafe.Pointer(&dst[0]), b.Ptr+uintptr(off), uint64(n)))
	})
}

// Available loads the libraries and opens GPU 0, returning a one-line
// description, or an error saying which library was not found and every
// place looked (or which call failed). For `--device cuda`.
func Available() (string, error) {
	d, err := Open(0)
	if err != nil {
		return "", err
	}
	defer d.Close()
	return d.String(), nil
}

// Supported reports whether this build can load CUDA libraries at all
// (linux/amd64 or linux/arm64, without -tags nocuda).
func Supported() bool { return dlSupported }
