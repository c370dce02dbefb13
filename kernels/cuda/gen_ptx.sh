#!/bin/sh
# Regenerates kernels_sm80.ptx and kernels_sm90.ptx from kernels.cu.
# Uses nvcc when present (CUDA toolkit), else clang (any LLVM with the NVPTX
# target, e.g. Debian's clang-16; no CUDA headers or libraries needed, the
# source avoids them). PTX is JIT-compiled by the driver at load, so the sm_80
# file also runs on newer GPUs; the sm_90 one lets the JIT use Hopper's ISA.
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-}
if [ -z "$CLANG" ]; then
  for c in clang-18 clang-17 clang-16 clang; do
    if command -v "$c" >/dev/null 2>&1; then CLANG=$c; break; fi
  done
fi
for arch in 80 90; do
  out=kernels_sm$arch.ptx
  # Without a CUDA installation clang does not know which PTX ISA it may
  # use: 7.0 came with sm_80 (CUDA 11.0), 7.8 with sm_90 (CUDA 11.8).
  if [ $arch = 80 ]; then ptx=ptx70; else ptx=ptx78; fi
  if command -v nvcc >/dev/null 2>&1 && [ -z "${FORCE_CLANG:-}" ]; then
    nvcc -ptx -arch=compute_$arch -O3 -o "$out" kernels.cu
  elif [ -n "$CLANG" ]; then
    "$CLANG" -x cuda --cuda-device-only --cuda-gpu-arch=sm_$arch -nocudainc -nocudalib \
      -Xclang -target-feature -Xclang +$ptx \
      -O3 -ffp-contract=fast -S -o "$out" kernels.cu
  else
    echo "gen_ptx.sh: neither nvcc nor clang found" >&2
    exit 1
  fi
  echo "wrote $out"
done
