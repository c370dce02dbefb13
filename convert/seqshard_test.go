package convert

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/tensor"
	"github.com/armor-llm/armor/runtime"
)

// runSeqShards converts with every block-range shard of n in turn into
// parts, then merges into out (which removes parts).
func runSeqShards(t *testing.T, m *model.Model, seqs [][]int, base ConvertOptions, n int, parts, out string) {
	t.Helper()
	converted := 0
	for i := 0; i < n; i++ {
		o := base
		o.PartsDir, o.Shard, o.Shards = parts, i, n
		rep, err := Convert(m, seqs, "", o)
		if err != nil {
			t.Fatalf("sequential shard %d/%d: %v", i, n, err)
		}
		lo, hi := o.blockRange(m.Config.Layers)
		if want := (hi - lo) * len(model.LayerLinears(0)); len(rep.Layers) != want {
			t.Fatalf("sequential shard %d/%d converted %d layers, want %d (blocks %d to %d)", i, n, len(rep.Layers), want, lo, hi-1)
		}
		converted += len(rep.Layers)
	}
	if want := len(linearNames(m.Config)); converted != want {
		t.Fatalf("%d shards converted %d layers, the model has %d", n, converted, want)
	}
	mo := base
	mo.PartsDir, mo.MergeOnly, mo.Shards = parts, true, n
	if _, err := Convert(m, seqs, out, mo); err != nil {
		t.Fatalf("merge of %d sequential shards: %v", n, err)
	}
}

// sameBlock reports whether the tensors of block l's linear layers are
// identical in a and b (and which differ).
func sameBlock(t *testing.T, a, b *model.Model, l int) (differ []string) {
	t.Helper()
	for _, n := range model.LayerLinears(l) {
		found := 0
		for k, ta := range a.Tensors {
			if !strings.HasPrefix(k, n+".") {
				continue
			}
			found++
			if tb := b.Tensors[k]; tb == nil || !slices.Equal(ta.Data, tb.Data) {
				differ = append(differ, k)
			}
		}
		if found == 0 {
			t.Fatalf("no tensors of %s in %s", n, a.Path)
		}
	}
	return differ
}

