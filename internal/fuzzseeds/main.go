// Command fuzzseeds writes the seed corpora of the fuzz targets
// (PACKAGE/testdata/fuzz/FuzzXxx/NAME) from the real files of
// ../shared/testdata (or $ARMOR_TESTDATA), cut down so that the corpora stay
// small, plus tiny synthetic files of the formats the shared data lacks
// (safetensors, .armor) and one regression seed per bug of issue 14.
//
//	go run ./internal/fuzzseeds    (from the repository root)
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/armor-llm/armor/model"
	"github.com/armor-llm/armor/model/gguf"
	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
	"github.com/armor-llm/armor/model/tokenizer"
)

var data string

func main() {
	log.SetFlags(0)
	data = os.Getenv("ARMOR_TESTDATA")
	if data == "" {
		data = filepath.Join("..", "shared", "testdata")
	}
	if _, err := os.Stat(data); err != nil {
		log.Fatalf("fuzzseeds: test data: %v (set ARMOR_TESTDATA)", err)
	}
	tmp, err := os.MkdirTemp("", "fuzzseeds")
	check(err)
	defer os.RemoveAll(tmp)

	ggufSeeds(tmp)
	armorSeeds(tmp)
	hfSeeds(tmp)
	llama2cSeeds()
	tokenizerSeeds()
	chatSeeds()
}

func check(err error) {
	if err != nil {
		log.Fatal("fuzzseeds: ", err)
	}
}

func read(rel string) []byte {
	b, err := os.ReadFile(filepath.Join(data, rel))
	check(err)
	return b
}

// seed writes one corpus entry in the "go test fuzz v1" format.
func seed(pkg, target, name string, args ...any) {
	var sb strings.Builder
	sb.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&sb, "[]byte(%s)\n", strconv.Quote(string(v)))
		case string:
			fmt.Fprintf(&sb, "string(%s)\n", strconv.Quote(v))
		case int:
			fmt.Fprintf(&sb, "int(%d)\n", v)
		default:
			log.Fatalf("fuzzseeds: argument of type %T", a)
		}
	}
	dir := filepath.Join(pkg, "testdata", "fuzz", target)
	check(os.MkdirAll(dir, 0o755))
	check(os.WriteFile(filepath.Join(dir, name), []byte(sb.String()), 0o644))
}

