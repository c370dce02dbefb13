package model

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/armor-llm/armor/model/limits"
	"github.com/armor-llm/armor/model/mmap"
	"github.com/armor-llm/armor/model/tensor"
)

// loadLlama2c reads a llama2.c checkpoint (legacy version 0): a header of 7
// int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size — negative
// when the classifier is separate — and seq_len), then float32 tensors in a
// fixed order. Tensors are views on the mapping, per layer.
//
// No conversion is needed: llama2.c stores each matrix W[out][in] row-major
// (export.py serializes nn.Linear.weight as is; run.c's matmul reads
// w[i*n+j] for output i, input j), which is exactly the GGUF/ggml layout
// (ne0 = in varies fastest), and llama.cpp's convert-llama2c-to-ggml copies
// the floats in file order. RoPE is the interleaved-pairs form (RopeHalves
// false), as in run.c.
//
// The shared test file models/stories260K.bin is a genuine export of the
// stories260K GGUF's weights: runtime/stories_test.go checks that it loads
// to the GGUF's tensors and logits and prints llama2.c's own greedy output.
func loadLlama2c(path string) (*Model, error) {
	mf, err := mmap.Open(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	m, err := parseLlama2c(path, mf.Data)
	if err != nil {
		mf.Close()
		return nil, err
	}
	m.closers = append(m.closers, mf.Close)
	return m, nil
}

func parseLlama2c(path string, b []byte) (*Model, error) {
	const hdr = 28
	if len(b) < hdr {
		return nil, fmt.Errorf("model: %s: not a GGUF, .armor or llama2.c checkpoint (%d bytes)", path, len(b))
	}
	var h [7]int64
	for i := range h {
		h[i] = int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
	}
	dim, hidden, layers, heads, kvHeads, vocab, seq := h[0], h[1], h[2], h[3], h[4], h[5], h[6]
	shared := vocab > 0
	if vocab < 0 {
		vocab = -vocab
	}
	const lim = 1 << 20
	if dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocab <= 0 || seq <= 0 ||
		dim > lim || hidden > lim || layers > limits.MaxLayers || heads > dim || kvHeads > heads || vocab > limits.MaxVocab || seq > 1<<24 || dim%heads != 0 {
		return nil, fmt.Errorf("model: %s: not a GGUF, .armor or llama2.c checkpoint (llama2.c header %v is implausible)", path, h)
	}
	headDim := dim / heads
	kvDim := kvHeads * headDim
	m := &Model{Path: path, Format: "llama2c", Tensors: map[string]*tensor.Tensor{}}
	m.Config = Config{Arch: "llama", Dim: int(dim), Hidden: int(hidden), Layers: int(layers), Heads: int(heads),
		KVHeads: int(kvHeads), HeadDim: int(headDim), Vocab: int(vocab), Context: int(seq), NormEps: 1e-5,
		RopeTheta: 10000, Tied: shared}
	off := int64(hdr)
	var ferr error
	take := func(name string, shape ...int64) {
		if ferr != nil {
			return
		}
		n, err := limits.Elements(shape)
		if err == nil {
			n, err = limits.Mul(n, 4)
		}
		if err != nil {
			ferr = fmt.Errorf("model: %s: llama2.c tensor %s: %w", path, name, err)
			return
		}
		if _, err := limits.Span(off, n, int64(len(b))); err != nil {
			ferr = fmt.Errorf("model: %s: truncated llama2.c checkpoint: tensor %s needs bytes [%d, %d), file has %d", path, name, off, off+n, len(b))
			return
		}
		if name != "" {
			s := make([]int, len(shape))
			for i, d := range shape {
				s[i] = int(d)
			}
			m.Tensors[name] = &tensor.Tensor{Name: name, DType: tensor.F32, Shape: s, Data: b[off : off+n]}
		}
		off += n
	}
	perLayer := func(kind string, shape ...int64) {
		for l := int64(0); l < layers; l++ {
			take(fmt.Sprintf("blk.%d.%s.weight", l, kind), shape...)
		}
	}
	take("token_embd.weight", vocab, dim)
	perLayer("attn_norm", dim)
	perLayer("attn_q", dim, dim)
	perLayer("attn_k", kvDim, dim)
	perLayer("attn_v", kvDim, dim)
	perLayer("attn_output", dim, dim)
	perLayer("ffn_norm", dim)
	perLayer("ffn_gate", hidden, dim)
	perLayer("ffn_down", dim, hidden)
	perLayer("ffn_up", hidden, dim)
	take("output_norm.weight", dim)
	take("", seq, headDim/2) // freq_cis_real, unused: RoPE is recomputed
	take("", seq, headDim/2) // freq_cis_imag
	if !shared {
		take("output.weight", vocab, dim)
	}
	if ferr != nil {
		return nil, ferr
	}
	if off != int64(len(b)) {
		return nil, fmt.Errorf("model: %s: llama2.c checkpoint has %d bytes after its last tensor (wrong header or not llama2.c)", path, int64(len(b))-off)
	}
	// The tokenizer lives in a separate tokenizer.bin; look beside the model.
	for _, name := range []string{fmt.Sprintf("tok%d.bin", vocab), "tokenizer.bin"} {
		p := filepath.Join(filepath.Dir(path), name)
		if _, err := os.Stat(p); err == nil {
			m.Vocab = &Vocab{Kind: "llama2c", Path: p, BOS: 1, EOS: 2, EOT: -1, UNK: 0, AddBOS: true}
			break
		}
	}
	return m, nil
}
