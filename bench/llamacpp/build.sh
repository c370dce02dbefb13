#!/usr/bin/env bash
# Builds llama.cpp as an external ORACLE for armor's golden tests. It is not a
# dependency of the Go build: nothing in the module links or calls it. The
# source comes from the npm package node-llama-cpp, which ships llama.cpp as a
# git bundle (the only registries this project may reach are the Go module
# proxy, Debian and npm).
#
# Usage: bench/llamacpp/build.sh        (idempotent: skips what is already built)
# Env:   ARMOR_LLAMACPP_DIR  cache dir (default $HOME/.cache/armor/llamacpp)
#        ARMOR_LLAMACPP_JOBS parallel jobs (default 2)
# Prints the directory holding the binaries on its last line.
set -euo pipefail

NLC_VERSION=3.21.1
DIR="${ARMOR_LLAMACPP_DIR:-$HOME/.cache/armor/llamacpp}"
JOBS="${ARMOR_LLAMACPP_JOBS:-2}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$DIR/llama.cpp"
BUILD="$SRC/build"
BIN="$BUILD/bin"
TARGETS=(llama-completion llama-simple llama-perplexity llama-bench llama-tokenize llama-server)

mkdir -p "$DIR"
cd "$DIR"

# 1. node-llama-cpp from npm, scripts off: its postinstall would try to fetch
#    prebuilt binaries or build its Node addon, neither of which we want.
if [ ! -f node_modules/node-llama-cpp/llama/gitRelease.bundle ]; then
  [ -f package.json ] || echo '{"name":"armor-llamacpp-oracle","private":true}' > package.json
  npm i -E --ignore-scripts --no-audit --no-fund "node-llama-cpp@$NLC_VERSION" >&2
fi

# 2. The bundled llama.cpp source (a single squashed commit in a git bundle).
if [ ! -d "$SRC/.git" ]; then
  git clone -q node_modules/node-llama-cpp/llama/gitRelease.bundle "$SRC" >&2
fi

# 3. cmake from Debian if missing.
if ! command -v cmake >/dev/null; then
  apt-get update >&2
  apt-get install -y cmake >&2
fi

# 4. CPU-only Release build of the tools we need, plus our oracle program.
#    llama-server (without its web UI) is the baseline of armor-bench serve.
need_build=0
for t in "${TARGETS[@]}"; do [ -x "$BIN/$t" ] || need_build=1; done
if [ "$need_build" = 1 ]; then
  start=$(date +%s)
  cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON \
    -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_OPENCL=OFF \
    -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF >&2
  nice cmake --build "$BUILD" --config Release -j "$JOBS" --target "${TARGETS[@]}" >&2
  echo "llama.cpp build took $(( $(date +%s) - start )) s" >&2
fi

# 5. armor-oracle: a ~150-line program against libllama that prints the greedy
#    token ids and the top-k logits, which no stock tool prints exactly.
if [ ! -x "$BIN/armor-oracle" ] || [ "$HERE/oracle.cpp" -nt "$BIN/armor-oracle" ]; then
  libs=$(find "$BUILD/src" "$BUILD/ggml/src" -maxdepth 1 -name 'lib*.a' | sort)
  nice g++ -O2 -std=c++17 -I"$SRC/include" -I"$SRC/ggml/include" \
    "$HERE/oracle.cpp" -o "$BIN/armor-oracle" \
    "$BUILD/src/libllama.a" "$BUILD/ggml/src/libggml.a" "$BUILD/ggml/src/libggml-cpu.a" \
    "$BUILD/ggml/src/libggml-base.a" -fopenmp -lpthread -ldl -lm >&2
fi

echo "$BIN"
