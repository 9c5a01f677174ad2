#!/usr/bin/env bash
# Reproduce the shipped tiny SVD (checkpoints/svdmini/): the recipe's fixed step counts and seed 0.
# Two threads (this CPU's cores): run it on an otherwise idle machine. Needs the training extra (scikit-image):
# `make setup` installs it. Time on this 2-core CPU: see checkpoints/svdmini/training.json (total_seconds).
# The output folder must not hold a model already (nothing is ever overwritten): pass another one to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-checkpoints/svdmini}"
exec .venv/bin/svd-lab svdmini train --seed 0 --threads 2 --snapshot-every 500 --out "$OUT" --no-progress