// Sequential conversion in block-range shards: one shard and the merge give
// the single sequential run's file byte for byte; with two shards of the 5
// blocks (0-1 and 2-4), the first shard's blocks are the single sequential
// run's, the second shard's first block is the one-pass (dense statistics)
// run's, its later blocks are neither; the merged file runs, and records the
// cut in its provenance.
func TestSequentialShards(t *testing.T) {
	m, seqs := smallCalib(t)
	dir := t.TempDir()
	base := ConvertOptions{Method: "armor-fast", Block: 8, Iters: 2, DType: tensor.F16, Threads: 2, Sequential: true}
	whole := filepath.Join(dir, "whole.armor")
	if _, err := Convert(m, seqs, whole, base); err != nil {
		t.Fatal(err)
	}
	plainOpt := base
	plainOpt.Sequential = false
	plain := filepath.Join(dir, "plain.armor")
	if _, err := Convert(m, seqs, plain, plainOpt); err != nil {
		t.Fatal(err)
	}

	one := filepath.Join(dir, "one.armor")
	runSeqShards(t, m, seqs, base, 1, filepath.Join(dir, "parts1"), one)
	a, _ := os.ReadFile(whole)
	b, _ := os.ReadFile(one)
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("one sequential shard + merge (%d bytes) differs from the single sequential run (%d bytes)", len(b), len(a))
	}

	parts2 := filepath.Join(dir, "parts2")
	two := filepath.Join(dir, "two.armor")
	runSeqShards(t, m, seqs, base, 2, parts2, two)
	load := func(p string) *model.Model {
		mm, err := model.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mm.Close() })
		return mm
	}
	wm, pm, tm := load(whole), load(plain), load(two)
	if m.Config.Layers != 5 {
		t.Fatalf("the test model has %d blocks, the test expects 5", m.Config.Layers)
	}
	for l := 0; l < 2; l++ {
		if d := sameBlock(t, tm, wm, l); len(d) > 0 {
			t.Errorf("block %d (shard 0): %v differ from the single sequential run", l, d)
		}
	}
	if d := sameBlock(t, tm, pm, 2); len(d) > 0 {
		t.Errorf("block 2 (first of shard 1): %v differ from the one-pass run (it should see the dense model's activations)", d)
	}
	if d := sameBlock(t, tm, wm, 2); len(d) == 0 {
		t.Error("block 2 equals the single sequential run's: the test cannot tell dense inputs from converted ones")
	}
	for l := 3; l < 5; l++ {
		if d := sameBlock(t, tm, pm, l); len(d) == 0 {
			t.Errorf("block %d equals the one-pass run's: shard 1 is not sequential within its range", l)
		}
	}
	if got := tm.Armor.Provenance["sequential_shards"]; got != float64(2) {
		t.Errorf("provenance sequential_shards = %v, want 2", got)
	}
	if _, ok := wm.Armor.Provenance["sequential_shards"]; ok {
		t.Error("the single sequential run records sequential_shards")
	}
	ld, err := runtime.Open(two, "", true)
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	st, err := ld.Tr.NewState(128)
	if err != nil {
		t.Fatal(err)
	}
	logits, err := st.Forward(seqs[0][:16], true)
	if err != nil {
		t.Fatal(err)
	}
	if len(logits) == 0 {
		t.Fatal("no logits from the merged file")
	}
	for _, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("merged file gives a non-finite logit %v", v)
		}
	}

	// The shards and the merge again give the same bytes.
	again := filepath.Join(dir, "again.armor")
	runSeqShards(t, m, seqs, base, 2, filepath.Join(dir, "parts2b"), again)
	x, _ := os.ReadFile(two)
	y, _ := os.ReadFile(again)
	if !bytes.Equal(x, y) {
		t.Fatal("two runs of the same sequential shards and merge differ")
	}

	// A resume of the single sequential run does not take up the layers
	// of shard 0 of a 2-shard cut (equal to its own, but keyed by the
	// cut), and says why.
	parts2c := filepath.Join(dir, "parts2c")
	so := base
	so.PartsDir, so.Shard, so.Shards = parts2c, 0, 2
	if _, err := Convert(m, seqs, "", so); err != nil {
		t.Fatal(err)
	}
	var notes []string
	ctx, cancel := context.WithCancel(context.Background())
	ro := base
	ro.Resume, ro.PartsDir, ro.Ctx = true, parts2c, ctx
	ro.Progress = func(p Progress) {
		switch p.Stage {
		case "note":
			notes = append(notes, p.Note)
		case "layer":
			cancel()
		}
	}
	if _, err := Convert(m, seqs, filepath.Join(dir, "resumed.armor"), ro); !errors.Is(err, context.Canceled) {
		t.Fatalf("resume over the shards' parts: %v", err)
	}
	if !slices.ContainsFunc(notes, func(s string) bool {
		return strings.Contains(s, "none is reused") && strings.Contains(s, "sequential shards")
	}) {
		t.Errorf("resume notes %q: want one saying the sequential shards differ", notes)
	}
}

