package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// l2cSpec is one tensor of a llama2.c legacy checkpoint in file order, with
// the canonical name the loader must give it ("" for the RoPE tables it skips).
type l2cSpec struct {
	name  string
	shape []int
}

// l2cLayout lists the tensors of a llama2.c checkpoint in the order
// llama2.c's export.py (legacy_export) writes them and run.c's
// memory_map_weights reads them.
func l2cLayout(dim, hidden, layers, heads, kvHeads, vocab, seq int, shared bool) []l2cSpec {
	hd := dim / heads
	kvd := kvHeads * hd
	out := []l2cSpec{{"token_embd.weight", []int{vocab, dim}}}
	per := func(kind string, shape ...int) {
		for l := 0; l < layers; l++ {
			out = append(out, l2cSpec{fmt.Sprintf("blk.%d.%s.weight", l, kind), shape})
		}
	}
	per("attn_norm", dim)
	per("attn_q", dim, dim)
	per("attn_k", kvd, dim)
	per("attn_v", kvd, dim)
	per("attn_output", dim, dim)
	per("ffn_norm", dim)
	per("ffn_gate", hidden, dim)
	per("ffn_down", dim, hidden)
	per("ffn_up", hidden, dim)
	out = append(out, l2cSpec{"output_norm.weight", []int{dim}},
		l2cSpec{"", []int{seq, hd / 2}}, l2cSpec{"", []int{seq, hd / 2}})
	if !shared {
		out = append(out, l2cSpec{"output.weight", []int{vocab, dim}})
	}
	return out
}

// writeSyntheticL2C writes a checkpoint whose every float is its own global
// index, so a tensor read from the wrong offset or in the wrong order shows.
func writeSyntheticL2C(t *testing.T, dim, hidden, layers, heads, kvHeads, vocab, seq int, shared bool) (string, []l2cSpec) {
	t.Helper()
	specs := l2cLayout(dim, hidden, layers, heads, kvHeads, vocab, seq, shared)
	v := vocab
	if !shared {
		v = -vocab
	}
	var b []byte
	for _, h := range []int{dim, hidden, layers, heads, kvHeads, v, seq} {
		b = binary.LittleEndian.AppendUint32(b, uint32(int32(h)))
	}
	k := 0
	for _, s := range specs {
		n := 1
		for _, d := range s.shape {
			n *= d
		}
		for i := 0; i < n; i++ {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(k)))
			k++
		}
	}
	p := filepath.Join(t.TempDir(), "model.bin")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, specs
}

func TestLlama2cLayout(t *testing.T) {
	for _, shared := range []bool{true, false} {
		// Odd sizes and GQA (4 query heads share 2 KV heads).
		dim, hidden, layers, heads, kvHeads, vocab, seq := 24, 7, 3, 4, 2, 5, 9
		p, specs := writeSyntheticL2C(t, dim, hidden, layers, heads, kvHeads, vocab, seq, shared)
		m, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		c := m.Config
		if c.Dim != dim || c.Hidden != hidden || c.Layers != layers || c.Heads != heads || c.KVHeads != kvHeads ||
			c.Vocab != vocab || c.Context != seq || c.HeadDim != dim/heads || c.Tied != shared || c.RopeHalves {
			t.Fatalf("shared=%v: config %+v", shared, c)
		}
		k := 0
		named := 0
		for _, s := range specs {
			n := 1
			for _, d := range s.shape {
				n *= d
			}
			if s.name == "" {
				k += n
				continue
			}
			named++
			tt := m.Tensors[s.name]
			if tt == nil {
				t.Fatalf("shared=%v: tensor %s missing", shared, s.name)
			}
			if fmt.Sprint(tt.Shape) != fmt.Sprint(s.shape) {
				t.Fatalf("%s: shape %v, want %v", s.name, tt.Shape, s.shape)
			}
			// llama2.c stores W[out][in] row-major (run.c: w[i*n+j]), which is
			// exactly the GGUF/ggml layout: element (r, c) is float r*cols+c.
			v, ok := tt.F32View()
			if !ok || len(v) != n {
				t.Fatalf("%s: no F32 view of %d values", s.name, n)
			}
			for i := range v {
				if v[i] != float32(k+i) {
					t.Fatalf("%s[%d] = %v, want %v", s.name, i, v[i], float32(k+i))
				}
			}
			k += n
		}
		if len(m.Tensors) != named {
			t.Fatalf("shared=%v: %d tensors, want %d", shared, len(m.Tensors), named)
		}
		m.Close()
	}
}

func TestLlama2cBadFiles(t *testing.T) {
	p, _ := writeSyntheticL2C(t, 8, 6, 2, 2, 2, 5, 4, true)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"truncated.bin", b[:len(b)-4], "truncated"},
		{"trailing.bin", append(append([]byte{}, b...), 0, 0, 0, 0), "after its last tensor"},
		{"tiny.bin", b[:10], "not a GGUF"},
		{"header.bin", append(binary.LittleEndian.AppendUint32(nil, 0), b[4:]...), "implausible"},
	}
	for _, tc := range cases {
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := Load(p)
		if err == nil {
			m.Close()
			t.Fatalf("%s: loaded without error", tc.name)
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.name) {
			t.Fatalf("%s: error %q should name the file and say %q", tc.name, err, tc.want)
		}
	}
}
