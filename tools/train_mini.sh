#!/usr/bin/env bash
# Reproduce the shipped mini world model (checkpoints/mini/): fixed step count and seed, not a time limit.
# One thread: reproducible across machines with different core counts (and faster on a busy shared CPU).
# Time on this 2-core CPU (measured numbers: /tmp/notes/issue-6.md, checkpoints/mini/training.json).
# The output folder must not hold a model already (nothing is ever overwritten): pass another one to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-checkpoints/mini}"
exec .venv/bin/svd-lab mini train --steps 12000 --seed 0 --threads 1 --snapshot-every 2000 --checkpoint-every 500 \
    --out "$OUT" --no-progress
