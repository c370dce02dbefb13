package runtime

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/mmap"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
)

// densify rebuilds W = A'·S·B' in float64 from an .armor linear, decoding the
// packed 2:4 layout independently of the kernels (docs/armor-format.md).
func densify(t *testing.T, m *model.Model, name string, kind model.ArmorLinear) *tensor.Tensor {
	rows, cols := linearShape(m, name)
	vals := m.Tensors[name+".s24_values"]
	idx := m.Tensors[name+".s24_idx"]
	v := make([]float32, vals.Elements())
	tensor.DecodeF32(v, vals.DType, vals.Data)
	stride := (cols + 7) / 8
	S := make([]float64, rows*cols)
	for i := 0; i < rows; i++ {
		for k := 0; k < cols/2; k++ {
			p := int(idx.Data[i*stride+k/4]>>(2*(k%4))) & 3
			S[i*cols+4*(k/2)+p] = float64(v[i*cols/2+k])
		}
	}
	W := S
	if kind.Kind == "armor" {
		bd := func(tn string, n int) []float64 { // dense n×n from blocks
			tt := m.Tensors[tn]
			f := make([]float32, tt.Elements())
			tensor.DecodeF32(f, tt.DType, tt.Data)
			out := make([]float64, n*n)
			off := 0
			for r0 := 0; r0 < n; r0 += kind.Block {
				s := min(kind.Block, n-r0)
				for i := 0; i < s; i++ {
					for j := 0; j < s; j++ {
						out[(r0+i)*n+r0+j] = float64(f[off+i*s+j])
					}
				}
				off += s * s
			}
			return out
		}
		pre, post := bd(name+".pre", cols), bd(name+".post", rows)
		SB := make([]float64, rows*cols)
		for i := 0; i < rows; i++ {
			for k := 0; k < cols; k++ {
				if s := S[i*cols+k]; s != 0 {
					for j := 0; j < cols; j++ {
						SB[i*cols+j] += s * pre[k*cols+j]
					}
				}
			}
		}
		W = make([]float64, rows*cols)
		for i := 0; i < rows; i++ {
			for k := 0; k < rows; k++ {
				if a := post[i*rows+k]; a != 0 {
					for j := 0; j < cols; j++ {
						W[i*cols+j] += a * SB[k*cols+j]
					}
				}
			}
		}
	}
	w32 := make([]float32, len(W))
	for i, x := range W {
		w32[i] = float32(x)
	}
	return &tensor.Tensor{Name: name + ".weight", DType: tensor.F32, Shape: []int{rows, cols}, Data: synth.Encode(w32, tensor.F32)}
}

func TestArmorFileMatchesDensified(t *testing.T) {
	c := model.Config{Arch: "qwen2", Dim: 48, Hidden: 72, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 12, Vocab: 64, Context: 64,
		NormEps: 1e-6, RopeTheta: 10000, RopeHalves: true, Tied: false, QKBias: true}
	for _, v := range []synth.Variant{synth.Sparse24, synth.Armor} {
		for _, dt := range []tensor.DType{tensor.F32, tensor.F16} {
			t.Run(string(v)+"/"+dt.String(), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "m.armor")
				// Block 20 does not divide 48 or 72: ragged last blocks.
				if err := synth.WriteArmor(path, c, synth.ArmorOptions{Variant: v, DType: dt, Block: 20, Seed: 3}); err != nil {
					t.Fatal(err)
				}
				ld, err := Open(path, "", false)
				if err != nil {
					t.Fatal(err)
				}
				defer ld.Close()
				m := ld.Model
				hdr := m.Armor
				dense, err := New(m, func(m *model.Model, name string) (Linear, error) {
					kind, ok := hdr.Linears[name]
					if !ok || kind.Kind == "dense" {
						return DenseBuilder(m, name)
					}
					return NewDense(densify(t, m, name, kind), m.Tensors[name+".bias"])
				})
				if err != nil {
					t.Fatal(err)
				}
				tokens := []int{1, 7, 30, 2, 63, 5, 9}
				sa, _ := ld.Tr.NewState(32)
				sb, _ := dense.NewState(32)
				la, err := sa.Forward(tokens, true)
				if err != nil {
					t.Fatal(err)
				}
				lb, _ := sb.Forward(tokens, true)
				var num, den float64
				for i := range la {
					num += float64(la[i]-lb[i]) * float64(la[i]-lb[i])
					den += float64(lb[i]) * float64(lb[i])
				}
				if rel := math.Sqrt(num / den); !(rel < 1e-4) {
					t.Fatalf("prefill logits differ from the densified model: relative error %g", rel)
				}
				// Greedy decoding agrees token for token.
				sa.Reset()
				sb.Reset()
				ta, tb := 1, 1
				for i := 0; i < 20; i++ {
					a, _ := sa.Forward([]int{ta}, false)
					b, _ := sb.Forward([]int{tb}, false)
					ta, tb = Argmax(a), Argmax(b)
					if ta != tb {
						t.Fatalf("greedy step %d: armor %d, densified %d", i, ta, tb)
					}
				}
			})
		}
	}
}

