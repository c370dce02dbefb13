package model_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"github.com/armor-llm/armor/internal/hostile"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
)

// bounded runs load and checks the bounds on failing fast: under
// a second and under 100 MB allocated.
func bounded(t *testing.T, path string, parts ...string) {
	t.Helper()
	hostile.Bounded(t, path, func() { wantErr(t, path, append([]string{path}, parts...)...) })
}

// armorParts splits a version-2 .armor file into its header and data.
func armorParts(t *testing.T, b []byte) (model.ArmorHeader, []byte) {
	t.Helper()
	n := binary.LittleEndian.Uint64(b[8:])
	var h model.ArmorHeader
	if err := json.Unmarshal(b[24:24+n], &h); err != nil {
		t.Fatal(err)
	}
	start := (24 + int(n) + 63) / 64 * 64
	return h, b[start:]
}

// armorFile assembles a file of the given version around header JSON hj.
func armorFile(version uint32, hj, data []byte) []byte {
	b := []byte("ARMR")
	b = binary.LittleEndian.AppendUint32(b, version)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(hj)))
	if version >= 2 {
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(hj, crc32.MakeTable(crc32.Castagnoli)))
		b = binary.LittleEndian.AppendUint32(b, 0)
	}
	b = append(b, hj...)
	for len(b)%64 != 0 {
		b = append(b, 0)
	}
	return append(b, data...)
}

