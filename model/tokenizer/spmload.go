package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/armor-llm/armor/model/limits"
)

// LoadLlama2cTokenizer reads llama2.c's tokenizer.bin: int32
// max_token_length, then per token float32 score, int32 length and the
// bytes. llama2.c's exporter wrote "▁" as " " and BOS/EOS as "\n<s>\n" and
// "\n</s>\n"; both are undone here. Ids 0, 1, 2 are UNK, BOS, EOS (the
// SentencePiece defaults the exporter relied on). vocabSize comes from the
// checkpoint header; the file must hold at least that many tokens.
func LoadLlama2cTokenizer(path string, vocabSize int) (*SentencePiece, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("llama2.c tokenizer: %w", err)
	}
	return ParseLlama2cTokenizer(path, data, vocabSize)
}

// ParseLlama2cTokenizer is LoadLlama2cTokenizer on the file's contents;
// path names it in errors.
func ParseLlama2cTokenizer(path string, data []byte, vocabSize int) (*SentencePiece, error) {
	if vocabSize < 3 {
		return nil, fmt.Errorf("llama2.c tokenizer %s: vocabulary size %d is too small", path, vocabSize)
	}
	// Each token takes at least 8 bytes: refuse sizes the file cannot hold
	// before allocating for them.
	if len(data) < 4 || int64(vocabSize) > int64(len(data)-4)/8 {
		return nil, fmt.Errorf("llama2.c tokenizer %s: %d bytes cannot hold %d tokens", path, len(data), vocabSize)
	}
	maxLen := int32(binary.LittleEndian.Uint32(data))
	if maxLen <= 0 {
		return nil, fmt.Errorf("llama2.c tokenizer %s: bad max_token_length %d", path, maxLen)
	}
	pieces := make([]string, vocabSize)
	scores := make([]float32, vocabSize)
	off := 4
	for i := 0; i < vocabSize; i++ {
		if off+8 > len(data) {
			return nil, fmt.Errorf("llama2.c tokenizer %s: truncated at token %d of %d", path, i, vocabSize)
		}
		scores[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int32(binary.LittleEndian.Uint32(data[off+4:]))
		off += 8
		if n < 0 || n > maxLen || int(n) > len(data)-off {
			return nil, fmt.Errorf("llama2.c tokenizer %s: token %d has bad length %d (max %d, %d bytes left)", path, i, n, maxLen, len(data)-off)
		}
		pieces[i] = strings.ReplaceAll(string(data[off:off+int(n)]), " ", "▁")
		off += int(n)
	}
	if pieces[1] == "\n<s>\n" {
		pieces[1] = "<s>"
	}
	if pieces[2] == "\n</s>\n" {
		pieces[2] = "</s>"
	}
	t, err := NewSentencePiece(pieces, scores, nil, 1, 2, 0)
	if err != nil {
		return nil, fmt.Errorf("llama2.c tokenizer %s: %w", path, err)
	}
	return t, nil
}

// LoadSentencePieceModel reads a SentencePiece tokenizer.model (a
// ModelProto protobuf) with a small hand-written protobuf decoder.
// Fields used: pieces (1: piece 1, score 2, type 3), trainer_spec (2:
// unk_id 40, bos_id 41, eos_id 42) and normalizer_spec (3:
// add_dummy_prefix 3). Only BPE models are accepted (trainer_spec
// model_type 10 == 2), since unigram models tokenize differently.
func LoadSentencePieceModel(path string) (*SentencePiece, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sentencepiece model: %w", err)
	}
	return ParseSentencePieceModel(path, data)
}

