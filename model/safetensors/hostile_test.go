package safetensors

import (
	"encoding/binary"
	"github.com/armor-llm/armor/internal/hostile"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// file builds safetensors bytes from a raw JSON header and n data bytes.
func file(header string, n int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, n)...)
}

func openHostile(t *testing.T, b []byte, want string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var s *Set
	var err error
	hostile.Bounded(t, want, func() { s, err = Open(path) })
	if err == nil {
		s.Close()
		t.Fatalf("opened without error; want %q", want)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the file and %q", err, want)
	}
}

func TestHostileStructure(t *testing.T) {
	for _, c := range []struct {
		name, header string
		n            int
		want         string
	}{
		{"overlap", `{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}`, 24, `tensors "a" and "b" overlap`},
		{"same region", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 8, "overlap"},
		{"hole", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}`, 24, `hole of 8 bytes before tensor "b"`},
		{"trailing", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 16, "8 bytes after the last tensor"},
		{"misaligned", `{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}`, 6, `tensor "b": data offset 2 is not a multiple`},
		{"duplicate", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, 16, `tensor "a" appears twice`},
		{"shape wraps", `{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, 0, `tensor "a"`},
		{"offset wraps", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[9223372036854775800,9223372036854775808]}}`, 8, `tensor "a"`},
		{"past end", `{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, 8, "truncated"},
	} {
		t.Run(c.name, func(t *testing.T) { openHostile(t, file(c.header, c.n), c.want) })
	}
}

func TestHeaderTooLong(t *testing.T) {
	b := binary.LittleEndian.AppendUint64(nil, 1<<40)
	openHostile(t, append(b, "{}"...), "exceeds the limit")
}
