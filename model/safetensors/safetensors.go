// Package safetensors reads Hugging Face safetensors files (single or sharded
// through model.safetensors.index.json) as memory-mapped tensor views, and
// writes them (for synthetic test checkpoints).
package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/armor-llm/armor/model/limits"
	"github.com/armor-llm/armor/model/mmap"
	"github.com/armor-llm/armor/model/tensor"
)

var dtypes = map[string]tensor.DType{"F32": tensor.F32, "F16": tensor.F16, "BF16": tensor.BF16, "F64": tensor.F64, "I32": tensor.I32}

// Set is the tensors of one checkpoint, possibly spread over several files.
type Set struct {
	Tensors map[string]*tensor.Tensor
	files   []*mmap.File
}

// Close unmaps every file.
func (s *Set) Close() error {
	var first error
	for _, f := range s.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Names lists tensor names sorted.
func (s *Set) Names() []string {
	out := make([]string, 0, len(s.Tensors))
	for n := range s.Tensors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// OpenDir opens model.safetensors.index.json (sharded) or model.safetensors
// in dir.
func OpenDir(dir string) (*Set, error) {
	idx := filepath.Join(dir, "model.safetensors.index.json")
	if b, err := os.ReadFile(idx); err == nil {
		var index struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(b, &index); err != nil {
			return nil, fmt.Errorf("safetensors: %s: %w", idx, err)
		}
		shards := map[string]bool{}
		for _, f := range index.WeightMap {
			if filepath.Base(f) != f {
				return nil, fmt.Errorf("safetensors: %s: shard name %q is not a plain file name", idx, f)
			}
			shards[f] = true
		}
		names := make([]string, 0, len(shards))
		for f := range shards {
			names = append(names, f)
		}
		sort.Strings(names)
		set := &Set{Tensors: map[string]*tensor.Tensor{}}
		for _, f := range names {
			if err := set.add(filepath.Join(dir, f)); err != nil {
				set.Close()
				return nil, err
			}
		}
		for name, f := range index.WeightMap {
			if set.Tensors[name] == nil {
				set.Close()
				return nil, fmt.Errorf("safetensors: %s lists tensor %q in %s, which does not contain it", idx, name, f)
			}
		}
		return set, nil
	}
	return Open(filepath.Join(dir, "model.safetensors"))
}

// Open opens one safetensors file.
func Open(path string) (*Set, error) {
	set := &Set{Tensors: map[string]*tensor.Tensor{}}
	if err := set.add(path); err != nil {
		return nil, err
	}
	return set, nil
}

func (s *Set) add(path string) error {
	m, err := mmap.Open(path)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	ts, err := parse(m.Data)
	if err != nil {
		m.Close()
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	for _, t := range ts {
		if s.Tensors[t.Name] != nil {
			m.Close()
			return fmt.Errorf("safetensors: %s: tensor %q also appears in another shard", path, t.Name)
		}
		s.Tensors[t.Name] = t
	}
	s.files = append(s.files, m)
	return nil
}

type entry struct {
	DType   string  `json:"dtype"`
	Shape   []int64 `json:"shape"`
	Offsets []int64 `json:"data_offsets"`
}

func parse(b []byte) ([]*tensor.Tensor, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("truncated file: %d bytes, no header", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > limits.MaxSafetensorsHeader {
		return nil, fmt.Errorf("header length %d exceeds the limit of %d bytes", n, limits.MaxSafetensorsHeader)
	}
	if n > uint64(len(b)-8) {
		return nil, fmt.Errorf("header length %d does not fit in a %d-byte file (truncated file, or not safetensors)", n, len(b))
	}
	raw, err := headerEntries(b[8 : 8+n])
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	data := b[8+n:]
	type span struct {
		name       string
		begin, end int64
	}
	var out []*tensor.Tensor
	var spans []span
	for _, kv := range raw {
		name, r := kv.name, kv.value
		if name == "__metadata__" {
			continue
		}
		var e entry
		if err := json.Unmarshal(r, &e); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		dt, ok := dtypes[e.DType]
		if !ok {
			return nil, fmt.Errorf("tensor %q: dtype %s is not supported (F32, F16, BF16, F64, I32)", name, e.DType)
		}
		if len(e.Offsets) != 2 || e.Offsets[1] < e.Offsets[0] {
			return nil, fmt.Errorf("tensor %q: bad data_offsets %v", name, e.Offsets)
		}
		if _, err := limits.Span(e.Offsets[0], e.Offsets[1]-e.Offsets[0], int64(len(data))); err != nil {
			return nil, fmt.Errorf("tensor %q: data_offsets %v: %w", name, e.Offsets, err)
		}
		elems, err := limits.Elements(e.Shape)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		shape := make([]int, len(e.Shape))
		for i, d := range e.Shape {
			shape[i] = int(d)
		}
		size, err := tensor.ByteSize(dt, elems)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		if size != e.Offsets[1]-e.Offsets[0] {
			return nil, fmt.Errorf("tensor %q: shape %v of %s needs %d bytes, data_offsets give %d", name, e.Shape, e.DType, size, e.Offsets[1]-e.Offsets[0])
		}
		if es := int64(dt.BlockBytes()); e.Offsets[0]%es != 0 {
			return nil, fmt.Errorf("tensor %q: data offset %d is not a multiple of its %d-byte elements (misaligned)", name, e.Offsets[0], es)
		}
		spans = append(spans, span{name, e.Offsets[0], e.Offsets[1]})
		out = append(out, &tensor.Tensor{Name: name, DType: dt, Shape: shape, Data: data[e.Offsets[0]:e.Offsets[1]]})
	}
	// The format forbids holes and overlaps: sorted by offset, the tensors
	// tile the data section exactly.
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].end < spans[j].end
	})
	pos, prev := int64(0), ""
	for _, s := range spans {
		switch {
		case s.begin < pos:
			return nil, fmt.Errorf("tensors %q and %q overlap (data at %d, the previous one ends at %d)", prev, s.name, s.begin, pos)
		case s.begin > pos:
			return nil, fmt.Errorf("hole of %d bytes before tensor %q (data at %d, the previous one ends at %d)", s.begin-pos, s.name, s.begin, pos)
		}
		pos, prev = s.end, s.name
	}
	if pos != int64(len(data)) {
		return nil, fmt.Errorf("%d bytes after the last tensor's data (truncated header or hole)", int64(len(data))-pos)
	}
	return out, nil
}

type headerEntry struct {
	name  string
	value json.RawMessage
}

// headerEntries decodes the header object keeping its keys in order and
// rejecting a key that appears twice (encoding/json would keep the last).
func headerEntries(b []byte) ([]headerEntry, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	seen := map[string]bool{}
	var out []headerEntry
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return nil, err
		}
		k, _ := t.(string)
		if seen[k] {
			return nil, fmt.Errorf("tensor %q appears twice", k)
		}
		seen[k] = true
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		out = append(out, headerEntry{k, v})
	}
	if _, err := d.Token(); err != nil {
		return nil, err
	}
	return out, nil
}

