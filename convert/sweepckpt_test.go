package convert

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/tensor"
)

// A layer interrupted mid-sweeps continues, under Resume, from its last
// sweep checkpoint rather than from NoWag-P.
func TestSweepCheckpointResume(t *testing.T) {
	m, seqs := smallCalib(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.armor")
	parts := filepath.Join(dir, "parts")
	opt := ConvertOptions{Method: "armor-fast", Block: 8, Iters: 12, DType: tensor.F16, Threads: 2,
		PartsDir: parts, SweepCheckpoint: time.Nanosecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := opt
	o.Ctx = ctx
	var layer string
	o.Progress = func(p Progress) {
		if p.Stage == "layer" && p.Iter == 5 && layer == "" {
			layer = p.Layer
			cancel()
		}
	}
	if _, err := Convert(m, seqs, out, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted conversion: %v (layer %q)", err, layer)
	}
	if _, err := os.Stat(filepath.Join(parts, layer+".sweep")); err != nil {
		t.Fatalf("no sweep checkpoint of %s after the interruption: %v", layer, err)
	}
	first := 0
	o = opt
	o.Resume = true
	o.Progress = func(p Progress) {
		if p.Stage == "layer" && p.Layer == layer && p.Iter > 0 && first == 0 {
			first = p.Iter
		}
	}
	rep, err := Convert(m, seqs, out, o)
	if err != nil {
		t.Fatal(err)
	}
	if first != 6 {
		t.Errorf("the resumed %s started at sweep %d, want 6 (after its checkpoint at sweep 5)", layer, first)
	}
	for _, l := range rep.Layers {
		if l.Name == layer && l.ResumedSweeps != 5 {
			t.Errorf("report of %s: resumed_sweeps %d, want 5", layer, l.ResumedSweeps)
		}
	}
	f, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// A finished layer leaves no sweep checkpoint behind (a shard keeps its
// folder, so it shows).
func TestSweepCheckpointRemoved(t *testing.T) {
	m, seqs := smallCalib(t)
	dir := t.TempDir()
	stats, parts := filepath.Join(dir, "stats"), filepath.Join(dir, "parts")
	opt := ConvertOptions{Method: "armor-fast", Block: 8, Iters: 3, DType: tensor.F16, Threads: 2, SweepCheckpoint: time.Nanosecond}
	o := opt
	o.StatsDir, o.CalibOnly = stats, true
	if _, err := Convert(m, seqs, "", o); err != nil {
		t.Fatal(err)
	}
	o = opt
	o.StatsDir, o.PartsDir, o.Shard, o.Shards = stats, parts, 0, 1
	if _, err := Convert(m, nil, "", o); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(parts, "*.sweep"))
	ckpts, _ := filepath.Glob(filepath.Join(parts, "*.ckpt"))
	if len(left) > 0 || len(ckpts) == 0 {
		t.Errorf("after the shard: sweep checkpoints %v, %d layer checkpoints", left, len(ckpts))
	}
}
