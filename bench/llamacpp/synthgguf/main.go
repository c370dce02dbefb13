// Command synthgguf writes the small synthetic GGUF models (random weights,
// fixed seeds) whose greedy continuations llama.cpp computes in
// bench/llamacpp/synthetic.sh; runtime tests rebuild the same files and
// compare against those goldens.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/armor-llm/armor/model/synth"
	"github.com/armor-llm/armor/model/tensor"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: synthgguf OUTDIR")
		os.Exit(2)
	}
	for name, c := range synth.TinyGGUFConfigs() {
		p := filepath.Join(os.Args[1], name+".gguf")
		if err := synth.WriteGGUF(p, c, tensor.F32, 11); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(p)
	}
}
