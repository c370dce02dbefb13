package kernels

import (
	"fmt"
	"os"
	"strings"
)

// Level is an instruction-set level of the kernels. Higher levels are faster
// and need more of the CPU; every level falls back to the portable Go code
// for whatever it does not implement.
type Level uint8

const (
	Generic Level = iota // portable Go, every platform
	AVX2                 // amd64: AVX2 + FMA + F16C
	AVX512               // amd64: AVX-512 F/BW/VL/DQ (+ AVX512-BF16 when present)
	NEON                 // arm64: Advanced SIMD (always present on arm64)
)

func (l Level) String() string {
	switch l {
	case Generic:
		return "generic"
	case AVX2:
		return "avx2"
	case AVX512:
		return "avx512"
	case NEON:
		return "neon"
	}
	return fmt.Sprintf("level(%d)", uint8(l))
}

// ParseLevel accepts the names printed by Level.String.
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "generic", "go":
		return Generic, nil
	case "avx2":
		return AVX2, nil
	case "avx512":
		return AVX512, nil
	case "neon":
		return NEON, nil
	}
	return 0, fmt.Errorf("unknown ISA level %q (want generic, avx2, avx512 or neon)", s)
}

var (
	detected Level // best level the CPU supports
	level    Level // level in use
	// hasBF16Dot is true when the CPU has AVX512-BF16 (VDPBF16PS); bf16 GEMM
	// then rounds activations to bf16 and uses the dot-product instruction.
	// Tests switch it off to cover the shift-based path too.
	hasBF16Dot bool
	useBF16Dot bool
)

func init() {
	detected, hasBF16Dot = detectLevel()
	level = detected
	useBF16Dot = hasBF16Dot
	if s := os.Getenv("ARMOR_ISA"); s != "" {
		l, err := ParseLevel(s)
		if err == nil {
			err = SetISA(l)
		}
		if err != nil {
			// Kernels have no error path at start-up; a forced level that
			// cannot be honoured is reported and the detected level is kept.
			fmt.Fprintf(os.Stderr, "kernels: ARMOR_ISA=%s ignored: %v\n", s, err)
		}
	}
}

// ISA reports the level in use.
func ISA() Level { return level }

// DetectedISA reports the best level this CPU supports.
func DetectedISA() Level { return detected }

// Levels lists every level usable on this CPU, lowest first. Tests run each
// kernel at each of them.
func Levels() []Level {
	ls := []Level{Generic}
	switch detected {
	case AVX2:
		ls = append(ls, AVX2)
	case AVX512:
		ls = append(ls, AVX2, AVX512)
	case NEON:
		ls = append(ls, NEON)
	}
	return ls
}

// SetISA forces level l, which must be one of Levels(). It is meant for
// tests and benchmarks and must not be called while kernels run.
func SetISA(l Level) error {
	for _, ok := range Levels() {
		if ok == l {
			level = l
			useBF16Dot = hasBF16Dot && l == AVX512
			return nil
		}
	}
	return fmt.Errorf("ISA level %v not supported by this CPU (best: %v)", l, detected)
}

// HasBF16Dot reports whether bf16 GEMM uses the AVX512-BF16 dot-product
// instruction at the current level (activations then rounded to bf16).
func HasBF16Dot() bool { return useBF16Dot }
