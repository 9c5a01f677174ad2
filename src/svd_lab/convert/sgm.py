r"""Load Stability AI's single-file sgm checkpoints (``svd.safetensors`` and friends) into diffusers/transformers.

Stability's ``generative-models`` code ("sgm") saves the whole ``DiffusionEngine`` state dict in one file:
the video UNet, the OpenCLIP image embedder, the autoencoder that encodes the conditioning frame and the
first-stage (video) autoencoder. diffusers cannot read these files (no ``from_single_file`` for SVD:
diffusers #6839, #7979). This module is the converter's public face; the work is done, in dependency order, by

=========================================  =========================================================================
module                                     owns
=========================================  =========================================================================
:mod:`svd_lab.convert.sgm_keys`            the name mapping: sgm key -> (component, diffusers key, Transform); the
                                           ignore list; the decoder kind and level counts read from the keys.
                                           Pure functions on strings, no torch.
:mod:`svd_lab.convert.sgm_config`          the three networks' constructor arguments inferred from the shapes, and
                                           the numbers the weights do not hold (head sizes, VAE scale, GroupNorm
                                           eps). No torch.
:mod:`svd_lab.convert.sgm_plan`            :class:`ConversionPlan`: everything decided from the header (configs,
                                           every target's source tensor and transform, the version). No torch.
:mod:`svd_lab.convert.sgm_load`            reading the file tensor by tensor into meta-built modules.
:mod:`svd_lab.convert.sgm_write`           the converted diffusers folder (through
                                           :func:`svd_lab.svd.loading.save_diffusers_folder`) and its record.
=========================================  =========================================================================

Everything in a file must be converted or be on :data:`IGNORED`, a short list of tensors that inference never
reads (OpenCLIP text-tower leftovers, the conditioning autoencoder's decoder, the first-stage encoder). Any other
key is an error that names it, and so is any module tensor the file does not fill: loading is strict. Errors are
:class:`svd_lab.errors.SgmCheckpointError`.

Numbers that are not in the weights (head sizes of the attention layers, VAE scaling factor 0.18215) are the
values of Stability's configs: 64 channels per attention head in the UNet (``num_head_channels: 64``) and in
OpenCLIP ViT-H/14 (``head_width`` 64). Files with other head sizes (the course's tiny test model) are recognised
from svd-lab's registered configurations, or the sizes are passed explicitly (``unet_head_channels``,
``clip_head_width``; ``--unet-head-channels`` / ``--clip-head-width`` on the command line).

Numerics (checked against sgm's own outputs in tests/test_sgm_equivalence.py): sgm normalises every UNet ResBlock
with GroupNorm eps 1e-5 where diffusers' spatio-temporal down/up blocks use 1e-6; :func:`match_sgm_groupnorm_eps`
sets sgm's value. The value is not part of diffusers' config, so a folder written by
:func:`convert_sgm_to_diffusers` records it in ``svd_lab_conversion.json`` and :func:`apply_conversion_record`
re-applies it after ``from_pretrained``.
"""

from __future__ import annotations

from svd_lab.convert.record import CONVERSION_RECORD, apply_conversion_record
from svd_lab.convert.sgm_config import (
    SGM_CLIP_HEAD_WIDTH,
    SGM_UNET_GROUPNORM_EPS,
    SGM_UNET_HEAD_CHANNELS,
    SGM_VAE_SCALING_FACTOR,
)
from svd_lab.convert.sgm_keys import (
    CLIP_PREFIX,
    COND_VAE_PREFIX,
    FIRST_STAGE_PREFIX,
    IGNORED,
    IMAGE,
    TEMPORAL,
    UNET_PREFIX,
    Transform,
    detect_decoder_kind,
)
from svd_lab.convert.sgm_load import (
    SgmModules,
    _TensorReader,
    build_empty_modules,
    check_plan_against_modules,
    fill_modules,
    load_sgm_checkpoint,
    load_sgm_modules,
    match_sgm_groupnorm_eps,
    read_header,
    to_components,
)
from svd_lab.convert.sgm_plan import (
    ConversionPlan,
    TensorSource,
    UnknownSgmVersionError,
    detect_version,
    plan_conversion,
)
from svd_lab.convert.sgm_write import convert_sgm_to_diffusers
from svd_lab.errors import SgmCheckpointError

__all__ = [
    "CLIP_PREFIX",
    "COND_VAE_PREFIX",
    "CONVERSION_RECORD",
    "FIRST_STAGE_PREFIX",
    "IGNORED",
    "IMAGE",
    "SGM_CLIP_HEAD_WIDTH",
    "SGM_UNET_GROUPNORM_EPS",
    "SGM_UNET_HEAD_CHANNELS",
    "SGM_VAE_SCALING_FACTOR",
    "TEMPORAL",
    "UNET_PREFIX",
    "ConversionPlan",
    "SgmCheckpointError",
    "SgmModules",
    "TensorSource",
    "Transform",
    "UnknownSgmVersionError",
    "_TensorReader",  # tests swap its reads (no data read before validation; the memory-mapped fallback)
    "apply_conversion_record",
    "build_empty_modules",
    "check_plan_against_modules",
    "convert_sgm_to_diffusers",
    "detect_decoder_kind",
    "detect_version",
    "fill_modules",
    "load_sgm_checkpoint",
    "load_sgm_modules",
    "match_sgm_groupnorm_eps",
    "plan_conversion",
    "read_header",
    "to_components",
]
