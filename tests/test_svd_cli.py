"""`svd-lab sample`: the tiny profile end to end, outputs beside each other, and the errors users hit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from svd_lab.cli import main
from svd_lab.video import count_frames


@pytest.fixture(autouse=True)
def restore_threads():
    """The command sets one thread for the tiny profile; keep the rest of the session unaffected."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def png(tmp_path):
    y, x = np.mgrid[0:90, 0:120]
    path = tmp_path / "input.png"
    Image.fromarray(np.stack([x * 2, y * 2, x + y], -1).astype(np.uint8)).save(path)
    return path


@pytest.fixture()
def no_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("SVD_LAB_CHECKPOINTS", str(tmp_path / "no-checkpoints"))


@pytest.mark.slow
def test_done_when_command_writes_a_playable_four_frame_mp4(png, tmp_path):
    """The issue's acceptance command, run as a user would (a separate process, the installed entry point)."""
    entry = Path(sys.executable).parent / "svd-lab"
    exe = [str(entry)] if entry.is_file() else [sys.executable, "-m", "svd_lab"]
    out = tmp_path / "outputs"
    proc = subprocess.run([*exe, "sample", str(png), "--profile", "tiny", "--frames", "4", "--steps", "3",
                           "--out", str(out)], capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    mp4 = out / "000000.mp4"
    assert f"wrote {mp4}" in proc.stdout
    assert count_frames(mp4) == 4
    probe = subprocess.run([_ffmpeg(), "-hide_banner", "-i", str(mp4)], capture_output=True, text=True,
                           check=False).stderr
    assert "h264" in probe and "yuv420p" in probe
    params = json.loads((out / "000000.json").read_text())
    assert (params["num_frames"], params["num_steps"], params["profile"]) == (4, 3, "tiny")
    assert (out / "000000.png").is_file()


def _ffmpeg():
    from svd_lab.video import ffmpeg_executable

    return ffmpeg_executable()


def test_cpu_without_checkpoint_runs_a_small_profile_and_says_so(png, tmp_path, no_checkpoints, capsys):
    """No svd checkpoint: the small SVD shipped in the checkout (found whatever SVD_LAB_CHECKPOINTS says), or the
    tiny random networks where it is absent."""
    from svd_lab.small.model import is_present

    out = tmp_path / "o"
    assert main(["sample", str(png), "--frames", "2", "--steps", "1", "--out", str(out), "--gif",
                 "--no-progress", "--seed", "7", "--motion-bucket-id", "40"]) == 0
    captured = capsys.readouterr()
    expected = "small" if is_present() else "tiny"
    assert "no local SVD checkpoint" in captured.err and f"running the {expected} profile" in captured.err
    assert "2 frames, 64x64, 7 fps" in captured.out
    assert count_frames(out / "000000.mp4") == 2 and count_frames(out / "000000.gif") == 2
    params = json.loads((out / "000000.json").read_text())
    assert params["seed"] == 7 and params["motion_bucket_id"] == 40 and params["input_image"] == str(png)
    # a second run is numbered after the first, which stays untouched
    first = (out / "000000.mp4").read_bytes()
    assert main(["sample", str(png), "--frames", "2", "--steps", "1", "--out", str(out), "--no-progress"]) == 0
    assert (out / "000001.mp4").is_file() and (out / "000000.mp4").read_bytes() == first


def test_default_output_folder_is_outputs_version(png, tmp_path, no_checkpoints, monkeypatch, capsys):
    monkeypatch.setenv("SVD_LAB_OUTPUTS", str(tmp_path / "outs"))
    assert main(["sample", str(png), "--profile", "tiny", "--version", "svd_xt", "--frames", "2", "--steps", "1",
                 "--no-progress"]) == 0
    assert count_frames(tmp_path / "outs" / "svd_xt" / "000000.mp4") == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["{missing}"], "does not exist"),
        (["{png}", "--width", "100"], "width 100 not a multiple of 64"),
        (["{png}", "--device", "cuda"], "no CUDA GPU"),
        (["{png}", "--dtype", "float16"], "float16 on the CPU"),
        (["{png}", "--profile", "full"], "no usable svd checkpoint"),
        (["{png}", "--profile", "full", "--version", "svd_xt_image_decoder"],
         r"--checkpoint svd_xt_image_decoder.safetensors"),
        (["{png}", "--profile", "tiny", "--checkpoint", "{png}"], "drop --checkpoint"),
        (["{png}", "--frames", "0"], "num_frames and num_steps must be >= 1"),
        (["{text}"], "not an image"),
    ],
)
def test_errors_are_one_clear_line(args, message, png, tmp_path, no_checkpoints, capsys):
    if torch.cuda.is_available() and "cuda" in args:
        pytest.skip("this machine has CUDA")
    text = tmp_path / "notes.png"
    text.write_text("hello")
    values = {"png": png, "missing": tmp_path / "missing.png", "text": text}
    argv = ["sample", *[a.format(**values) for a in args], "--out", str(tmp_path / "o"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("svd-lab sample: error:")
    import re

    assert re.search(message, err), err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


@pytest.fixture()
def tiny_folder(tmp_path):
    """A valid diffusers-layout checkpoint (the tiny networks), so that file checks pass."""
    from svd_lab.svd.components import build_components
    from svd_lab.svd.loading import save_diffusers_folder

    return save_diffusers_folder(build_components("tiny", seed=0), tmp_path / "svd")


def test_full_profile_on_cpu_prints_hours_and_needs_yes(png, tmp_path, tiny_folder, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    ckpt = tiny_folder
    assert main(["sample", str(png), "--profile", "full", "--checkpoint", str(ckpt), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "full-size SVD on this CPU: about" in err and "hours" in err
    assert "rerun with --yes" in err


def test_out_of_range_micro_conditioning_warns(png, tmp_path, no_checkpoints, capsys):
    with pytest.warns(UserWarning, match="motion_bucket_id 300 is above 255"):
        assert main(["sample", str(png), "--profile", "tiny", "--frames", "1", "--steps", "1",
                     "--motion-bucket-id", "300", "--out", str(tmp_path / "o"), "--no-progress"]) == 0


# ------------------------------------------------------------------ papercuts of issue 14
def test_a_pickle_checkpoint_is_refused_with_how_to_get_safetensors(png, tmp_path, capsys):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"\x80\x04not really a pickle")
    assert main(["sample", str(png), "--checkpoint", str(ckpt), "--yes", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" not in err
    assert "never loads pickle files" in err and "svd-lab download svd --format sgm" in err


def test_the_checkpoint_is_validated_before_asking_for_yes(png, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    missing = tmp_path / "nowhere.safetensors"
    assert main(["sample", str(png), "--checkpoint", str(missing), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "--yes" not in err and "hours" not in err
    truncated = tmp_path / "svd.safetensors"
    truncated.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    assert main(["sample", str(png), "--checkpoint", str(truncated), "--no-progress"]) == 2
    assert "--yes" not in capsys.readouterr().err


def test_a_quick_full_size_estimate_needs_no_yes(png, tmp_path, tiny_folder, capsys):
    """64x64, 5 frames, 2 steps of 'full' (here: a tiny folder) is seconds: no --yes asked for, and the estimate
    says minutes, not '0.0 hours'."""
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "o"
    assert main(["sample", str(png), "--checkpoint", str(tiny_folder), "--width", "64", "--height", "64",
                 "--frames", "5", "--steps", "2", "--out", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "0.0 hours" not in err and "minutes" in err and "rerun with --yes" not in err
    assert count_frames(out / "000000.mp4") == 5


def test_out_of_range_motion_bucket_is_one_clear_warning_and_recorded(png, tmp_path, no_checkpoints, capsys):
    out = tmp_path / "o"
    with pytest.warns(UserWarning):
        assert main(["sample", str(png), "--profile", "tiny", "--frames", "1", "--steps", "1",
                     "--motion-bucket-id", "300", "--out", str(out), "--no-progress"]) == 0
    params = json.loads((out / "000000.json").read_text())
    assert params["warnings"] == [("motion_bucket_id 300 is above 255, the range SVD was trained on: expect "
                                  "extreme or broken motion")]


def test_warnings_print_as_one_line(png, tmp_path, no_checkpoints):
    proc = subprocess.run([sys.executable, "-m", "svd_lab", "sample", str(png), "--profile", "tiny", "--frames", "1",
                           "--steps", "1", "--motion-bucket-id", "300", "--out", str(tmp_path / "o"),
                           "--no-progress"], check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "motion_bucket_id 300" in line]
    assert lines == [("svd-lab sample: warning: motion_bucket_id 300 is above 255, the range SVD was trained on: "
                     "expect extreme or broken motion")]


def test_the_tiny_profile_message_does_not_claim_a_size(png, tmp_path, no_checkpoints, capsys):
    assert main(["sample", str(png), "--profile", "tiny", "--width", "128", "--height", "128", "--frames", "1",
                 "--steps", "1", "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "64x64" not in captured.err and "128x128" in captured.out


# ------------------------------------------------------------------ bad input of issue 25
@pytest.mark.parametrize("option", ["--max-guidance", "--min-guidance", "--cond-aug"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_float_options_are_refused(png, tmp_path, no_checkpoints, capsys, option, value):
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", str(png), "--profile", "tiny", f"{option}={value}", "--out", str(out), "--no-progress"])
    assert exit_info.value.code == 2
    assert "not a finite number" in capsys.readouterr().err
    assert not out.exists()                              # nothing written, not even an all-black video


def test_the_library_refuses_non_finite_guidance_too():
    from svd_lab.svd.components import build_components
    from svd_lab.svd.pipeline import SVDPipeline

    pipe = SVDPipeline(build_components("tiny", seed=0), device="cpu")
    for key in ("max_guidance", "min_guidance", "cond_aug"):
        with pytest.raises(ValueError, match=f"{key} must be a finite number"):
            pipe.resolve_params(**{key: float("nan")})


def test_a_safetensors_file_that_is_not_svd_is_refused_before_asking_for_yes(png, tmp_path, capsys):
    from safetensors.torch import save_file

    other = tmp_path / "svd.safetensors"
    save_file({"model.layer.weight": torch.zeros(4, 4), "lm_head.weight": torch.zeros(2, 4)}, str(other))
    assert main(["sample", str(png), "--checkpoint", str(other), "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--yes" not in err and "hours" not in err, err
    assert "not an SVD checkpoint" in err and str(other) in err


@pytest.mark.parametrize("kind", ["file", "read-only"])
def test_an_output_that_cannot_be_written_is_refused_before_sampling(png, tmp_path, no_checkpoints, capsys, kind,
                                                                     monkeypatch):
    import svd_lab.svd.pipeline as svd_pipeline

    out = tmp_path / "o"
    if kind == "file":
        out.write_text("a file, not a folder")
    else:
        out.mkdir()
        out.chmod(0o555)
        if os.access(out, os.W_OK):
            pytest.skip("this user writes into read-only folders (root)")
    sampled = []
    monkeypatch.setattr(svd_pipeline.SVDPipeline, "run", lambda *a, **k: sampled.append(1))
    try:
        assert main(["sample", str(png), "--profile", "tiny", "--out", str(out), "--no-progress"]) == 2
    finally:
        if kind != "file":
            out.chmod(0o755)
    err = capsys.readouterr().err
    assert ("is a file, not a folder" if kind == "file" else "cannot write into") in err
    assert not sampled


def test_the_old_names_still_work_with_a_notice(png, tmp_path, no_checkpoints, capsys):
    """`svd-lab svdmini ...` and `--profile mini` were the small SVD's names (mini is the world model's)."""
    assert main(["svdmini", "eval", "--model", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "`svd-lab svdmini` is now `svd-lab small`" in err and "holds no small SVD" in err
    from svd_lab.small.model import is_present

    if not is_present():
        return
    out = tmp_path / "o"
    assert main(["sample", str(png), "--profile", "mini", "--frames", "2", "--steps", "1", "--out", str(out),
                 "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "profile 'mini' is now called 'small'" in err and "small profile requested" in err


@pytest.mark.parametrize("extra, message", [
    (["--max-guidance", "2.5"], "give both --min-guidance and --max-guidance"),
    (["--min-guidance", "1", "--max-guidance", "nan"], "must be finite numbers"),
    (["--steps", "0"], "--steps"),
    (["--crop-seed", "-1"], "--crop-seed must be >= 0"),
])
def test_small_eval_refuses_bad_sampling_options_before_any_work(extra, message, capsys, monkeypatch):
    from svd_lab.small import metrics

    def evaluated(*args, **kwargs):
        raise AssertionError("evaluated despite a bad option")

    monkeypatch.setattr(metrics, "evaluate", evaluated)
    assert main(["small", "eval", "--quick", *extra]) == 2
    assert message in capsys.readouterr().err
