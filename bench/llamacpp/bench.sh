#!/usr/bin/env bash
# llama.cpp's speed on stories260K for comparison with armor-bench (figures are
# reported, not committed as goldens). Usage: bench/llamacpp/bench.sh [threads]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TD="${ARMOR_TESTDATA:-$HERE/../../../shared/testdata}"
BIN="$("$HERE/build.sh" | tail -n 1)"
# The model's context is 512, so prompt 256 + generation 128 fits.
exec "$BIN/llama-bench" -m "$TD/models/stories260K.gguf" -t "${1:-2}" -p 256 -n 128 -r 5 -o md
