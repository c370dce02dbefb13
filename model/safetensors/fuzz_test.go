package safetensors

import "testing"

// FuzzSafetensors: any bytes either parse into tensors that tile the data
// section, or give an error. Seeds: testdata/fuzz/FuzzSafetensors.
func FuzzSafetensors(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := parse(b)
		if err != nil {
			return
		}
		total := 0
		for _, x := range ts {
			total += len(x.Data)
		}
		if total > len(b) {
			t.Fatalf("tensors hold %d bytes of a %d-byte file", total, len(b))
		}
	})
}
