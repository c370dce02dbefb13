package safetensors

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/armor-llm/armor/model/tensor"
)

func TestRoundTripAndTruncation(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "model.safetensors")
	ts := []*tensor.Tensor{
		{Name: "w", DType: tensor.BF16, Shape: []int{2, 3}, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		{Name: "b", DType: tensor.F32, Shape: []int{2}, Data: []byte{1, 0, 0, 0, 2, 0, 0, 0}},
	}
	if err := Write(p, ts); err != nil {
		t.Fatal(err)
	}
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ts {
		g := s.Tensors[w.Name]
		if g == nil || g.DType != w.DType || !reflect.DeepEqual(g.Shape, w.Shape) || !reflect.DeepEqual(g.Data, w.Data) {
			t.Errorf("%s: got %v", w.Name, g)
		}
	}
	s.Close()
	full, _ := os.ReadFile(p)
	for n := 0; n < len(full); n++ {
		q := filepath.Join(dir, "t.safetensors")
		os.WriteFile(q, full[:n], 0o644)
		if s, err := Open(q); err == nil {
			s.Close()
			t.Fatalf("truncated to %d bytes: no error", n)
		}
	}
}

func TestSharded(t *testing.T) {
	dir := t.TempDir()
	a := &tensor.Tensor{Name: "x", DType: tensor.F32, Shape: []int{1}, Data: make([]byte, 4)}
	b := &tensor.Tensor{Name: "y", DType: tensor.F16, Shape: []int{2}, Data: make([]byte, 4)}
	Write(filepath.Join(dir, "model-00001-of-00002.safetensors"), []*tensor.Tensor{a})
	Write(filepath.Join(dir, "model-00002-of-00002.safetensors"), []*tensor.Tensor{b})
	os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(`{"weight_map":{"x":"model-00001-of-00002.safetensors","y":"model-00002-of-00002.safetensors"}}`), 0o644)
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !reflect.DeepEqual(s.Names(), []string{"x", "y"}) {
		t.Fatal(s.Names())
	}
	os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(`{"weight_map":{"z":"model-00001-of-00002.safetensors"}}`), 0o644)
	if _, err := OpenDir(dir); err == nil {
		t.Fatal("index naming a missing tensor accepted")
	}
}
