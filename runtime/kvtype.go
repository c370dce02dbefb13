package runtime

import "errors"

// KVType is the element type of the KV cache as a flag value: "f32" (the
// default) or "f16" (Transformer.KVF16).
type KVType struct{ F16 bool }

// KVTypeHelp is the help text of a --kv-type flag.
const KVTypeHelp = "KV cache element type: f32 (the default here), or f16 as llama.cpp keeps it by default (half the cache memory and attention reads; keys and values rounded to f16)"

func (k *KVType) String() string {
	if k != nil && k.F16 {
		return "f16"
	}
	return "f32"
}

// Set parses a flag value. Its error leaves out the flag and the value,
// which the flag package prints.
func (k *KVType) Set(s string) error {
	switch s {
	case "f32":
		k.F16 = false
	case "f16":
		k.F16 = true
	default:
		return errors.New("use f32 or f16")
	}
	return nil
}
