package runtime

import (
	"fmt"
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
	return OpenWith(device, path, tokPath, needTok, OpenOptions{Warn: warn})
}

// OpenOptions are OpenWith's optional settings.
type OpenOptions struct {
	// Warn is told about layers that stay on the CPU and GPU failures.
	Warn func(string)
	// Progress is told how loading goes: stage "reading" (bytes of the
	// file copied into memory; nothing when it is mapped) then "building"
	// (transformer blocks built, which includes rearranging wide layers
	// into panels and, on a GPU, uploading them).
	Progress func(stage string, done, total int64)
}

// OpenWith is OpenOn with options.
func OpenWith(device, path, tokPath string, needTok bool, o OpenOptions) (*Loaded, error) {
	warn := o.Warn
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
	ld, err := open(path, tokPath, needTok, dev, warn, o.Progress)
	if err != nil {
		if dev != nil {
			dev.Close()
		}
		return nil, err
	}
	ld.Device, ld.dev = device, dev
	return ld, nil
}

func open(path, tokPath string, needTok bool, dev *cuda.Device, warn func(string), progress func(string, int64, int64)) (*Loaded, error) {
	start := time.Now()
	var built func(done, total int)
	if progress != nil {
		mmap.SetReadProgress(func(_ string, done, total int64) { progress("reading", done, total) })
		defer mmap.SetReadProgress(nil)
		built = func(done, total int) { progress("building", int64(done), int64(total)) }
	}
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
	tr, err := newTransformer(m, build, built)
	if err != nil {
		m.Close()
		return nil, err
	}
	return &Loaded{Model: m, Tr: tr, Tok: tok, LoadTime: time.Since(start)}, nil
}
