package runtime

import (
	"fmt"
	"sync"

	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/kernels/cuda"
	"github.com/armor-llm/armor/model"
)

// CUDALinear is a linear layer whose weights are on an NVIDIA GPU
// (kernels/cuda.Layer: cuBLAS for dense and block-diagonal products,
// cuSPARSELt for the 2:4 core). Activations cross to the device and back on
// every call, so this places the weights and the products on the GPU, not
// yet the whole forward pass. Linear has no error return: if a device call
// fails, the layer reports it once through OnError and computes on the host
// layer from then on, so generation never stops half-way.
type CUDALinear struct {
	Host Linear
	Dev  *cuda.Layer
	// OnError is called once with the first device failure (nil: ignored).
	OnError func(error)

	mu     sync.Mutex
	failed bool
}

// CUDAPlacer is the optional interface of a host layer that has a GPU
// version: PlaceOnCUDA uploads its weights to dev in dtype dt. Dense, Sparse
// and Armor implement it; a new kind of layer gains GPU placement by
// implementing it, without a change here.
type CUDAPlacer interface {
	PlaceOnCUDA(dev *cuda.Device, dt kernels.DType) (*cuda.Layer, error)
}

var _ = []CUDAPlacer{(*Dense)(nil), (*Sparse)(nil), (*Armor)(nil)}

// PlaceOnCUDA implements CUDAPlacer (cuBLAS).
func (d *Dense) PlaceOnCUDA(dev *cuda.Device, dt kernels.DType) (*cuda.Layer, error) {
	return dev.NewDenseLayer(&d.W, d.Bias, dt)
}

// PlaceOnCUDA implements CUDAPlacer (cuSPARSELt).
func (s *Sparse) PlaceOnCUDA(dev *cuda.Device, dt kernels.DType) (*cuda.Layer, error) {
	return dev.NewSparseLayer(&s.W, s.Bias, dt)
}

// PlaceOnCUDA implements CUDAPlacer (cuSPARSELt core, batched GEMM wrappers).
func (a *Armor) PlaceOnCUDA(dev *cuda.Device, dt kernels.DType) (*cuda.Layer, error) {
	return dev.NewArmorLayer(a.L, dt)
}

// NewCUDALinear places a host layer that implements CUDAPlacer on dev with
// 16-bit weights of dtype dt (F16 or BF16). It returns an error when the
// layer cannot be placed (no GPU version, sizes cuSPARSELt cannot take, out
// of memory); the caller may then keep the host layer.
func NewCUDALinear(dev *cuda.Device, host Linear, dt kernels.DType) (*CUDALinear, error) {
	p, ok := host.(CUDAPlacer)
	if !ok {
		return nil, fmt.Errorf("runtime: no device version of %T", host)
	}
	if dev == nil {
		return nil, fmt.Errorf("runtime: no CUDA device")
	}
	l, err := p.PlaceOnCUDA(dev, dt)
	if err != nil {
		return nil, err
	}
	return &CUDALinear{Host: host, Dev: l}, nil
}

func (c *CUDALinear) In() int            { return c.Host.In() }
func (c *CUDALinear) Out() int           { return c.Host.Out() }
func (c *CUDALinear) WeightBytes() int64 { return c.Dev.WeightBytes() }

func (c *CUDALinear) Forward(y, x []float32) { c.ForwardBatch(y, x, 1) }

func (c *CUDALinear) ForwardBatch(y, x []float32, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.failed {
		err := c.Dev.Forward(y, x, n)
		if err == nil {
			return
		}
		c.failed = true
		if c.OnError != nil {
			c.OnError(fmt.Errorf("layer %d×%d on the GPU failed, using the CPU from now on: %w", c.Out(), c.In(), err))
		}
	}
	if n == 1 {
		c.Host.Forward(y, x)
	} else {
		c.Host.ForwardBatch(y, x, n)
	}
}

// CUDABuilder wraps a LinearBuilder (nil: DenseBuilder) so that each layer it
// builds is placed on dev in dtype dt. A layer that cannot be placed stays
// on the host; fallback (may be nil) is told which and why. onError is
// given to every placed layer (see CUDALinear.OnError).
func CUDABuilder(dev *cuda.Device, base LinearBuilder, dt kernels.DType, fallback func(name string, err error), onError func(error)) LinearBuilder {
	if base == nil {
		base = DenseBuilder
	}
	return func(m *model.Model, name string) (Linear, error) {
		host, err := base(m, name)
		if err != nil {
			return nil, err
		}
		c, err := NewCUDALinear(dev, host, dt)
		if err != nil {
			if fallback != nil {
				fallback(name, err)
			}
			return host, nil
		}
		c.OnError = onError
		return c, nil
	}
}

// CUDABuilderFor is CUDABuilder over the builder the file's format needs
// (ARMOR layers for .armor files, dense otherwise).
func CUDABuilderFor(m *model.Model, dev *cuda.Device, dt kernels.DType, fallback func(string, error), onError func(error)) LinearBuilder {
	return CUDABuilder(dev, builderFor(m), dt, fallback, onError)
}
