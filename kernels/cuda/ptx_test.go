package cuda

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestPTXEntries(t *testing.T) {
	for _, c := range []struct {
		major  int
		target string
	}{{8, ".target sm_80"}, {9, ".target sm_90"}, {10, ".target sm_90"}} {
		ptx, err := PTXFor(c.major, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(ptx), c.target) {
			t.Errorf("sm_%d0: PTX lacks %q", c.major, c.target)
		}
		got := ptxEntries(ptx)
		for _, n := range kernelNames {
			if !slices.Contains(got, n) {
				t.Errorf("sm_%d0 PTX has no entry %s (entries: %v); rerun gen_ptx.sh", c.major, n, got)
			}
		}
	}
	if _, err := PTXFor(7, 5); err == nil {
		t.Error("sm_75 accepted")
	}
}

func TestPackArgs(t *testing.T) {
	b := &Buffer{Ptr: 0xdeadbeef00}
	ps, err := packArgs([]any{b, int32(-2), uint32(7), 5, float32(1.5), uintptr(9)})
	if err != nil {
		t.Fatal(err)
	}
	if *(*uint64)(ps[0]) != 0xdeadbeef00 || *(*int32)(ps[1]) != -2 || *(*uint32)(ps[2]) != 7 ||
		*(*int32)(ps[3]) != 5 || *(*float32)(ps[4]) != 1.5 || *(*uintptr)(ps[5]) != 9 {
		t.Fatal("kernel arguments read back wrong")
	}
	if _, err := packArgs([]any{int64(1)}); err == nil {
		t.Error("int64 accepted")
	}
	if _, err := packArgs([]any{math.MaxInt32 + 1}); err == nil {
		t.Error("overflowing int accepted")
	}
}
