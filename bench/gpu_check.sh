#!/usr/bin/env bash
# What a lent GPU is for (a `device` machine: one H200, 16 cores, no network): the whole test
# suite on CUDA, the trainer's speed against a plain loop, and what a short search buys there.
#
#   bench/gpu_check.sh tests   # NAS_TEST_DEVICE=cuda pytest, 8 workers  -> test_suite_gpu.txt
#   bench/gpu_check.sh speed   # bench/train_speed.py on all 60,000 images -> train_speed_gpu.txt
#   bench/gpu_check.sh search  # the default 2k search, 3 minutes (SEARCH_S=180), 6 workers
#                              -> search_gpu.txt, search_gpu_study.json
#
# Outputs go to $OUT (the device tool's folder) or /tmp/gpu_check. The machine lacks optuna and
# plotly: wheels in .whl/ (git-ignored through .git/info/exclude, see the device README) are
# installed first, and MNIST travels in .gpudata/MNIST/raw (also excluded, never committed).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
if [ -d .whl ] && ! python3 -c "import optuna" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
[ -d .gpudata ] && export NAS_DATA_DIR=$PWD/.gpudata
header() {
  echo "\$ bench/gpu_check.sh $1  # $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch, optuna; print('torch', torch.__version__, 'optuna', optuna.__version__,
      'cuda', torch.version.cuda, 'cores', __import__('os').cpu_count())"
}
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(tests speed search)
for stage in "${stages[@]}"; do
  case $stage in
    tests)
      { header tests
        NAS_TEST_DEVICE=cuda timeout 200 python3 -m pytest -q -n 8 --dist loadfile \
          --no-loadscope-reorder --durations=15 -p no:cacheprovider 2>&1
        echo "exit $?"; } | tee "$out/test_suite_gpu.txt" ;;
    speed)
      { header speed
        timeout 130 python3 bench/train_speed.py --device cuda --limit 0 --repeats 2 2>&1
        echo "exit $?"; } | tee "$out/train_speed_gpu.txt" ;;
    search)
      # the README's search at the 2k budget, cut to 3 minutes: candidates an hour and FCE an
      # hour on this machine, against the 2-core CPU's (results/cpu-*/auto-2k-*)
      rm -rf "$out/gpu-2k"
      { header search
        timeout $((${SEARCH_S:-180} + 50)) python3 -m nas.cli search --study gpu-2k \
          --max-params 2000 --timeout "${SEARCH_S:-180}" \
          --workers 6 --no-progress --results-dir "$out" 2>&1
        echo "exit $?"; } | tee "$out/search_gpu.txt"
      cp "$out/gpu-2k/study.json" "$out/search_gpu_study.json" 2>/dev/null
      rm -rf "$out/gpu-2k" ;;
    *) echo "unknown stage $stage (tests, speed, search)"; exit 2 ;;
  esac
done
