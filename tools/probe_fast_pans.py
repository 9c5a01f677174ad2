"""Probe for stage 6 (docs/small_svd_levers.md, "Fast pans"): continue a small SVD's UNet for STEPS steps and screen
the largest colour error (g) of its bucket-255 videos (fps_id 6, the fastest pans, where every evaluation's largest
errors are).

    .venv/bin/python tools/probe_fast_pans.py NAME STEPS LR DC_WEIGHT FAST_SHARE [--model FOLDER] [--dir DIR]

Starts from FOLDER's UNet (default: the shipped model) on a pool of the recipe's clips encoded by FOLDER's VAE
(``DIR/pool-approx.safetensors``, made on the first call: ~13 minutes), at learning rate LR (20 warm-up steps, then
cosine to a tenth), the recipe's batch; FAST_SHARE of every batch from clips at motion_bucket_id >= 170; DC_WEIGHT > 0
adds DC_WEIGHT x the squared per-frame, per-channel spatial mean of the v-prediction error to the loss (colour drift
is that mean). STEPS 0 screens FOLDER's model as it is. Screens: the 32 crops of ``--crop-seed 777001`` (videos only
of the crops) and the evaluation's 29 images; prints one JSON line; saves the UNet as ``DIR/unet-NAME.pt``.
The random draws differ from the recipe's stage 6 (``svd_lab.small.train.train_fast``): a probe, not the recipe.

``--recipe``: run the recipe's own stage 6 instead (``train_fast`` with ``fast_steps`` STEPS, ``fast_lr`` LR,
``fast_share`` FAST_SHARE, ``fast_bucket`` ``--bucket``; DC_WEIGHT must be 0) from FOLDER's UNet rounded to fp16, as
a run does after stage 5: with FOLDER = git 245dfb2's model (stage 5) and the recipe's settings it is the shipped
stage 6. ``--seeds 23,1000`` screens each video at several seeds (the largest error counts); ``--third SEED`` adds
a third draw of 32 crops; ``--cond-aug`` screens at another cond_aug (default 0.02, the default setting).
"""
import argparse
import json
import time
from pathlib import Path

import torch

from svd_lab.pixels import colour_error
from svd_lab.sampling.edm import v_scaling_preconditioning
from svd_lab.small import data, metrics, train
from svd_lab.small.model import load_small
from svd_lab.svd.pipeline import SVDPipeline
from svd_lab.training import lr_factor

torch.set_num_threads(2)
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
for arg, kind in (("name", str), ("steps", int), ("lr", float), ("dc", float), ("fast", float)):
    parser.add_argument(arg, type=kind)
parser.add_argument("--model", default=None)
parser.add_argument("--dir", default="outputs/probe")
parser.add_argument("--recipe", action="store_true", help="train with the recipe's train_fast (see above)")
parser.add_argument("--bucket", type=int, default=170, help="--recipe: fast_bucket")
parser.add_argument("--seeds", default="23", help="base seeds of the screen's videos, comma-separated")
parser.add_argument("--third", type=int, default=None, help="also screen this crop seed's 32 crops")
parser.add_argument("--cond-aug", type=float, default=0.02)
args = parser.parse_args()
name, steps, lr, dc, fast = args.name, args.steps, args.lr, args.dc, args.fast
if args.recipe and dc:        # checked before the pool (13 minutes on a first call) is built
    parser.error("--recipe trains with the recipe's loss: DC_WEIGHT must be 0")
here = Path(args.dir)
here.mkdir(parents=True, exist_ok=True)
settings = train.TrainSettings()
model = load_small(args.model)
pool_file = here / "pool-approx.safetensors"
if not pool_file.is_file():
    t = time.time()
    canvases = data.leaves_pool(settings.canvases, seed=train._seed(settings.seed, 0, 0))
    train.build_pool(model.vae, canvases, settings, False, print).save(pool_file)
    print("pool", round(time.time() - t), "s", flush=True)
pool = train.LatentPool.load(pool_file)


def screen(components, seed, crops, course, photos):
    images = metrics.evaluation_images(crops, course=course, photos=photos, crop_seed=seed)
    pipe = SVDPipeline(components, device="cpu", dtype="float32", memory="resident")
    st = float(data.speed_to_step(255, 6, 64))
    errs = {}
    for base in [int(b) for b in args.seeds.split(",")]:
        specs = [metrics.VideoSpec(i, 255, 6, args.cond_aug, base + i) for i in range(len(images))]
        vids = metrics.sample_videos(pipe, [im.image for im in images], specs, 12, 1.0, 1.5)
        errs.update({f"{im.name}@{base}": colour_error(v, data.pan_image(im.image, st, 8)).max().item()
                     for im, v in zip(images, vids)})
    worst = sorted(errs.items(), key=lambda kv: -kv[1])[:4]
    return {"max": round(max(errs.values()), 4), "mean": round(sum(errs.values()) / len(errs), 4),
            "over_0.03": sum(v > 0.03 for v in errs.values()), "worst": [(k, round(v, 4)) for k, v in worst]}


