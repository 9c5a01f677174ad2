"""The record a converted folder keeps beside its networks (``svd_lab_conversion.json``), and applying it on load.

diffusers' configs cannot say everything an sgm checkpoint computes with: sgm's GroupNorm eps in the UNet's resnets
(1e-5 where diffusers uses 1e-6) is written into this record by
:func:`svd_lab.convert.sgm_write.convert_sgm_to_diffusers`
and re-applied by the folder loader (:func:`svd_lab.svd.loading.load_diffusers_folder`), which imports this module
and nothing else of the converter.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from torch import nn

from svd_lab.convert.sgm_load import match_sgm_groupnorm_eps
from svd_lab.errors import SgmCheckpointError

CONVERSION_RECORD = "svd_lab_conversion.json"


def apply_conversion_record(folder: str | os.PathLike, unet: nn.Module) -> bool:
    """Re-apply what a converted folder's ``svd_lab_conversion.json`` records about the UNet (sgm's GroupNorm
    eps); returns True when the folder was written by :func:`convert_sgm_to_diffusers`."""
    record_path = Path(folder) / CONVERSION_RECORD
    if not record_path.is_file():
        return False
    try:
        record = json.loads(record_path.read_text())
        eps = record.get("unet_resnet_groupnorm_eps")
    except (ValueError, AttributeError) as exc:
        raise SgmCheckpointError(f"{record_path} is damaged ({exc}); convert the sgm file again") from None
    if eps is not None:
        match_sgm_groupnorm_eps(unet, float(eps))
    return True