// ParseSentencePieceModel is LoadSentencePieceModel on the file's
// contents; path names it in errors.
func ParseSentencePieceModel(path string, data []byte) (*SentencePiece, error) {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("sentencepiece model %s: %s", path, fmt.Sprintf(format, a...))
	}
	var pieces []string
	var scores []float32
	var types []int32
	unk, bos, eos := 0, 1, 2 // SentencePiece defaults
	modelType := int64(1)    // UNIGRAM is the default
	addDummyPrefix := true
	err := pbFields(data, func(field int, wire int, v uint64, b []byte) error {
		switch field {
		case 1: // SentencePiece
			if wire != 2 {
				return fmt.Errorf("piece field has wire type %d", wire)
			}
			piece, score, typ := "", float32(0), TypeNormal
			err := pbFields(b, func(f, w int, v uint64, b []byte) error {
				switch {
				case f == 1 && w == 2:
					piece = string(b)
				case f == 2 && w == 5:
					score = math.Float32frombits(uint32(v))
				case f == 3 && w == 0:
					typ = int32(v)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("piece %d: %w", len(pieces), err)
			}
			if len(pieces) >= limits.MaxVocab {
				return fmt.Errorf("more than %d pieces", limits.MaxVocab)
			}
			pieces = append(pieces, piece)
			scores = append(scores, score)
			types = append(types, typ)
		case 2: // TrainerSpec
			if wire != 2 {
				return fmt.Errorf("trainer_spec has wire type %d", wire)
			}
			return pbFields(b, func(f, w int, v uint64, b []byte) error {
				if w != 0 {
					return nil
				}
				switch f {
				case 3:
					modelType = int64(v)
				case 40:
					unk = int(int32(v))
				case 41:
					bos = int(int32(v))
				case 42:
					eos = int(int32(v))
				}
				return nil
			})
		case 3: // NormalizerSpec
			if wire != 2 {
				return fmt.Errorf("normalizer_spec has wire type %d", wire)
			}
			return pbFields(b, func(f, w int, v uint64, b []byte) error {
				if f == 3 && w == 0 {
					addDummyPrefix = v != 0
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, fail("%v", err)
	}
	if len(pieces) == 0 {
		return nil, fail("no pieces (not a SentencePiece model?)")
	}
	if modelType != 2 {
		return nil, fail("model type %d is not BPE (2); unigram models are not supported", modelType)
	}
	for _, id := range []*int{&unk, &bos, &eos} {
		if *id >= len(pieces) {
			return nil, fail("special id %d outside vocabulary of %d", *id, len(pieces))
		}
		if *id < 0 {
			*id = -1
		}
	}
	t, err := NewSentencePiece(pieces, scores, types, bos, eos, unk)
	if err != nil {
		return nil, fail("%v", err)
	}
	t.AddSpacePrefix = addDummyPrefix
	return t, nil
}

// pbFields walks the top-level fields of a protobuf message, calling fn
// with the field number, wire type, the scalar value (varint, fixed32,
// fixed64) or the bytes (length-delimited).
func pbFields(data []byte, fn func(field, wire int, v uint64, b []byte) error) error {
	for off := 0; off < len(data); {
		key, n := binary.Uvarint(data[off:])
		if n <= 0 {
			return fmt.Errorf("bad field key at byte %d", off)
		}
		off += n
		field, wire := int(key>>3), int(key&7)
		var v uint64
		var b []byte
		switch wire {
		case 0:
			v, n = binary.Uvarint(data[off:])
			if n <= 0 {
				return fmt.Errorf("bad varint at byte %d", off)
			}
			off += n
		case 1:
			if len(data)-off < 8 {
				return fmt.Errorf("truncated fixed64 at byte %d", off)
			}
			v = binary.LittleEndian.Uint64(data[off:])
			off += 8
		case 2:
			l, n := binary.Uvarint(data[off:])
			if n <= 0 {
				return fmt.Errorf("bad length at byte %d", off)
			}
			off += n
			if l > uint64(len(data)-off) {
				return fmt.Errorf("field %d length %d runs past the end (%d bytes left)", field, l, len(data)-off)
			}
			b = data[off : off+int(l)]
			off += int(l)
		case 5:
			if len(data)-off < 4 {
				return fmt.Errorf("truncated fixed32 at byte %d", off)
			}
			v = uint64(binary.LittleEndian.Uint32(data[off:]))
			off += 4
		default:
			return fmt.Errorf("unsupported wire type %d at byte %d", wire, off)
		}
		if err := fn(field, wire, v, b); err != nil {
			return err
		}
	}
	return nil
}