func writeTinyArmor(t *testing.T, dir string) []byte {
	t.Helper()
	path := filepath.Join(dir, "ok.armor")
	if err := synth.WriteArmor(path, tiny(), synth.ArmorOptions{Variant: synth.Armor, DType: tensor.F16, Block: 4, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestArmorHeaderChecksum(t *testing.T) {
	dir := t.TempDir()
	full := writeTinyArmor(t, dir)
	if v := binary.LittleEndian.Uint32(full[4:]); v != 2 {
		t.Fatalf("writer wrote version %d", v)
	}
	// An edit that keeps the header valid JSON of the same length.
	bad := bytes.Replace(full, []byte(`"context":32`), []byte(`"context":31`), 1)
	if bytes.Equal(bad, full) {
		t.Fatal("edit did not apply")
	}
	p := filepath.Join(dir, "edited.armor")
	os.WriteFile(p, bad, 0o644)
	bounded(t, p, "header is corrupted or was edited")

	// Version 1 (no header checksum) still loads, with a note.
	h, data := armorParts(t, full)
	hj, _ := json.Marshal(&h)
	p = filepath.Join(dir, "v1.armor")
	os.WriteFile(p, armorFile(1, hj, data), 0o644)
	m, err := model.Load(p)
	if err != nil {
		t.Fatalf("version 1: %v", err)
	}
	m.Close()
	if len(m.Notes) != 1 || !strings.Contains(m.Notes[0], "version 1") {
		t.Errorf("version 1 notes: %q", m.Notes)
	}
	p = filepath.Join(dir, "v9.armor")
	os.WriteFile(p, armorFile(9, hj, data), 0o644)
	bounded(t, p, "format version 9 is not supported")
}

func TestArmorTruncatedAndUnfinished(t *testing.T) {
	dir := t.TempDir()
	full := writeTinyArmor(t, dir)
	p := filepath.Join(dir, "cut.armor")
	for _, n := range []int{10, 20, 40, len(full) / 2, len(full) - 1} {
		os.WriteFile(p, full[:n], 0o644)
		bounded(t, p, "truncated")
	}
	// What a killed writer leaves: tensor checksums and the header
	// checksum not yet filled in, data cut short.
	h, data := armorParts(t, full)
	for i := range h.Tensors {
		h.Tensors[i].CRC32C = "00000000"
	}
	hj, _ := json.Marshal(&h)
	part := armorFile(2, hj, data[:len(data)/3])
	binary.LittleEndian.PutUint32(part[16:], 0)
	os.WriteFile(p, part, 0o644)
	bounded(t, p, "unfinished file", "interrupted")
}

// rewrite writes a version-2 file whose header is edited by f (with a
// correct header checksum, so that the edit is what the reader sees).
func rewrite(t *testing.T, full []byte, path string, f func(h *model.ArmorHeader)) {
	t.Helper()
	h, data := armorParts(t, full)
	f(&h)
	hj, _ := json.Marshal(&h)
	os.WriteFile(path, armorFile(2, hj, data), 0o644)
}

func TestArmorHostileHeader(t *testing.T) {
	dir := t.TempDir()
	full := writeTinyArmor(t, dir)
	p := filepath.Join(dir, "h.armor")
	// A shape whose element count wraps to 0 in 64 bits, with size 0.
	rewrite(t, full, p, func(h *model.ArmorHeader) {
		h.Tensors[0].Shape, h.Tensors[0].Size = []int{1 << 32, 1 << 32}, 0
	})
	bounded(t, p, "tensor "+"token_embd.weight", "overflows")
	// An offset near 2^63 must not pass the end-of-file check.
	rewrite(t, full, p, func(h *model.ArmorHeader) { h.Tensors[0].Offset = 1<<63 - 64 })
	bounded(t, p, "token_embd.weight", "truncated")
	// 2^24 layers: refused by the limit, before anything per layer.
	rewrite(t, full, p, func(h *model.ArmorHeader) { h.Config.Layers = 1 << 24 })
	bounded(t, p, "layers = 16777216 is out of range")
	// Within the limit but more than the file has tensors for.
	rewrite(t, full, p, func(h *model.ArmorHeader) { h.Config.Layers = 1000 })
	bounded(t, p, "claims 1000 layers", "tensors")
}

func TestHFHugeLayerCount(t *testing.T) {
	dir := t.TempDir()
	if err := synth.WriteHF(dir, tiny(), tensor.F16, 1); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.json")
	orig, _ := os.ReadFile(cfgPath)
	edit := func(layers int) {
		os.WriteFile(cfgPath, []byte(strings.Replace(string(orig), `"num_hidden_layers": 1`, fmt.Sprintf(`"num_hidden_layers": %d`, layers), 1)), 0o644)
	}
	edit(1 << 24)
	bounded(t, dir, "layers = 16777216 is out of range")
	// Two layers claimed, one present: the first missing tensor is the
	// same on every run.
	edit(2)
	for range 5 {
		bounded(t, dir, "tensor blk.1.attn_norm.weight is missing")
	}
}

func TestGGUFHugeLayerCount(t *testing.T) {
	dir := t.TempDir()
	c := tiny()
	c.Arch, c.QKBias = "llama", false
	c.Layers = 1 << 24
	p := filepath.Join(dir, "m.gguf")
	// The writer writes what it is given: a header claiming 2^24 layers
	// over the tensors of none.
	c2 := c
	c2.Layers = 1
	if err := synth.WriteGGUF(p, c2, tensor.F32, 1); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	key := []byte("llama.block_count")
	i := bytes.Index(b, key)
	if i < 0 {
		t.Fatal("no block_count key")
	}
	binary.LittleEndian.PutUint32(b[i+len(key)+4:], 1<<24)
	os.WriteFile(p, b, 0o644)
	bounded(t, p, "layers = 16777216 is out of range")
	binary.LittleEndian.PutUint32(b[i+len(key)+4:], 500)
	os.WriteFile(p, b, 0o644)
	bounded(t, p, "claims 500 layers")
}

func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.armor")
	for _, n := range []string{".tmp-out.armor-123.armor", ".tmp-out.armor-9.armor", ".tmp-other.armor-5.armor", ".tmp-out.armor-x.armor", "out.armor"} {
		os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644)
	}
	removed, err := model.RemoveStaleTemps(out)
	if err != nil || len(removed) != 2 {
		t.Fatalf("removed %v, %v", removed, err)
	}
	ents, _ := os.ReadDir(dir)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if strings.Join(left, " ") != ".tmp-other.armor-5.armor .tmp-out.armor-x.armor out.armor" {
		t.Errorf("left %v", left)
	}
}

// The limits sit above real models: Llama 3 70B (80 layers, 128,256
// tokens, 8,192 dim, 28,672 hidden, 131,072 context) and 405B are valid.
func TestLimitsAdmitRealModels(t *testing.T) {
	for _, c := range []model.Config{
		{Arch: "llama", Dim: 8192, Hidden: 28672, Layers: 80, Heads: 64, KVHeads: 8, HeadDim: 128, Vocab: 128256, Context: 131072, NormEps: 1e-5, RopeTheta: 500000},
		{Arch: "llama", Dim: 16384, Hidden: 53248, Layers: 126, Heads: 128, KVHeads: 8, HeadDim: 128, Vocab: 128256, Context: 131072, NormEps: 1e-5, RopeTheta: 500000},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%d layers: %v", c.Layers, err)
		}
	}
}
