#!/usr/bin/env bash
# Runs a command beside a background load, so that a loaded machine can be
# measured on demand (docs/benchmarks.md, "Decode per core"):
#   bench/load.sh cpu -- go run ./cmd/armor-bench speed --synthetic llama-3.2-1b --threads 1
#   bench/load.sh mem -- bench/speed.sh
# Kinds: cpu (an integer spin loop: a busy sibling core), mem (a stream of
# 256 MiB memory writes: a neighbour using memory bandwidth), none. The load
# runs on CPU ${LOAD_CPU:-the last one} when taskset is there; pin the
# measured command elsewhere (taskset -c 0 ...) to keep them apart.
set -euo pipefail
kind=${1:-}
shift || true
[ "${1:-}" = "--" ] && shift
if [ -z "$kind" ] || [ $# -eq 0 ]; then
	echo "usage: bench/load.sh cpu|mem|none -- command [args...]" >&2
	exit 2
fi
cpu=${LOAD_CPU:-$(($(nproc) - 1))}
pin=()
command -v taskset >/dev/null && pin=(taskset -c "$cpu")
case $kind in
cpu) "${pin[@]}" bash -c 'while :; do :; done' & ;;
mem) "${pin[@]}" bash -c 'while :; do dd if=/dev/zero of=/dev/null bs=256M count=64 2>/dev/null; done' & ;;
none) sleep infinity & ;;
*) echo "bench/load.sh: unknown load $kind (cpu, mem or none)" >&2; exit 2 ;;
esac
load=$!
trap 'kill $load 2>/dev/null; pkill -P $load 2>/dev/null || true' EXIT
echo "bench/load.sh: $kind load on CPU $cpu (pid $load)" >&2
"$@"
