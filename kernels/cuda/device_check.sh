#!/bin/sh
# The NVIDIA backend's device check, prepared for one `run` call on a lent
# GPU (about 5 minutes of a 15-minute budget, leaving time to rerun once).
#
# 1. Here (no GPU needed), from the repository root:
#      kernels/cuda/device_check.sh build
#    builds the test binaries without cgo into bin/ (ignored by git; the
#    binaries are linked dynamically against libc only, for dlopen).
# 2. On the device (the `run` tool), from the repository root:
#      command: sh kernels/cuda/device_check.sh run
#      carry:   ["bin"]      timeout_s: 420
#    It lists the CUDA libraries it can see, then runs the GPU tests
#    (device results vs the CPU path within f16 tolerance; they fail rather
#    than skip: ARMOR_REQUIRE_GPU=1), then prints the timing tables
#    (cuSPARSELt 2:4 vs cuBLAS dense f16 for 4096×4096 and 11008×4096 at 16,
#    512 and 4096 columns; Llama-3.2-1B linears dense vs ARMOR, prefill 512
#    and decode). Logs are also written to $OUT when set.
set -u
mode=${1:-run}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
case $mode in
build)
  set -e
  mkdir -p bin
  CGO_ENABLED=0 go test -c -o bin/cuda.test ./kernels/cuda
  CGO_ENABLED=0 go test -c -o bin/runtime.test ./runtime
  ls -la bin
  ;;
run)
  out=${OUT:-/tmp}
  log=$out/cuda_check.log
  {
    echo "== device"; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1
    echo "== libraries seen (the Go side searches these places itself; see Search)"
    for d in /usr/lib/x86_64-linux-gnu /usr/local/nvidia/lib64 /usr/local/cuda*/lib64 \
             /usr/local/cuda*/targets/*/lib /opt/*/.venv/lib/python3*/site-packages/nvidia/*/lib \
             /usr/local/lib/python3*/dist-packages/nvidia/*/lib; do
      ls "$d" 2>/dev/null | grep -E '^lib(cuda|cublas|cublasLt|cusparseLt|cudart)\.so' | sed "s|^|  $d/|"
    done
    echo "== PTX: the committed (clang-made) PTX through NVIDIA's assembler, and the nvcc branch of kernels.cu"
    if command -v ptxas >/dev/null 2>&1; then
      ptxas -arch=sm_80 kernels/cuda/kernels_sm80.ptx -o /tmp/k80.cubin && echo "  ptxas sm_80: ok"
      ptxas -arch=sm_90 kernels/cuda/kernels_sm90.ptx -o /tmp/k90.cubin && echo "  ptxas sm_90: ok"
    else
      echo "  ptxas not found"
    fi
    if command -v nvcc >/dev/null 2>&1; then
      nvcc -ptx -arch=compute_90 -O3 -o /tmp/kernels_nvcc.ptx kernels/cuda/kernels.cu && echo "  nvcc -ptx: ok"
    else
      echo "  nvcc not found"
    fi
    echo "== GPU tests (kernels/cuda, runtime)"
    export ARMOR_REQUIRE_GPU=1 ARMOR_CUDA_BENCH=1
    (cd kernels/cuda && timeout 360 ../../bin/cuda.test -test.v -test.count=1 -test.timeout 350s \
        -test.run 'GPUDense|GPUArmor|GPUKernels|LoadWrong') 2>&1 | grep -vE '^=== (RUN|PAUSE|CONT)'
    (cd runtime && timeout 60 ../bin/runtime.test -test.v -test.count=1 -test.run 'CUDA') 2>&1 | grep -vE '^=== (RUN|PAUSE|CONT)'
    echo "== timings (wall clock around cuCtxSynchronize, mean of repeated calls after warm-up)"
    (cd kernels/cuda && timeout 240 ../../bin/cuda.test -test.count=1 -test.timeout 230s \
        -test.run 'GPUGemmTable|GPULlamaLinears') 2>&1
  } 2>&1 | tee "$log"
  ;;
*)
  echo "usage: $0 build|run" >&2
  exit 2
  ;;
esac
