r"""What SVD is conditioned on, and the raw network the sampler calls.

Three signals, all derived from the one input image and three numbers (sgm's ``conditioner``):

1. **crossattn** -- the CLIP image embedding of the clean image, (B, 1, D) (D = 1024 for ViT-H/14). The UNet's
   cross-attention layers attend to this single token.
2. **concat** -- the VAE latent of the *noise-augmented* image ``x + cond_aug * n`` (the mode of the encoder's
   Gaussian, **not** multiplied by the latent scaling 0.18215), repeated for every frame and concatenated to the
   noisy latents on the channel axis: the UNet sees 4 + 4 = 8 channels. The noise augmentation (cond_aug 0.02
   by default) keeps the model from copying the conditioning frame too literally.
3. **vector** -- the "added time ids" ``[fps_id, motion_bucket_id, cond_aug]``, (B, 3); the UNet embeds each
   sinusoidally (256 features each in the real model) and adds them to the timestep embedding
   (micro-conditioning: frame rate and amount of motion are knobs, not learned from the image).

The unconditional branch for guidance zeroes crossattn and concat and keeps vector.

Random draws (the order matters for reproducibility, and is diffusers' and sgm's): first the conditioning noise
``n`` (1, 3, H, W), then the initial latent noise (B, T, 4, H/8, W/8), both from the same generator.
"""

from __future__ import annotations

import torch

from svd_lab.svd.components import SVDComponents


def randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device,
          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal noise drawn on the generator's device, then moved (the same numbers on every device)."""
    draw_device = generator.device if generator is not None else torch.device("cpu")
    return torch.randn(shape, generator=generator, device=draw_device, dtype=dtype).to(device)


@torch.no_grad()
def clip_embedding(components: SVDComponents, image: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Image (1, 3, H, W) in [0, 1] -> CLIP image embedding (1, 1, D) in the encoder's dtype."""
    encoder = components.image_encoder
    dtype = next(encoder.parameters()).dtype
    pixels = components.clip_preprocessing(image.to(device))
    return encoder(pixels.to(device=device, dtype=dtype)).image_embeds.unsqueeze(1)


@torch.no_grad()
def image_latent(components: SVDComponents, image: torch.Tensor, cond_aug: float, generator: torch.Generator | None,
                 device: torch.device) -> torch.Tensor:
    """Image (1, 3, H, W) in [0, 1] -> latent of the noise-augmented image (1, 4, H/8, W/8), not scaled.

    A float16 VAE with ``force_upcast`` (SVD's) encodes in float32, as diffusers does: the encoder's activations
    can overflow float16.
    """
    pixels = image.to(device) * 2.0 - 1.0
    noise = randn(tuple(pixels.shape), generator, device, pixels.dtype)
    noisy = pixels + cond_aug * noise
    vae = components.vae
    vae_dtype = next(vae.parameters()).dtype
    upcast = vae_dtype == torch.float16 and bool(getattr(vae.config, "force_upcast", False))
    if upcast:
        torch.nn.Module.to(vae, dtype=torch.float32)
    try:
        encode_dtype = torch.float32 if upcast else vae_dtype
        return vae.encode(noisy.to(encode_dtype)).latent_dist.mode()
    finally:
        if upcast:
            torch.nn.Module.to(vae, dtype=vae_dtype)


def time_ids(fps_id: int, motion_bucket_id: int, cond_aug: float, dtype: torch.dtype,
             device: torch.device) -> torch.Tensor:
    """The micro-conditioning vector [[fps_id, motion_bucket_id, cond_aug]], (1, 3)."""
    return torch.tensor([[fps_id, motion_bucket_id, cond_aug]], dtype=dtype, device=device)


def unconditional(cond: dict) -> dict:
    """The guidance branch without the image: zero embedding and zero image latent, same micro-conditioning."""
    return {"crossattn": torch.zeros_like(cond["crossattn"]), "concat": torch.zeros_like(cond["concat"]),
            "vector": cond["vector"]}


class UNetNetwork:
    """The raw network ``F(x_in, c_noise, cond)`` of :class:`svd_lab.sampling.edm.Denoiser` for SVD's UNet.

    x_in (B, T, 4, h, w) -> UNet input (B, T, 8, h, w) = [x_in, cond['concat']] on channels; returns the
    v-prediction (B, T, 4, h, w) in the UNet's dtype.
    """

    def __init__(self, unet: torch.nn.Module):
        self.unet = unet

    def __call__(self, x_in: torch.Tensor, c_noise: torch.Tensor, cond: dict) -> torch.Tensor:
        dtype = next(self.unet.parameters()).dtype
        unet_input = torch.cat([x_in.to(dtype), cond["concat"].to(dtype)], dim=2)
        return self.unet(unet_input, c_noise, encoder_hidden_states=cond["crossattn"].to(dtype),
                         added_time_ids=cond["vector"].to(dtype), return_dict=False)[0]
