"""svd-lab batch: the manifest, a bad image among good ones, resuming, never overwriting, and two accelerate
processes on the CPU sharing the work -- including a run killed midway and resumed -- with no job done twice."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from svd_lab import batches as batch

REPO = Path(__file__).resolve().parents[1]
TINY = {"num_frames": 2, "num_steps": 2}


@pytest.fixture(scope="module")
def tiny_pipe():
    from svd_lab.svd.profiles import load_pipeline

    pipe, _ = load_pipeline("svd", profile="tiny", device="cpu", progress=False)
    return pipe


@pytest.fixture()
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("rocket", "coffee"):
        shutil.copy(REPO / "assets" / f"{name}.png", folder / f"{name}.png")
    (folder / "broken.png").write_bytes(b"this is not a PNG")
    (folder / "notes.txt").write_text("not an image suffix: ignored")
    return folder


def _done_events(out: Path) -> Counter:
    return Counter(e["job"] for e in batch.read_manifest(out) if e["status"] == "done")


def test_plan_is_stable_and_names_every_job(images):
    found = batch.find_images(images)
    assert [p.name for p in found] == ["broken.png", "coffee.png", "rocket.png"]
    a = batch.plan_jobs(found, [1, 2], [64, 255], **TINY)
    b = batch.plan_jobs(batch.find_images(str(images / "*.png")), [1, 2], [64, 255], **TINY)
    assert [j.id for j in a] == [j.id for j in b] and len(a) == 12 and len({j.id for j in a}) == 12
    assert len({j.output_name for j in a}) == 12
    with pytest.raises(ValueError, match="no such folder"):
        batch.find_images(images / "missing")
    with pytest.raises(ValueError, match="unknown sampling option"):
        batch.plan_jobs(found, [1], None, num_frame=3)


def test_a_bad_image_fails_its_own_jobs_and_the_run_goes_on(images, tmp_path, tiny_pipe):
    out = tmp_path / "out"
    jobs = batch.plan_jobs(batch.find_images(images), [1, 2], None, **TINY)
    result = batch.run_batch(jobs, out, pipe=tiny_pipe, progress=False, log=lambda m: None)
    assert result.counts == {"done": 4, "failed": 2}
    failed = [j for j in result.jobs if j["status"] == "failed"]
    assert all("broken.png" in j["image"] and "not an image" in j["error"] for j in failed)
    for video in result.videos():
        assert batch.video_is_complete(video, 2)
    # the manifest holds each job's parameters, status and output
    events = batch.read_manifest(out)
    planned = [e for e in events if e["status"] == "planned"]
    model = batch.model_identity(tiny_pipe)
    assert {e["params"]["id"] for e in planned} == {j.for_model(model).id for j in jobs}
    done = [e for e in events if e["status"] == "done"]
    assert all(e["output"].endswith(".mp4") and e["frames"] == 2 and e["params"]["seed"] in (1, 2) for e in done)
    assert "4 done, 2 failed" in result.table().splitlines()[-1]
    assert "<table>" in result._repr_html_()


def test_resume_skips_finished_jobs_retries_failed_ones_and_overwrites_nothing(images, tmp_path, tiny_pipe):
    out = tmp_path / "out"
    jobs = batch.plan_jobs(batch.find_images(images), [1], None, **TINY)
    first = batch.run_batch(jobs, out, pipe=tiny_pipe, progress=False, log=lambda m: None)
    videos = {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp4")}
    failed_before = sum(e["status"] == "failed" for e in batch.read_manifest(out))
    again = batch.run_batch(jobs, out, pipe=tiny_pipe, progress=False, log=lambda m: None)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp4")} == videos        # nothing redone
    assert sum(e["status"] == "failed" for e in batch.read_manifest(out)) == failed_before + 1  # retried
    assert again.counts == {"done": 2, "failed": 1}
    assert all(n == 1 for n in _done_events(out).values())
    # a damaged video of a done job is moved aside, not overwritten, and made again
    rocket = next(j["output"] for j in first.jobs if "rocket" in j["image"])
    (out / rocket).write_bytes(b"truncated")
    batch.run_batch(jobs, out, pipe=tiny_pipe, progress=False, log=lambda m: None)
    assert (out / f"{rocket}.incomplete-1").read_bytes() == b"truncated"
    assert batch.video_is_complete(out / rocket, 2)


def test_a_claimed_job_is_not_taken_while_its_process_lives_and_is_taken_over_when_it_died(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    job = batch.Job("x.png", 1, None)
    (out / batch.CLAIMS).mkdir()
    claim = out / batch.CLAIMS / job.id
    import socket

    claim.write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname()}))   # alive
    assert not batch._claim(out, job)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    claim.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))        # gone
    assert batch._claim(out, job)
    assert json.loads(claim.read_text())["pid"] == os.getpid()


def _batch_command(images: Path, out: Path, seeds: str) -> list[str]:
    return [sys.executable, "-m", "svd_lab", "batch", str(images / "rocket.png"), str(images / "coffee.png"),
            "--out", str(out), "--seeds", seeds, "--profile", "tiny", "--frames", "2", "--steps", "2",
            "--processes", "2", "--no-progress"]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


@pytest.mark.slow
def test_two_accelerate_processes_share_the_work_with_no_job_done_twice(images, tmp_path):
    out = tmp_path / "out"
    run = subprocess.run(_batch_command(images, out, "1,2,3"), env=_env(), capture_output=True, text=True, check=False,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    events = batch.read_manifest(out)
    claimed_by = Counter(e["process"] for e in events if e["status"] == "claimed")
    assert set(claimed_by) == {0, 1}, claimed_by                       # both processes worked
    done = _done_events(out)
    assert len(done) == 6 and all(n == 1 for n in done.values())       # every job once
    assert "6 jobs: 6 done" in run.stdout and "2 processes" in run.stdout


@pytest.mark.slow
def test_a_run_killed_midway_resumes_and_finishes_every_job_once(images, tmp_path):
    out = tmp_path / "out"
    seeds = ",".join(str(s) for s in range(1, 9))                      # 16 jobs
    proc = subprocess.Popen(_batch_command(images, out, seeds), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and len(_done_events(out)) < 3:
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed: give it more jobs"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _done_events(out)
    assert 3 <= len(before) < 16
    resumed = subprocess.run(_batch_command(images, out, seeds), env=_env(), capture_output=True, text=True,
                             check=False,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    done = _done_events(out)
    assert len(done) == 16 and all(n == 1 for n in done.values()), done
    outputs = [j["output"] for j in batch.last_result(out)["jobs"]]
    assert len(outputs) == 16
    for output in outputs:
        assert batch.video_is_complete(out / output, 2)
    # a video cut off by the kill was moved aside (never overwritten); no claim is left behind
    assert not list((out / batch.CLAIMS).iterdir())


# ------------------------------------------------------------------------------------------- issue 25: bad input
def test_manifest_lines_that_are_not_events_are_skipped_with_a_warning(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    good = json.dumps({"job": "abc", "status": "planned"})
    (out / batch.MANIFEST).write_bytes(b"42\n" + good.encode() + b"\n\xff\xfe not utf-8\n[1, 2]\n{\"no\": \"job\"}\n")
    warned = []
    events = batch.read_manifest(out, warn=warned.append)
    assert events == [{"job": "abc", "status": "planned"}]
    assert len(warned) == 1 and "line 1, 3, 4, 5" in warned[0]
    with pytest.warns(UserWarning, match="not batch events"):
        assert batch.job_states(out) == {"abc": {"job": "abc", "status": "planned"}}


def test_an_event_after_a_torn_line_starts_a_line_of_its_own(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / batch.MANIFEST).write_text(json.dumps({"job": "a", "status": "done"}) + "\n" + '{"job": "b", "sta')
    batch._append(out, {"job": "c", "status": "planned"})
    with pytest.warns(UserWarning):
        events = batch.read_manifest(out)
    assert [e["job"] for e in events] == ["a", "c"]          # the torn line is lost, the new event is not


def _read_only(path: Path, monkeypatch) -> None:
    """Make ``path`` (a folder or file) unwritable: chmod, and where the tests run as root (who writes anyway) the
    write calls themselves fail as they do for a user on a read-only folder."""
    path.chmod(0o555 if path.is_dir() else 0o444)
    if os.access(path, os.W_OK):
        import builtins
        import pathlib

        def refused(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        real_open = builtins.open
        monkeypatch.setattr(pathlib.Path, "write_bytes", refused)
        monkeypatch.setattr(batch, "open", lambda f, *a, **k: refused() if str(f).startswith(str(path)) else
                            real_open(f, *a, **k), raising=False)


def test_a_read_only_output_folder_is_refused_before_any_work(images, tmp_path, tiny_pipe, monkeypatch):
    out = tmp_path / "ro"
    out.mkdir()
    _read_only(out, monkeypatch)
    sampled = []
    monkeypatch.setattr(tiny_pipe, "run", lambda *a, **k: sampled.append(1))
    try:
        with pytest.raises(ValueError, match="cannot write into"):
            batch.run_batch(batch.plan_jobs([images / "rocket.png"], [1], None, **TINY), out, pipe=tiny_pipe,
                            progress=False, log=lambda m: None)
    finally:
        out.chmod(0o755)
    assert not sampled


def test_a_read_only_manifest_is_a_clear_error(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / batch.MANIFEST).write_text("")
    _read_only(out / batch.MANIFEST, monkeypatch)
    with pytest.raises(ValueError, match=r"cannot write .*manifest\.jsonl"):
        batch._append(out, {"job": "a", "status": "planned"})


def test_jobs_of_other_weights_or_another_image_content_are_not_taken_as_done(images, tmp_path, tiny_pipe):
    from svd_lab.svd.components import build_components
    from svd_lab.svd.pipeline import SVDPipeline

    out = tmp_path / "out"
    rocket = images / "rocket.png"
    first = batch.run_batch(batch.plan_jobs([rocket], [1], None, **TINY), out, pipe=tiny_pipe, progress=False,
                            log=lambda m: None)
    assert first.counts == {"done": 1}
    # the same command with other weights (another seed of the tiny networks): a new job, and it says why
    other = SVDPipeline(build_components("tiny", "svd", seed=1), device="cpu")
    said = []
    second = batch.run_batch(batch.plan_jobs([rocket], [1], None, **TINY), out, pipe=other, progress=False,
                             log=said.append)
    assert second.counts == {"done": 1} and second.jobs[0]["id"] != first.jobs[0]["id"]
    assert any("made with other settings" in m for m in said), said
    assert len(list(out.glob("*.mp4"))) == 2                     # both videos kept, nothing overwritten
    # an image replaced under the same name is another job too
    shutil.copy(images / "coffee.png", rocket)
    third = batch.run_batch(batch.plan_jobs([rocket], [1], None, **TINY), out, pipe=tiny_pipe, progress=False,
                            log=lambda m: None)
    assert third.jobs[0]["id"] not in (first.jobs[0]["id"], second.jobs[0]["id"])
    assert len(list(out.glob("*.mp4"))) == 3


def test_a_device_this_machine_lacks_is_one_line_not_a_traceback(images, tmp_path, capsys):
    import torch

    from svd_lab.cli import main

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = main(["batch", str(images / "rocket.png"), "--out", str(tmp_path / "out"), "--device", "cuda",
                 "--frames", "2", "--steps", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "no CUDA GPU" in err and "Traceback" not in err
