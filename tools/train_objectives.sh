#!/usr/bin/env bash
# The flow-matching vs EDM comparison of notebook 06 (issue 29): two mini video DiTs trained from scratch with the
# same budget -- 4,000 steps, seed 0, the same batches, the same noise-level distribution (ln sigma ~ N(0, 1.2^2),
# for flow logit t ~ N(0, 1.2^2)), the same network -- on the latents of the shipped autoencoder (checkpoints/mini),
# one with the EDM objective, one with flow matching. One thread each, both at once (this CPU has two cores).
# Outputs: checkpoints/objectives/{edm,flow}/ (never overwritten: pass another folder to compare).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="${1:-checkpoints/objectives}"
for objective in edm flow; do
    .venv/bin/svd-lab mini train --steps 4000 --seed 0 --threads 1 --objective "$objective" \
        --autoencoder checkpoints/mini --snapshot-every 0 --checkpoint-every 500 --out "$ROOT/$objective" \
        --no-progress > "$ROOT.$objective.log" 2>&1 &
done
wait