// ggufSeeds: the metadata of the real stories260K.gguf and of the llama
// SentencePiece vocabulary GGUF, with arrays cut to 300 entries, and the
// small tensors of stories260K (the norm vectors).
func ggufSeeds(tmp string) {
	for _, src := range []string{"models/stories260K.gguf", "tokenizers/ggml-vocab-llama-spm.gguf"} {
		f, err := gguf.Parse(src, read(src))
		check(err)
		var kvs []gguf.KV
		for _, k := range f.Keys() {
			v := f.KV[k]
			switch x := v.(type) {
			case []string:
				v = x[:min(len(x), 300)]
			case []float32:
				v = x[:min(len(x), 300)]
			case []int32:
				v = x[:min(len(x), 300)]
			case uint32, int32, uint64, float32, float64, bool, string:
			default:
				continue // types the writer does not write
			}
			kvs = append(kvs, gguf.KV{Key: k, Value: v})
		}
		var ts []*tensor.Tensor
		for _, t := range f.Tensors {
			if len(t.Data) <= 1024 {
				ts = append(ts, t)
			}
		}
		p := filepath.Join(tmp, "s.gguf")
		check(gguf.Write(p, kvs, ts))
		b, err := os.ReadFile(p)
		check(err)
		name := strings.TrimSuffix(filepath.Base(src), ".gguf")
		seed("model/gguf", "FuzzGGUF", name, b)
		seed("model", "FuzzGGUFModel", name, b)
	}
	// A whole tiny model (synthetic weights, real format).
	c := synth.TinyGGUFConfigs()
	for _, name := range []string{"llama", "qwen2"} {
		cfg, ok := c[name]
		if !ok {
			continue
		}
		cfg.Vocab = min(cfg.Vocab, 64)
		p := filepath.Join(tmp, name+".gguf")
		if synth.WriteGGUF(p, cfg, tensor.F32, 1) != nil {
			continue
		}
		b, _ := os.ReadFile(p)
		if len(b) < 64<<10 {
			seed("model", "FuzzGGUFModel", "tiny-"+name, b)
		}
	}
	// Regression seeds: an offset near 2^64, an array of an unknown
	// element type, a duplicate key, overlapping tensors.
	hdr := func(nt, nkv uint64) []byte {
		b := []byte("GGUF")
		b = binary.LittleEndian.AppendUint32(b, 3)
		b = binary.LittleEndian.AppendUint64(b, nt)
		return binary.LittleEndian.AppendUint64(b, nkv)
	}
	str := func(b []byte, s string) []byte {
		return append(binary.LittleEndian.AppendUint64(b, uint64(len(s))), s...)
	}
	info := func(b []byte, name string, n, off uint64) []byte {
		b = str(b, name)
		b = binary.LittleEndian.AppendUint32(b, 1)
		b = binary.LittleEndian.AppendUint64(b, n)
		b = binary.LittleEndian.AppendUint32(b, 0)
		return binary.LittleEndian.AppendUint64(b, off)
	}
	pad := func(b []byte, n int) []byte {
		for len(b)%32 != 0 {
			b = append(b, 0)
		}
		return append(b, make([]byte, n)...)
	}
	seed("model/gguf", "FuzzGGUF", "regress-offset-wraps", pad(info(hdr(1, 0), "w", 8, math.MaxUint64&^31), 32))
	b := str(hdr(0, 1), "k")
	b = binary.LittleEndian.AppendUint32(b, 9)
	b = binary.LittleEndian.AppendUint32(b, 99)
	seed("model/gguf", "FuzzGGUF", "regress-unknown-array-type", binary.LittleEndian.AppendUint64(b, 1<<40))
	b = hdr(0, 2)
	for _, v := range []string{"llama", "qwen2"} {
		b = str(b, "general.architecture")
		b = binary.LittleEndian.AppendUint32(b, 8)
		b = str(b, v)
	}
	seed("model/gguf", "FuzzGGUF", "regress-duplicate-key", b)
	seed("model/gguf", "FuzzGGUF", "regress-overlap", pad(info(info(hdr(2, 0), "a", 16, 0), "b", 8, 32), 128))
}

// armorSeeds: a tiny .armor of each kind (synthetic weights), its version
// 1 form (no header checksum, so that the fuzzer reaches the header's
// fields), and a shape whose element count wraps to 0.
func armorSeeds(tmp string) {
	c := model.Config{Arch: "qwen2", Dim: 8, Hidden: 8, Layers: 1, Heads: 2, KVHeads: 1, HeadDim: 4, Vocab: 8, Context: 16,
		NormEps: 1e-6, RopeTheta: 10000, RopeHalves: true, Tied: true, QKBias: true}
	for _, v := range []synth.Variant{synth.Dense, synth.Armor} {
		p := filepath.Join(tmp, string(v)+".armor")
		check(synth.WriteArmor(p, c, synth.ArmorOptions{Variant: v, DType: tensor.F16, Block: 4, Seed: 1}))
		b, err := os.ReadFile(p)
		check(err)
		seed("model", "FuzzArmorFile", string(v), b)
		n := binary.LittleEndian.Uint64(b[8:])
		hj, body := b[24:24+n], b[(24+int(n)+63)/64*64:]
		seed("model", "FuzzArmorHeader", string(v), b[:24+n])
		seed("model", "FuzzArmorFile", string(v)+"-v1", armorV1(hj, body))
		seed("model", "FuzzArmorHeader", string(v)+"-v1", armorV1(hj, nil))
		if v == synth.Dense {
			var h model.ArmorHeader
			check(json.Unmarshal(hj, &h))
			h.Tensors[0].Shape, h.Tensors[0].Size = []int{1 << 32, 1 << 32}, 0
			hj2, _ := json.Marshal(&h)
			seed("model", "FuzzArmorFile", "regress-shape-wraps", armorV1(hj2, body))
			h.Tensors[0].Shape, h.Tensors[0].Size = []int{8, 8}, 128
			h.Config.Layers = 1 << 24
			hj2, _ = json.Marshal(&h)
			seed("model", "FuzzArmorFile", "regress-huge-layer-count", armorV1(hj2, body))
		}
	}
}

