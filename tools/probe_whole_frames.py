#!/usr/bin/env python
"""Probe a variant of the small SVD's stage 3 (the VAE on whole frames) from a stage-2 VAE, and score that VAE.

    .venv/bin/python tools/probe_whole_frames.py --base BASE --out DIR [--set decoder_steps=150 ...] [--fields hsv]
                                                 [--loss mse] [--ceiling]

BASE is a model folder whose VAE is the recipe's stage 2 in fp16: git 2907b56's ``checkpoints/small`` (``git archive
2907b56 checkpoints/small | tar -x -C /tmp``), where stage 3 (then stage 5) ran after the UNet; the recipe rounds its
stage-2 VAE to fp16 before stage 3, so a probe starts exactly where the recipe's stage 3 does. Prints one JSON line
(and appends it to ``DIR/../probes.jsonl``): the VAE's PSNR margin over the thumbnail baseline (dB; the bar's (f)) on
the course images and the held-out mean, and the mean colour error of the round trip of crop23:leaves:7 (a saturated
green the full evaluation's (g) failed on) and of the worst evaluation image. ``--ceiling``: also (g) of the
ground-truth pans through this VAE on the 29 evaluation images at every motion bucket (what ``svd-lab small eval``
calls "ground truth through the VAE"). The VAE is saved as ``DIR/vae.safetensors``. Numbers from these probes are
in docs/small_svd_levers.md; each takes ~5 minutes alone for 150 steps on the 2-core machine (~11 beside another).

Variants beyond the settings (``--set`` takes any field of ``TrainSettings``):
  --fields hsv     the fields' colours drawn like the dead leaves' (HSV), not uniform in RGB
(whole fields or blended ones: ``--set smooth_whole=True`` / ``False``, a setting since 2026-12-07)
  --loss l2x10     L1 + 10 L2 + edge (the shipped loss has L2 at weight 1: its gradient is tiny next to L1's)
  --loss mse       L2 alone (what PSNR measures)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields as dataclass_fields
from pathlib import Path

import torch
import torch.nn.functional as F

from svd_lab.small import data, metrics, train
from svd_lab.small.leaves import random_colours
from svd_lab.small.model import load_small


def _hsv_fields():
    """A replacement for ``data.smooth_fields`` (same signature) whose colours are drawn like the dead leaves'."""

    def smooth_fields(frames: torch.Tensor, generator: torch.Generator, share: float,
                      whole: bool = False) -> torch.Tensor:
        b, _, _, h, w = frames.shape
        k = 2 + int(torch.randint(3, (1,), generator=generator))
        coarse = random_colours(b * k * k, generator).view(b, k, k, 3).permute(0, 3, 1, 2).contiguous()
        field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True).clamp(0, 1)
        used = (torch.rand(b, generator=generator) < share).float()
        spread = torch.rand(b, generator=generator)
        weight = used if whole else used * (0.3 + 0.7 * spread)
        return (frames * (1 - weight.view(b, 1, 1, 1, 1)) + field.unsqueeze(1) * weight.view(b, 1, 1, 1, 1)).clamp(0, 1)

    return smooth_fields


def _loss(mode: str):
    """A replacement for ``train.vae_loss`` (same signature and random draws) with other weights."""

    def vae_loss(vae, clips, settings, generator):
        t = clips.frames.shape[1]
        x = clips.frames.flatten(0, 1) * 2 - 1
        chunks = [c for c in range(1, t + 1) if t % c == 0]
        chunk = chunks[int(torch.randint(len(chunks), (1,), generator=generator))]
        z = vae.encode(x).latent_dist.mode()
        noisy = z + settings.latent_noise * z.detach().float().std() * torch.randn(z.shape, generator=generator)
        diff = vae.decode(noisy, num_frames=chunk).sample.float() - x
        regular = 1e-6 * (z.float() ** 2).mean()
        if mode == "mse":
            return 20 * (diff ** 2).mean() + regular
        edges = sum((a - e).abs().mean() for a, e in zip(train._edges(diff + x), train._edges(x)))
        return diff.abs().mean() + 10 * (diff ** 2).mean() + settings.edge_weight * edges + regular

    return vae_loss


def _colour_error(vae, image: torch.Tensor) -> float:
    back = metrics.vae_round_trip(vae, image.unsqueeze(0))[0]
    return (back.mean((1, 2)) - image.mean((1, 2))).abs().mean().item()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="a model folder whose VAE is a stage-2 VAE in fp16")
    parser.add_argument("--out", required=True, help="a new folder for this probe")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a TrainSettings field")
    parser.add_argument("--fields", choices=("rgb", "hsv"), default="rgb")
    parser.add_argument("--loss", choices=("shipped", "l2x10", "mse"), default="shipped")
    parser.add_argument("--ceiling", action="store_true", help="also (g) of the true pans through the VAE")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    settings = train.TrainSettings()
    kinds = {f.name: type(getattr(settings, f.name)) for f in dataclass_fields(settings)}
    changed = {}
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in kinds:
            parser.error(f"--set {item}: {name!r} is not a TrainSettings field ({', '.join(kinds)})")
        changed[name] = (value == "True") if kinds[name] is bool else kinds[name](value)
        setattr(settings, name, changed[name])
    if args.fields != "rgb":
        data.smooth_fields = _hsv_fields()
    if args.loss != "shipped":
        train.vae_loss = _loss(args.loss)
    out = Path(args.out)
    if out.exists():
        parser.error(f"{out} exists (nothing is overwritten)")

    components = load_small(Path(args.base))
    canvases = data.leaves_pool(settings.canvases, seed=train._seed(settings.seed, 0, 0))
    started = time.time()
    train.train_decoder(components.vae, canvases, settings, train.Work(out / "work", settings), False, print,
                        components.native_size)
    vae = components.vae
    images = metrics.evaluation_images(metrics.NUM_CROPS)
    ours, thumb, _ = metrics.vae_scores(vae, images)
    held = [im.name for im in images if im.kind != "course"]
    colours = {im.name: _colour_error(vae, im.image) for im in images}
    worst = max(colours, key=colours.get)
    green = next(name for name in colours if name.startswith("crop23"))
    result = {"probe": out.name, **changed, "fields": args.fields, "loss": args.loss,
              **{name: round(ours[name] - thumb[name], 2) for name in data.HELD_OUT_ASSETS},
              "rocket_db": ours["rocket"],
              "held_out": round(sum(ours[n] - thumb[n] for n in held) / len(held), 3),
              "crop23_colour": round(colours[green], 4), "worst_colour": [round(colours[worst], 4), worst],
              "seconds": round(time.time() - started)}
    if args.ceiling:
        ceiling = metrics.score_reference("ground truth through the VAE", images, components.native_frames, vae)
        result["ceiling_g"] = [ceiling.colour_error_max, ceiling.colour_error_worst]
    from safetensors.torch import save_file

    save_file({k: v.detach().half().contiguous() for k, v in vae.state_dict().items()}, str(out / "vae.safetensors"))
    line = json.dumps(result)
    print(line)
    with open(out.parent / "probes.jsonl", "a") as log:
        log.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
