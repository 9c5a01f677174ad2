#!/usr/bin/env bash
# Reproduce the shipped mini world model (checkpoints/mini/): fixed step count and seed, not a time limit.
# About 40 minutes on an idle 2-core CPU (measured numbers: /tmp/notes/issue-6.md, checkpoints/mini/training.json).
# The output folder must not hold a model already (nothing is ever overwritten): pass another one to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-checkpoints/mini}"
exec .venv/bin/svd-lab mini train --steps 6000 --seed 0 --out "$OUT" --no-progress