func armorV1(hj, body []byte) []byte {
	b := []byte("ARMR")
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(hj)))
	b = append(b, hj...)
	if body == nil {
		return b
	}
	for len(b)%64 != 0 {
		b = append(b, 0)
	}
	return append(b, body...)
}

// hfSeeds: a tiny synthetic Hugging Face checkpoint (config.json and
// model.safetensors), and safetensors regression seeds.
func hfSeeds(tmp string) {
	dir := filepath.Join(tmp, "hf")
	check(os.MkdirAll(dir, 0o755))
	c := model.Config{Arch: "qwen2", Dim: 8, Hidden: 8, Layers: 1, Heads: 2, KVHeads: 1, HeadDim: 4, Vocab: 8, Context: 16,
		NormEps: 1e-6, RopeTheta: 10000, RopeHalves: true, Tied: true, QKBias: true}
	check(synth.WriteHF(dir, c, tensor.F16, 1))
	cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
	check(err)
	seed("model", "FuzzHFConfig", "qwen2", cfg)
	seed("model", "FuzzHFConfig", "regress-huge-layer-count", bytes.Replace(cfg, []byte(`"num_hidden_layers": 1`), []byte(`"num_hidden_layers": 16777216`), 1))
	st, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	check(err)
	seed("model/safetensors", "FuzzSafetensors", "qwen2-tiny", st)
	file := func(h string, n int) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
		return append(append(b, h...), make([]byte, n)...)
	}
	seed("model/safetensors", "FuzzSafetensors", "regress-overlap", file(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}`, 24))
	seed("model/safetensors", "FuzzSafetensors", "regress-hole", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}`, 24))
	seed("model/safetensors", "FuzzSafetensors", "regress-duplicate", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, 16))
	seed("model/safetensors", "FuzzSafetensors", "regress-shape-wraps", file(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, 0))
}

// llama2cSeeds: the real header of stories260K.bin over a cut-down body,
// and a complete tiny checkpoint of the same layout; the real tok512.bin.
func llama2cSeeds() {
	real := read("models/stories260K.bin")
	seed("model", "FuzzLlama2c", "stories260K-head", real[:4096])
	hdr := []int32{8, 16, 1, 2, 2, 16, 4} // dim hidden layers heads kv vocab seq
	var b []byte
	for _, v := range hdr {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	dim, hidden, vocab, seq, headDim := 8, 16, 16, 4, 4
	floats := vocab*dim + dim + 4*dim*dim + dim + 3*hidden*dim + dim + 2*seq*headDim/2
	for i := 0; i < floats; i++ {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(i%7)*0.1+0.5))
	}
	seed("model", "FuzzLlama2c", "tiny", b)
	tok := read("models/tok512.bin")
	seed("model/tokenizer", "FuzzLlama2cTokenizer", "tok512", tok, 512, "Once upon a time, there was a dog.")
}

