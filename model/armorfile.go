package model

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/armor-llm/armor/model/limits"
	"github.com/armor-llm/armor/model/mmap"
	"github.com/armor-llm/armor/model/tensor"
)

// The .armor format is specified in docs/armor-format.md; this file is its only
// reader and writer.

const (
	// armorVersion 2 added the header's CRC-32C to the prefix; version 1
	// files (no header checksum) still load, with a note.
	armorVersion   = 2
	armorAlign     = 64
	armorMaxHeader = limits.MaxHeader
)

// armorPrefix is the fixed part before the JSON header: magic, version,
// header length, and (version 2) the header's CRC-32C and a reserved word.
func armorPrefix(version uint32) int64 {
	if version == 1 {
		return 16
	}
	return 24
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ArmorHeader is the JSON header of an .armor file.
type ArmorHeader struct {
	Format     string                 `json:"format"` // "armor"
	Version    int                    `json:"version"`
	Config     Config                 `json:"config"`
	Vocab      *Vocab                 `json:"vocab,omitempty"`
	Linears    map[string]ArmorLinear `json:"linears"`
	Tensors    []ArmorTensor          `json:"tensors"`
	Provenance map[string]any         `json:"provenance,omitempty"`
	Layers     map[string]LayerResult `json:"layers,omitempty"`
}

// ArmorLinear says how a linear layer is stored: "dense" (NAME.weight),
// "sparse24" (NAME.s24_values, NAME.s24_idx) or "armor" (those plus
// NAME.pre and NAME.post block-diagonal wrappers of Block × Block blocks).
type ArmorLinear struct {
	Kind  string `json:"kind"`
	Block int    `json:"block,omitempty"`
}

// LayerResult records what conversion achieved on one linear layer.
type LayerResult struct {
	Method     string  `json:"method"`
	ProxyLoss  float64 `json:"proxy_loss"`
	NoWagPLoss float64 `json:"nowag_p_loss,omitempty"`
	Iters      int     `json:"iters,omitempty"`
	Seconds    float64 `json:"seconds,omitempty"`
}

// ArmorTensor locates one tensor in the data section.
type ArmorTensor struct {
	Name   string `json:"name"`
	DType  string `json:"dtype"`
	Shape  []int  `json:"shape"`
	Offset int64  `json:"offset"` // from the start of the data section
	Size   int64  `json:"size"`
	CRC32C string `json:"crc32c"` // 8 hex digits, Castagnoli
}

// ArmorWriter writes an .armor file: tensors are declared up front (so the
// header can be written first), then their data streamed in order. The file
// appears at its path only when Close succeeds.
type ArmorWriter struct {
	path   string
	tmp    *os.File
	w      *bufio.Writer
	hdr    ArmorHeader
	next   int   // index of the next tensor to write
	pos    int64 // bytes written into the data section
	hdrLen int64
	crcs   []uint32
}

// CreateArmor starts a file at path. hdr.Tensors gives every tensor's name,
// dtype and shape in write order; offsets and sizes are filled in here.
func CreateArmor(path string, hdr ArmorHeader) (*ArmorWriter, error) {
	hdr.Format, hdr.Version = "armor", armorVersion
	var off int64
	seen := map[string]bool{}
	for i := range hdr.Tensors {
		t := &hdr.Tensors[i]
		if seen[t.Name] {
			return nil, fmt.Errorf("armor: %s: tensor %s declared twice", path, t.Name)
		}
		seen[t.Name] = true
		dt, ok := tensor.ParseDType(t.DType)
		if !ok {
			return nil, fmt.Errorf("armor: %s: tensor %s: unknown dtype %q", path, t.Name, t.DType)
		}
		n := int64(1)
		for _, d := range t.Shape {
			n *= int64(d)
		}
		size, err := tensor.ByteSize(dt, n)
		if err != nil {
			return nil, fmt.Errorf("armor: %s: tensor %s: %w", path, t.Name, err)
		}
		t.Offset, t.Size, t.CRC32C = off, size, "00000000"
		off = (off + size + armorAlign - 1) / armorAlign * armorAlign
	}
	hj, err := json.Marshal(&hdr)
	if err != nil {
		return nil, fmt.Errorf("armor: header: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), tempPattern(path))
	if err != nil {
		return nil, fmt.Errorf("armor: cannot write %s: %w", path, err)
	}
	aw := &ArmorWriter{path: path, tmp: tmp, w: bufio.NewWriterSize(tmp, 1<<20), hdr: hdr, hdrLen: int64(len(hj)), crcs: make([]uint32, len(hdr.Tensors))}
	if err := aw.writeHeader(hj); err != nil {
		aw.Abort()
		return nil, err
	}
	return aw, nil
}

// writeHeader writes the prefix and the header; the header checksum stays
// zero until Close, so an interrupted write is recognisable.
func (aw *ArmorWriter) writeHeader(hj []byte) error {
	pre := make([]byte, armorPrefix(armorVersion))
	copy(pre, armorMagic)
	binary.LittleEndian.PutUint32(pre[4:], armorVersion)
	binary.LittleEndian.PutUint64(pre[8:], uint64(len(hj)))
	aw.w.Write(pre)
	aw.w.Write(hj)
	_, err := aw.w.Write(make([]byte, armorPad(int64(len(pre))+int64(len(hj)))))
	if err != nil {
		return fmt.Errorf("armor: %s: %w", aw.path, err)
	}
	return nil
}

func armorPad(n int64) int64 { return (armorAlign - n%armorAlign) % armorAlign }

// WriteTensor writes the data of the next declared tensor.
func (aw *ArmorWriter) WriteTensor(name string, data []byte) error {
	if aw.next >= len(aw.hdr.Tensors) {
		return fmt.Errorf("armor: %s: tensor %s was not declared", aw.path, name)
	}
	t := &aw.hdr.Tensors[aw.next]
	if t.Name != name {
		return fmt.Errorf("armor: %s: tensor %s written where %s was declared", aw.path, name, t.Name)
	}
	if int64(len(data)) != t.Size {
		return fmt.Errorf("armor: %s: tensor %s has %d bytes, declared %d", aw.path, name, len(data), t.Size)
	}
	aw.crcs[aw.next] = crc32.Checksum(data, castagnoli)
	aw.w.Write(data)
	pad := armorPad(t.Size)
	if aw.next == len(aw.hdr.Tensors)-1 {
		pad = 0
	}
	if _, err := aw.w.Write(make([]byte, pad)); err != nil {
		return fmt.Errorf("armor: %s: %w", aw.path, err)
	}
	aw.next++
	return nil
}

// Close finishes the file: it fills in the checksums and renames the
// temporary file into place.
func (aw *ArmorWriter) Close() error {
	if aw.next != len(aw.hdr.Tensors) {
		aw.Abort()
		return fmt.Errorf("armor: %s: %d of %d tensors written", aw.path, aw.next, len(aw.hdr.Tensors))
	}
	fail := func(err error) error {
		aw.Abort()
		return fmt.Errorf("armor: %s: %w", aw.path, err)
	}
	if err := aw.w.Flush(); err != nil {
		return fail(err)
	}
	for i := range aw.hdr.Tensors {
		aw.hdr.Tensors[i].CRC32C = fmt.Sprintf("%08x", aw.crcs[i])
	}
	hj, err := json.Marshal(&aw.hdr)
	if err != nil {
		return fail(err)
	}
	if int64(len(hj)) != aw.hdrLen { // fixed-width checksums keep the length
		return fail(errors.New("header length changed"))
	}
	if _, err := aw.tmp.WriteAt(hj, armorPrefix(armorVersion)); err != nil {
		return fail(err)
	}
	if _, err := aw.tmp.WriteAt(binary.LittleEndian.AppendUint32(nil, crc32.Checksum(hj, castagnoli)), 16); err != nil {
		return fail(err)
	}
	// CreateTemp makes the file private (0600); a model is an ordinary file.
	if err := aw.tmp.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := aw.tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := aw.tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(aw.tmp.Name(), aw.path); err != nil {
		os.Remove(aw.tmp.Name())
		return fmt.Errorf("armor: %w", err)
	}
	return nil
}

// Abort removes the temporary file.
func (aw *ArmorWriter) Abort() {
	aw.tmp.Close()
	os.Remove(aw.tmp.Name())
}

// ReadArmorHeader parses the header of an .armor file without mapping it.
func ReadArmorHeader(path string) (*ArmorHeader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("armor: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("armor: %w", err)
	}
	h, err := parseArmorPrefix(path, st.Size(), func(off, n int64) ([]byte, error) {
		b := make([]byte, n)
		_, err := f.ReadAt(b, off)
		return b, err
	})
	if err != nil {
		return nil, err
	}
	return h.hdr, nil
}

// armorHead is what the fixed prefix and the JSON header give.
type armorHead struct {
	hdr       *ArmorHeader
	version   uint32
	dataStart int64
	notes     []string
}

// parseArmorPrefix reads and checks the prefix and the header; read
// returns n bytes at off, which the caller has checked lie in the file.
func parseArmorPrefix(path string, fileSize int64, read func(off, n int64) ([]byte, error)) (*armorHead, error) {
	if fileSize < 16 {
		return nil, fmt.Errorf("armor: %s: truncated file (%d bytes, no header)", path, fileSize)
	}
	pre, err := read(0, 16)
	if err != nil {
		return nil, fmt.Errorf("armor: %s: truncated file: %w", path, err)
	}
	if string(pre[:4]) != armorMagic {
		return nil, fmt.Errorf("armor: %s: bad magic", path)
	}
	h := &armorHead{version: binary.LittleEndian.Uint32(pre[4:])}
	if h.version != 1 && h.version != armorVersion {
		return nil, fmt.Errorf("armor: %s: format version %d is not supported (this build reads versions 1 and %d)", path, h.version, armorVersion)
	}
	pl := armorPrefix(h.version)
	n := binary.LittleEndian.Uint64(pre[8:])
	if n > armorMaxHeader {
		return nil, fmt.Errorf("armor: %s: header of %d bytes exceeds the limit of %d", path, n, armorMaxHeader)
	}
	if _, err := limits.SpanU(uint64(pl), n, fileSize); err != nil {
		return nil, fmt.Errorf("armor: %s: truncated file: header of %d bytes does not fit in %d bytes", path, n, fileSize)
	}
	hj, err := read(pl, int64(n))
	if err != nil {
		return nil, fmt.Errorf("armor: %s: truncated header: %w", path, err)
	}
	var hdr ArmorHeader
	if err := json.Unmarshal(hj, &hdr); err != nil {
		return nil, fmt.Errorf("armor: %s: header: %w", path, err)
	}
	if h.version == 1 {
		h.notes = append(h.notes, fmt.Sprintf("%s is .armor version 1, whose header has no checksum; convert it again for a checked header", path))
	} else {
		ext, err := read(16, 8)
		if err != nil {
			return nil, fmt.Errorf("armor: %s: truncated file: %w", path, err)
		}
		want := binary.LittleEndian.Uint32(ext)
		if got := crc32.Checksum(hj, castagnoli); got != want {
			unfinished := want == 0 && len(hdr.Tensors) > 0
			for _, t := range hdr.Tensors {
				unfinished = unfinished && t.CRC32C == "00000000"
			}
			if unfinished {
				return nil, fmt.Errorf("armor: %s: unfinished file: the write that made it was interrupted (header checksum never written); convert again", path)
			}
			return nil, fmt.Errorf("armor: %s: header is corrupted or was edited (crc32c %08x, prefix says %08x)", path, got, want)
		}
	}
	if len(hdr.Tensors) > limits.MaxTensors {
		return nil, fmt.Errorf("armor: %s: header lists %d tensors, more than the limit of %d", path, len(hdr.Tensors), limits.MaxTensors)
	}
	h.hdr = &hdr
	h.dataStart = pl + int64(n)
	h.dataStart += armorPad(h.dataStart)
	return h, nil
}

// loadArmor maps an .armor file, verifies every tensor's checksum, and
// returns the model with its tensors as views on the mapping.
func loadArmor(path string) (*Model, error) {
	mf, err := mmap.Open(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	m, err := parseArmor(path, mf.Data)
	if err != nil {
		mf.Close()
		return nil, err
	}
	m.closers = append(m.closers, mf.Close)
	return m, nil
}

func parseArmor(path string, b []byte) (*Model, error) {
	h, err := parseArmorPrefix(path, int64(len(b)), func(off, n int64) ([]byte, error) { return b[off : off+n], nil })
	if err != nil {
		return nil, err
	}
	hdr := h.hdr
	if h.dataStart > int64(len(b)) {
		return nil, fmt.Errorf("armor: %s: truncated file: it ends after the header", path)
	}
	data := b[h.dataStart:]
	m := &Model{Path: path, Format: "armor", Config: hdr.Config, Tensors: map[string]*tensor.Tensor{},
		Armor: hdr, Notes: h.notes}
	verify := os.Getenv("ARMOR_NO_VERIFY") != "1"
	// Sizes and places first, all of them: a file cut short says
	// "truncated", not a checksum mismatch on its last partial tensor.
	for _, at := range hdr.Tensors {
		dt, ok := tensor.ParseDType(at.DType)
		if !ok {
			return nil, fmt.Errorf("armor: %s: tensor %s: unknown dtype %q", path, at.Name, at.DType)
		}
		n, err := limits.Elements(at.Shape)
		if err != nil {
			return nil, fmt.Errorf("armor: %s: tensor %s: %w", path, at.Name, err)
		}
		size, err := tensor.ByteSize(dt, n)
		if err != nil || size != at.Size {
			return nil, fmt.Errorf("armor: %s: tensor %s: size %d does not match shape %v of %s", path, at.Name, at.Size, at.Shape, at.DType)
		}
		if at.Offset < 0 || at.Offset%armorAlign != 0 {
			return nil, fmt.Errorf("armor: %s: tensor %s: offset %d is not a multiple of %d", path, at.Name, at.Offset, armorAlign)
		}
		if _, err := limits.Span(at.Offset, at.Size, int64(len(data))); err != nil {
			return nil, fmt.Errorf("armor: %s: tensor %s: %w (the file has %d bytes, needs at least %d)", path, at.Name, err, len(b), h.dataStart+at.Offset+at.Size)
		}
	}
	for _, at := range hdr.Tensors {
		dt, _ := tensor.ParseDType(at.DType)
		view := data[at.Offset : at.Offset+at.Size]
		if verify {
			want, err := strconv.ParseUint(at.CRC32C, 16, 32)
			if err != nil {
				return nil, fmt.Errorf("armor: %s: tensor %s: bad checksum field %q", path, at.Name, at.CRC32C)
			}
			if got := crc32.Checksum(view, castagnoli); got != uint32(want) {
				return nil, fmt.Errorf("armor: %s: tensor %s is corrupted (crc32c %08x, header says %s)", path, at.Name, got, at.CRC32C)
			}
		}
		if m.Tensors[at.Name] != nil {
			return nil, fmt.Errorf("armor: %s: tensor %s appears twice", path, at.Name)
		}
		m.Tensors[at.Name] = &tensor.Tensor{Name: at.Name, DType: dt, Shape: append([]int(nil), at.Shape...), Data: view}
	}
	for name, l := range hdr.Linears {
		switch l.Kind {
		case "dense":
		case "sparse24", "armor":
			if l.Kind == "armor" && l.Block <= 0 {
				return nil, fmt.Errorf("armor: %s: linear %s: block size %d", path, name, l.Block)
			}
		default:
			return nil, fmt.Errorf("armor: %s: linear %s: unknown kind %q", path, name, l.Kind)
		}
	}
	m.Vocab = hdr.Vocab
	return m, nil
}

// tempPattern names the temporary file a writer of path uses, ".tmp-NAME-*.armor":
// it starts with the output's name so that RemoveStaleTemps finds exactly
// the leftovers of earlier writes of that file.
func tempPattern(path string) string {
	return ".tmp-" + filepath.Base(path) + "-*.armor"
}

// RemoveStaleTemps deletes the temporary files that interrupted writes of
// path left in its folder (a killed conversion leaves a complete or
// partial one behind), and returns their names. Call it before writing
// path again, never while another process writes the same path.
func RemoveStaleTemps(path string) ([]string, error) {
	dir := filepath.Dir(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("armor: %s: %w", path, err)
	}
	prefix := ".tmp-" + filepath.Base(path) + "-"
	var removed []string
	for _, e := range ents {
		n := e.Name()
		mid, ok := strings.CutPrefix(n, prefix)
		mid, ok2 := strings.CutSuffix(mid, ".armor")
		if !ok || !ok2 || mid == "" || strings.Trim(mid, "0123456789") != "" || !e.Type().IsRegular() {
			continue // not ours: CreateTemp puts digits where the '*' is
		}
		p := filepath.Join(dir, n)
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, fmt.Errorf("armor: stale temporary file: %w", err)
		}
		removed = append(removed, p)
	}
	return removed, nil
}

// ArmorPart is one tensor to write, with its data produced on demand so
// that a writer holds one tensor in memory at a time.
type ArmorPart struct {
	Name  string
	DType tensor.DType
	Shape []int
	Data  func() ([]byte, error)
}

// ArmorSpec is everything an .armor file holds.
type ArmorSpec struct {
	Config     Config
	Vocab      *Vocab // must be self-contained (Vocab.Embedded)
	Linears    map[string]ArmorLinear
	Parts      []ArmorPart
	Provenance map[string]any
	Layers     map[string]LayerResult
	// Progress, if set, is called after each tensor is written.
	Progress func(done, total int)
}

// WriteArmor writes spec to path atomically.
func WriteArmor(path string, spec *ArmorSpec) error {
	if err := spec.Config.Validate(); err != nil {
		return fmt.Errorf("armor: %s: %w", path, err)
	}
	hdr := ArmorHeader{Config: spec.Config, Vocab: spec.Vocab, Linears: spec.Linears, Provenance: spec.Provenance, Layers: spec.Layers}
	for _, p := range spec.Parts {
		hdr.Tensors = append(hdr.Tensors, ArmorTensor{Name: p.Name, DType: p.DType.String(), Shape: p.Shape})
	}
	w, err := CreateArmor(path, hdr)
	if err != nil {
		return err
	}
	for i, p := range spec.Parts {
		b, err := p.Data()
		if err != nil {
			w.Abort()
			return fmt.Errorf("armor: %s: tensor %s: %w", path, p.Name, err)
		}
		if err := w.WriteTensor(p.Name, b); err != nil {
			w.Abort()
			return err
		}
		if spec.Progress != nil {
			spec.Progress(i+1, len(spec.Parts))
		}
	}
	return w.Close()
}
