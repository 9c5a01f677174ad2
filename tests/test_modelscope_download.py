"""``svd-lab download NAME --source modelscope`` through the real ModelScope client against a loopback ModelScope
(tests/modelscopeserver.py).

Nothing of the client is mocked: modelscope-hub talks HTTP to 127.0.0.1. What the tests set is the world around it:
the endpoint (passed as ``--endpoint`` does), an empty ModelScope cache and no token, the free-space lookup, and the
faults the server injects.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from hubserver import build_small_sgm_file, build_tiny_diffusers_folder, closed_port_endpoint
from modelscopeserver import ModelScopeRepo, ModelScopeServer
from svd_lab.checkpoints import (
    CheckpointError,
    CorruptDownloadError,
    DiskSpaceError,
    HubAccessError,
    HubNetworkError,
    HubNotFoundError,
    find_checkpoint,
    inspect_path,
)
from svd_lab.checkpoints import hub as hubmod
from svd_lab.checkpoints import modelscope as msmod
from svd_lab.checkpoints.hub_errors import modelscope_hint
from svd_lab.checkpoints.verify import VerificationRecord

XT_REPO = "AI-ModelScope/stable-video-diffusion-img2vid-xt"
SGM = "svd_xt.safetensors"
UNET16 = "unet/diffusion_pytorch_model.fp16.safetensors"
TOKEN = "ms-test-token-123"


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory) -> Path:
    """The tiny profile in the diffusers layout plus a small sgm single file named as SVD-XT's."""
    folder = build_tiny_diffusers_folder(tmp_path_factory.mktemp("tiny_ms_repo"), version="svd_xt")
    build_small_sgm_file(folder / SGM)
    return folder


