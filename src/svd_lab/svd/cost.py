"""What one sampling step of the full-size SVD UNet costs, counted from its config on the meta device."""

from __future__ import annotations

import torch

from svd_lab.flops import Cost, count_forward
from svd_lab.svd import configs


def svd_unet_cost(version: str = "svd", height: int = 576, width: int = 1024, frames: int | None = None,
                  guidance: bool = True) -> Cost:
    """Multiply-adds of SVD's UNet for one sampling step (guidance doubles the batch: [uncond, cond]).

    Builds the full-size UNet from :mod:`svd_lab.svd.configs` on the meta device. diffusers' ``AlphaBlender``
    creates its ``mix_factor`` with ``torch.Tensor([alpha])``, which lands on the CPU even inside
    ``torch.device("meta")``, so the module is moved ``.to("meta")`` before counting.
    Defaults: svd at 576x1024, 14 frames, batch 28 -> about 44.8 T multiply-adds (89.6 TFLOP).
    """
    from diffusers import UNetSpatioTemporalConditionModel

    unet_config = dict(configs.unet_config("full", version))
    num_frames = frames or unet_config["num_frames"]
    with torch.device("meta"):
        unet = UNetSpatioTemporalConditionModel(**unet_config)
    unet = unet.to("meta").eval()
    batch = 2 if guidance else 1
    _, vae_config = configs.vae_config("full", version)
    factor = 2 ** (len(vae_config["block_out_channels"]) - 1)   # the VAE's down-sampling: 8 for SVD
    in_ch = unet.config.in_channels
    cross = unet.config.cross_attention_dim
    with torch.device("meta"):
        sample = torch.empty(batch, num_frames, in_ch, height // factor, width // factor)
        timestep = torch.empty(())
        encoder_hidden_states = torch.empty(batch, 1, cross)
        added_time_ids = torch.empty(batch, 3)
    return count_forward(unet, sample, timestep, encoder_hidden_states, added_time_ids=added_time_ids,
                         return_dict=False)