var dtypeNames = map[tensor.DType]string{tensor.F32: "F32", tensor.F16: "F16", tensor.BF16: "BF16", tensor.F64: "F64", tensor.I32: "I32"}

// Write writes tensors into one safetensors file atomically. The header is
// padded so that data start 8-aligned, as the Hugging Face writer does.
func Write(path string, ts []*tensor.Tensor) (err error) {
	sorted := append([]*tensor.Tensor(nil), ts...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	hdr := map[string]entry{}
	var off int64
	for _, t := range sorted {
		dn, ok := dtypeNames[t.DType]
		if !ok {
			return fmt.Errorf("safetensors: tensor %s: dtype %v cannot be written", t.Name, t.DType)
		}
		shape := make([]int64, len(t.Shape))
		for i, d := range t.Shape {
			shape[i] = int64(d)
		}
		hdr[t.Name] = entry{DType: dn, Shape: shape, Offsets: []int64{off, off + int64(len(t.Data))}}
		off += int64(len(t.Data))
	}
	hj, err := json.Marshal(hdr)
	if err != nil {
		return err
	}
	for (8+len(hj))%8 != 0 {
		hj = append(hj, ' ')
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.safetensors")
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriter(tmp)
	write := func(b []byte) {
		if err == nil {
			_, err = w.Write(b)
		}
	}
	write(binary.LittleEndian.AppendUint64(nil, uint64(len(hj))))
	write(hj)
	for _, t := range sorted {
		write(t.Data)
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return nil
}

var _ io.Writer = (*bufio.Writer)(nil)