// tokenizerSeeds: the real tokenizer.json files (Llama 3, Qwen3) cut to
// their first 512 ids with the merges among them, and the real
// SentencePiece tokenizer.model cut to its first 300 pieces.
func tokenizerSeeds() {
	for _, name := range []string{"llama3", "qwen3"} {
		var tj map[string]any
		check(json.Unmarshal(read("tokenizers/"+name+"/tokenizer.json"), &tj))
		m := tj["model"].(map[string]any)
		vocab := map[string]any{}
		for k, v := range m["vocab"].(map[string]any) {
			if v.(float64) < 512 {
				vocab[k] = v
			}
		}
		m["vocab"] = vocab
		var merges []any
		for _, x := range m["merges"].([]any) {
			var l, r string
			switch mm := x.(type) {
			case string:
				l, r, _ = strings.Cut(mm, " ")
			case []any:
				l, r = mm[0].(string), mm[1].(string)
			}
			if vocab[l] != nil && vocab[r] != nil && vocab[l+r] != nil {
				merges = append(merges, x)
			}
		}
		m["merges"] = merges
		var added []any
		for i, a := range tj["added_tokens"].([]any) {
			if i >= 8 {
				break
			}
			a.(map[string]any)["id"] = 512 + i
			added = append(added, a)
		}
		tj["added_tokens"] = added
		tb, err := json.Marshal(tj)
		check(err)
		var cfg map[string]any
		check(json.Unmarshal(read("tokenizers/"+name+"/tokenizer_config.json"), &cfg))
		small := map[string]any{}
		for _, k := range []string{"bos_token", "eos_token", "add_bos_token"} {
			if v, ok := cfg[k]; ok {
				small[k] = v
			}
		}
		// The BOS/EOS texts must be among the kept tokens.
		for _, k := range []string{"bos_token", "eos_token"} {
			if s, ok := small[k].(string); ok {
				found := false
				for _, a := range added {
					found = found || a.(map[string]any)["content"] == s
				}
				if !found {
					delete(small, k)
				}
			}
		}
		cb, _ := json.Marshal(small)
		seed("model/tokenizer", "FuzzHFTokenizer", name, tb, cb, "Hello world! It's 2024, naïve café 🎉\n\n  x")
	}
	// Catastrophic pre-tokenizer regexes: nested quantifiers (refused by
	// the static check) and overlapping alternatives (refused by the probe).
	for name, re := range map[string]string{"regress-nested-quantifier": `(a+)+$`, "regress-catastrophic-regex": `(a|aa)+$`} {
		vocab := map[string]int{}
		for b := 0; b < 256; b++ {
			vocab[string(tokenizer.ByteLevelEncode(string([]byte{byte(b)})))] = b
		}
		tb, _ := json.Marshal(map[string]any{"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": re}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}}},
			"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{}}})
		seed("model/tokenizer", "FuzzHFTokenizer", name, tb, []byte{}, strings.Repeat("a", 40)+"!")
	}
	seed("model/tokenizer", "FuzzHFTokenizer", "regress-huge-id", []byte(`{"pre_tokenizer":{"type":"ByteLevel","use_regex":true},"model":{"type":"BPE","vocab":{"a":16777215}}}`), []byte{}, "a")

	// SentencePiece: copy every top-level field but the pieces after the
	// first 300.
	sp := read("tokenizers/llama2-tokenizer.model")
	var out []byte
	pieces := 0
	for off := 0; off < len(sp); {
		start := off
		key, n := binary.Uvarint(sp[off:])
		off += n
		switch key & 7 {
		case 0:
			_, n = binary.Uvarint(sp[off:])
			off += n
		case 1:
			off += 8
		case 5:
			off += 4
		case 2:
			l, n := binary.Uvarint(sp[off:])
			off += n + int(l)
		default:
			log.Fatalf("fuzzseeds: tokenizer.model: wire type %d", key&7)
		}
		if key>>3 == 1 {
			pieces++
			if pieces > 300 {
				continue
			}
		}
		out = append(out, sp[start:off]...)
	}
	seed("model/tokenizer", "FuzzSentencePieceModel", "llama2-300", out, "Hello world! naïve café 🎉")
}

// chatSeeds: the chat templates of the real tokenizer configs, and the
// templates that crashed or ran away before the render budget.
func chatSeeds() {
	for _, name := range []string{"llama3", "qwen3"} {
		var cfg struct {
			ChatTemplate string `json:"chat_template"`
		}
		check(json.Unmarshal(read("tokenizers/"+name+"/tokenizer_config.json"), &cfg))
		if cfg.ChatTemplate != "" {
			seed("model/chat", "FuzzRender", name, cfg.ChatTemplate)
		}
	}
	for name, src := range map[string]string{
		"regress-negative-repetition": `{{ 'ab' * -3 }}`,
		"regress-recursive-macro":     `{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}`,
		"regress-huge-range":          `{% for i in range(10000000000) %}x{% endfor %}`,
		"regress-huge-repetition":     `{{ 'abcdefgh' * 1000000000 }}`,
		"regress-nested-loops":        `{% for i in range(60000) %}{% for j in range(60000) %}{% endfor %}{% endfor %}`,
	} {
		seed("model/chat", "FuzzRender", name, src)
	}
}
