package convert

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
		{ConvertOptions{Method: "armor-fast", Block: 8, Shards: 2, Sequential: true, PartsDir: dir}, "sequential"},
		{ConvertOptions{Method: "armor-fast", Block: 8, CalibOnly: true}, "folder for the statistics"},
		{ConvertOptions{Method: "armor-fast", Block: 8, StatsDir: filepath.Join(dir, "none"), Shards: 1, PartsDir: dir}, "no calibration statistics"},
	} {
		_, err := Convert(m, seqs, "", c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one saying %q", c.opt, err, c.want)
		}
	}
}
