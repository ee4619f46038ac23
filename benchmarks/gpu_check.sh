#!/usr/bin/env bash
# Check imbstat's CUDA paths on a machine with an NVIDIA GPU and a CUDA build of torch (triton too,
# for the fused path): the CUDA tests (dense and fused against the sparse path), then bench_gpu's
# images/s for dense and fused at a few batch sizes, each result checked field by field against the
# sparse CPU path. From the repository root:
#
#   bash benchmarks/gpu_check.sh prepare       # once, with network: wheels and the COCO mini file
#   bash benchmarks/gpu_check.sh run OUTDIR    # on the GPU machine (no network needed)
#   bash benchmarks/gpu_check.sh dry-run OUTDIR  # anywhere: the same steps on the CPU on a few images
#
# `prepare` downloads wheels of the dependencies a CUDA PyTorch environment usually lacks (msgspec,
# imagesize, defusedxml, pycocotools, POT; for CPython $PYTHON_VERSION, default 3.12) into .whl/ and
# copies coco2017_train_mini.json from $COCO_DIR (default ../shared/data/coco) into .device-data/;
# both folders are git-ignored. `run` installs those wheels beside the checkout (skipped when .whl/
# is absent and imbstat's dependencies are installed), builds the COCO-train-sized input from the
# mini file, runs the CUDA tests and the benchmark. OUTDIR gets device.txt, pytest.log, bench.log
# and gpu.md, the benchmark's section of benchmarks/RESULTS.md:
#   python -m benchmarks.bench_gpu --insert OUTDIR/gpu.md   # puts it in place
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: gpu_check.sh prepare | run OUTDIR | dry-run OUTDIR}
coco_dir=${COCO_DIR:-../shared/data/coco}
python_version=${PYTHON_VERSION:-3.12}
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
  cp "$coco_dir/$mini" .device-data/
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$python_version" --implementation cp \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
    -d .whl msgspec imagesize defusedxml pycocotools POT
  ls .whl .device-data
  ;;
run)
  mkdir -p "$out"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/device.txt"
  if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/imbstat-site .whl/*.whl
    export PYTHONPATH="/tmp/imbstat-site:$PWD"
  else
    export PYTHONPATH="$PWD"
  fi
  data_dir=.device-data
  [ -f "$data_dir/$mini" ] || data_dir=$coco_dir
  python3 -m benchmarks.make_inputs --data "$data_dir" --sizes train 2>&1 | tail -3
  tests
  python3 -m benchmarks.bench_gpu --device cuda --batch-sizes "$batch_sizes" --section-to "$out/gpu.md" 2>&1 \
    | tee "$out/bench.log"
  ;;
dry-run)
  # What `run` does, on the CPU and on the mini file itself (no COCO-train-sized input to build), to
  # catch a broken step before the GPU run. Needs imbstat's dependencies installed.
  mkdir -p "$out"
  data=.device-data/$mini
  [ -f "$data" ] || data=$coco_dir/$mini
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
