package cuda

import (
	"fmt"
	"math"
	"unsafe"
)

// Module is PTX loaded into the device's context with cuModuleLoadData (the
// driver JIT-compiles it for the GPU at hand, so PTX for sm_80 runs on
// sm_90 too).
type Module struct {
	d *Device
	h uintptr
}

// LoadPTX loads PTX text.
func (d *Device) LoadPTX(ptx []byte) (*Module, error) {
	if len(ptx) == 0 {
		return nil, fmt.Errorf("cuda: LoadPTX: empty PTX (was gen_ptx.sh run?)")
	}
	img := make([]byte, len(ptx)+1) // NUL-terminated, as cuModuleLoadData reads text images
	copy(img, ptx)
	m := &Module{d: d}
	err := d.w.do(func() error {
		return d.l.drv.check("cuModuleLoadData", d.l.drv.cuModuleLoadData(&m.h, unsafe.Pointer(&img[0])))
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Unload releases the module.
func (m *Module) Unload() error {
	return m.d.w.do(func() error { return m.d.l.drv.check("cuModuleUnload", m.d.l.drv.cuModuleUnload(m.h)) })
}

// Function is one __global__ function of a Module.
type Function struct {
	m    *Module
	h    uintptr
	Name string
}

// Function looks up an extern "C" kernel by name.
func (m *Module) Function(name string) (*Function, error) {
	f := &Function{m: m, Name: name}
	cname := append([]byte(name), 0)
	err := m.d.w.do(func() error {
		return m.d.l.drv.check("cuModuleGetFunction("+name+")", m.d.l.drv.cuModuleGetFunction(&f.h, m.h, &cname[0]))
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// packArgs lays kernel arguments out as cuLaunchKernel's kernelParams
// wants: one pointer per argument to a copy of its value. Accepted:
// *Buffer (its device address), uintptr, int32, uint32, int (as int32),
// float32.
func packArgs(args []any) ([]unsafe.Pointer, error) {
	vals := make([]uint64, len(args)) // backing store, 8 bytes per argument
	ps := make([]unsafe.Pointer, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case *Buffer:
			vals[i] = uint64(v.Ptr)
		case uintptr:
			vals[i] = uint64(v)
		case int32:
			vals[i] = uint64(uint32(v))
		case uint32:
			vals[i] = uint64(v)
		case int:
			if v < math.MinInt32 || v > math.MaxInt32 {
				return nil, fmt.Errorf("cuda: kernel argument %d: %d does not fit an int", i, v)
			}
			vals[i] = uint64(uint32(int32(v)))
		case float32:
			vals[i] = uint64(math.Float32bits(v))
		default:
			return nil, fmt.Errorf("cuda: kernel argument %d: unsupported type %T", i, a)
		}
		// Little-endian: a 4-byte argument is the low half of its slot.
		ps[i] = unsafe.Pointer(&vals[i])
	}
	return ps, nil
}

// Launch runs f on the default stream with the given grid and block sizes
// and dynamic shared memory bytes.
func (f *Function) Launch(grid, block [3]uint32, shmem uint32, args ...any) error {
	ps, err := packArgs(args)
	if err != nil {
		return err
	}
	d := f.m.d
	return d.w.do(func() error {
		var pp *unsafe.Pointer
		if len(ps) > 0 {
			pp = &ps[0]
		}
		r := d.l.drv.cuLaunchKernel(f.h, grid[0], grid[1], grid[2], block[0], block[1], block[2], shmem, 0, pp, nil)
		return d.l.drv.check("cuLaunchKernel("+f.Name+")", r)
	})
}
