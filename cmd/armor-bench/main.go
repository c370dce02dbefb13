// Command armor-bench runs the armor benchmarks.
//
//	armor-bench kernels [--threads N] [--json] [...]
package main

import (
	"fmt"
	"os"

	"github.com/armor-llm/armor/bench"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: armor-bench kernels [--threads N] [--json] [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "kernels":
		err = bench.Kernels(os.Args[2:], os.Stdout, os.Stderr)
	default:
		fmt.Fprintf(os.Stderr, "armor-bench: unknown subcommand %q (want kernels)\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "armor-bench:", err)
		os.Exit(1)
	}
}