// A merge refuses checkpoints of another cut: a different number of
// sequential shards, a non-sequential part among sequential ones, or
// sequential parts merged as an ordinary run; each error names the
// difference.
func TestSequentialShardsMismatchedMerge(t *testing.T) {
	m, seqs := smallCalib(t)
	dir := t.TempDir()
	base := ConvertOptions{Method: "nowag-p", DType: tensor.F16, Threads: 2, Sequential: true}
	parts := filepath.Join(dir, "parts")
	for i := 0; i < 2; i++ {
		o := base
		o.PartsDir, o.Shard, o.Shards = parts, i, 2
		if _, err := Convert(m, seqs, "", o); err != nil {
			t.Fatal(err)
		}
	}
	merge := func(o ConvertOptions, parts string) error {
		o.PartsDir, o.MergeOnly = parts, true
		_, err := Convert(m, seqs, filepath.Join(dir, "out.armor"), o)
		return err
	}
	three := base
	three.Shards = 3
	if err := merge(three, parts); err == nil || !strings.Contains(err.Error(), "sequential shards (N of --shard I/N) 3 (the checkpoints have 2)") {
		t.Errorf("merge of 2 shards as 3: %v", err)
	}
	ordinary := base
	ordinary.Sequential = false
	if err := merge(ordinary, parts); err == nil || !strings.Contains(err.Error(), "--sequential false (the checkpoints have true)") {
		t.Errorf("merge of sequential shards as an ordinary run: %v", err)
	}
	if err := merge(base, parts); err == nil || !strings.Contains(err.Error(), "checkpoints have 2") {
		t.Errorf("merge of 2 sequential shards without their number: %v", err)
	}

	// One layer of block 3 from an ordinary (non-sequential) shard run.
	stats := filepath.Join(dir, "stats")
	co := ordinary
	co.StatsDir, co.CalibOnly = stats, true
	if _, err := Convert(m, seqs, "", co); err != nil {
		t.Fatal(err)
	}
	ordParts := filepath.Join(dir, "ordparts")
	so := ordinary
	so.StatsDir, so.PartsDir, so.Shards = stats, ordParts, 1
	if _, err := Convert(m, nil, "", so); err != nil {
		t.Fatal(err)
	}
	name := model.LayerLinears(3)[0]
	ck, err := os.ReadFile(checkpointPath(ordParts, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(checkpointPath(parts, name), ck, 0o644); err != nil {
		t.Fatal(err)
	}
	two := base
	two.Shards = 2
	err = merge(two, parts)
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "--sequential true (the checkpoints have false)") {
		t.Errorf("merge with a non-sequential part: %v", err)
	}

	// More shards than blocks are refused before any work.
	many := base
	many.PartsDir, many.Shards = parts, m.Config.Layers+1
	if _, err := Convert(m, seqs, "", many); err == nil || !strings.Contains(err.Error(), "at most 5") {
		t.Errorf("%d sequential shards of 5 blocks: %v", many.Shards, err)
	}
}

// A sequential shard interrupted inside its range and resumed gives the
// layers of an uninterrupted run of that shard: the resumed layers of its
// earlier blocks feed the calibration of its later ones.
func TestSequentialShardResume(t *testing.T) {
	m, seqs := smallCalib(t)
	dir := t.TempDir()
	base := ConvertOptions{Method: "armor-fast", Block: 8, Iters: 2, DType: tensor.F16, Threads: 2, Sequential: true, Shard: 1, Shards: 2}
	ref := base
	ref.PartsDir = filepath.Join(dir, "ref")
	if _, err := Convert(m, seqs, "", ref); err != nil {
		t.Fatal(err)
	}
	parts := filepath.Join(dir, "parts")
	ctx, cancel := context.WithCancel(context.Background())
	o := base
	o.PartsDir, o.Ctx = parts, ctx
	o.Progress = func(p Progress) {
		if p.Stage == "layer" && p.Iter == 0 && p.Done >= 10 { // inside block 3, the second of blocks 2-4
			cancel()
		}
	}
	if _, err := Convert(m, seqs, "", o); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted shard: %v", err)
	}
	o = base
	o.PartsDir, o.Resume = parts, true
	rep, err := Convert(m, seqs, "", o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Resumed < 10 || rep.Resumed >= 21 {
		t.Fatalf("resumed %d layers, want from 10 to 20 of the shard's 21", rep.Resumed)
	}
	for l := 2; l < 5; l++ {
		for _, n := range model.LayerLinears(l) {
			var a, b layerOut
			if err := readSealed(checkpointPath(ref.PartsDir, n), &a); err != nil {
				t.Fatal(err)
			}
			if err := readSealed(checkpointPath(parts, n), &b); err != nil {
				t.Fatal(err)
			}
			if a.Key != b.Key || len(a.Parts) != len(b.Parts) {
				t.Fatalf("%s: resumed shard's checkpoint differs in key or parts", n)
			}
			for i := range a.Parts {
				if !bytes.Equal(a.Parts[i].Data, b.Parts[i].Data) {
					t.Fatalf("%s: %s differs between the resumed and the uninterrupted shard", n, a.Parts[i].Name)
				}
			}
		}
	}
}
