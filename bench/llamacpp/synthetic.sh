#!/usr/bin/env bash
# Greedy continuations by llama.cpp of small synthetic GGUF models (llama,
# qwen2, qwen3: random weights, fixed seed, written by our own GGUF writer),
# for runtime/synthetic_gguf_test.go. Needs build.sh's binaries.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${ARMOR_LLAMACPP_DIR:-$HOME/.cache/armor/llamacpp}/llama.cpp/build/bin"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go run ./bench/llamacpp/synthgguf "$tmp" >/dev/null
out=testdata/llamacpp/synthetic_greedy.json
{
  echo "{"
  first=1
  for m in tiny-llama tiny-qwen2 tiny-qwen3; do
    [ $first = 1 ] || echo ","
    first=0
    printf '"%s": ' "$m"
    "$BIN/armor-oracle" -m "$tmp/$m.gguf" -n 24 -t 1 -c 128 -k 2 "Hello world" 2>/dev/null
  done
  echo "}"
} > "$out.tmp"
python3 -c "import json; d=json.loads(open('$out.tmp','rb').read().decode('utf-8','replace')); [(v.pop('top_after_prompt',None), v.pop('text',None)) for v in d.values()]; json.dump(d, open('$out','w'), indent=1)"
rm "$out.tmp"
echo "wrote $out"
