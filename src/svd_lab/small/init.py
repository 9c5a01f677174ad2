r"""Start the small SVD's VAE as a thumbnail codec, so that colour survives its GroupNorms from the first step.

**The problem.** Every block of diffusers' ``AutoencoderKLTemporalDecoder`` normalises with ``GroupNorm(32
groups)``, and both the encoder and the decoder end in ``conv_out(SiLU(GroupNorm(h)))``. A GroupNorm removes the
mean and the scale of each group of channels, per image. So the *level* of a flat region -- its colour -- reaches the
output only if the network has learned to encode it as a pattern that normalisation keeps. From the default random
initialisation it learns that very slowly: measured here, VAEs of this size trained for 1,250 steps reproduced the
shapes of the course images but not their colours (the red coffee cup, mean RGB 0.61 / 0.31 / 0.19, came back grey:
0.41 / 0.38 / 0.35), and none of them learned to reproduce *flat* colours in 300 steps, whatever the learning rate
(the decoder's output barely depended on its latent: across random latents its mean colour varied by 0.003).

**The start used instead** (the idea of DiT's adaLN-Zero and of Fixup: residual branches start at zero, so the
network starts as a known function and learns corrections):

1. every residual branch ends in zeros (the last convolution of each ResNet block, spatial and temporal, and the
   output projection of each attention block): every block starts as the identity (or its 1x1 shortcut);
2. every convolution on the main path passes channels through unchanged: ``conv_in`` puts R, G and B at the first
   channel of three different groups; each 2x down-sampling convolution averages 2x2 pixels; each up-sampling
   convolution smooths the nearest-neighbour enlargement with a [1, 2, 1] / 4 kernel (about bilinear); 1x1 shortcuts
   are identities on the channels both sides have. The other channels keep a tenth of their random weights
   (:data:`LEAK`): an all-zero channel would make its GroupNorm divide by sqrt(eps), and training diverged (NaN in
   300 steps) when they were zero;
3. before each final GroupNorm, the other channels of those groups hold fixed levels +``REFERENCE`` and
   -``REFERENCE`` (the bias of the branch that was zeroed): with two fixed references in a group, normalising it
   changes the signal channel by an almost constant factor -- the level survives;
4. the final ``conv_out`` of the encoder and of the decoder is fitted by least squares so that, on random images, the
   latent is the 8x8 block average of the colours (its 4th channel zero) and the decoder returns the colours.

At step 0 the VAE is therefore a thumbnail codec (8x8 averages, enlarged smoothly), colours included; training
improves on it from there. Every weight is an ordinary value of diffusers' class: the model loads anywhere.
"""

from __future__ import annotations

import torch
from torch import nn

#: the fixed level of the two reference channels of a group, before the final GroupNorms
REFERENCE = 2.0
#: the shift that puts the normalised signal where SiLU is almost straight
SILU_SHIFT = 4.0
#: the share of their random initial weights that the main path's other channels keep
LEAK = 0.1


def _zero_branches(model: nn.Module) -> None:
    """The last layer of every residual branch (ResNet blocks, spatial and temporal; attention) set to zero."""
    from diffusers.models.attention_processor import Attention
    from diffusers.models.resnet import ResnetBlock2D, TemporalResnetBlock

    for module in model.modules():
        if isinstance(module, (ResnetBlock2D, TemporalResnetBlock)):
            module.conv2.weight.zero_()
            module.conv2.bias.zero_()
        elif isinstance(module, Attention):
            module.to_out[0].weight.zero_()
            module.to_out[0].bias.zero_()