@pytest.fixture(autouse=True)
def isolated_modelscope(tmp_path, monkeypatch):
    """No token, an empty ModelScope cache, no progress bars, whatever the machine running the tests has."""
    for var in ("MODELSCOPE_API_TOKEN", "MODELSCOPE_ENDPOINT", "MODELSCOPE_DOMAIN", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms_cache"))
    monkeypatch.setenv("MODELSCOPE_CREDENTIALS_PATH", str(tmp_path / "ms_credentials"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no saved `modelscope login`
    monkeypatch.setenv("TQDM_DISABLE", "1")


@pytest.fixture
def ms(tiny_source):
    with ModelScopeServer() as server:
        server.add_repo(ModelScopeRepo(XT_REPO)).add_folder(tiny_source)
        yield server


def _download(ms, ckpt_dir, name="svd_xt", **kw):
    kw.setdefault("log", None)
    return msmod.download(name, dir=ckpt_dir, endpoint=ms.endpoint, **kw)


def _content_gets(ms, repo_file: str) -> list:
    """GETs of a file's bytes: its API route, or its object on the storage host for an LFS file."""
    f = ms.repos[XT_REPO].files[repo_file]
    return ms.requests_for(f"/lfs/{f.sha256}") if f.lfs else ms.requests_for(f"FilePath={repo_file}")


def test_diffusers_download_is_complete_verified_and_loadable(ms, ckpt_dir, tiny_source):
    result = _download(ms, ckpt_dir)
    ckpt = result.checkpoint
    assert ckpt.usable and ckpt.verified and ckpt.format == "diffusers" and ckpt.variant == "fp16"
    for path in result.plan.files:
        assert (ckpt_dir / "svd_xt" / path.repo_path).read_bytes() == (tiny_source / path.repo_path).read_bytes()
    record = VerificationRecord(ckpt_dir / "svd_xt")
    assert record.meta["diffusers"]["source"] == "modelscope" and record.meta["diffusers"]["repo_id"] == XT_REPO
    assert record.status(ckpt_dir / "svd_xt" / UNET16) == "verified"
    assert not (ckpt_dir / "svd_xt" / ".svd-lab" / "staging").exists()
    assert find_checkpoint("svd_xt", dir=ckpt_dir).usable
    # the LFS files came through the redirect to the storage host, the listing from the API
    assert _content_gets(ms, UNET16)[0].host == "lfs"
    assert ms.requests_for(f"/api/v1/models/{XT_REPO}/repo/files")

    import torch

    from svd_lab.svd.loading import load_checkpoint

    comps = load_checkpoint(ckpt.path, dtype=torch.float32, device="cpu", progress=False)
    assert comps.unet.dtype == torch.float32

    # a second run hashes nothing, fetches nothing
    before = len(ms.requests)
    again = _download(ms, ckpt_dir)
    assert again.fetched == [] and sorted(again.reused) == sorted(f.repo_path for f in result.plan.files)
    assert [r.path for r in ms.requests[before:]] == [(f"/api/v1/models/{XT_REPO}/repo/files?Revision=master"
                                                     f"&Recursive=True")]


def test_cli_sgm_file_and_dry_run(ms, ckpt_dir, tiny_source, capsys):
    from svd_lab.cli import main

    argv = ["download", "svd_xt", "--format", "sgm", "--source", "modelscope", "--dir", str(ckpt_dir),
            "--endpoint", ms.endpoint, "--quiet"]
    assert main(argv + ["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert XT_REPO in out and "fetch" in out and SGM in out
    assert main(argv) == 0
    assert "downloaded" in capsys.readouterr().out
    assert (ckpt_dir / "svd_xt" / SGM).read_bytes() == (tiny_source / SGM).read_bytes()
    assert inspect_path(ckpt_dir / "svd_xt" / SGM).verified


def test_interrupted_download_resumes_in_a_new_process(ms, ckpt_dir, tiny_source, tmp_path):
    """A download process killed mid-file leaves its partial bytes in staging; the next run sends a Range request
    from there and finishes the same file."""
    size = ms.repos[XT_REPO].files[SGM].size
    stall_at = size // 2
    ms.faults.stall[SGM] = stall_at
    partial_glob = f".svd-lab/staging/modelscope/*/{SGM}.incomplete"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-m", "svd_lab", "download", "svd_xt", "--format", "sgm", "--source",
                              "modelscope", "--dir", str(ckpt_dir), "--endpoint", ms.endpoint, "--quiet"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            partials = list((ckpt_dir / "svd_xt").glob(partial_glob))
            if partials and partials[0].stat().st_size >= stall_at - 1024 * 1024:
                break
            assert child.poll() is None, child.stdout.read().decode()
            time.sleep(0.05)
        else:
            pytest.fail("the download never got half way")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        ms.faults.released.set()
        if child.poll() is None:
            child.kill()
    kept = next(iter((ckpt_dir / "svd_xt").glob(partial_glob))).stat().st_size
    assert 0 < kept < size
    assert not (ckpt_dir / "svd_xt" / SGM).exists()  # nothing incomplete under the final name
    assert find_checkpoint("svd_xt", dir=ckpt_dir) is None

    plan = msmod.plan_download("svd_xt", format="sgm", dir=ckpt_dir, endpoint=ms.endpoint)
    assert plan.files[0].partial_bytes == kept and plan.bytes_to_download == size - kept
    first_round = len(_content_gets(ms, SGM))
    result = _download(ms, ckpt_dir, format="sgm")
    resumed = _content_gets(ms, SGM)[first_round:]
    assert [(g.range, g.status) for g in resumed] == [(f"bytes={kept}-", 206)]
    assert result.downloaded_bytes == size - kept
    assert (ckpt_dir / "svd_xt" / SGM).read_bytes() == (tiny_source / SGM).read_bytes()
    assert find_checkpoint("svd_xt", dir=ckpt_dir, format="sgm").verified
    assert not (ckpt_dir / "svd_xt" / ".svd-lab" / "staging").exists()


def test_connection_cut_is_resumed_by_the_client_within_one_call(ms, ckpt_dir, tiny_source):
    ms.faults.cut[SGM] = [3_000_000]
    _download(ms, ckpt_dir, format="sgm")
    gets = _content_gets(ms, SGM)
    assert [(g.range, g.status) for g in gets] == [(None, 200), ("bytes=3000000-", 206)]
    assert (ckpt_dir / "svd_xt" / SGM).read_bytes() == (tiny_source / SGM).read_bytes()


def test_corrupted_once_is_fetched_again(ms, ckpt_dir, tiny_source):
    ms.faults.corrupt[UNET16] = 1
    result = _download(ms, ckpt_dir)
    assert len(_content_gets(ms, UNET16)) == 2
    assert result.checkpoint.verified
    assert (ckpt_dir / "svd_xt" / UNET16).read_bytes() == (tiny_source / UNET16).read_bytes()


def test_persistently_corrupted_file_is_refused_and_nothing_looks_complete(ms, ckpt_dir):
    ms.faults.corrupt[UNET16] = 100
    with pytest.raises(CorruptDownloadError) as info:
        _download(ms, ckpt_dir)
    message = str(info.value)
    assert "corrupted" in message and "nothing was put under its final name" in message and "hf-mirror" in message
    assert not (ckpt_dir / "svd_xt" / UNET16).exists()
    staged = [p for p in (ckpt_dir / "svd_xt" / ".svd-lab").rglob("*") if p.is_file() and "unet" in p.as_posix()]
    assert staged == []  # neither a partial nor a rejected copy is left
    found = find_checkpoint("svd_xt", dir=ckpt_dir)
    assert found is None or not found.usable
    # the files before it were verified and placed, and are reused by the next run
    ms.faults.corrupt.clear()
    again = _download(ms, ckpt_dir)
    assert UNET16 in again.fetched and again.reused and again.checkpoint.usable


def test_a_release_without_a_confirmed_modelscope_repository_says_where_else_to_get_it(ckpt_dir):
    with pytest.raises(CheckpointError) as info:
        msmod.download("svd", dir=ckpt_dir, endpoint="http://127.0.0.1:9", log=None)
    message = str(info.value)
    assert "no ModelScope repository of svd" in message and "svd_xt" in message
    with pytest.raises(CheckpointError, match="no ModelScope repository of svd_xt_image_decoder"):
        msmod.download("svd_xt_image_decoder", format="sgm", dir=ckpt_dir, endpoint="http://127.0.0.1:9", log=None)
    assert "hf-mirror.com" in message and "obs://" in message


def test_files_missing_from_the_modelscope_copy_are_named(ms, ckpt_dir):
    del ms.repos[XT_REPO].files[SGM]
    with pytest.raises(HubNotFoundError, match=f"does not contain {SGM}"):
        _download(ms, ckpt_dir, format="sgm")
    with pytest.raises(HubNotFoundError, match="revision 'v9'"):
        _download(ms, ckpt_dir, revision="v9")


def test_private_repository_errors_name_the_token_variable_and_a_token_works(ms, ckpt_dir, monkeypatch, capsys):
    repo = ms.repos[XT_REPO]
    repo.private, repo.granted_tokens = True, {TOKEN}
    with pytest.raises(HubAccessError) as info:
        _download(ms, ckpt_dir)
    assert "HTTP 401" in str(info.value) and "MODELSCOPE_API_TOKEN" in str(info.value)
    monkeypatch.setenv("MODELSCOPE_API_TOKEN", "ms-wrong-token")
    with pytest.raises(HubAccessError, match="HTTP 403"):
        _download(ms, ckpt_dir)
    assert "ms-wrong-token" not in capsys.readouterr().err
    monkeypatch.setenv("MODELSCOPE_API_TOKEN", TOKEN)  # read at call time, like every svd-lab setting
    assert _download(ms, ckpt_dir).checkpoint.usable
    assert not any(r.authorized for r in ms.requests if r.host == "lfs")  # the token stays on the API host


def test_unreachable_modelscope_is_a_network_error_naming_the_other_sources(ckpt_dir, capsys):
    from svd_lab.cli import main

    code = main(["download", "svd_xt", "--source", "modelscope", "--endpoint", closed_port_endpoint(),
                 "--dir", str(ckpt_dir), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "could not download from ModelScope" in err and "run the same command again" in err
    assert "hf-mirror.com" in err and "obs://" in err


def test_a_failed_download_leaves_no_empty_modelscope_cache_behind(ckpt_dir, tmp_path, monkeypatch):
    """The client creates its cache folder before it connects; with no network nothing arrives, and the folder it
    made (here $MODELSCOPE_CACHE, by default ~/.cache/modelscope) must not stay behind empty."""
    from svd_lab.checkpoints.errors import CheckpointError

    cache = tmp_path / "home" / ".cache" / "modelscope"
    monkeypatch.setenv("MODELSCOPE_CACHE", str(cache))
    with pytest.raises(CheckpointError, match="could not download from ModelScope"):
        msmod.download("svd_xt", dir=ckpt_dir, endpoint=closed_port_endpoint(), log=None)
    assert not (tmp_path / "home").exists()
    # a cache that existed before is left as it was
    cache.mkdir(parents=True)
    with pytest.raises(CheckpointError):
        msmod.download("svd_xt", dir=ckpt_dir, endpoint=closed_port_endpoint(), log=None)
    assert cache.is_dir()


def test_endpoint_variable_is_read_at_call_time(ms, ckpt_dir, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", ms.endpoint)
    assert msmod.download("svd_xt", dir=ckpt_dir, log=None).checkpoint.usable
    monkeypatch.delenv("MODELSCOPE_ENDPOINT")
    monkeypatch.setenv("MODELSCOPE_DOMAIN", "modelscope.example")
    assert msmod.resolve_endpoint() == "https://modelscope.example"
    with pytest.raises(CheckpointError, match="not an http"):
        msmod.resolve_endpoint("ftp://x")


def test_disk_check_refuses_before_the_first_byte(ms, ckpt_dir, monkeypatch):
    monkeypatch.setattr(hubmod, "free_bytes", lambda path: 1000)
    with pytest.raises(DiskSpaceError, match="not enough free disk space"):
        _download(ms, ckpt_dir)
    assert not any("FilePath=" in r.path or r.host == "lfs" for r in ms.requests)


def test_files_in_the_modelscope_cache_are_copied_not_downloaded(ms, ckpt_dir, tiny_source):
    from modelscope_hub import HubApi

    api = HubApi(endpoint=ms.endpoint)
    cache = os.environ["MODELSCOPE_CACHE"]
    api.download_file(XT_REPO, "model", SGM, revision="master", cache_dir=cache)  # an earlier modelscope download
    before = len(_content_gets(ms, SGM))
    plan = msmod.plan_download("svd_xt", format="sgm", dir=ckpt_dir, endpoint=ms.endpoint)
    assert plan.files[0].action is hubmod.Action.CACHE
    result = _download(ms, ckpt_dir, format="sgm")
    assert len(_content_gets(ms, SGM)) == before  # not downloaded again
    assert (ckpt_dir / "svd_xt" / SGM).read_bytes() == (tiny_source / SGM).read_bytes()
    assert result.checkpoint.verified


def test_hub_errors_mention_modelscope(ckpt_dir):
    with pytest.raises(HubNetworkError) as info:
        hubmod.download("svd", dir=ckpt_dir, endpoint=closed_port_endpoint(), progress=False, log=None)
    message = str(info.value)
    assert "ModelScope has a copy of svd_xt only (svd-lab download svd_xt --source modelscope)" in message
    assert "hf-mirror.com" in message and "obs://" in message
    assert "svd-lab download svd_xt --source modelscope" in modelscope_hint("svd_xt")
