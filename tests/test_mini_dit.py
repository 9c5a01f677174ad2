"""The video DiT: spacetime patches, adaLN-Zero, conditioning, and the autoencoder's shapes."""

import pytest
import torch

from svd_lab.mini.autoencoder import FrameAutoencoder
from svd_lab.mini.dit import DiTBlock, DiTConfig, VideoDiT, dit_paper_config, patchify, unpatchify


@pytest.mark.parametrize("pt,p", [(1, 1), (2, 2), (1, 4), (4, 2)])
def test_patchify_round_trip(pt, p):
    x = torch.randn(2, 8, 3, 8, 16)
    tokens = patchify(x, pt, p)
    assert tokens.shape == (2, (8 // pt) * (8 // p) * (16 // p), pt * p * p * 3)
    assert torch.equal(unpatchify(tokens, (8 // pt, 8 // p, 16 // p), pt, p), x)


def test_patchify_groups_one_spacetime_patch_per_token():
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 1, 4, 4)
    tokens = patchify(x, 2, 2)
    # first token: frames 0-1, rows 0-1, cols 0-1, ordered (dt, dy, dx, c)
    assert tokens[0, 0].tolist() == [0, 1, 4, 5, 16, 17, 20, 21]


def test_patch_embedding_sees_the_same_patches_as_patchify():
    cfg = DiTConfig(frames=4, height=8, width=8, in_channels=2, cond_channels=0, out_channels=2, hidden=16,
                    depth=1, heads=2, patch_t=2, patch=2)
    model = VideoDiT(cfg)
    x = torch.randn(3, 4, 2, 8, 8)
    conv_tokens = model.patch_embed(x.transpose(1, 2)).flatten(2).transpose(1, 2)
    w = model.patch_embed.weight.permute(0, 2, 3, 4, 1).reshape(16, -1)  # (D, pt*p*p*C) in (dt, dy, dx, c) order
    linear_tokens = patchify(x, 2, 2) @ w.T + model.patch_embed.bias
    assert torch.allclose(conv_tokens, linear_tokens, atol=1e-5)


def test_adaln_zero_blocks_are_identity_at_init():
    block = DiTBlock(32, 4)
    x, c = torch.randn(2, 10, 32), torch.randn(2, 32)
    assert torch.equal(block(x, c), x)
    # after the modulation layer learns anything, the block is no longer the identity
    torch.nn.init.normal_(block.adaLN_modulation[-1].weight, std=0.1)
    assert not torch.allclose(block(x, c), x)


def test_untrained_model_outputs_zero_and_every_block_is_identity():
    model = VideoDiT(DiTConfig(hidden=32, depth=2, heads=4))
    x = torch.randn(2, 8, 4, 8, 8)
    cond = {"labels": torch.tensor([0, 7]), "first_frame": torch.randn(2, 1, 4, 8, 8)}
    out = model(x, torch.tensor(0.3), cond)
    assert out.shape == (2, 8, 4, 8, 8)
    assert torch.equal(out, torch.zeros_like(out))


def test_conditioning_reaches_the_output():
    torch.manual_seed(0)
    model = VideoDiT(DiTConfig(hidden=32, depth=2, heads=4)).eval()
    for p in model.parameters():  # leave init: perturb every weight so every path is live
        torch.nn.init.normal_(p, std=0.05)
    x = torch.randn(1, 8, 4, 8, 8)
    ff = torch.randn(1, 1, 4, 8, 8)
    base = model(x, torch.tensor(0.1), {"labels": torch.tensor([2]), "first_frame": ff})
    assert not torch.allclose(base, model(x, torch.tensor(0.1), {"labels": torch.tensor([5]), "first_frame": ff}))
    assert not torch.allclose(base, model(x, torch.tensor(0.1), {"labels": torch.tensor([2]), "first_frame": -ff}))
    assert not torch.allclose(base, model(x, torch.tensor(-0.5), {"labels": torch.tensor([2]), "first_frame": ff}))
    null = model(x, torch.tensor(0.1), {"labels": model.null_labels(1), "first_frame": ff})
    assert null.shape == base.shape


def test_paper_configs_are_one_frame_videos():
    cfg = dit_paper_config("XL/2")
    assert (cfg.frames, cfg.height, cfg.patch, cfg.hidden, cfg.depth, cfg.heads) == (1, 32, 2, 1152, 28, 16)
    assert cfg.num_tokens == 256
    with pytest.raises(ValueError, match="unknown DiT model"):
        dit_paper_config("M/3")


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="multiples of the patch"):
        DiTConfig(frames=7, patch_t=2)


def test_autoencoder_shapes():
    ae = FrameAutoencoder()
    x = torch.rand(2, 8, 1, 32, 32) * 2 - 1
    z = ae.encode(x)
    assert z.shape == (2, 8, 4, 8, 8)
    assert ae.decode(z).shape == x.shape
