#!/usr/bin/env bash
# The GPU check on a lent GPU (the device tool): full-size SVD and SVD-XT with random weights at 576x1024, in each
# memory mode, timed; offload vs resident bit for bit; forward chunking and decoding_t measured. One command, about
# 2-4 minutes on an H100, so a 15-minute lease leaves room to run it twice. See benchmarks/gpu_check.py.
#
# The lent machine has its own torch (2.11), transformers and huggingface_hub, no diffusers and no network. Here,
# once, fetch the two wheels it lacks (pure Python, about 4 MB) into .whl/ (ignored by git):
#     bash benchmarks/gpu_check.sh --prepare
# Then run it there, carrying them:  device run  command: "bash benchmarks/gpu_check.sh"  carry: [".whl"]
# The JSON and the table land in $OUT (the device tool's returned folder), else in benchmarks/; copy them into
# benchmarks/ and commit them with the card's name in the message.
#
# Rehearsed on the CPU by tests/test_gpu_check.py:  python benchmarks/gpu_check.py --profile tiny --device cpu ...
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--prepare" ]; then
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  .venv/bin/python -m pip download -q --no-deps --only-binary=:all: -d .whl \
    "diffusers==$(.venv/bin/python -c 'import diffusers; print(diffusers.__version__)')" \
    "importlib_metadata==$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("importlib_metadata"))')"
  ls -l .whl
  exit 0
fi
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
export PYTHONUNBUFFERED=1
timeout 230 python3 benchmarks/gpu_check.py --out "${OUT:-benchmarks}" "$@"
# Wan's full-size transformers (random weights, bf16, a few guided steps at 21 frames): issue 29's GPU rows
timeout 200 python3 benchmarks/bench_wan.py --gpu-only | tee "${OUT:-benchmarks}/bench_wan_gpu.md"
