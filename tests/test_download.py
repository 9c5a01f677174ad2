"""Downloads through the real huggingface_hub client against a loopback hub (tests/hubserver.py).

Nothing of huggingface_hub is mocked: the client talks HTTP to 127.0.0.1. What the tests change is the world around
it: the endpoint (passed explicitly, as ``--endpoint`` does), an empty HF cache and token file, the free-space lookup
(``svd_lab.checkpoints.hub.free_bytes``), and faults the server injects (cut connections, outages, corrupted bodies,
gated answers).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from hubserver import (
    HubRepo,
    HubServer,
    build_small_sgm_file,
    build_tiny_diffusers_folder,
    closed_port_endpoint,
)
from svd_lab.checkpoints import (
    CorruptDownloadError,
    DiskSpaceError,
    HubAccessError,
    HubNetworkError,
    HubNotFoundError,
    ObsUnavailableError,
    UnusableCheckpointError,
    find_checkpoint,
    inspect_path,
    present_checkpoints,
    require_usable,
)
from svd_lab.checkpoints import hub as hubmod
from svd_lab.checkpoints import obs as obsmod
from svd_lab.checkpoints.verify import VerificationRecord, sha256_file

SVD_REPO = "stabilityai/stable-video-diffusion-img2vid"
XT11_REPO = "stabilityai/stable-video-diffusion-img2vid-xt-1-1"
GRANTED_TOKEN = "hf_testGrantedTokenAbc123"
UNET16 = "unet/diffusion_pytorch_model.fp16.safetensors"
VAE16 = "vae/diffusion_pytorch_model.fp16.safetensors"
SGM = "svd.safetensors"
CHUNK = 10 * 1024 * 1024  # huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE


@pytest.fixture(scope="session")
def tiny_source(tmp_path_factory) -> Path:
    """The tiny profile in the hub's diffusers layout (fp32 and fp16 files) plus a small sgm single file."""
    folder = build_tiny_diffusers_folder(tmp_path_factory.mktemp("tiny_svd_repo"))
    build_small_sgm_file(folder / "svd.safetensors")
    return folder


@pytest.fixture(autouse=True)
def isolated_hf(tmp_path, monkeypatch):
    """No token, an empty HF cache, online mode, no progress bars: whatever the machine running the tests has."""
    from huggingface_hub import constants

    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf_home" / "token"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("TQDM_DISABLE", "1")


@pytest.fixture
def hub(tiny_source):
    with HubServer() as server:
        repo = server.add_repo(HubRepo(SVD_REPO, license="other", license_name="stable-video-diffusion-community"))
        repo.add_folder(tiny_source)
        gated = server.add_repo(HubRepo(XT11_REPO, gated=True, granted_tokens={GRANTED_TOKEN},
                                        license_name="stable-video-diffusion-1-1-community"))
        gated.add_folder(tiny_source, prefix="")
        gated.files["svd_xt_1_1.safetensors"] = gated.files.pop("svd.safetensors")
        gated.files["svd_xt_1_1.safetensors"].path = "svd_xt_1_1.safetensors"
        yield server


def _download(hub, ckpt_dir, name="svd", **kw):
    kw.setdefault("progress", False)
    kw.setdefault("log", None)
    return hubmod.download(name, dir=ckpt_dir, endpoint=hub.endpoint, **kw)


def _content_gets(server, repo_file) -> list:
    """GETs of ``repo_file``'s bytes (its LFS object on the storage host)."""
    sha = server.repos[SVD_REPO].files[repo_file].sha256
    return server.requests_for(f"/lfs/{sha}")


# ------------------------------------------------------------------------------------------- success paths


