"""Start a run of the small SVD's recipe from a shipped model's stages, so ``tools/train_small.sh OUT`` runs only the
stages after them (added stages need not retrain the ones before).

    .venv/bin/python tools/transplant_small.py --model checkpoints/small --stage2 OLD --pool POOL --out OUT

writes ``OUT.work`` (the work folder ``svd-lab small train --out OUT`` continues) with:
  canvases  regenerated (deterministic);
  vae       stage 2: the VAE of ``--stage2`` (a model folder whose VAE is the recipe's stage 2 in fp16: git 2907b56's
            ``checkpoints/small``, ``git archive 2907b56 checkpoints/small | tar -x -C /tmp``);
  decoder   stage 3: ``--model``'s VAE (fp16, as shipped);
  pool      stage 4: clips encoded by that VAE (``--pool FILE``: a pool already encoded so, e.g. by an earlier call);
  unet      stage 5: ``--model``'s UNet (fp16; stage 6 starts from the UNet rounded to fp16 in any run).
Each stage's record is ``--model``'s ``training.json`` entry with a ``from`` naming where its weights came from. The
pool differs from the one the model's UNet was trained on in one way: the recipe encodes it with the fp32 stage-3
VAE, this one with the fp16 VAE that ships (the fp32 one is not kept); the record says so.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

from svd_lab.small import data, train
from svd_lab.small.model import load_small
from svd_lab.training import save_state


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model folder giving stages 3 and 5 (and their records)")
    parser.add_argument("--stage2", required=True, help="model folder whose VAE is the recipe's stage 2 (fp16)")
    parser.add_argument("--pool", default=None, help="a pool file encoded by --model's VAE (default: encode it)")
    parser.add_argument("--from-label", required=True, help="where --model comes from, e.g. 'git 245dfb2 "
                                                            "checkpoints/small'")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(2)
    out = Path(args.out)
    work = train.work_folder(out)
    if out.exists() or work.exists():
        sys.exit(f"{out} or {work} already exists (nothing is overwritten)")
    record = json.loads((Path(args.model) / "training.json").read_text())
    settings = train.TrainSettings()
    model = load_small(args.model)
    stage2 = load_small(args.stage2).vae
    w = train.Work(work, settings)
    label = args.from_label

    canvases = data.leaves_pool(settings.canvases, seed=train._seed(settings.seed, 0, 0))
    train._save_tensor(w.path("canvases.safetensors"), canvases)
    w.log["canvases"] = {"count": settings.canvases, "seconds": record["seconds"]["canvases"]}
    save_state(w.path("vae.safetensors"), {"vae": stage2}, meta=record["vae"])
    decoder = {**record["decoder"], "from": f"{label} (its fp16 VAE: stage 3 of the recipe)"}
    save_state(w.path("decoder.safetensors"), {"vae": model.vae}, meta=decoder)
    w.log["vae"] = {k: v for k, v in record["vae"].items() if k != "loss"}
    w.log["decoder"] = {k: v for k, v in decoder.items() if k != "loss"}
    if args.pool:
        shutil.copyfile(args.pool, w.path("pool.safetensors"))
        seconds = None
    else:
        t0 = time.time()
        train.build_pool(model.vae, canvases, settings, True, print).save(w.path("pool.safetensors"))
        seconds = round(time.time() - t0, 1)
    w.log["pool"] = {"clips": settings.pool_clips, "seconds": record["seconds"]["pool"],
                     "from": f"re-encoded by {label}'s fp16 VAE (the recipe encodes with the fp32 stage-3 VAE)"
                             + (f" in {seconds} s" if seconds else "")}
    unet = {"step": settings.steps, "seconds": record["seconds"]["unet"], "loss": record["loss"],
            "snapshots": record["snapshots"], "from": f"{label} (its fp16 UNet: stage 5 of the recipe)"}
    save_state(w.path("unet.safetensors"), {"unet": model.unet}, meta=unet)
    w.log["unet"] = {k: v for k, v in unet.items() if k != "loss"}
    w.save_log()
    print(f"wrote {work}: run `tools/train_small.sh {out}` to continue from stage 6")
    return 0


if __name__ == "__main__":
    sys.exit(main())
