package model_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
)

func TestArmorRoundTripEveryKind(t *testing.T) {
	c := tiny()
	dir := t.TempDir()
	for _, v := range []synth.Variant{synth.Dense, synth.Sparse24, synth.Armor} {
		path := filepath.Join(dir, string(v)+".armor")
		if err := synth.WriteArmor(path, c, synth.ArmorOptions{Variant: v, DType: tensor.BF16, Block: 8, Seed: 9}); err != nil {
			t.Fatal(err)
		}
		m, err := model.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		hdr := m.Armor
		if m.Format != "armor" || m.Config.Dim != c.Dim || hdr == nil {
			t.Fatalf("%s: format %s config %+v", v, m.Format, m.Config)
		}
		kind := hdr.Linears["blk.0.ffn_down"]
		if string(v) != kind.Kind {
			t.Errorf("%s: ffn_down stored as %+v", v, kind)
		}
		// Every declared part is present with its bytes intact.
		for _, p := range synth.Parts(c) {
			if v == synth.Dense || !strings.HasSuffix(p.Name, ".weight") || strings.Contains(p.Name, "norm") || p.Name == "token_embd.weight" {
				if m.Tensors[p.Name] == nil {
					t.Errorf("%s: tensor %s missing", v, p.Name)
				}
			}
		}
		want := [][]string{nil, {".s24_values", ".s24_idx"}, {".s24_values", ".s24_idx", ".pre", ".post"}}[map[synth.Variant]int{synth.Dense: 0, synth.Sparse24: 1, synth.Armor: 2}[v]]
		for _, suf := range want {
			tt := m.Tensors["blk.0.attn_q"+suf]
			if tt == nil {
				t.Fatalf("%s: blk.0.attn_q%s missing", v, suf)
			}
			if uintptrMod(tt.Data) != 0 {
				t.Errorf("%s: %s not 64-byte aligned in the mapping", v, tt.Name)
			}
		}
		m.Close()
	}
}

func uintptrMod(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	return int(uintptr(unsafePointer(b)) % 64)
}

func TestArmorCorruptionAndTruncation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.armor")
	if err := synth.WriteArmor(path, tiny(), synth.ArmorOptions{Variant: synth.Armor, DType: tensor.F16, Block: 4, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	full, _ := os.ReadFile(path)
	// Flip one byte near the end (inside the last tensors' data).
	bad := bytes.Clone(full)
	bad[len(bad)-3] ^= 0x40
	p := filepath.Join(dir, "bad.armor")
	os.WriteFile(p, bad, 0o644)
	if _, err := model.Load(p); err == nil || !strings.Contains(err.Error(), "corrupted") || !strings.Contains(err.Error(), p) {
		t.Fatalf("corrupted file: %v", err)
	}
	for _, n := range []int{10, 20, 100, len(full) / 2, len(full) - 1} {
		os.WriteFile(p, full[:n], 0o644)
		if m, err := model.Load(p); err == nil {
			m.Close()
			t.Fatalf("truncated to %d bytes: loaded", n)
		}
	}
}

func TestArmorWriteFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.armor")
	spec := &model.ArmorSpec{Config: tiny(), Parts: []model.ArmorPart{
		{Name: "a", DType: tensor.F32, Shape: []int{2}, Data: func() ([]byte, error) { return make([]byte, 8), nil }},
		{Name: "b", DType: tensor.F32, Shape: []int{2}, Data: func() ([]byte, error) { return nil, os.ErrDeadlineExceeded }},
	}}
	if err := model.WriteArmor(path, spec); err == nil {
		t.Fatal("failing part: no error")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Fatalf("failed write left %d files behind", len(ents))
	}
	if err := model.WriteArmor(filepath.Join(dir, "no", "such", "dir.armor"), spec); err == nil || !strings.Contains(err.Error(), "dir.armor") {
		t.Fatalf("unwritable path: %v", err)
	}
}
