package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/armor-llm/armor/bench"
	"github.com/armor-llm/armor/kernels"
)

const kernelsHelp = `armor-bench kernels: dense vs 2:4 vs ARMOR product speed on random matrices.

For each shape and dtype it times the dense, 2:4 and ARMOR GEMV (one token)
and GEMM (--batch tokens), in rounds that time the kinds one after another,
with a memory-read probe beside the dense GEMV. Weights are in huge-page
memory and cycled through copies (--working-set-mb) so they come from
memory, not from the caches. ×dense is the median over rounds of the ratio
to dense in the same round.

  armor-bench kernels
  armor-bench kernels --shapes 4096x11008 --ops gemv --dtypes f16 --repeat 5

Flags:
`

func kernelsCommand(args []string, stdout, stderr io.Writer) error {
	d := bench.DefaultKernelOptions()
	o := d
	fs := flag.NewFlagSet("armor-bench kernels", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, kernelsHelp); fs.PrintDefaults() }
	fs.IntVar(&o.Threads, "threads", d.Threads, "threads used by the kernels")
	fs.BoolVar(&o.JSON, "json", false, "print one JSON array instead of a table")
	fs.IntVar(&o.Batch, "batch", d.Batch, "tokens of the GEMM cases")
	fs.IntVar(&o.Block, "block", d.Block, "block size of the ARMOR transforms")
	fs.DurationVar(&o.MinTime, "min-time", d.MinTime, "minimum time per case")
	shapes := fs.String("shapes", "4096x4096,8192x4096,4096x11008,11008x4096", "d_out x d_in shapes, comma separated")
	dtypes := fs.String("dtypes", "f32,f16", "weight dtypes (f32, f16, bf16), comma separated")
	ops := fs.String("ops", "gemv,gemm", "operations (gemv, gemm), comma separated")
	fs.IntVar(&o.Repeat, "repeat", d.Repeat, "rounds: each times every kind of a case in turn; times are the fastest round's, ×dense the median of the rounds' ratios")
	ws := fs.Int("working-set-mb", int(d.WorkingSet>>20), "cycle through copies of each matrix totalling at least this many MiB, so that weights come from memory and not from the L3 cache")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("kernels: unexpected argument %q", fs.Arg(0))
	}
	if o.Threads < 1 || o.Batch < 1 || o.Block < 1 || o.Repeat < 1 || *ws < 0 {
		return errors.New("kernels: --threads, --batch, --block and --repeat must be at least 1, --working-set-mb at least 0")
	}
	var err error
	if o.Shapes, err = bench.ParseShapes(*shapes); err != nil {
		return fmt.Errorf("kernels: --shapes: %w", err)
	}
	o.DTypes = nil
	for _, s := range strings.Split(*dtypes, ",") {
		dt, err := kernels.ParseDType(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("kernels: --dtypes: %w", err)
		}
		o.DTypes = append(o.DTypes, dt)
	}
	o.Ops = nil
	for _, op := range strings.Split(*ops, ",") {
		op = strings.TrimSpace(op)
		if op != "gemv" && op != "gemm" {
			return fmt.Errorf("kernels: --ops: unknown operation %q (gemv or gemm)", op)
		}
		o.Ops = append(o.Ops, op)
	}
	o.WorkingSet = int64(*ws) << 20
	return bench.Kernels(o, stdout, stderr)
}
