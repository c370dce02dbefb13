package runtime

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/armor-llm/armor/kernels"
	"github.com/armor-llm/armor/kernels/cuda"
	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/mmap"
	"github.com/armor-llm/armor/model/tokenizer"
)

// Loaded is a model ready to generate.
type Loaded struct {
	Model    *model.Model
	Tr       *Transformer
	Tok      tokenizer.Tokenizer // nil if the model has none and none was given
	LoadTime time.Duration
	Device   string // "cpu" or "cuda"
	dev      *cuda.Device
}

// Close releases the model's mappings (and the GPU, if one was used).
func (l *Loaded) Close() error {
	err := l.Model.Close()
	if l.dev != nil {
		l.dev.Close()
	}
	return err
}

// Open loads a model file or directory and builds its transformer and
// tokenizer for the CPU. tokPath overrides the tokenizer (empty: the model's
// own). A model without a tokenizer loads with Tok nil when needTok is false.
func Open(path, tokPath string, needTok bool) (*Loaded, error) {
	return OpenOn("cpu", path, tokPath, needTok, nil)
}

// OpenOn is Open for a device: "cpu", or "cuda" (weights and linear products
// on GPU 0; layers the GPU cannot take stay on the CPU, and warn is told
// why). Without a usable GPU, "cuda" fails with a message naming the missing
// library and where it was looked for.
func OpenOn(device, path, tokPath string, needTok bool, warn func(string)) (*Loaded, error) {
	if warn == nil {
		warn = func(string) {}
	}
	var dev *cuda.Device
	switch device {
	case "", "cpu":
		device = "cpu"
	case "cuda":
		if _, err := cuda.Available(); err != nil {
			return nil, fmt.Errorf("--device cuda: %w", err)
		}
		d, err := cuda.Open(0)
		if err != nil {
			return nil, fmt.Errorf("--device cuda: %w", err)
		}
		dev = d
	default:
		return nil, fmt.Errorf("--device %q: use cpu or cuda", device)
	}
	if dev != nil && mmap.CurrentMode() == mmap.Auto {
		// The GPU holds the weights: a huge-page copy on the host would
		// only double the memory, so map the file.
		mmap.SetMode(mmap.Map)
		defer mmap.SetMode(mmap.Auto)
	}
	ld, err := open(path, tokPath, needTok, dev, warn)
	if err != nil {
		if dev != nil {
			dev.Close()
		}
		return nil, err
	}
	ld.Device, ld.dev = device, dev
	return ld, nil
}

func open(path, tokPath string, needTok bool, dev *cuda.Device, warn func(string)) (*Loaded, error) {
	start := time.Now()
	m, err := model.Load(path)
	if err != nil {
		return nil, err
	}
	if tokPath != "" {
		v, err := model.LoadVocab(tokPath)
		if err != nil {
			m.Close()
			return nil, err
		}
		m.Vocab = v
	}
	for _, n := range m.Notes {
		warn(n)
	}
	var tok tokenizer.Tokenizer
	if m.Vocab != nil || needTok {
		tok, err = m.Tokenizer()
		if err != nil {
			m.Close()
			return nil, err
		}
	}
	build := builderFor(m)
	if dev != nil {
		build = CUDABuilderFor(m, dev, kernels.F16,
			func(name string, err error) { warn(fmt.Sprintf("%s stays on the CPU: %v", name, err)) },
			func(err error) { warn(fmt.Sprintf("GPU failure, continuing on the CPU: %v", err)) })
	}
	tr, err := New(m, build)
	if err != nil {
		m.Close()
		return nil, err
	}
	return &Loaded{Model: m, Tr: tr, Tok: tok, LoadTime: time.Since(start)}, nil
}

// builderFor picks how linear layers are built from the file's tensors.
func builderFor(m *model.Model) LinearBuilder {
	if m.Format == "armor" {
		return ArmorFileBuilder(m)
	}
	return DenseBuilder
}

// PeakRSS reads the process's peak resident set size (Linux), or 0.
func PeakRSS() int64 {
	return procStatus("VmHWM:")
}

// RSS reads the current resident set size (Linux), or 0.
func RSS() int64 { return procStatus("VmRSS:") }

func procStatus(key string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n * 1024
			}
		}
	}
	return 0
}

// FormatBytes prints a byte count with a binary unit.
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