@pytest.mark.slow
def test_download_diffusers_then_load_and_sample(hub, ckpt_dir, tiny_source):
    result = _download(hub, ckpt_dir)
    ckpt = result.checkpoint
    assert ckpt.usable and ckpt.verified and ckpt.format == "diffusers" and ckpt.variant == "fp16"
    assert ckpt.path == ckpt_dir / "svd"
    # every file under its final name, byte-identical to what the hub serves, its sha256 recorded
    record = VerificationRecord(ckpt.path)
    for rel in ["model_index.json", UNET16, VAE16, "image_encoder/model.fp16.safetensors",
                "scheduler/scheduler_config.json", "feature_extractor/preprocessor_config.json"]:
        assert (ckpt.path / rel).read_bytes() == (tiny_source / rel).read_bytes()
        assert record.get(ckpt.path / rel).sha256 == hashlib.sha256((tiny_source / rel).read_bytes()).hexdigest()
    assert not (ckpt.path / "unet" / "diffusion_pytorch_model.safetensors").exists()  # fp32 not fetched
    assert not (ckpt.path / ".svd-lab" / "staging").exists()
    assert find_checkpoint("svd", dir=ckpt_dir).path == ckpt.path

    # load it the way the course does, and make a (tiny) video from it
    import torch
    from PIL import Image

    from svd_lab.svd.loading import load_checkpoint
    from svd_lab.svd.profiles import load_pipeline

    comps = load_checkpoint(ckpt.path, dtype=torch.float32, device="cpu", progress=False)
    assert comps.unet.config.num_frames == 3 and comps.unet.dtype == torch.float32
    pipe, choice = load_pipeline("svd", profile="full", checkpoint=str(ckpt.path), device="cpu", dtype="float32",
                                 progress=False)
    assert choice.profile == "full"
    video = pipe(Image.new("RGB", (64, 64), (200, 80, 40)), num_frames=3, num_steps=2, height=64, width=64,
                 seed=0, decoding_t=3, progress=False)
    assert video.frames.shape == (3, 64, 64, 3)

    # a second run finds everything verified: only the repo listing is asked, no file is transferred again
    before = len(hub.requests)
    again = _download(hub, ckpt_dir)
    assert again.fetched == [] and len(again.reused) == 9
    assert [r.path.split("?")[0] for r in hub.requests[before:]] == [f"/api/models/{SVD_REPO}/revision/main"]


@pytest.mark.slow
def test_sgm_download_loads_through_the_converter(ckpt_dir):
    """Stability's tiny reference file (shared fixtures) served as svd.safetensors: download, then load it the
    course's way (svd_lab.svd.loading -> svd_lab.convert)."""
    from svd_lab.paths import shared_fixtures

    fixtures = shared_fixtures()
    source = fixtures / "sgm" / "tiny" / "svd_tiny.safetensors" if fixtures else None
    if source is None or not source.is_file():
        pytest.skip("shared fixtures (sgm/tiny/svd_tiny.safetensors) not available")
    from svd_lab.svd.loading import load_checkpoint

    with HubServer() as server:
        server.add_repo(HubRepo(SVD_REPO)).add("svd.safetensors", source.read_bytes())
        ckpt = hubmod.download("svd", format="sgm", dir=ckpt_dir, endpoint=server.endpoint, progress=False,
                               log=None).checkpoint
    assert ckpt.verified and ckpt.path.read_bytes() == source.read_bytes()
    components = load_checkpoint(ckpt.path, progress=False)
    assert components.version == "svd" and components.parameter_counts()["unet"] == 1_834_038


def test_pipeline_auto_profile_finds_downloads_through_the_registry(hub, ckpt_dir, monkeypatch):
    import torch

    from svd_lab.svd.profiles import choose_profile

    monkeypatch.setenv("SVD_LAB_CHECKPOINTS", str(ckpt_dir))
    gpu = torch.device("cuda")  # only the device type is consulted: the choice is testable without a GPU
    # nothing downloaded yet: the shipped small SVD (found whatever SVD_LAB_CHECKPOINTS says)
    assert choose_profile("auto", "svd", None, gpu).profile == "small"
    ckpt = _download(hub, ckpt_dir).checkpoint
    choice = choose_profile("auto", "svd", None, gpu)
    assert choice.profile == "full" and choice.checkpoint == str(ckpt.path)
    assert choose_profile("auto", "svd", None, torch.device("cpu")).profile == "small"
    assert choose_profile("auto", "svd_image_decoder", None, torch.device("cpu")).profile == "tiny"
    unet = ckpt.path / UNET16
    with open(unet, "r+b") as f:
        f.truncate(100)
    assert choose_profile("auto", "svd", None, gpu).profile == "small"  # a broken download is never chosen


