#!/usr/bin/env bash
# Quality of every conversion method on stories260K (real trained weights):
# converts the model with dense, the 2:4 baselines and both ARMOR variants at
# b = 4, 8, 16, evaluates each with armor-bench ppl (llama-perplexity's
# method) and prints one markdown table.
#
#   bench/quality.sh                 # from the repository root
#   ITERS=500 bench/quality.sh       # fewer reference-ARMOR iterations (default 2000)
#   ONLY="armor-fast:8 sparsegpt" bench/quality.sh   # a subset of rows
#
# Environment: ARMOR_TESTDATA (default ../shared/testdata), OUT (work folder,
# default a temporary one), ITERS, DTYPE (default f16), THREADS, SEED,
# CALIB_TOKENS (default 40960), EXTRA (more armor-convert flags).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
script=quality.sh
. "$root/bench/stories260k.sh"
iters=${ITERS:-2000}
dtype=${DTYPE:-f16}
setup_run

rows=("dense:" "magnitude:" "wanda:" "nowag-p:" "sparsegpt:"
	"armor:4" "armor:8" "armor:16" "armor-fast:4" "armor-fast:8" "armor-fast:16"
	"armor-fast-h:4" "armor-fast-h:8" "armor-fast-h:16")
if [[ -n ${ONLY:-} ]]; then
	read -r -a rows <<<"$ONLY"
fi

# field KEY FILE: a top-level number of armor-convert's indented JSON report.
field() { sed -n "s/^ \"$1\": \([-0-9.eE+]*\),\{0,1\}$/\1/p" "$2" | head -1; }

table="| method | b | perplexity | weight bytes | wrapper overhead | proxy loss / NoWag-P | conversion time |
| --- | --- | --- | --- | --- | --- | --- |"
for row in "${rows[@]}"; do
	method=${row%%:*}
	b=${row#*:}
	[[ $row == *:* ]] || b=
	name=$method${b:+-b$b}
	args=(-m "$src" -o "$out/$name.armor" --method "$method" --calib "$train" --calib-tokens "$ctoks"
		--calib-seq 256 --dtype "$dtype" --threads "$threads" --seed "$seed" --json)
	[[ -n $b ]] && args+=(--block-size "$b")
	[[ $method == armor ]] && args+=(--iters "$iters")
	# shellcheck disable=SC2206
	[[ -n ${EXTRA:-} ]] && args+=($EXTRA)
	echo "quality.sh: converting $name" >&2
	"$bin/armor-convert" "${args[@]}" >"$out/$name.json" 2>"$out/$name.log" ||
		{ echo "quality.sh: $name failed:" >&2; tail -5 "$out/$name.log" >&2; exit 1; }
	echo "quality.sh: evaluating $name" >&2
	eval_ppl "$bin" "$out/$name.armor" "$threads" >"$out/$name.ppl.json" 2>>"$out/$name.log"
	ppl=$(perplexity_of <"$out/$name.ppl.json")
	bytes=$(field weight_bytes "$out/$name.json")
	ovh=$(field wrapper_overhead "$out/$name.json")
	rel=$(field mean_rel_nowag_p "$out/$name.json")
	secs=$(field seconds "$out/$name.json")
	label=$method
	[[ $method == armor ]] && label="armor ($iters it)"
	table+=$'\n'$(printf '| %s | %s | %.2f | %d | %.1f %% | %.3f | %.1f s |' "$label" "${b:--}" "$ppl" "$bytes" \
		"$(awk "BEGIN{print 100*$ovh}")" "$rel" "$secs")
	echo "$table" | tail -1 >&2
done
echo
echo "stories260K, calibration: $ctoks tokens of $(basename "$train") in sequences of 256 with BOS (seed $seed);"
echo "perplexity: armor-bench ppl --ctx 256 on the first 200,000 bytes of $(basename "$val"); values in $dtype."
echo
echo "$table"
