"""The video DiT: spacetime patches, adaLN-Zero, conditioning, and the autoencoder's shapes."""

import pytest
import torch

from svd_lab.mini.autoencoder import FrameAutoencoder
from svd_lab.mini.dit import (
    DiTBlock,
    DiTConfig,
    SinusoidalLabelEmbedder,
    VideoDiT,
    dit_paper_config,
    patchify,
    unpatchify,
)


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
    with pytest.raises(ValueError, match="label_embedding must be one of"):
        DiTConfig(label_embedding="onehot")


def test_sinusoidal_label_embedding_orders_labels_and_has_its_own_null_vector():
    torch.manual_seed(0)
    emb = SinusoidalLabelEmbedder(num_classes=8, hidden=32, dropout=0.1)
    emb.reset_parameters()
    emb.eval()
    out = emb(torch.tensor([0, 1, 7, 8, 8]))
    assert out.shape == (5, 32)
    # the null label (8) is the learned null vector, for every sample, and differs from every real label
    assert torch.equal(out[3], emb.null.detach()) and torch.equal(out[3], out[4])
    assert not torch.allclose(out[3], out[2])
    # an ordered micro-condition: bucket 0 starts closer to bucket 1 than to bucket 7 (as SVD's motion bucket)
    assert (out[0] - out[1]).norm() < (out[0] - out[2]).norm()
    # training drops labels to the null vector at the configured rate; eval never does
    emb.train()
    dropped = (emb(torch.zeros(4000, dtype=torch.long)) == emb.null.detach()).all(dim=1).float().mean()
    assert 0.08 < dropped < 0.12
    emb.eval()
    assert not (emb(torch.zeros(100, dtype=torch.long)) == emb.null.detach()).all(dim=1).any()


def test_video_dit_with_sinusoidal_labels_starts_at_zero_and_hears_the_label():
    torch.manual_seed(0)
    model = VideoDiT(DiTConfig(hidden=32, depth=2, heads=4, label_embedding="sincos")).eval()
    x = torch.randn(1, 8, 4, 8, 8)
    ff = torch.randn(1, 1, 4, 8, 8)
    assert torch.equal(model(x, torch.tensor(0.1), {"labels": torch.tensor([2]), "first_frame": ff}),
                       torch.zeros(1, 8, 4, 8, 8))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    outs = [model(x, torch.tensor(0.1), {"labels": torch.tensor([b]), "first_frame": ff}) for b in (2, 5, 8)]
    assert not torch.allclose(outs[0], outs[1]) and not torch.allclose(outs[0], outs[2])


def test_autoencoder_shapes():
    ae = FrameAutoencoder()
    x = torch.rand(2, 8, 1, 32, 32) * 2 - 1
    z = ae.encode(x)
    assert z.shape == (2, 8, 4, 8, 8)
    assert ae.decode(z).shape == x.shape
