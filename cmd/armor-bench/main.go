// Command armor-bench measures models and kernels: perplexity, speed and
// memory, dense vs 2:4 vs ARMOR.
package main

import (
	"fmt"

	"github.com/armor-llm/armor/bench"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `armor-bench: measure models and kernels.

Usage:
  armor-bench ppl -m MODEL --text FILE [--ctx N] [--json]   perplexity (llama-perplexity's method)
  armor-bench kernels [--threads N] [--json]               dense vs 2:4 vs ARMOR kernel speed

Run 'armor-bench COMMAND -h' for a command's flags.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "ppl":
		err = pplCommand(args[1:], stdout, stderr)
	case "kernels":
		err = bench.Kernels(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "armor-bench: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if err == errUsage {
			return 2
		}
		fmt.Fprintln(stderr, "armor-bench:", err)
		return 1
	}
	return 0
}
