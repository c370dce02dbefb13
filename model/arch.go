package model

import (
	"fmt"
	"slices"
	"strings"
)

// Arch holds what sets one architecture family apart. The loaders turn it
// into Config fields, and the forward pass reads only those fields, never
// the family's name: a new family that differs only in these traits is one
// more row of archs.
type Arch struct {
	Name string
	// HFTypes are the Hugging Face model_type values read as this family.
	HFTypes []string
	// QKBias: q, k and v always have a bias (Qwen2). Families without it
	// take attention_bias from a Hugging Face config.
	QKBias bool
	// QKNorm: per-head RMSNorm of q and k before RoPE (Qwen3).
	QKNorm bool
	// GGUFRopeHalves: in GGUF files of this family q and k pair dimensions
	// i and i+d/2 for RoPE (llama.cpp's NEOX mode). GGUF llama files
	// instead pair adjacent dimensions: their q/k rows were permuted on
	// conversion. Hugging Face checkpoints always pair halves.
	GGUFRopeHalves bool
}

// archs is the table of supported families.
var archs = []Arch{
	{Name: "llama", HFTypes: []string{"llama", "mistral"}},
	{Name: "qwen2", HFTypes: []string{"qwen2"}, QKBias: true, GGUFRopeHalves: true},
	{Name: "qwen3", HFTypes: []string{"qwen3"}, QKNorm: true, GGUFRopeHalves: true},
}

// LookupArch returns the family called name (Config.Arch, GGUF's
// general.architecture).
func LookupArch(name string) (*Arch, error) {
	for i := range archs {
		if archs[i].Name == name {
			return &archs[i], nil
		}
	}
	names := make([]string, len(archs))
	for i, a := range archs {
		names[i] = a.Name
	}
	return nil, fmt.Errorf("unknown architecture %q (supported: %s)", name, strings.Join(names, ", "))
}

// archForHF returns the family of a Hugging Face model_type.
func archForHF(modelType string) (*Arch, error) {
	var types []string
	for i := range archs {
		if slices.Contains(archs[i].HFTypes, modelType) {
			return &archs[i], nil
		}
		types = append(types, archs[i].HFTypes...)
	}
	return nil, fmt.Errorf("unknown model_type %q (supported: %s)", modelType, strings.Join(types, ", "))
}
