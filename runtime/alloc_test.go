package runtime

import (
	"testing"

	"github.com/armor-llm/armor/internal/testdata"
)

// A decode step allocates nothing: the KV cache, scratch buffers and the
// parallel work descriptors are all reused.
func TestDecodeDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items, which allocates")
	}
	_, tr := loadTransformer(t, testdata.File(t, "models/stories260K.gguf"))
	for _, f16 := range []bool{false, true} {
		tr.KVF16 = f16
		st, _ := tr.NewState(512)
		// Past 256 positions attention is split across the pool; below, it
		// runs inline. Steps cover both.
		prompt := make([]int, 240)
		for i := range prompt {
			prompt[i] = 1 + i%500
		}
		if _, err := st.Forward(prompt, false); err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(50, func() {
			if st.Pos >= 300 {
				st.Truncate(240)
			}
			st.Forward([]int{5}, false)
		})
		if allocs != 0 {
			t.Fatalf("f16 cache %v: a decode step allocates %v times", f16, allocs)
		}
	}
}
