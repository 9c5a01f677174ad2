"""SVD's UNet taken apart (svd_lab.svd.anatomy): parameters by kind on the full-size model (meta device), and the
frame-mixing experiment that tells the temporal layers from the per-frame ones."""

from __future__ import annotations

import collections

import pytest
import torch

from svd_lab.svd import anatomy
from svd_lab.svd.components import build_components


def test_full_size_parameters_by_kind_add_up():
    unet = build_components("full", "svd", device="meta").unet
    groups = anatomy.parameter_groups(unet)
    assert sum(groups.values()) == 1_524_623_082 and groups.get("other", 0) == 0
    temporal = groups["temporal ResNet (3-D conv over frames)"] + groups["temporal attention (across frames)"]
    # the temporal layers added to the image UNet: about 43% of SVD's UNet (measured 656 M of 1,525 M)
    assert 0.40 < temporal / sum(groups.values()) < 0.46
    assert groups["spatial/temporal blend (AlphaBlender)"] == 38       # one learned scalar per blend


@pytest.fixture(scope="module")
def tiny_rows():
    unet = build_components("tiny", "svd", seed=0).unet
    cfg = unet.config
    latents = torch.randn(1, 4, cfg.in_channels, 8, 8, generator=torch.Generator().manual_seed(0))
    cond = {"timestep": torch.tensor(1.0), "encoder_hidden_states": torch.randn(1, 1, cfg.cross_attention_dim),
            "added_time_ids": torch.tensor([[6.0, 127.0, 0.02]])}
    return anatomy.frame_mixing(unet, latents, cond)


def test_exactly_the_temporal_layers_mix_frames(tiny_rows):
    verdicts = collections.defaultdict(set)
    for row in tiny_rows:
        verdicts[row.kind].add(row.mixes_frames)
    assert verdicts["temporal ResNet (3-D conv over frames)"] == {True}
    assert verdicts["temporal attention (across frames)"] == {True}
    assert verdicts["spatial ResNet (2-D conv, per frame)"] == {False}
    assert verdicts["spatial attention (per frame; cross-attention to CLIP)"] == {False}
    assert verdicts["spatial/temporal blend (AlphaBlender)"] == {False}
    spatial = [r.leak for r in tiny_rows if not r.mixes_frames]
    assert max(spatial) == 0.0                                       # exactly: nothing leaks to other frames
    assert min(r.leak for r in tiny_rows if r.mixes_frames) > 0.01


def test_a_change_that_never_reaches_a_layer_is_an_error_not_a_verdict():
    class Frozen(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.spatial_res_block = torch.nn.Identity()

        def forward(self, x, **cond):
            return self.spatial_res_block(torch.zeros_like(x).flatten(0, 1)) * 0

    with pytest.raises(ValueError, match="did not reach"):
        anatomy.frame_mixing(Frozen(), torch.randn(1, 3, 2, 4, 4), {})
