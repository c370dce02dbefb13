#!/usr/bin/env bash
# What cutting --sequential into block-range shards costs in quality, on
# stories260K (real trained weights; docs/deploy/README.md explains the cut):
# the same conversion as one process without --sequential, as one sequential
# process, and as N sequential shards merged, for each N in SHARDS; each
# evaluated with armor-bench ppl as bench/quality.sh does. Prints one markdown
# table.
#
#   bench/seqshard.sh                        # armor-fast, b = 8, N = 2 3 5
#   METHOD=armor-fast-h B=4 SHARDS="2" bench/seqshard.sh
#
# Environment: ARMOR_TESTDATA (default ../shared/testdata), OUT (work folder,
# default a temporary one), METHOD, B, SHARDS, THREADS, SEED, CALIB_TOKENS
# (default 40960).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
script=seqshard.sh
. "$root/bench/stories260k.sh"
method=${METHOD:-armor-fast}
b=${B:-8}
shards=${SHARDS:-2 3 5}
for n in $shards; do
	[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "seqshard.sh: SHARDS: $n is not a number of shards" >&2; exit 2; }
done
setup_run

common=(-m "$src" --method "$method" --block-size "$b" --calib "$train" --calib-tokens "$ctoks"
	--calib-seq 256 --dtype f16 --threads "$threads" --seed "$seed")
run() { # run LOG CMD...: a step, its output in LOG, its tail on failure
	local log=$1
	shift
	"$@" >"$log" 2>&1 || { echo "seqshard.sh: failed: $*" >&2; tail -5 "$log" >&2; exit 1; }
}
ppl() { eval_ppl "$bin" "$1" "$threads" | perplexity_of; }

table="| calibration | shards | perplexity | conversion wall (all shards, one after another) |
| --- | ---: | ---: | ---: |"
row() { # row LABEL N FILE: FILE's perplexity and the wall time since t0
	local secs
	secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	table+=$'\n'$(printf '| %s | %s | %.2f | %s s |' "$1" "$2" "$(ppl "$3")" "$secs")
	echo "$table" | tail -1 >&2
}

echo "seqshard.sh: one pass" >&2
t0=$(date +%s.%N)
run "$out/one.log" "$bin/armor-convert" "${common[@]}" -o "$out/one.armor"
row "one pass (no --sequential)" 1 "$out/one.armor"

echo "seqshard.sh: sequential" >&2
t0=$(date +%s.%N)
run "$out/seq.log" "$bin/armor-convert" "${common[@]}" --sequential -o "$out/seq.armor"
row "--sequential" 1 "$out/seq.armor"

for n in $shards; do
	echo "seqshard.sh: sequential, $n shards" >&2
	parts=$out/parts-$n
	t0=$(date +%s.%N)
	for ((i = 0; i < n; i++)); do
		run "$out/shard-$n-$i.log" "$bin/armor-convert" "${common[@]}" --sequential --shard "$i/$n" --parts "$parts"
	done
	run "$out/merge-$n.log" "$bin/armor-convert" merge "${common[@]}" --sequential --shards "$n" --parts "$parts" \
		-o "$out/seq-$n.armor"
	row "--sequential, block-range shards" "$n" "$out/seq-$n.armor"
done

echo
echo "stories260K, $method b = $b, calibration: $ctoks tokens of $(basename "$train") in sequences of 256 (seed $seed);"
echo "perplexity: armor-bench ppl --ctx 256 on the first 200,000 bytes of $(basename "$val"); values in f16."
echo
echo "$table"
