package convert

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/armor-llm/armor/model"
)

// Per-layer checkpoints: every finished layer is written to PartsDir as
// NAME.ckpt (gob with a SHA-256 trailer, see writeSealed), keyed by a
// fingerprint of everything its result depends on. --resume, the shards and
// the merge read them back; a checkpoint whose key differs is redone.

// part is one encoded tensor of a converted layer.
type part struct {
	Name  string
	DType string
	Shape []int
	Data  []byte
}

// layerOut is a converted layer, as held in memory and checkpointed.
type layerOut struct {
	Key    string    // fingerprint of everything the result depends on
	Run    runRecord // the run that made it, named when a merge cannot use it
	Linear model.ArmorLinear
	Report LayerReport
	Parts  []part
}

// layerKey adds the layer's name and weights to the run's fingerprint (and,
// for sequential calibration, the weights of every earlier layer, which
// determine its statistics: their hashes are covered by baseKey's inputs
// being the same and the earlier layers' keys matching in turn).
func layerKey(base string, src *model.Model, name string) string {
	h := sha256.New()
	h.Write([]byte(base))
	h.Write([]byte(name))
	if t := src.Tensors[name+".weight"]; t != nil {
		h.Write(t.Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// light returns a copy of lo without the tensor data (kept in its checkpoint).
func (lo *layerOut) light() *layerOut {
	out := *lo
	out.Parts = slices.Clone(lo.Parts)
	for i := range out.Parts {
		out.Parts[i].Data = nil
	}
	return &out
}

// ckptCache holds the last checkpoint read back, as the writer asks for the
// tensors of one layer one after the other.
type ckptCache struct {
	name string
	lo   *layerOut
}

func (c *ckptCache) load(dir, name, key string) (*layerOut, error) {
	if c.name != name {
		lo := loadCheckpoint(dir, name, key)
		if lo == nil {
			return nil, fmt.Errorf("convert: the checkpoint of layer %s in %s is missing or damaged (run again with --resume to redo it)", name, dir)
		}
		c.name, c.lo = name, lo
	}
	return c.lo, nil
}

func checkpointPath(dir, name string) string { return filepath.Join(dir, name+".ckpt") }

func saveCheckpoint(dir, name string, lo *layerOut) error {
	if err := writeSealed(checkpointPath(dir, name), lo); err != nil {
		return fmt.Errorf("convert: checkpoint of %s: %w", name, err)
	}
	return nil
}

// loadCheckpoint returns a layer's checkpoint if it is intact and was made
// with the same inputs, else nil (the layer is then converted again).
func loadCheckpoint(dir, name, key string) *layerOut {
	var lo layerOut
	if readSealed(checkpointPath(dir, name), &lo) != nil || lo.Key != key {
		return nil
	}
	return &lo
}
