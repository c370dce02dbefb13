package runtime

import (
	"fmt"

	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/model/tensor"
)

// Dense is a dense linear layer over f32, f16 or bf16 weights, used in place
// where the stored bytes allow it.
type Dense struct {
	W    kernels.Dense
	Bias []float32
}

// NewDense wraps a [d_out, d_in] weight tensor and an optional bias. F32, F16
// and BF16 weights are used in place when aligned; quantized (Q8_0, Q4_0) or
// unaligned weights are converted to f32 once, here.
func NewDense(w, bias *tensor.Tensor) (*Dense, error) {
	if len(w.Shape) != 2 {
		return nil, fmt.Errorf("linear %s: shape %v is not a matrix", w.Name, w.Shape)
	}
	d := &Dense{W: kernels.Dense{Rows: w.Shape[0], Cols: w.Shape[1]}}
	switch w.DType {
	case tensor.F16, tensor.BF16:
		kd, _ := w.DType.Kernel()
		d.W.DType = kd
		d.W.U16 = u16(w)
	default:
		d.W.DType = kernels.F32
		d.W.F32 = w.ToF32()
	}
	if err := d.W.Check(); err != nil {
		return nil, fmt.Errorf("linear %s: %w", w.Name, err)
	}
	if err := d.setBias(bias); err != nil {
		return nil, err
	}
	return d, nil
}

// setBias sets the layer's bias from the tensor (nil: none) after checking
// its size against the weight's rows.
func (d *Dense) setBias(bias *tensor.Tensor) error {
	if bias != nil {
		if bias.Elements() != d.W.Rows {
			return fmt.Errorf("linear %s: bias has %d elements, want %d", bias.Name, bias.Elements(), d.W.Rows)
		}
		d.Bias = bias.ToF32()
	}
	return nil
}

func (d *Dense) In() int  { return d.W.Cols }
func (d *Dense) Out() int { return d.W.Rows }

func (d *Dense) Forward(y, x []float32) {
	d.W.MatVec(y, x)
	addBias(y, d.Bias, 1)
}

func (d *Dense) ForwardBatch(y, x []float32, n int) {
	d.W.MatMul(y, x, n)
	addBias(y, d.Bias, n)
}

func (d *Dense) WeightBytes() int64 { return d.W.Bytes() + int64(4*len(d.Bias)) }

func addBias(y, b []float32, n int) {
	if b == nil {
		return
	}
	for t := 0; t < n; t++ {
		row := y[t*len(b) : (t+1)*len(b)]
		for i, v := range b {
			row[i] += v
		}
	}
}