// A model copied into memory stores its wide dense and 2:4 layers in column
// panels (Panelize) and a mapped one uses the file's rows in place; both
// compute the same logits.
func TestWideLayersPanelsWhenCopied(t *testing.T) {
	defer mmap.SetMode(mmap.CurrentMode())
	c := model.Config{Arch: "llama", Dim: 32, Hidden: 8224, Layers: 1, Heads: 2, KVHeads: 1, HeadDim: 16, Vocab: 48, Context: 32,
		NormEps: 1e-5, RopeTheta: 10000, RopeHalves: true, Tied: true}
	for _, v := range []synth.Variant{synth.Dense, synth.Sparse24, synth.Armor} {
		path := filepath.Join(t.TempDir(), "m.armor")
		if err := synth.WriteArmor(path, c, synth.ArmorOptions{Variant: v, DType: tensor.F16, Block: 16, Seed: 5}); err != nil {
			t.Fatal(err)
		}
		var logits [2][]float32
		for i, mode := range []mmap.Mode{mmap.Map, mmap.Copy} {
			mmap.SetMode(mode)
			ld, err := Open(path, "", false)
			if err != nil {
				t.Fatal(err)
			}
			var pc int
			switch l := ld.Tr.Linears(0)[len(ld.Tr.Linears(0))-1].(type) { // ffn_down: 32 × 8224
			case *Dense:
				pc = l.W.PanelCols()
			case *Sparse:
				pc = l.W.PanelCols()
			case *Armor:
				pc = l.L.Core.PanelCols()
			default:
				t.Fatalf("%s: ffn_down is a %T", v, l)
			}
			if (mode == mmap.Copy) != (pc > 0) {
				t.Errorf("%s, mode %v: ffn_down panel width %d", v, mode, pc)
			}
			st, _ := ld.Tr.NewState(32)
			logits[i], err = st.Forward([]int{1, 5, 9, 2, 30, 7, 11, 3, 4, 40, 6, 8, 12, 13, 14, 15, 16, 17}, true)
			if err != nil {
				t.Fatal(err)
			}
			step, _ := st.Forward([]int{5}, false)
			logits[i] = append(logits[i], step...)
			// A second transformer over the same open model (the rows of
			// paneled layers were given back) reuses the panels.
			tr2, err := New(ld.Model, ArmorFileBuilder(ld.Model))
			if err != nil {
				t.Fatalf("%s, mode %v: second build: %v", v, mode, err)
			}
			st2, _ := tr2.NewState(32)
			again, _ := st2.Forward([]int{1, 5, 9, 2, 30, 7, 11, 3, 4, 40, 6, 8, 12, 13, 14, 15, 16, 17}, true)
			if !slices.Equal(again, logits[i][:len(again)]) {
				t.Errorf("%s, mode %v: a second transformer over the model computes other logits", v, mode)
			}
			ld.Close()
		}
		var num, den float64
		for i := range logits[0] {
			d := float64(logits[0][i] - logits[1][i])
			num += d * d
			den += float64(logits[0][i]) * float64(logits[0][i])
		}
		if rel := math.Sqrt(num / den); !(rel < 1e-5) {
			t.Errorf("%s: logits of the mapped and the paneled model differ: relative error %g", v, rel)
		}
	}
}
