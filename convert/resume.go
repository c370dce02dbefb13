package convert

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/armor-llm/armor/model"
)

// runRecord is PartsDir/run.gob: the options a run's checkpoints were made
// with, so that a --resume that cannot use them says why instead of
// silently converting every layer again.
type runRecord struct {
	Source       string
	Method       string
	Block, Iters int
	Tol          float64
	DType        string
	Seed         uint64
	Sequential   bool
	SeqShards    int // block-range shards of a sequential run (0: one process)
	RefineRounds int
	Tokens       int    // calibration tokens in all
	TokensHash   string // SHA-256 of the calibration tokens
}

func recordOf(src *model.Model, seqs [][]int, opt ConvertOptions) runRecord {
	h := sha256.New()
	hashTokens(h, seqs)
	r := runRecord{Source: src.Path, Method: opt.Method, Block: opt.Block, Iters: opt.Iters, Tol: opt.Tol, DType: opt.DType.String(),
		Seed: opt.Seed, Sequential: opt.Sequential, SeqShards: opt.seqShards(), RefineRounds: opt.RefineRounds, TokensHash: hex.EncodeToString(h.Sum(nil))}
	for _, s := range seqs {
		r.Tokens += len(s)
	}
	return r
}

func runRecordPath(dir string) string { return filepath.Join(dir, "run.gob") }

// differences lists, in flag terms, what differs between the run that made
// the checkpoints (old) and this one.
func (r runRecord) differences(old runRecord) []string {
	var d []string
	add := func(what string, was, now any) {
		if fmt.Sprint(was) != fmt.Sprint(now) {
			d = append(d, fmt.Sprintf("%s %v (the checkpoints have %v)", what, now, was))
		}
	}
	add("--method", old.Method, r.Method)
	add("--block-size", old.Block, r.Block)
	add("--iters", old.Iters, r.Iters)
	add("--tol", old.Tol, r.Tol)
	add("--dtype", strings.ToLower(old.DType), strings.ToLower(r.DType))
	add("--seed", old.Seed, r.Seed)
	add("--sequential", old.Sequential, r.Sequential)
	if r.Sequential && old.Sequential {
		add("sequential shards (N of --shard I/N)", max(1, old.SeqShards), max(1, r.SeqShards))
	}
	add("refine rounds", old.RefineRounds, r.RefineRounds)
	if old.Tokens != r.Tokens {
		d = append(d, fmt.Sprintf("%d calibration tokens (the checkpoints have %d)", r.Tokens, old.Tokens))
	} else if old.TokensHash != r.TokensHash {
		d = append(d, "other calibration tokens (--calib, --calib-seed or --calib-seq differ)")
	}
	return d
}

// mergeMissing is the error of a merge that lacks the checkpoints of
// pending (of total layers) in dir: their shards did not run, or ran with
// other options, which it names (a part of an ordinary run among those of
// sequential shards, or of another number of shards).
func mergeMissing(dir string, pending []string, total int, now runRecord) error {
	for _, n := range pending {
		var lo layerOut
		if readSealed(checkpointPath(dir, n), &lo) != nil {
			continue
		}
		old := lo.Run
		switch d := now.differences(old); {
		case old.Method == "":
			return fmt.Errorf("convert: cannot merge: the checkpoint of layer %s in %s was made by another run (an older armor-convert, or other options); redo its shard", n, dir)
		case len(d) > 0:
			return fmt.Errorf("convert: cannot merge: the checkpoint of layer %s in %s was made with other options: this merge has %s; merge with that run's options or redo its shard", n, dir, strings.Join(d, ", "))
		case old.Source != now.Source:
			return fmt.Errorf("convert: cannot merge: the checkpoint of layer %s in %s was made from %s, not %s", n, dir, old.Source, now.Source)
		default:
			return fmt.Errorf("convert: cannot merge: the checkpoint of layer %s in %s does not match this source's weights; redo its shard", n, dir)
		}
	}
	return fmt.Errorf("convert: cannot merge: layer %s has no finished checkpoint in %s (%d of %d layers missing; run its shard)", pending[0], dir, len(pending), total)
}

// resumeNote explains, before any work, what a --resume will reuse from
// PartsDir: nothing when there are no checkpoints or they were made with
// other options (and which), else the number of layers it reuses.
func resumeNote(dir string, now runRecord, reused, total int) string {
	var old runRecord
	err := readSealed(runRecordPath(dir), &old)
	switch {
	case reused == total:
		return ""
	case err != nil && os.IsNotExist(err) && reused == 0:
		return fmt.Sprintf("--resume: %s holds no checkpoints of an earlier run: converting every layer", dir)
	case err != nil && reused == 0:
		return fmt.Sprintf("--resume: the checkpoints in %s are not usable (%v): converting every layer", dir, err)
	}
	if d := now.differences(old); len(d) > 0 && reused == 0 {
		return fmt.Sprintf("--resume: the checkpoints in %s were made with other options, so none is reused: this run has %s", dir, strings.Join(d, ", "))
	}
	if reused == 0 {
		if now.Source != old.Source {
			return fmt.Sprintf("--resume: the checkpoints in %s were made from %s, not %s, and none matches its weights: converting every layer", dir, old.Source, now.Source)
		}
		return fmt.Sprintf("--resume: no checkpoint in %s matches the source's weights: converting every layer", dir)
	}
	return fmt.Sprintf("--resume: reusing %d of %d layers from %s", reused, total, dir)
}
