package gguf

import "testing"

// FuzzGGUF: any bytes either parse into a file whose tensors lie inside
// the input, or give an error; never a panic or an unbounded allocation.
// Seeds: testdata/fuzz/FuzzGGUF (see internal/fuzzseeds).
func FuzzGGUF(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := parse(b)
		if err != nil {
			return
		}
		for _, k := range g.Keys() {
			g.Uint(k)
			g.Float(k)
			g.Strings(k)
		}
		for _, tn := range g.Tensors {
			if len(tn.Data) > len(b) {
				t.Fatalf("tensor %s: %d bytes from a %d-byte file", tn.Name, len(tn.Data), len(b))
			}
		}
	})
}
