// Package portcost times AVX-512 loop bodies on operands in registers and
// L1, so that a core's execution ports, not memory, set their speed: what
// an FMA costs alone and beside a permute or an f16 conversion, and the
// inner steps of the dense and 2:4 small-batch GEMM kernels per
// dense-equivalent multiply-add. It is a measuring tool for kernel design
// (docs/benchmarks.md, "Serving"), with no API:
//
//	taskset -c 0 go test ./bench/portcost -bench . -count 3
//
// The assembly is written by gen_amd64.py.
package portcost

//go:generate python3 -B gen_amd64.py
