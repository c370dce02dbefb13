package convert

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/armor-llm/armor/model/tensor"
)

// TestShardsMergeByteIdentical: statistics written once, three shard
// processes' worth of layer conversions, and a merge give the file a single
// Convert writes, byte for byte; for armor-fast and for a method with full
// XXᵀ statistics written block by block (sparsegpt with a tiny budget).
func TestShardsMergeByteIdentical(t *testing.T) {
	m, seqs := smallCalib(t)
	for _, base := range []ConvertOptions{
		{Method: "armor-fast", Block: 8, Iters: 3, DType: tensor.F16, Threads: 2, Provenance: map[string]any{"calib_files": []string{"a.txt"}}},
		{Method: "sparsegpt", DType: tensor.F16, Threads: 1, FullBudget: -1},
	} {
		t.Run(base.Method, func(t *testing.T) {
			dir := t.TempDir()
			whole := filepath.Join(dir, "whole.armor")
			if _, err := Convert(m, seqs, whole, base); err != nil {
				t.Fatal(err)
			}
			stats, parts := filepath.Join(dir, "stats"), filepath.Join(dir, "parts")
			o := base
			o.StatsDir, o.CalibOnly = stats, true
			if _, err := Convert(m, seqs, "", o); err != nil {
				t.Fatal("calib-only:", err)
			}
			// A merge before the shards ran names what is missing.
			mo := base
			mo.Provenance = nil
			mo.StatsDir, mo.PartsDir, mo.MergeOnly = stats, parts, true
			merged := filepath.Join(dir, "merged.armor")
			if _, err := Convert(m, nil, merged, mo); err == nil || !strings.Contains(err.Error(), "no finished checkpoint") {
				t.Fatalf("merge without shards: %v", err)
			}
			total := 0
			for i := 0; i < 3; i++ {
				so := base
				so.Provenance = nil
				so.StatsDir, so.PartsDir, so.Shard, so.Shards = stats, parts, i, 3
				rep, err := Convert(m, nil, "", so)
				if err != nil {
					t.Fatalf("shard %d: %v", i, err)
				}
				total += len(rep.Layers)
			}
			if want := len(linearNames(m.Config)); total != want {
				t.Fatalf("shards converted %d layers, the model has %d", total, want)
			}
			if _, err := Convert(m, nil, merged, mo); err != nil {
				t.Fatal("merge:", err)
			}
			a, _ := os.ReadFile(whole)
			b, _ := os.ReadFile(merged)
			if len(a) == 0 || !bytes.Equal(a, b) {
				t.Fatalf("merged file (%d bytes) differs from the single-process file (%d bytes)", len(b), len(a))
			}
		})
	}
}

func TestShardOptionsRefused(t *testing.T) {
	m, seqs := smallCalib(t)
	dir := t.TempDir()
	for _, c := range []struct {
		opt  ConvertOptions
		want string
	}{
		{ConvertOptions{Method: "armor-fast", Block: 8, Shards: 2, Shard: 2, PartsDir: dir}, "numbered 0 to 1"},
		{ConvertOptions{Method: "armor-fast", Block: 8, Sequential: true, CalibOnly: true, StatsDir: dir}, "sequential calibration cannot use saved statistics"},
		{ConvertOptions{Method: "armor-fast", Block: 8, MergeOnly: true, Shards: 2, PartsDir: dir}, "only for sequential shards"},
		{ConvertOptions{Method: "armor-fast", Block: 8, CalibOnly: true}, "folder for the statistics"},
		{ConvertOptions{Method: "armor-fast", Block: 8, StatsDir: filepath.Join(dir, "none"), Shards: 1, PartsDir: dir}, "no calibration statistics"},
	} {
		_, err := Convert(m, seqs, "", c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one saying %q", c.opt, err, c.want)
		}
	}
}

// An interrupted run keeps its calibration statistics, and --resume reads
// them instead of calibrating again (one progress report, already done);
// the result equals an uninterrupted run's.
func TestResumeKeepsStatistics(t *testing.T) {
	m, seqs := smallCalib(t)
	dir := t.TempDir()
	opt := ConvertOptions{Method: "armor-fast", Block: 8, Iters: 2, DType: tensor.F16, Threads: 2}
	whole := filepath.Join(dir, "whole.armor")
	if _, err := Convert(m, seqs, whole, opt); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.armor")
	ctx, cancel := context.WithCancel(context.Background())
	o := opt
	o.Ctx = ctx
	o.Progress = func(p Progress) {
		if p.Stage == "layer" {
			cancel()
		}
	}
	if _, err := Convert(m, seqs, out, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted conversion: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out+".parts", "stats", "manifest.gob")); err != nil {
		t.Fatalf("no saved statistics after the interruption: %v", err)
	}
	calls := 0
	o = opt
	o.Resume = true
	o.Progress = func(p Progress) {
		if p.Stage == "calibrate" {
			calls++
			if p.Done != p.Total {
				t.Errorf("resume calibrated again (sequence %d/%d)", p.Done, p.Total)
			}
		}
	}
	if _, err := Convert(m, seqs, out, o); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("%d calibration reports on resume, want 1 (statistics read back)", calls)
	}
	a, _ := os.ReadFile(whole)
	b, _ := os.ReadFile(out)
	if !bytes.Equal(a, b) {
		t.Fatal("resumed file differs from an uninterrupted run's")
	}
}

// Progress has an ETA during calibration and from the first sweep of the
// first layer, not only after a layer finished.
func TestProgressETAEarly(t *testing.T) {
	m, seqs := smallCalib(t)
	var calibETA, sweepETA time.Duration
	opt := ConvertOptions{Method: "armor-fast", Block: 8, Iters: 3, DType: tensor.F16, Threads: 1,
		Progress: func(p Progress) {
			if p.Stage == "calibrate" && p.Done == 1 && p.Total > 1 {
				calibETA = p.ETA
			}
			if p.Stage == "layer" && p.Done == 0 && p.Iter == 1 {
				sweepETA = p.ETA
			}
		}}
	if _, err := Convert(m, seqs, filepath.Join(t.TempDir(), "o.armor"), opt); err != nil {
		t.Fatal(err)
	}
	if !(calibETA > 0) || !(sweepETA > 0) {
		t.Fatalf("ETA after the first calibration sequence %v, after the first sweep %v: want both known", calibETA, sweepETA)
	}
}
