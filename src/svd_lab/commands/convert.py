"""``svd-lab convert IN.safetensors OUT_DIR``: an sgm single-file SVD checkpoint -> a diffusers folder.

Also the attention-head-size flags that ``svd-lab sample --checkpoint FILE.safetensors`` shares
(:func:`add_head_size_arguments`, :func:`head_size_options`).
"""

from __future__ import annotations

import argparse

EPILOG = """\
IN is one of Stability's single files (svd.safetensors, svd_xt.safetensors, svd_image_decoder.safetensors,
svd_xt_image_decoder.safetensors, svd_xt_1_1.safetensors). What it holds (temporal or per-frame decoder) is read
from its tensor names; svd and svd_xt have identical names, so the version (frames, steps, guidance defaults)
follows the file name unless --version says otherwise.

The attention head sizes are not stored in the weights: Stability's releases use 64 channels per head in both
the UNet and the image encoder, which is assumed unless the file has the shapes of a model svd-lab knows (the
course's tiny model). For any other sgm model pass its sizes with --unet-head-channels / --clip-head-width.

OUT_DIR must not exist: it is written under a temporary name and renamed when complete, so an interrupted
conversion leaves nothing half-written. Converting is optional: svd-lab sample --checkpoint IN.safetensors
converts in memory on every load; a converted folder loads faster and needs half the disk in fp16.

Example:  svd-lab convert checkpoints/svd.safetensors checkpoints/svd-converted --dtype fp16
"""

DTYPES = {"fp16": "float16", "fp32": "float32", "bf16": "bfloat16"}

#: argparse destination -> keyword of svd_lab.convert.sgm.load_sgm_modules (the same names)
HEAD_SIZE_FLAGS = {"unet_head_channels": "--unet-head-channels", "clip_head_width": "--clip-head-width"}


def _head_size(text: str) -> int:
    """argparse type of a head size: a positive integer (channels per attention head)."""
    problem = f"expected a positive whole number of channels per head, got {text!r}"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(problem) from None
    if value < 1:
        raise argparse.ArgumentTypeError(problem)
    return value


def add_head_size_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags for the attention head sizes of an sgm file (not stored in its weights)."""
    group = parser.add_argument_group(
        "attention head sizes of an sgm file",
        "not stored in the weights; default: the sizes of the svd-lab model with the file's shapes (the course's "
        "tiny model), else Stability's 64")
    group.add_argument("--unet-head-channels", type=_head_size, metavar="N",
                       help="channels per attention head in the UNet (sgm's num_head_channels; Stability: 64)")
    group.add_argument("--clip-head-width", type=_head_size, metavar="N",
                       help="channels per attention head in the OpenCLIP image encoder (open_clip's head_width; "
                            "Stability: 64)")


def head_size_options(args: argparse.Namespace, checkpoint: str | None) -> dict[str, int]:
    """The head sizes given on the command line, as keywords for the loaders (empty when none was given).

    Raises InputError when a size is given without a ``checkpoint`` to apply it to.
    """
    from svd_lab.errors import InputError

    given = {name: getattr(args, name) for name in HEAD_SIZE_FLAGS if getattr(args, name, None) is not None}
    if given and not checkpoint:
        flags = " / ".join(HEAD_SIZE_FLAGS[name] for name in given)
        raise InputError(f"{flags} describe an sgm checkpoint file: pass it with --checkpoint FILE.safetensors")
    return given


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
    add_head_size_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    import torch

    from svd_lab.convert.sgm import convert_sgm_to_diffusers
    from svd_lab.errors import InputError

    source = Path(args.input)
    if not source.is_file():
        raise InputError(f"{source}: no such file (expected an sgm .safetensors checkpoint such as svd.safetensors)")
    if source.suffix != ".safetensors":
        raise InputError(f"{source}: only .safetensors files are read (pickled .ckpt files are not loaded, "
                         "for safety)")
    out = convert_sgm_to_diffusers(
        source, args.output, dtype=getattr(torch, DTYPES[args.dtype]), version=args.version,
        progress=not args.no_progress, log=print, **head_size_options(args, str(source)))
    print(f"wrote {out}")
    return 0
