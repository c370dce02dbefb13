#!/usr/bin/env bash
# The speed figures of docs/benchmarks.md, in one run: the Llama-3.2-1B-shape demo
# (dense f16 vs 2:4 vs ARMOR b=128, and llama.cpp's llama-bench on the same
# shape's GGUF when it is built), the kernels table, stories260K and the
# stories110M shape in f16 and f32 against llama.cpp, and the Llama-2-7B
# shape. Outputs go to ${OUT:-bench/out}; each JSON file has one object per
# variant and the table is in the matching .txt file.
#   bench/llamacpp/build.sh   # once, for the llama.cpp columns
#   bench/speed.sh            # ONLY="1b kernels" bench/speed.sh for a subset
#   REPEAT=4 bench/speed.sh   # rounds for the 1B and 7B runs (default 2)
# The "percore" part is the regression row of one thread against llama-bench
# -t 1 on the same GGUF (dense f16, 1B shape, f16 caches on both sides): our
# dense decode per core is the figure that fell behind llama.cpp's in one
# machine state (docs/benchmarks.md, "Decode per core"). bench/load.sh runs
# any part beside a background load, to measure a loaded machine on demand.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/bench/out}
mkdir -p "$out"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
(cd "$root" && go build -o "$bin/" ./cmd/armor-bench)
LB=${ARMOR_LLAMACPP:-${ARMOR_LLAMACPP_DIR:-$HOME/.cache/armor/llamacpp}/llama.cpp/build/bin}
llama=()
[ -x "$LB/llama-bench" ] && llama=(--llamacpp "$LB")
only=${ONLY:-"1b percore kernels stories 7b"}
td=${ARMOR_TESTDATA:-$root/../shared/testdata}
for what in $only; do
	case $what in
	1b) "$bin/armor-bench" speed --synthetic llama-3.2-1b "${llama[@]}" --repeat "${REPEAT:-2}" --json --plot "$out/llama-3.2-1b.svg" >"$out/llama-3.2-1b.json" 2>"$out/llama-3.2-1b.txt" ;;
	percore)
		if [ ${#llama[@]} = 0 ]; then
			echo "percore: llama-bench not found in $LB (bench/llamacpp/build.sh builds it); skipped" >&2
			continue
		fi
		g=${ARMOR_SYNTHETIC:-$HOME/.cache/armor/synthetic}/llama-3.2-1b-dense-f16.gguf
		# The 1b part writes the synthetic GGUF (with --llamacpp only); a
		# short run does it alone.
		[ -f "$g" ] || "$bin/armor-bench" speed --synthetic llama-3.2-1b "${llama[@]}" --gen-tokens 4 --prompt-tokens 8 >/dev/null 2>&1
		"$bin/armor-bench" speed -m "$g" --threads 1 "${llama[@]}" \
			--prompt-tokens 64 --gen-tokens 64 --repeat "${REPEAT:-2}" --kv-type f16 --json >"$out/percore.json" 2>"$out/percore.txt" ;;
	kernels) "$bin/armor-bench" kernels --threads 2 --repeat 5 >"$out/kernels.txt" 2>&1 ;;
	stories)
		# --kv-type f16: the KV cache llama-bench uses by default, so that
		# both sides read the same bytes per token.
		"$bin/armor-bench" speed -m "$td/models/stories260K.gguf" "${llama[@]}" --prompt-tokens 256 --gen-tokens 128 --repeat 3 --kv-type f16 --json >"$out/stories260K.json" 2>"$out/stories260K.txt"
		for dt in f16 f32; do
			"$bin/armor-bench" speed --synthetic stories110m --dtype "$dt" "${llama[@]}" --repeat 3 --kv-type f16 --json >"$out/stories110m-$dt.json" 2>"$out/stories110m-$dt.txt"
		done ;;
	7b) "$bin/armor-bench" speed --synthetic llama-2-7b --repeat "${REPEAT:-2}" --json >"$out/llama-2-7b.json" 2>"$out/llama-2-7b.txt" ;;
	*) echo "unknown part $what (1b, percore, kernels, stories, 7b)" >&2; exit 2 ;;
	esac
	echo "$what done: $out" >&2
done
