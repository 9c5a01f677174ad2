"""The GPU check (benchmarks/gpu_check.py), rehearsed on the CPU with the tiny profile: it runs every mode, writes
its JSON and table, and reports what a lent GPU must confirm. The GPU itself is never a test dependency."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


def test_the_gpu_check_runs_end_to_end_on_the_cpu_with_the_tiny_profile(tmp_path):
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--profile", "tiny", "--device",
                          "cpu", "--height", "64", "--width", "64", "--steps", "1", "--frames", "3", "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    table = (tmp_path / "gpu_check.md").read_text()
    assert set(report["versions"]) == {"svd", "svd_xt"}
    for version in report["versions"].values():
        assert set(version["modes"]) == {"resident", "offload", "chunked"}
        assert version["modes"]["offload"]["cpu_offload"] and version["modes"]["chunked"]["forward_chunking"]
        assert version["offload_equals_resident"] is True                   # the same weights, bit for bit
        assert version["chunking_latent_difference"] > 0                    # measured, not assumed equal
        assert version["decoding_t_2_frame_difference"] > 0
        for mode in version["modes"].values():
            assert mode["extrapolated_seconds"] > mode["decoding_seconds"]
    assert "EXTRAPOLATED" in table and "bit for bit" in table


def test_without_cuda_the_full_check_says_where_it_runs(tmp_path):
    import torch

    if torch.cuda.is_available():
        return
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 2 and "lent GPU" in run.stdout
    assert not (tmp_path / "gpu_check.json").exists()