def _identity(conv: nn.Module, mapping: dict[int, int], kernel: torch.Tensor | None = None) -> None:
    """Set ``conv`` to copy input channel i to output channel ``mapping[i]`` with a spatial ``kernel`` (centre tap
    by default), exactly. Every other output channel keeps a tenth of its random initial weights: a channel that is
    exactly zero for every input would make its GroupNorm divide by sqrt(eps) and its gradient explode."""
    conv.weight.mul_(LEAK)
    if conv.bias is not None:
        conv.bias.zero_()
    taps = conv.weight.shape[2:]
    if kernel is None:
        kernel = torch.zeros(taps)
        kernel[tuple(t // 2 for t in taps)] = 1.0
    for source, target in mapping.items():
        if source < conv.weight.shape[1] and target < conv.weight.shape[0]:
            conv.weight[target].zero_()
            conv.weight[target, source] = kernel


def _channel_identity(conv: nn.Module, kernel: torch.Tensor | None = None) -> None:
    _identity(conv, {i: i for i in range(min(conv.weight.shape[0], conv.weight.shape[1]))}, kernel)


def _references(conv: nn.Module, norm: nn.GroupNorm, signals: list[int]) -> None:
    """Channels 1 and 2 of each group holding a signal get the fixed levels +REFERENCE and -REFERENCE; the norm's
    affine puts every signal channel where SiLU is nearly linear."""
    per_group = norm.num_channels // norm.num_groups
    if per_group < 3:
        raise ValueError(f"{norm.num_channels} channels in {norm.num_groups} groups: the final levels need at least "
                         "3 channels per group (2 references and the signal)")
    for signal in signals:
        first = signal - signal % per_group
        for offset, level in ((1, REFERENCE), (2, -REFERENCE)):
            conv.weight[first + offset].zero_()
            conv.bias[first + offset] = level
        norm.bias[signal] = SILU_SHIFT


def _fit_last_layer(conv: nn.Module, features: torch.Tensor, targets: torch.Tensor, sources: dict[int, int]) -> None:
    """Output channel c of the (centre tap of) ``conv`` := a c + b fitted by least squares on feature channel
    ``sources[c]``; output channels without a source stay zero.

    The one-variable fit in closed form, in float64 sums (``a = cov(x, y) / var(x)``, ``b = mean(y) - a mean(x)``):
    ``torch.linalg.lstsq`` gave different last bits in different processes (LAPACK through MKL depends on memory
    alignment), and a training run must repeat exactly.
    """
    conv.weight.zero_()
    conv.bias.zero_()
    centre = tuple(t // 2 for t in conv.weight.shape[2:])
    for target, source in sources.items():
        x = features[:, source].flatten().double()
        y = targets[:, target].flatten().double()
        xm, ym = x.mean(), y.mean()
        gain = ((x - xm) * (y - ym)).sum() / ((x - xm) ** 2).sum().clamp_min(1e-12)
        conv.weight[(target, source, *centre)] = gain.float()
        conv.bias[target] = (ym - gain * xm).float()


@torch.no_grad()
def thumbnail_init(vae: nn.Module, calibration: torch.Tensor) -> None:
    """Initialise an ``AutoencoderKLTemporalDecoder`` as described in the module docstring, in place.

    ``calibration``: images (N, 3, H, W) in [0, 1] for the least-squares fit of the two ``conv_out`` layers.
    """
    encoder, decoder = vae.encoder, vae.decoder
    per_group_in = encoder.conv_norm_out.num_channels // encoder.conv_norm_out.num_groups
    per_group_out = decoder.conv_norm_out.num_channels // decoder.conv_norm_out.num_groups
    latent_channels = vae.config.latent_channels
    _zero_branches(vae)

    # encoder: R, G, B at the first channel of groups 0, 1, 2 of the last level (the identity maps between keep
    # channel numbers; the middle levels have one channel per group, so any channel is a group start there)
    rgb_in = [c * per_group_in for c in range(3)]
    _identity(encoder.conv_in, dict(enumerate(rgb_in)))
    average = torch.zeros(3, 3)
    average[:2, :2] = 0.25                        # with diffusers' (0, 1, 0, 1) padding: the 2x2 block average
    for block in encoder.down_blocks:
        for resnet in block.resnets:
            if resnet.conv_shortcut is not None:
                _channel_identity(resnet.conv_shortcut)
        for down in block.downsamplers or []:
            _channel_identity(down.conv, average)
    _references(encoder.mid_block.resnets[-1].conv2, encoder.conv_norm_out, rgb_in)
    _identity(vae.quant_conv, {i: i for i in range(2 * latent_channels)})

    # decoder: latent channel c to the first channel of group c of the last (full-resolution) level
    rgb_out = [c * per_group_out for c in range(3)]
    _identity(decoder.conv_in, dict(enumerate(rgb_out)))
    smooth = torch.tensor([1.0, 2.0, 1.0]) / 4
    for block in decoder.up_blocks:
        for resnet in block.resnets:
            shortcut = resnet.spatial_res_block.conv_shortcut
            if shortcut is not None:
                _channel_identity(shortcut)
        for up in block.upsamplers or []:
            _channel_identity(up.conv, smooth.view(3, 1) * smooth.view(1, 3))
    _references(decoder.up_blocks[-1].resnets[-1].spatial_res_block.conv2, decoder.conv_norm_out, rgb_out)
    _identity(decoder.time_conv_out, {0: 0, 1: 1, 2: 2})

    # the two conv_out layers, fitted: latent = block averages of the colours in [-1, 1]; output = the colours
    pixels = calibration * 2 - 1
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    h = encoder.conv_in(pixels)
    for block in encoder.down_blocks:
        h = block(h)
    h = encoder.conv_act(encoder.conv_norm_out(encoder.mid_block(h)))
    blocks = nn.functional.avg_pool2d(pixels, factor)
    _fit_last_layer(encoder.conv_out, h, blocks, dict(enumerate(rgb_in)))
    latents = vae.encode(pixels).latent_dist.mode()
    g = decoder.conv_in(latents)
    frames = torch.zeros(1, latents.shape[0], dtype=latents.dtype)
    g = decoder.mid_block(g, image_only_indicator=frames)
    for block in decoder.up_blocks:
        g = block(g, image_only_indicator=frames)
    g = decoder.conv_act(decoder.conv_norm_out(g))
    _fit_last_layer(decoder.conv_out, g, pixels, dict(enumerate(rgb_out)))


@torch.no_grad()
def unet_init(unet: nn.Module) -> None:
    """Start the video UNet with identity blocks, references before its last GroupNorm, and a zero output.

    The same reasoning as for the VAE: every residual branch ends in zeros (ResNet blocks, spatial and temporal, and
    each spatio-temporal transformer's output projection), so the UNet starts as its main path; the last block puts
    fixed levels +-REFERENCE on two channels of every group of the final GroupNorm, which then passes the other
    channels' levels almost linearly (a flat latent region's value can be predicted); ``conv_out`` starts at zero,
    so the first prediction is F = 0 (the denoiser returns c_skip x) and learning starts from a quiet network.
    """
    from diffusers.models.resnet import ResnetBlock2D, TemporalResnetBlock
    from diffusers.models.transformers.transformer_temporal import TransformerSpatioTemporalModel

    for module in unet.modules():
        if isinstance(module, (ResnetBlock2D, TemporalResnetBlock)):
            module.conv2.weight.zero_()
            module.conv2.bias.zero_()
        elif isinstance(module, TransformerSpatioTemporalModel):
            module.proj_out.weight.zero_()
            module.proj_out.bias.zero_()
    last = unet.up_blocks[-1]
    projection = last.attentions[-1].proj_out if getattr(last, "attentions", None) else \
        last.resnets[-1].spatial_res_block.conv2
    norm = unet.conv_norm_out
    per_group = norm.num_channels // norm.num_groups
    if per_group < 3:
        raise ValueError(f"the UNet's last level has {norm.num_channels} channels in {norm.num_groups} groups: "
                         "references need at least 3 channels per group")
    for group in range(norm.num_groups):
        for offset, level in ((0, REFERENCE), (1, -REFERENCE)):
            projection.weight[group * per_group + offset].zero_()
            projection.bias[group * per_group + offset] = level
    unet.conv_out.weight.zero_()
    unet.conv_out.bias.zero_()
