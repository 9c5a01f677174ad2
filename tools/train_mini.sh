#!/usr/bin/env bash
# Reproduce the shipped mini world model (checkpoints/mini/): fixed step count and seed, not a time limit.
# Two threads (this CPU's cores): run it on an otherwise idle machine -- with other work competing for the cores,
# torch's spinning OpenMP threads make it many times slower (then use --threads 1).
# Time on this 2-core CPU (measured numbers: /tmp/notes/issue-6.md, checkpoints/mini/training.json).
# The output folder must not hold a model already (nothing is ever overwritten): pass another one to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-checkpoints/mini}"
exec .venv/bin/svd-lab mini train --steps 16000 --seed 0 --threads 2 --snapshot-every 2000 --checkpoint-every 500 \
    --out "$OUT" --no-progress