def dc_loss(components, z0, first, fps_id, bucket, generator):
    """svd_loss's draws and loss, plus ``dc`` x the squared per-frame, per-channel spatial mean of the error."""
    b, t = z0.shape[:2]

    def randn(*shape):
        return torch.randn(*shape, generator=generator)

    cond_aug = torch.exp(data.COND_AUG_LOG_MEAN + data.COND_AUG_LOG_STD * randn(b))
    with torch.no_grad():
        cross = components.image_encoder(components.clip_preprocessing(first)).image_embeds.unsqueeze(1)
        noisy = first * 2 - 1 + cond_aug.view(b, 1, 1, 1) * randn(*first.shape)
        concat = components.vae.encode(noisy).latent_dist.mode()
        keep = (torch.rand(b, generator=generator) >= settings.drop).float()
        cross = cross * keep.view(b, 1, 1)
        concat = (concat * keep.view(b, 1, 1, 1)).unsqueeze(1).expand(-1, t, -1, -1, -1)
    ids = torch.stack([fps_id.float(), bucket.float(), cond_aug], 1)
    sigma = torch.exp(settings.p_mean + settings.p_std * randn(b))
    x = z0 + sigma.view(b, 1, 1, 1, 1) * randn(*z0.shape)
    c_skip, c_out, c_in, c_noise = v_scaling_preconditioning(sigma.view(b, 1, 1, 1, 1))
    target = (z0 - c_skip * x) / c_out
    raw = components.unet(torch.cat([c_in * x, concat], 2), c_noise.view(b), encoder_hidden_states=cross,
                          added_time_ids=ids).sample
    err = raw.float() - target
    return (err ** 2).mean() + dc * (err.mean((-2, -1)) ** 2).mean()


components = model
if steps and args.recipe:
    import tempfile
    from dataclasses import replace
    settings = replace(settings, fast_steps=steps, fast_lr=lr, fast_share=fast, fast_bucket=args.bucket)
    with torch.no_grad():
        train._round_to_half(components.unet)
    with tempfile.TemporaryDirectory(dir=here) as folder:    # its 57 MB optimiser checkpoint is not kept
        train.train_fast(components, pool, settings, train.Work(Path(folder), settings), False, print)
    torch.save(components.unet.state_dict(), here / f"unet-{name}.pt")
    with torch.no_grad():
        train._round_to_half(components.unet)    # screened as it would ship
elif steps:
    unet = components.unet
    unet.train().requires_grad_(True)
    opt = torch.optim.AdamW(unet.parameters(), lr, weight_decay=0.0)
    fast_idx = (pool.motion_bucket_id >= 170).nonzero().flatten()
    t0 = time.time()
    losses = []
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr * lr_factor(step / steps, step, 20)
        gen = torch.Generator().manual_seed(train._seed(settings.seed, 50_000_000 + step, 3))
        z0, first, fps_id, bucket = train._batch(pool, gen, settings.batch, data.FRAMES)
        if fast > 0:        # the first k windows replaced by windows of fast clips
            k = round(fast * settings.batch)
            pick = fast_idx[torch.randint(len(fast_idx), (k,), generator=gen)]
            start = torch.randint(pool.first.shape[1], (k,), generator=gen)
            win = torch.arange(data.FRAMES)
            z0[:k] = pool.latents[pick.unsqueeze(1), start.unsqueeze(1) + win] * train.LATENT_SCALING
            first[:k] = pool.first[pick, start].float() / 255
            fps_id[:k], bucket[:k] = pool.fps_id[pick], pool.motion_bucket_id[pick]
        if dc == 0:
            loss = train.svd_loss(components, z0, first, fps_id, bucket, settings, gen)
        else:
            loss = dc_loss(components, z0, first, fps_id, bucket, gen)
        losses.append(train._optimise(opt, loss, unet.parameters()))
        if (step + 1) % 100 == 0:
            print(step + 1, round(sum(losses[-100:]) / 100, 4), round(time.time() - t0), "s", flush=True)
    unet.eval().requires_grad_(False)
    torch.save(unet.state_dict(), here / f"unet-{name}.pt")
val = screen(components, 777001, 32, False, False)
ev = screen(components, 1234, 24, True, True)
third = {} if args.third is None else {"third": screen(components, args.third, 32, False, False)}
print(json.dumps({"name": name, "steps": steps, "lr": lr, "dc": dc, "fast": fast, "validation": val, "evaluation": ev,
                  **third}), flush=True)
