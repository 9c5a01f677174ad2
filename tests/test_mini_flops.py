"""Forward-cost counting: the DiT paper's Table 4 and SVD's UNet per sampling step, from code."""

import pytest

from svd_lab.mini import flops


@pytest.mark.parametrize("name", sorted(flops.DIT_PAPER_GFLOPS))
def test_dit_table4_within_one_percent(name):
    cost = flops.dit_cost(name)
    paper = flops.DIT_PAPER_GFLOPS[name]
    assert abs(cost.gmacs / paper - 1) < 0.01, (name, cost.gmacs, paper)
    assert cost.flops == 2 * cost.macs


@pytest.mark.parametrize("size,params", [("S", 33e6), ("B", 130e6), ("L", 458e6), ("XL", 675e6)])
def test_dit_parameter_counts(size, params):
    assert abs(flops.dit_cost(f"{size}/2").parameters / params - 1) < 0.01


@pytest.mark.slow
def test_svd_unet_cost_per_step():
    pytest.importorskip("diffusers")
    from svd_lab.svd.cost import svd_unet_cost

    cost = svd_unet_cost("svd")
    assert abs(cost.macs / 44.8e12 - 1) < 0.005  # 89.6 TFLOP for the guidance batch of 28 frames
    assert cost.parameters == 1_524_623_082
    xt = svd_unet_cost("svd_xt")
    assert abs(xt.flops / 159.9e12 - 1) < 0.005
