"""``svd-lab convert IN.safetensors OUT_DIR``: an sgm single-file SVD checkpoint -> a diffusers folder."""

from __future__ import annotations

import argparse

EPILOG = """\
IN is one of Stability's single files (svd.safetensors, svd_xt.safetensors, svd_image_decoder.safetensors,
svd_xt_image_decoder.safetensors, svd_xt_1_1.safetensors). What it holds (temporal or per-frame decoder) is read
from its tensor names; svd and svd_xt have identical names, so the version (frames, steps, guidance defaults)
follows the file name unless --version says otherwise.

OUT_DIR must not exist: it is written under a temporary name and renamed when complete, so an interrupted
conversion leaves nothing half-written. Converting is optional: svd-lab sample --checkpoint IN.safetensors
converts in memory on every load; a converted folder loads faster and needs half the disk in fp16.

Example:  svd-lab convert checkpoints/svd.safetensors checkpoints/svd-converted --dtype fp16
"""

DTYPES = {"fp16": "float16", "fp32": "float32", "bf16": "bfloat16"}


def register(sub) -> None:
    p = sub.add_parser(
        "convert",
        help="convert an sgm single-file SVD checkpoint (svd.safetensors) into a diffusers folder",
        description="Convert Stability's single-file SVD checkpoint into the diffusers layout "
                    "(unet/, vae/, image_encoder/, feature_extractor/, scheduler/, model_index.json).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN.safetensors", help="the sgm checkpoint file")
    p.add_argument("output", metavar="OUT_DIR", help="new folder to write (must not exist)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="fp16",
                   help="dtype of the written weights (default fp16: about 4.5 GB for svd)")
    p.add_argument("--version", default=None,
                   help="svd, svd_xt, svd_xt_1_1, svd_image_decoder or svd_xt_image_decoder "
                        "(default: from the file name; the decoder kind always comes from the keys)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    import torch

    from svd_lab.cli import UserError
    from svd_lab.convert.sgm import convert_sgm_to_diffusers

    source = Path(args.input)
    if not source.is_file():
        raise UserError(f"{source}: no such file (expected an sgm .safetensors checkpoint such as svd.safetensors)")
    if source.suffix != ".safetensors":
        raise UserError(f"{source}: only .safetensors files are read (pickled .ckpt files are not loaded, "
                        "for safety)")
    out = convert_sgm_to_diffusers(
        source, args.output, dtype=getattr(torch, DTYPES[args.dtype]), version=args.version,
        progress=not args.no_progress, log=print)
    print(f"wrote {out}")
    return 0
