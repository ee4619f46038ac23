#!/usr/bin/env bash
# The one GPU check of imbstat's CUDA paths (issue: the CUDA paths, run and measured on a real GPU).
#
#   bash benchmarks/gpu_check.sh prepare       # here, once: wheels and the COCO mini file, in ignored folders
#   bash benchmarks/gpu_check.sh run OUT       # on the device machine, in one call carrying .whl and .device-data
#   bash benchmarks/gpu_check.sh dry-run OUT   # anywhere: the same steps on the CPU on a few images
#
# The device machine's python3 (3.12) has torch, triton, numba, pandas, pyarrow, typer, rich, matplotlib,
# scipy, pytest and PyYAML, not msgspec, imagesize, defusedxml, pycocotools or POT: `prepare` downloads
# those as cp312 wheels. `run` installs them, builds the COCO-train-sized input from the mini file, runs
# the CUDA tests (dense and fused against the sparse path), then bench_gpu for dense and fused at a few
# batch sizes, each checked field by field against the sparse CPU path; OUT gets the logs and gpu.md,
# the RESULTS.md section (`python -m benchmarks.bench_gpu --insert OUT/gpu.md` puts it in place here).
# The device tool call, from the repository root:
#   run(command="bash benchmarks/gpu_check.sh run $OUT", carry=[".whl", ".device-data"], timeout_s=540)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: gpu_check.sh prepare | run OUT | dry-run OUT}
out=${2:-/tmp/imbstat-gpu-check}
mini=coco2017_train_mini.json
batch_sizes=${BATCH_SIZES:-32,128,512}
export PYTHONUNBUFFERED=1

tests() {  # the CUDA tests; on a machine without CUDA they all skip, which the dry run accepts
  python3 -m pytest -q -p no:cacheprovider -m cuda tests/test_anchors.py tests/test_anchor_stats.py 2>&1 \
    | tee "$out/pytest.log"
  local status=${PIPESTATUS[0]}
  [ "$status" -eq 0 ] || [ "$status" -eq 5 ] || return "$status"  # 5: every test skipped or deselected
}

case $mode in
prepare)
  for folder in /.whl/ /.device-data/; do
    grep -qx "$folder" .git/info/exclude 2>/dev/null || echo "$folder" >>.git/info/exclude
  done
  mkdir -p .whl .device-data
  cp "../shared/data/coco/$mini" .device-data/
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
    -d .whl msgspec imagesize defusedxml pycocotools POT
  ls .whl .device-data
  ;;
run)
  mkdir -p "$out"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/device.txt"
  python3 -m pip install -q --no-index --no-deps --target /tmp/imbstat-site .whl/*.whl
  export PYTHONPATH="/tmp/imbstat-site:$PWD"
  python3 -m benchmarks.make_inputs --data .device-data --sizes train 2>&1 | tail -3
  tests
  python3 -m benchmarks.bench_gpu --device cuda --batch-sizes "$batch_sizes" --section-to "$out/gpu.md" 2>&1 \
    | tee "$out/bench.log"
  ;;
dry-run)
  # What `run` does, on the CPU and on the mini file itself (no COCO-train-sized input to build), so that
  # the one GPU call does not fail on a typo. Needs imbstat installed, or run from a checkout with its deps.
  mkdir -p "$out"
  data=.device-data/$mini
  [ -f "$data" ] || data=../shared/data/coco/$mini
  tests
  python3 -m benchmarks.bench_gpu --device cpu --input "$data" --images 16 --batch-sizes 8,16 \
    --section-to "$out/gpu.md" 2>&1 | tee "$out/bench.log"
  grep -q "images/s" "$out/gpu.md"
  echo "dry run passed: $out/gpu.md"
  ;;
*)
  echo "unknown mode $mode; expected prepare, run or dry-run" >&2
  exit 2
  ;;
esac
