package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/armor-llm/armor/model/tensor"
)

// KV is one metadata entry for Write; order is preserved.
type KV struct {
	Key   string
	Value any // uint32, int32, float32, bool, string, []string, []float32, []int32, uint64, float64
}

const writeAlign = 32

var typeOf = map[tensor.DType]uint32{tensor.F32: 0, tensor.F16: 1, tensor.Q4_0: 2, tensor.Q8_0: 8, tensor.BF16: 30}

// Write writes a GGUF v3 file to path atomically (a temporary file renamed
// into place). Tensor data are copied from each tensor's Data.
func Write(path string, kvs []KV, tensors []*tensor.Tensor) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.gguf")
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err = encode(w, kvs, tensors); err != nil {
		return fmt.Errorf("gguf: %s: %w", path, err)
	}
	if err = w.Flush(); err != nil {
		return fmt.Errorf("gguf: %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("gguf: %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return nil
}

type enc struct {
	w   io.Writer
	n   int64
	err error
}

func (e *enc) raw(b []byte) {
	if e.err != nil {
		return
	}
	var k int
	k, e.err = e.w.Write(b)
	e.n += int64(k)
}

func (e *enc) u32(v uint32) { e.raw(binary.LittleEndian.AppendUint32(nil, v)) }
func (e *enc) u64(v uint64) { e.raw(binary.LittleEndian.AppendUint64(nil, v)) }
func (e *enc) str(s string) { e.u64(uint64(len(s))); e.raw([]byte(s)) }

func (e *enc) value(v any) {
	switch x := v.(type) {
	case uint32:
		e.u32(typeUint32)
		e.u32(x)
	case int32:
		e.u32(typeInt32)
		e.u32(uint32(x))
	case uint64:
		e.u32(typeUint64)
		e.u64(x)
	case float32:
		e.u32(typeFloat32)
		e.u32(math.Float32bits(x))
	case float64:
		e.u32(typeFloat64)
		e.u64(math.Float64bits(x))
	case bool:
		e.u32(typeBool)
		if x {
			e.raw([]byte{1})
		} else {
			e.raw([]byte{0})
		}
	case string:
		e.u32(typeString)
		e.str(x)
	case []string:
		e.u32(typeArray)
		e.u32(typeString)
		e.u64(uint64(len(x)))
		for _, s := range x {
			e.str(s)
		}
	case []float32:
		e.u32(typeArray)
		e.u32(typeFloat32)
		e.u64(uint64(len(x)))
		for _, f := range x {
			e.u32(math.Float32bits(f))
		}
	case []int32:
		e.u32(typeArray)
		e.u32(typeInt32)
		e.u64(uint64(len(x)))
		for _, f := range x {
			e.u32(uint32(f))
		}
	default:
		if e.err == nil {
			e.err = fmt.Errorf("metadata value of type %T not supported", v)
		}
	}
}

func encode(w io.Writer, kvs []KV, tensors []*tensor.Tensor) error {
	e := &enc{w: w}
	e.raw([]byte("GGUF"))
	e.u32(3)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(kvs)))
	for _, kv := range kvs {
		e.str(kv.Key)
		e.value(kv.Value)
	}
	var off uint64
	for _, t := range tensors {
		gt, ok := typeOf[t.DType]
		if !ok {
			return fmt.Errorf("tensor %s: dtype %v cannot be written", t.Name, t.DType)
		}
		size, err := tensor.ByteSize(t.DType, int64(t.Elements()))
		if err != nil || size != int64(len(t.Data)) {
			return fmt.Errorf("tensor %s: %d data bytes do not match shape %v of %v", t.Name, len(t.Data), t.Shape, t.DType)
		}
		e.str(t.Name)
		e.u32(uint32(len(t.Shape)))
		for d := len(t.Shape) - 1; d >= 0; d-- {
			e.u64(uint64(t.Shape[d]))
		}
		e.u32(gt)
		e.u64(off)
		off += (uint64(size) + writeAlign - 1) / writeAlign * writeAlign
	}
	pad := func() {
		if r := e.n % writeAlign; r != 0 {
			e.raw(make([]byte, writeAlign-r))
		}
	}
	pad()
	for _, t := range tensors {
		e.raw(t.Data)
		pad()
	}
	return e.err
}
