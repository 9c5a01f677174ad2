#!/usr/bin/env bash
# Reproduce the shipped small SVD (checkpoints/small/): the recipe's fixed step counts and seed 0, in float32.
# Two threads (this CPU's cores): run it on an otherwise idle machine. Needs the training extra (scikit-image):
# `make setup` installs it. Time on this 2-core CPU: see checkpoints/small/training.json (total_seconds).
# The output folder must not exist (nothing is ever overwritten): pass another one to compare. The stages are kept
# in <out>.work: after an interruption, run the same command again and it continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-checkpoints/small}"
exec .venv/bin/svd-lab small train --seed 0 --threads 2 --snapshot-every 800 --out "$OUT" --no-progress
