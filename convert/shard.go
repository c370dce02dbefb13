package convert

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/runtime"
)

// Conversion past one machine: once the calibration statistics exist, every
// linear layer converts independently. Convert with CalibOnly writes them to
// StatsDir; N processes with Shard i of Shards N each convert their share of
// the layers into checkpoints in PartsDir (a shared folder, or copies merged
// into one); Convert with MergeOnly assembles the file from the
// checkpoints. The file is byte-for-byte the one a single process writes.

// statsManifest is StatsDir/manifest.gob: what the statistics were collected
// from, so that shards and the merge reproduce the run's fingerprint.
type statsManifest struct {
	Version    int
	Seqs       [][]int        // the calibration tokens
	Full       bool           // full XXᵀ collected too
	Provenance map[string]any // the caller's provenance (calibration files, seeds)
}

// layerStats is StatsDir/NAME.stats.
type layerStats struct {
	H, Full []float64
}

func init() {
	gob.Register([]string(nil))
	gob.Register([]any(nil))
	gob.Register(map[string]any(nil))
}

// writeSealed writes v gob-encoded with a SHA-256 trailer, atomically.
func writeSealed(path string, v any) error {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return err
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(buf.Bytes())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// readSealed reads what writeSealed wrote into v.
func readSealed(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(b) < sha256.Size {
		return fmt.Errorf("%s is truncated", path)
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if s := sha256.Sum256(body); !bytes.Equal(s[:], sum) {
		return fmt.Errorf("%s is damaged (checksum mismatch)", path)
	}
	if err := gob.NewDecoder(bytes.NewReader(body)).Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func statsPath(dir, name string) string { return filepath.Join(dir, name+".stats") }

// writeStats saves the statistics of the given layers.
func writeStats(dir string, st *Stats, layers []string) error {
	for _, n := range layers {
		ls := layerStats{H: st.H[n]}
		if st.Full != nil {
			ls.Full = st.Full[n]
		}
		if ls.H == nil {
			return fmt.Errorf("convert: no statistics were collected for %s", n)
		}
		if err := writeSealed(statsPath(dir, n), ls); err != nil {
			return fmt.Errorf("convert: statistics of %s: %w", n, err)
		}
	}
	return nil
}

// readStatsManifest reads StatsDir's manifest.
func readStatsManifest(dir string) (*statsManifest, error) {
	var man statsManifest
	if err := readSealed(filepath.Join(dir, "manifest.gob"), &man); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("convert: %s holds no calibration statistics (write them with --calib-only)", dir)
		}
		return nil, fmt.Errorf("convert: calibration statistics: %w", err)
	}
	if man.Version != 1 {
		return nil, fmt.Errorf("convert: %s: statistics format version %d is not supported", dir, man.Version)
	}
	return &man, nil
}

// readStats loads the statistics of the given layers.
func readStats(dir string, layers []string, full bool) (*Stats, error) {
	st := &Stats{H: map[string][]float64{}}
	if full {
		st.Full = map[string][]float64{}
	}
	for _, n := range layers {
		var ls layerStats
		if err := readSealed(statsPath(dir, n), &ls); err != nil {
			return nil, fmt.Errorf("convert: statistics of %s: %w", n, err)
		}
		st.H[n] = ls.H
		if full {
			if ls.Full == nil {
				return nil, fmt.Errorf("convert: %s has no full XXᵀ for %s: write the statistics with --calib-only and this --method", dir, n)
			}
			st.Full[n] = ls.Full
		}
	}
	return st, nil
}

// shardOf reports whether the i-th linear layer (file order), of the given
// block, is in shard Shard of Shards. Layers are dealt round-robin, so every
// shard gets a similar mix of shapes; under Sequential a shard takes a range
// of whole blocks (blockRange). A merge takes every layer.
func (opt *ConvertOptions) shardOf(i, block, blocks int) bool {
	if !opt.sharded() {
		return true
	}
	if opt.Sequential {
		lo, hi := opt.blockRange(blocks)
		return lo <= block && block < hi
	}
	return i%opt.Shards == opt.Shard
}

// sharded reports whether this run converts one shard (and writes no file).
func (opt *ConvertOptions) sharded() bool { return opt.Shards > 0 && !opt.MergeOnly }

// Sequential calibration in shards. A single sequential run calibrates
// block l on the output of the converted blocks 0..l-1, so block l cannot
// start before they are done. Block-range shards cut that chain: shard i
// of N converts the blocks [i·L/N, (i+1)·L/N), sequentially within its
// range, and runs the blocks before its range dense, as they are in the
// source. The shards are then independent and run in parallel (each pays
// the forward passes of its dense prefix in every calibration pass); shard
// 0 gives exactly the single run's layers, and the first block of every
// other shard gets the statistics of the dense model, as without
// --sequential, its later blocks those of a partly converted prefix. The
// number of shards is part of every layer's key (seqShards), so the merge
// and --resume never mix checkpoints of different cuts.

// seqShards is the number of block-range shards of a sequential run whose
// layers depend on it: 0 for one process (or a single shard, which is the
// same run).
func (opt *ConvertOptions) seqShards() int {
	if opt.Sequential && opt.Shards > 1 {
		return opt.Shards
	}
	return 0
}

// blockRange returns the blocks [lo, hi) of a model of blocks blocks that
// shard Shard converts under Sequential (all of them when not sharded):
// ranges as even as possible, in order.
func (opt *ConvertOptions) blockRange(blocks int) (lo, hi int) {
	if !opt.sharded() {
		return 0, blocks
	}
	return opt.Shard * blocks / opt.Shards, (opt.Shard + 1) * blocks / opt.Shards
}

// calibrateOnly collects the statistics every layer of src needs for
// opt.Method and writes them, with the calibration tokens, to opt.StatsDir:
// in one pass, or block by block when the full XXᵀ of all blocks would not
// fit in opt.FullBudget.
func calibrateOnly(src *model.Model, seqs [][]int, opt ConvertOptions, names []string, start time.Time) (*Report, error) {
	if err := os.MkdirAll(opt.StatsDir, 0o755); err != nil {
		return nil, fmt.Errorf("convert: cannot create the statistics folder: %w", err)
	}
	needFull := methodNeedsFull(opt.Method)
	rep := &Report{Source: src.Path, Method: opt.Method, CalibSequences: len(seqs)}
	for _, s := range seqs {
		rep.CalibTokens += len(s)
	}
	groups := [][]string{names}
	if needFull {
		budget := opt.FullBudget
		if budget == 0 {
			budget = 4 << 30
		}
		if fullBytes(src.Config) > budget {
			groups = nil
			for l := 0; l < src.Config.Layers; l++ {
				groups = append(groups, model.LayerLinears(l))
			}
		}
	}
	for _, g := range groups {
		st, err := Calibrate(src, seqs, CalibOptions{Full: needFull, Layers: g, Ctx: opt.Ctx,
			Progress: func(d, t int) {
				if opt.Progress != nil {
					opt.Progress(Progress{Stage: "calibrate", Done: d, Total: t, Elapsed: time.Since(start)})
				}
			}})
		if err != nil {
			return nil, err
		}
		if err := writeStats(opt.StatsDir, st, g); err != nil {
			return nil, err
		}
	}
	man := statsManifest{Version: 1, Seqs: seqs, Full: needFull, Provenance: opt.Provenance}
	if err := writeSealed(filepath.Join(opt.StatsDir, "manifest.gob"), man); err != nil {
		return nil, fmt.Errorf("convert: calibration statistics: %w", err)
	}
	rep.CalibSeconds = time.Since(start).Seconds()
	rep.Seconds = rep.CalibSeconds
	return rep, nil
}

// calibrateOrResume gives the statistics of the pending layers. A run that
// calibrates itself (no StatsDir) saves them in PartsDir/stats, and a
// --resume of the same calibration reads them back instead of running the
// calibration again.
func calibrateOrResume(opt ConvertOptions, seqs [][]int, pending []string, needFull bool,
	calibrate func([]string, runtime.LinearBuilder, *model.Model) (*Stats, error), src *model.Model) (*Stats, error) {
	if opt.StatsDir != "" {
		return calibrate(pending, nil, src)
	}
	dir := filepath.Join(opt.PartsDir, "stats")
	if opt.Resume {
		if man, err := readStatsManifest(dir); err == nil && (man.Full || !needFull) && slices.EqualFunc(man.Seqs, seqs, slices.Equal) {
			if st, err := readStats(dir, pending, needFull); err == nil {
				if opt.Progress != nil {
					opt.Progress(Progress{Stage: "calibrate", Done: len(seqs), Total: len(seqs)})
				}
				return st, nil
			}
		}
	}
	st, err := calibrate(pending, nil, src)
	if err != nil {
		return nil, err
	}
	// Saving is an optimization for --resume: a failure costs a
	// recalibration later, not this run.
	if os.MkdirAll(dir, 0o755) == nil && writeStats(dir, st, pending) == nil {
		writeSealed(filepath.Join(dir, "manifest.gob"), statsManifest{Version: 1, Seqs: seqs, Full: needFull})
	}
	return st, nil
}
