// Command armor-bench measures models and kernels: perplexity, speed and
// memory, dense vs 2:4 vs ARMOR.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `armor-bench: measure models and kernels.

With no command it runs the main demo: dense f16 vs plain 2:4 vs ARMOR
(b = 128) on a synthetic model of Llama-3.2-1B's shape (random weights, exact
shapes), in 3 alternating rounds: prefill and decode tokens/s, weight bytes,
peak RSS, ratios to dense and the decode roofline, every round's figures
with the ones taken while the memory bandwidth moved marked, and a one-line
verdict on whether the run was steady enough to trust. The synthetic files
(about 5.5 GB) are written once to the cache; the rounds take a few
minutes.

Usage:
  armor-bench [speed flags]                                 the demo (speed --synthetic llama-3.2-1b --repeat 3 --gen-tokens 64)
  armor-bench speed -m MODEL... | --synthetic SHAPE [--json] [--plot F.svg] [--llamacpp PATH]
  armor-bench ppl -m MODEL --text FILE [--ctx N] [--json]   perplexity (llama-perplexity's method)
  armor-bench kernels [--threads N] [--json]               dense vs 2:4 vs ARMOR kernel speed
  armor-bench convert --synthetic SHAPE [--blocks N] [--json]  conversion time, memory and GFLOP/s
  armor-bench serve -m MODEL | --synthetic SHAPE --clients 1,4,8 [--json] [--llamacpp PATH]
                                                            serving: aggregate tok/s, TTFT, inter-token time

Run 'armor-bench COMMAND -h' for a command's flags.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && args[0] != "-h" && args[0] != "--help" {
		args = append([]string{"demo"}, args...)
	}
	var err error
	switch args[0] {
	case "demo":
		err = speedCommand(args[1:], stdout, stderr, true)
	case "speed":
		err = speedCommand(args[1:], stdout, stderr, false)
	case internalSpeedOne:
		err = speedOne(args[1:], stdout, stderr)
	case "ppl":
		err = pplCommand(args[1:], stdout, stderr)
	case "kernels":
		err = kernelsCommand(args[1:], stdout, stderr)
	case "convert":
		err = convertCommand(args[1:], stdout, stderr)
	case "serve":
		err = serveCommand(args[1:], stdout, stderr)
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