def test_download_sgm_single_file_and_full_precision(hub, ckpt_dir, tiny_source):
    sgm = _download(hub, ckpt_dir, format="sgm").checkpoint
    assert sgm.format == "sgm" and sgm.usable and sgm.verified and sgm.path == ckpt_dir / "svd" / "svd.safetensors"
    full = _download(hub, ckpt_dir, variant="fp32").checkpoint
    assert full.variant is None and (full.path / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    # both formats present: the pipeline gets the diffusers folder (no conversion), sgm when asked for it
    assert find_checkpoint("svd", dir=ckpt_dir).format == "diffusers"
    assert find_checkpoint("svd", dir=ckpt_dir, format="sgm").path == sgm.path
    names = {(c.name, c.format) for c in present_checkpoints(ckpt_dir)}
    assert names == {("svd", "diffusers"), ("svd", "sgm")}


def test_downloaded_files_and_records_get_the_umask_mode(hub, ckpt_dir, tiny_source):
    """Final files are the staging files renamed: they, and the records, are made like any file of the user."""
    import stat

    previous = os.umask(0o027)  # stricter than the usual 022, so a fixed 0644 (or mkstemp's 0600) would show
    try:
        sgm = _download(hub, ckpt_dir, format="sgm").checkpoint
        ckpt = _download(hub, ckpt_dir).checkpoint
    finally:
        os.umask(previous)
    for f in (sgm.path, ckpt.path / UNET16, ckpt.path / "model_index.json", ckpt.path / ".svd-lab" / "verified.json"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o640, f


# ------------------------------------------------------------------------------------------- resume


def test_cut_connection_is_resumed_by_the_client_within_one_call(hub, ckpt_dir, tiny_source):
    size = hub.repos[SVD_REPO].files[SGM].size
    assert size > 2 * CHUNK
    hub.faults.cut[SGM] = [CHUNK + 3_000_000]
    result = _download(hub, ckpt_dir, format="sgm")
    gets = _content_gets(hub, SGM)
    # huggingface_hub retries by itself, with a Range from the last whole 10 MiB chunk it wrote
    assert [g.range for g in gets] == [None, f"bytes={CHUNK}-"]
    assert [g.status for g in gets] == [200, 206]
    assert result.checkpoint.path.read_bytes() == (tiny_source / SGM).read_bytes()


def test_interrupted_download_resumes_across_separate_calls(hub, ckpt_dir, tiny_source, capsys):
    from svd_lab.cli import main

    # the connection breaks after 13 MB and the storage host then fails: the client gives up, the call fails
    hub.faults.cut[SGM] = [CHUNK + 3_000_000]
    hub.faults.outage[SGM] = 1
    argv = ["download", "svd", "--format", "sgm", "--dir", str(ckpt_dir), "--endpoint", hub.endpoint, "--quiet"]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert "could not download" in err and "run the same command again" in err and "hf-mirror.com" in err
    partials = list((ckpt_dir / "svd" / ".svd-lab" / "staging").glob("svd.safetensors.*.partial"))
    assert len(partials) == 1 and partials[0].stat().st_size == CHUNK
    assert "10.49 MB of svd.safetensors" in err and "kept in" in err
    assert not (ckpt_dir / "svd" / SGM).exists()  # nothing incomplete under the final name
    assert find_checkpoint("svd", dir=ckpt_dir) is None
    assert present_checkpoints(ckpt_dir) == []

    # a new process, later: resumes from the kept bytes (its own Range request), not from zero
    first_round = len(_content_gets(hub, SGM))
    assert main(argv) == 0 and "downloaded" in capsys.readouterr().out
    resumed = _content_gets(hub, SGM)[first_round:]
    assert [g.range for g in resumed] == [f"bytes={CHUNK}-"] and resumed[0].status == 206
    assert (ckpt_dir / "svd" / SGM).read_bytes() == (tiny_source / SGM).read_bytes()
    assert find_checkpoint("svd", dir=ckpt_dir).verified
    assert not (ckpt_dir / "svd" / ".svd-lab" / "staging").exists()


def test_resume_against_a_server_that_ignores_range_restarts_cleanly(hub, ckpt_dir, tiny_source):
    hub.faults.cut[SGM] = [CHUNK + 1000]
    hub.faults.outage[SGM] = 1
    with pytest.raises(HubNetworkError):
        _download(hub, ckpt_dir, format="sgm")
    hub.ignore_range = True  # the next answer is 200 with the whole file: the partial bytes must not be kept twice
    ckpt = _download(hub, ckpt_dir, format="sgm").checkpoint
    assert ckpt.path.read_bytes() == (tiny_source / SGM).read_bytes()
    assert _content_gets(hub, SGM)[-1].range == f"bytes={CHUNK}-" and _content_gets(hub, SGM)[-1].status == 200


def test_a_second_download_into_the_same_folder_waits_its_turn(hub, ckpt_dir):
    from filelock import FileLock

    from svd_lab.checkpoints import CheckpointError

    (ckpt_dir / "svd" / ".svd-lab").mkdir(parents=True)
    other_notebook = FileLock(str(ckpt_dir / "svd" / ".svd-lab" / "download.lock"))
    with other_notebook, pytest.raises(CheckpointError, match="another download into .* is running"):
        _download(hub, ckpt_dir)
    assert _download(hub, ckpt_dir).checkpoint.usable


def test_interrupted_multi_file_download_keeps_finished_files(hub, ckpt_dir):
    hub.faults.outage[VAE16] = 1
    with pytest.raises(HubNetworkError, match="HTTP 503 Service Unavailable from 127.0.0.1"):
        _download(hub, ckpt_dir)
    (listed,) = present_checkpoints(ckpt_dir)
    assert not listed.usable and "incomplete, missing vae/diffusion_pytorch_model" in listed.reason
    with pytest.raises(UnusableCheckpointError):
        require_usable(ckpt_dir / "svd")
    first = len([r for r in hub.requests if r.host == "lfs"])
    result = _download(hub, ckpt_dir)
    assert VAE16 in result.fetched and UNET16 in result.reused  # finished files are not fetched again
    assert len([r for r in hub.requests if r.host == "lfs"]) - first == len(result.fetched) - 0


# ------------------------------------------------------------------------------------------- corruption


def test_corrupted_body_is_detected_discarded_and_fetched_again(hub, ckpt_dir, tiny_source):
    hub.faults.corrupt[VAE16] = 1  # same length, one byte flipped: the client's size check cannot see it
    result = _download(hub, ckpt_dir)
    assert result.refetched_corrupt == [VAE16]
    assert len(_content_gets(hub, VAE16)) == 2
    assert sha256_file(result.checkpoint.path / VAE16) == hub.repos[SVD_REPO].files[VAE16].sha256
    assert result.checkpoint.usable


def test_persistent_corruption_is_refused_and_never_loaded(hub, ckpt_dir):
    hub.faults.corrupt[VAE16] = 2
    with pytest.raises(CorruptDownloadError, match="arrived corrupted 2 times"):
        _download(hub, ckpt_dir)
    assert not (ckpt_dir / "svd" / VAE16).exists()
    assert not list((ckpt_dir / "svd" / ".svd-lab" / "staging").glob("vae__*"))  # the bad bytes are gone too
    assert find_checkpoint("svd", dir=ckpt_dir) is None
    with pytest.raises(UnusableCheckpointError, match="incomplete"):
        require_usable(ckpt_dir / "svd")


def test_truncated_file_after_download_is_refused_before_loading_and_refetched(hub, ckpt_dir, tiny_source):
    ckpt = _download(hub, ckpt_dir).checkpoint
    unet = ckpt.path / UNET16
    with open(unet, "r+b") as f:  # a disk-full copy or an interrupted `cp` (generative-models #405)
        f.truncate(unet.stat().st_size // 2)
    state = inspect_path(ckpt.path)
    assert not state.usable and "changed since it was verified" in state.reason
    assert find_checkpoint("svd", dir=ckpt_dir) is None
    with pytest.raises(UnusableCheckpointError, match="truncated or replaced"):
        require_usable(ckpt.path)
    from svd_lab.svd.loading import load_checkpoint

    with pytest.raises(UnusableCheckpointError):  # the course's loader asks first: it never reads the bad file
        load_checkpoint(ckpt.path, progress=False)
    result = _download(hub, ckpt_dir)
    assert result.fetched == [UNET16]
    assert unet.read_bytes() == (tiny_source / UNET16).read_bytes()


def test_same_size_corruption_on_disk_is_found_by_verify(hub, ckpt_dir, tiny_source):
    ckpt = _download(hub, ckpt_dir).checkpoint
    vae = ckpt.path / VAE16
    data = bytearray(vae.read_bytes())
    data[len(data) // 2] ^= 0x01
    st = vae.stat()
    vae.write_bytes(bytes(data))
    os.utime(vae, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the old mtime
    assert hubmod.verify_checkpoint(ckpt.path) and "differs from the recorded" in hubmod.verify_checkpoint(ckpt.path)[0]
    result = _download(hub, ckpt_dir, verify=True)
    assert result.fetched == [VAE16]
    assert hubmod.verify_checkpoint(ckpt.path) == []


# ------------------------------------------------------------------------------------------- access errors


def test_gated_repo_without_token_explains_licence_and_token(hub, ckpt_dir):
    with pytest.raises(HubAccessError) as info:
        _download(hub, ckpt_dir, name="svd_xt_1_1")
    msg = str(info.value)
    assert "gated" in msg and "401" in msg and "no token was sent" in msg
    assert f"https://huggingface.co/{XT11_REPO}" in msg and "stable-video-diffusion-1-1-community" in msg
    assert "hf auth login" in msg and "HF_TOKEN" in msg and "settings/tokens" in msg
    assert not (ckpt_dir / "svd_xt_1_1" / "model_index.json").exists()


def test_gated_repo_with_ungranted_token_never_prints_it(hub, ckpt_dir, monkeypatch, capsys):
    from svd_lab.cli import main

    secret = "hf_notGrantedSecretToken987"
    monkeypatch.setenv("HF_TOKEN", secret)
    code = main(["download", "svd_xt_1_1", "--dir", str(ckpt_dir), "--endpoint", hub.endpoint])
    captured = capsys.readouterr()
    assert code == 2
    assert "403" in captured.err and "not been granted access" in captured.err
    assert secret not in captured.out + captured.err
    assert secret not in json.dumps([str(p) for p in ckpt_dir.rglob("*")])
    for f in ckpt_dir.rglob("*"):
        if f.is_file():
            assert secret.encode() not in f.read_bytes()


def test_gated_repo_with_granted_token_downloads_and_keeps_token_off_storage_host(hub, ckpt_dir, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", GRANTED_TOKEN)
    ckpt = _download(hub, ckpt_dir, name="svd_xt_1_1").checkpoint
    assert ckpt.usable and ckpt.name == "svd_xt_1_1"
    hub_requests = [r for r in hub.requests if r.host == "hub"]
    lfs_requests = [r for r in hub.requests if r.host == "lfs"]
    assert hub_requests and all(r.authorized for r in hub_requests)
    assert lfs_requests and not any(r.authorized for r in lfs_requests)  # signed storage URL: no token sent


def test_refused_access_to_an_existing_folder_is_never_reported_as_success(hub, ckpt_dir, capsys):
    """huggingface_hub's snapshot_download(local_dir=...) returns an existing folder when the hub answers 401;
    svd-lab must not fall into that: the download fails with the access message."""
    from huggingface_hub import snapshot_download

    from svd_lab.cli import main

    hub.repos[XT11_REPO].gate_api = True  # the repo API answers 401 too (private repos, some mirrors)
    existing = ckpt_dir / "svd_xt_1_1"
    (existing / "unet").mkdir(parents=True)
    (existing / "unet" / "config.json").write_text("{}")
    # the trap, reproduced against the loopback hub with the real client
    returned = snapshot_download(XT11_REPO, local_dir=existing, endpoint=hub.endpoint)
    assert Path(returned) == existing.resolve()
    # svd-lab: exit 2, the access message, no success line
    code = main(["download", "svd_xt_1_1", "--dir", str(ckpt_dir), "--endpoint", hub.endpoint, "--quiet"])
    captured = capsys.readouterr()
    assert code == 2 and "gated" in captured.err
    assert "downloaded" not in captured.out and "already present" not in captured.out
    assert find_checkpoint("svd_xt_1_1", dir=ckpt_dir) is None


def test_missing_repository_revision_and_file_messages(hub, ckpt_dir, monkeypatch):
    del hub.repos[SVD_REPO]
    with pytest.raises(HubNotFoundError, match="was not found on .* log in first"):
        _download(hub, ckpt_dir)
    monkeypatch.setenv("HF_TOKEN", "hf_someValidLookingToken")
    with pytest.raises(HubNotFoundError, match=r"HTTP 404"):
        _download(hub, ckpt_dir)
    with pytest.raises(HubNotFoundError, match="revision 'v9' does not exist"):
        _download(hub, ckpt_dir, name="svd_xt_1_1", revision="v9", token=GRANTED_TOKEN)
    repo = hub.repos[XT11_REPO]
    for path in [p for p in repo.files if ".fp16." in p]:
        del repo.files[path]
    with pytest.raises(HubNotFoundError, match="use --variant fp32"):
        _download(hub, ckpt_dir, name="svd_xt_1_1", token=GRANTED_TOKEN)


def test_unreachable_endpoint_is_a_network_error_naming_the_mirror(ckpt_dir):
    with pytest.raises(HubNetworkError) as info:
        hubmod.download("svd", dir=ckpt_dir, endpoint=closed_port_endpoint(), progress=False, log=None)
    msg = str(info.value)
    assert "could not download from http://127.0.0.1" in msg
    assert "--endpoint https://hf-mirror.com" in msg and "HF_ENDPOINT" in msg


def test_hf_endpoint_variable_is_read_at_call_time(hub, ckpt_dir, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    ckpt = hubmod.download("svd", format="sgm", dir=ckpt_dir, progress=False, log=None).checkpoint
    assert ckpt.usable and VerificationRecord(ckpt.path.parent).meta["sgm"]["endpoint"] == hub.endpoint


# ------------------------------------------------------------------------------------------- disk, cache, offline


def test_disk_check_refuses_a_download_larger_than_free_space(hub, ckpt_dir, monkeypatch, capsys):
    from svd_lab.cli import main

    plan = hubmod.plan_download("svd", dir=ckpt_dir, endpoint=hub.endpoint)
    needed = plan.bytes_to_write
    assert needed == sum(f.size for f in hub.repos[SVD_REPO].files.values()
                         if f.path in {pf.repo_path for pf in plan.files})
    monkeypatch.setattr(hubmod, "free_bytes", lambda path: needed + hubmod.DISK_MARGIN - 1)
    with pytest.raises(DiskSpaceError) as info:
        _download(hub, ckpt_dir)
    assert hubmod._fmt_bytes(needed) in str(info.value) and "--dir" in str(info.value)
    assert not [r for r in hub.requests if r.host == "lfs"]  # refused before any transfer
    assert not (ckpt_dir / "svd" / "model_index.json").exists()
    assert main(["download", "svd", "--dir", str(ckpt_dir), "--endpoint", hub.endpoint, "--dry-run"]) == 1
    assert "NOT enough free disk space" in capsys.readouterr().out
    monkeypatch.setattr(hubmod, "free_bytes", lambda path: needed + hubmod.DISK_MARGIN)
    assert _download(hub, ckpt_dir).checkpoint.usable


def test_files_in_the_hf_cache_are_copied_not_downloaded(hub, ckpt_dir):
    from huggingface_hub import hf_hub_download

    cached = hf_hub_download(SVD_REPO, UNET16, endpoint=hub.endpoint)  # the user's earlier diffusers download
    assert _content_gets(hub, UNET16)
    before = len(_content_gets(hub, UNET16))
    lines = []
    result = _download(hub, ckpt_dir, log=lines.append)
    assert len(_content_gets(hub, UNET16)) == before
    assert any("from the Hugging Face cache" in line for line in lines)
    assert (result.checkpoint.path / UNET16).read_bytes() == Path(cached).read_bytes()
    assert Path(cached).is_file()  # the cache is left as it was


def test_offline_mode_resolves_present_checkpoints_without_the_network(hub, ckpt_dir, tmp_path):
    """HF_HUB_OFFLINE=1 set before the process starts (huggingface_hub reads it at import), and no hub at all."""
    _download(hub, ckpt_dir)
    hub.stop()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home"), "TQDM_DISABLE": "1",
           "SVD_LAB_CHECKPOINTS": str(ckpt_dir)}
    env.pop("HF_TOKEN", None)
    script = (
        "from svd_lab.checkpoints import find_checkpoint, download, OfflineError\n"
        "c = find_checkpoint('svd')\n"
        "r = download('svd', progress=False, log=None)\n"
        "print('FOUND', c.path, c.variant, c.verified)\n"
        "print('DOWNLOAD', r.checkpoint.path, r.fetched, len(r.reused))\n"
        "try:\n"
        "    download('svd', format='sgm', progress=False, log=None)\n"
        "except OfflineError as exc:\n"
        "    print('OFFLINE', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert f"FOUND {ckpt_dir / 'svd'} fp16 True" in out.stdout
    assert f"DOWNLOAD {ckpt_dir / 'svd'} [] 9" in out.stdout
    assert "OFFLINE offline mode is on" in out.stdout and "svd.safetensors" in out.stdout


def test_offline_cli_lists_missing_files(ckpt_dir, monkeypatch, capsys):
    from svd_lab.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # set after import: svd-lab reads it at call time too
    assert main(["download", "svd", "--dir", str(ckpt_dir)]) == 2
    err = capsys.readouterr().err
    assert "offline mode is on" in err and "unet/diffusion_pytorch_model.fp16.safetensors" in err


# ------------------------------------------------------------------------------------------- hand-placed, OBS


def test_hand_placed_sgm_file_is_found_and_verified_in_place(hub, ckpt_dir, tiny_source):
    placed = ckpt_dir / "svd.safetensors"  # as the seed article does
    placed.write_bytes((tiny_source / "svd.safetensors").read_bytes())
    (found,) = present_checkpoints(ckpt_dir)
    assert found.placed == "hand" and found.usable and not found.verified and found.version == "svd"
    result = _download(hub, ckpt_dir, format="sgm")
    assert not [r for r in hub.requests if r.host == "lfs"]  # verified where it lies, nothing downloaded
    assert result.checkpoint.path == placed and result.checkpoint.verified
    assert not (ckpt_dir / "svd" / "svd.safetensors").exists()
    assert find_checkpoint("svd", dir=ckpt_dir, format="sgm").verified


def test_hand_placed_file_that_differs_from_the_hub_is_reported(hub, ckpt_dir, tiny_source):
    placed = ckpt_dir / "svd.safetensors"
    build_small_sgm_file(placed, seed=1)  # same size, other values: another file
    assert placed.stat().st_size == (tiny_source / "svd.safetensors").stat().st_size
    with pytest.raises(CorruptDownloadError, match="placed by hand.*does not match"):
        _download(hub, ckpt_dir, format="sgm")
    assert placed.is_file()  # the user's file is left alone


def test_obs_outside_modelarts_says_so(ckpt_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "moxing", None)  # `import moxing` raises ImportError
    monkeypatch.setattr(obsmod, "MODELARTS_HOME", str(ckpt_dir / "no-such-home"))
    with pytest.raises(ObsUnavailableError, match="only inside Huawei ModelArts"):
        obsmod.copy_from_obs("svd", "obs://bucket/svd", dir=ckpt_dir, log=None)
    # inside ModelArts, in an environment of one's own: the image's Python has moxing
    monkeypatch.setattr(obsmod, "MODELARTS_HOME", str(ckpt_dir))
    with pytest.raises(ObsUnavailableError, match="preinstalled only in the image's own environments"):
        obsmod.copy_from_obs("svd", "obs://bucket/svd", dir=ckpt_dir, log=None)


def test_obs_copy_with_moxing(ckpt_dir, tiny_source, tmp_path, monkeypatch):
    """Inside ModelArts `moxing` copies obs:// paths; here a stand-in maps obs://bucket/ to a local folder."""
    import shutil

    bucket = tmp_path / "bucket"
    shutil.copytree(tiny_source, bucket / "svd")
    calls = []

    def local(url):
        assert url.startswith("obs://bucket/")
        return bucket / url[len("obs://bucket/"):]

    def copy_parallel(src, dst):
        calls.append(("copy_parallel", src))
        shutil.copytree(local(src), dst, dirs_exist_ok=True)

    def copy(src, dst):
        calls.append(("copy", src))
        shutil.copyfile(local(src), dst)

    fake = types.ModuleType("moxing")
    fake.file = types.SimpleNamespace(copy_parallel=copy_parallel, copy=copy)
    monkeypatch.setitem(sys.modules, "moxing", fake)
    ckpt = obsmod.copy_from_obs("svd", "obs://bucket/svd", dir=ckpt_dir, log=None).checkpoint
    assert calls == [("copy_parallel", "obs://bucket/svd")]
    assert ckpt.usable and ckpt.verified and ckpt.variant == "fp16"
    sgm = obsmod.copy_from_obs("svd", "obs://bucket/svd/svd.safetensors", format="sgm", dir=ckpt_dir,
                               log=None).checkpoint
    assert sgm.usable and sgm.path == ckpt_dir / "svd" / "svd.safetensors"
    (bucket / "broken").mkdir()
    with pytest.raises(Exception, match="does not contain"):
        obsmod.copy_from_obs("svd_xt", "obs://bucket/broken", dir=ckpt_dir, log=None)
    assert not (ckpt_dir / "svd_xt" / "model_index.json").exists()
