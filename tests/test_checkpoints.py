"""The registry, local discovery (downloaded, hand-placed, shipped), integrity checks and the `models` command."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from svd_lab.checkpoints import (
    REGISTRY,
    UnusableCheckpointError,
    find_checkpoint,
    get_spec,
    inspect_path,
    present_checkpoints,
    require_usable,
)
from svd_lab.checkpoints.verify import VerificationRecord, git_blob_sha1, safetensors_problem, sha256_file
from svd_lab.svd.layout import checkpoint_files as diffusers_files


def _safetensors(path: Path, tensors: dict[str, bytes], metadata: dict | None = None) -> Path:
    """Write a safetensors file by hand (uint8 tensors): [u64 header length][JSON header][data]."""
    header, offset, blobs = {}, 0, []
    for name, data in tensors.items():
        header[name] = {"dtype": "U8", "shape": [len(data)], "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))
    return path


def _diffusers_folder(folder: Path, variant: str | None = "fp16", num_frames: int = 14) -> Path:
    for rel in diffusers_files(variant):
        p = folder / rel
        if rel.endswith(".safetensors"):
            _safetensors(p, {"w": bytes(range(200))})
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps({"num_frames": num_frames}) if rel == "unet/config.json" else "{}")
    return folder


# ------------------------------------------------------------------------------------------- registry


def test_registry_names_repos_licences_and_gating():
    assert {"svd", "svd_xt", "svd_xt_1_1", "svd_image_decoder", "svd_xt_image_decoder", "mini"} <= set(REGISTRY)
    assert REGISTRY["svd"].repo_id == "stabilityai/stable-video-diffusion-img2vid"
    assert REGISTRY["svd_xt"].repo_id == "stabilityai/stable-video-diffusion-img2vid-xt"
    assert REGISTRY["svd_xt_1_1"].repo_id == "stabilityai/stable-video-diffusion-img2vid-xt-1-1"
    assert REGISTRY["svd_image_decoder"].repo_id == REGISTRY["svd"].repo_id
    assert REGISTRY["svd_xt_image_decoder"].sgm_file == "svd_xt_image_decoder.safetensors"
    assert REGISTRY["svd_xt_1_1"].gated and not REGISTRY["svd"].gated and not REGISTRY["svd_xt"].gated
    assert REGISTRY["svd_xt_1_1"].licence == "stable-video-diffusion-1-1-community"
    assert REGISTRY["svd"].licence == "stable-video-diffusion-community"
    assert "nc-community" in REGISTRY["svd_xt"].licence_note
    assert REGISTRY["mini"].formats == ("mini",) and not REGISTRY["mini"].downloadable
    assert REGISTRY["small"].formats == ("small",) and not REGISTRY["small"].downloadable   # the small SVD, shipped
    assert REGISTRY["svd"].num_frames == 14 and REGISTRY["svd_xt"].num_frames == 25


def test_registry_files_and_sizes_match_the_hub_layout():
    files = REGISTRY["svd"].files("diffusers", "fp16")
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in files and "model_index.json" in files
    assert "image_encoder/model.fp16.safetensors" in files and "vae/config.json" in files
    assert "unet/diffusion_pytorch_model.safetensors" in REGISTRY["svd"].files("diffusers", None)
    assert REGISTRY["svd"].files("sgm") == ["svd.safetensors"]
    with pytest.raises(ValueError, match="no 'diffusers' format"):
        REGISTRY["svd_image_decoder"].files("diffusers")
    # ~4.5 GB fp16, ~9 GB fp32, ~9.56 GB sgm (FACTS: weights only)
    assert 4.4e9 < REGISTRY["svd"].size("diffusers", "fp16") < 4.6e9
    assert 8.9e9 < REGISTRY["svd"].size("diffusers") < 9.1e9
    assert REGISTRY["svd_xt"].size("sgm") == 9_559_279_140


def test_unknown_name_suggests_the_right_one():
    with pytest.raises(KeyError, match="did you mean svd_xt"):
        get_spec("SVD-XT")


def test_unknown_names_are_user_errors_of_the_lookup_kind():
    from svd_lab.errors import UnknownNameError, UserError
    from svd_lab.svd.versions import get_version

    with pytest.raises(UnknownNameError) as checkpoint:
        get_spec("svd2")
    with pytest.raises(UnknownNameError) as version:
        get_version("svd2")
    for info in (checkpoint, version):  # a KeyError and a ValueError both: older callers keep catching it
        assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
        assert isinstance(info.value, UserError) and not str(info.value).startswith("'")


def test_every_version_has_a_registry_entry_built_from_it():
    """Adding an SVD version is one row in svd_lab.svd.versions.VERSIONS: the registry takes its facts from there."""
    from svd_lab.svd.configs import FULL_PARAMETER_COUNTS
    from svd_lab.svd.versions import VERSIONS

    for version in VERSIONS.values():
        spec = REGISTRY[version.name]
        assert (spec.version, spec.repo_id, spec.num_frames, spec.description) == (
            version.name, version.hub_repo, version.num_frames, version.description)
        assert (spec.licence, spec.licence_note, spec.gated) == (version.licence, version.licence_note, version.gated)
        assert spec.sgm_file == f"{version.name}.safetensors"
        assert ("diffusers" in spec.formats) == version.diffusers_format and "sgm" in spec.formats
    weights = FULL_PARAMETER_COUNTS["unet"] + FULL_PARAMETER_COUNTS["vae"] + FULL_PARAMETER_COUNTS["image_encoder"]
    assert REGISTRY["svd"].size("diffusers", "fp16") == 2 * weights and REGISTRY["svd"].size("diffusers") == 4 * weights
    assert "licence" not in VERSIONS["svd"].defaults() and "num_frames" in VERSIONS["svd"].defaults()


def test_frame_counts_name_one_version():
    from svd_lab.svd.versions import version_for_num_frames

    assert version_for_num_frames(14) == "svd" and version_for_num_frames(25) == "svd_xt"
    assert version_for_num_frames(3) is None and version_for_num_frames(None) is None


def test_checkpoint_errors_are_the_shared_ones():
    import svd_lab.errors
    from svd_lab.checkpoints import CheckpointError, HubAccessError

    assert CheckpointError is svd_lab.errors.CheckpointError
    assert issubclass(HubAccessError, svd_lab.errors.CheckpointError)
    assert issubclass(UnusableCheckpointError, svd_lab.errors.UserError)


def test_listing_checkpoints_imports_neither_torch_nor_the_hub_client_nor_the_cli():
    """`svd-lab models` and a notebook's checkpoint table stay fast, and the library does not depend on the CLI."""
    script = ("import sys\n"
              "from svd_lab.checkpoints import REGISTRY, present_checkpoints\n"
              "import svd_lab.commands.models\n"
              "print(sorted(m for m in ('torch', 'huggingface_hub', 'svd_lab.cli') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------- permissions


@pytest.fixture
def umask():
    """Set the process umask for one test (``umask(0o027)``); the previous one comes back afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def test_atomic_writes_get_the_umask_mode_not_mkstemps_0600(tmp_path, umask):
    from svd_lab.atomic import (
        new_directory_beside,
        new_temporary_beside,
        write_bytes_atomic,
        write_text_atomic,
    )

    umask(0o022)
    written = write_bytes_atomic(tmp_path / "video.mp4", b"frames")
    assert written.read_bytes() == b"frames" and stat.S_IMODE(written.stat().st_mode) == 0o644
    temporary = new_temporary_beside(tmp_path / "video.mp4", suffix=".mp4")
    assert temporary.parent == tmp_path and temporary.name.startswith(".video.mp4.") and temporary.suffix == ".mp4"
    assert stat.S_IMODE(temporary.stat().st_mode) == 0o644
    temporary.unlink()
    assert stat.S_IMODE(new_directory_beside(tmp_path / "converted").stat().st_mode) == 0o755
    umask(0o027)  # a stricter umask is respected too, not replaced by a fixed 0644
    assert stat.S_IMODE(write_text_atomic(tmp_path / "record.json", "{}").stat().st_mode) == 0o640
    # without overwrite an existing file is refused and left as it was; with it, replaced; no temporary is left
    with pytest.raises(FileExistsError, match="already exists"):
        write_bytes_atomic(written, b"other")
    assert written.read_bytes() == b"frames"
    write_bytes_atomic(written, b"other", overwrite=True)
    assert written.read_bytes() == b"other"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["record.json", "video.mp4"]


def test_verification_record_gets_the_umask_mode(tmp_path, umask):
    umask(0o022)
    f = _safetensors(tmp_path / "ckpt" / "w.safetensors", {"a": b"x" * 64})
    record = VerificationRecord(tmp_path / "ckpt")
    record.add(f, sha256_file(f), "test")
    record.save()
    record.save()  # replaced in place, through a temporary file that does not stay behind
    assert stat.S_IMODE(record.path.stat().st_mode) == 0o644
    assert [p.name for p in record.path.parent.iterdir()] == ["verified.json"]


# ------------------------------------------------------------------------------------------- integrity


def test_safetensors_structure_catches_truncation_and_trailing_bytes(tmp_path):
    good = _safetensors(tmp_path / "good.safetensors", {"a": b"x" * 100, "b": b"y" * 50}, {"format": "pt"})
    assert safetensors_problem(good) is None
    data = good.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-10])
    assert "truncated" in safetensors_problem(tmp_path / "cut.safetensors")
    (tmp_path / "long.safetensors").write_bytes(data + b"zz")
    assert "trailing" in safetensors_problem(tmp_path / "long.safetensors")
    (tmp_path / "head.safetensors").write_bytes(data[:20])
    assert "header" in safetensors_problem(tmp_path / "head.safetensors")
    (tmp_path / "tiny.safetensors").write_bytes(b"abc")
    assert "too short" in safetensors_problem(tmp_path / "tiny.safetensors")
    (tmp_path / "html.safetensors").write_bytes(b"<!DOCTYPE html><html>Access denied</html>")
    assert safetensors_problem(tmp_path / "html.safetensors") is not None


def test_hashes_match_git_and_sha256(tmp_path):
    f = tmp_path / "f.json"
    f.write_bytes(b'{"a": 1}\n')
    assert sha256_file(f) == hashlib.sha256(b'{"a": 1}\n').hexdigest()
    if shutil.which("git"):
        out = subprocess.run(["git", "hash-object", str(f)], capture_output=True, text=True, check=True)
        assert git_blob_sha1(f) == out.stdout.strip()


def test_verification_record_statuses(tmp_path):
    f = _safetensors(tmp_path / "ckpt" / "w.safetensors", {"a": b"x" * 64})
    record = VerificationRecord(tmp_path / "ckpt")
    assert record.status(f) == "unrecorded"
    record.add(f, sha256_file(f), "test")
    record.save()
    again = VerificationRecord(tmp_path / "ckpt")
    assert again.status(f) == "verified" and again.get(f).sha256 == sha256_file(f)
    f.touch()  # copied without preserving times: content unknown, structure still checked
    import os

    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    assert again.status(f) == "stale"
    with open(f, "ab") as h:
        h.write(b"!")
    assert again.status(f) == "changed"
    (tmp_path / "ckpt" / ".svd-lab" / "verified.json").write_text("{not json")
    assert VerificationRecord(tmp_path / "ckpt").files == {}  # a broken record only costs a re-hash


# ------------------------------------------------------------------------------------------- discovery


def test_present_checkpoints_finds_every_placement(tmp_path):
    root = tmp_path / "checkpoints"
    _diffusers_folder(root / "svd_xt", num_frames=25)
    _diffusers_folder(root / "my_finetune", variant=None, num_frames=25)  # unknown name: version from the unet
    _safetensors(root / "svd.safetensors", {"model.diffusion_model.w": b"x" * 32})  # hand-placed, seed-style
    _safetensors(root / "svd_xt" / "svd_xt.safetensors", {"w": b"x" * 32})
    _safetensors(root / "mystery.safetensors", {"w": b"x" * 32})
    _safetensors(root / "mini" / "autoencoder.safetensors", {"w": b"x" * 32})
    _safetensors(root / "mini" / "dit.safetensors", {"w": b"x" * 64})
    (root / "README.md").write_text("# checkpoints")
    found = {(c.name, c.format): c for c in present_checkpoints(root)}
    assert set(found) == {("svd_xt", "diffusers"), ("my_finetune", "diffusers"), ("svd", "sgm"),
                          ("svd_xt", "sgm"), ("mystery", "sgm"), ("mini", "mini")}
    assert found[("svd_xt", "diffusers")].variant == "fp16" and found[("svd_xt", "diffusers")].usable
    finetune = found[("my_finetune", "diffusers")]
    assert finetune.version == "svd_xt" and finetune.variant is None
    assert found[("svd", "sgm")].placed == "hand" and found[("svd", "sgm")].version == "svd"
    assert found[("mystery", "sgm")].usable and found[("mystery", "sgm")].version is None  # loadable by path only
    assert found[("mini", "mini")].usable and found[("mini", "mini")].size_bytes > 96
    (root / "mini" / "dit.safetensors").unlink()
    assert "missing dit.safetensors" in inspect_path(root / "mini").reason
    assert find_checkpoint("svd_xt", dir=root).format == "diffusers"  # no conversion needed
    assert find_checkpoint("svd", dir=root).path == root / "svd.safetensors"
    assert find_checkpoint("svd_xt_1_1", dir=root) is None
    assert find_checkpoint("mystery", dir=root).path == root / "mystery.safetensors"  # asked for by its name
    assert present_checkpoints(tmp_path / "nowhere") == []


def test_hand_placed_symlink_to_a_file_elsewhere_is_found_and_recorded(tmp_path):
    """A user who links checkpoints/svd.safetensors to a file on another disk (a common way to avoid copying
    9.5 GB) gets a usable checkpoint, and verifying it records it under the link's own name."""
    elsewhere = _safetensors(tmp_path / "big-disk" / "svd.safetensors", {"model.diffusion_model.w": b"x" * 32})
    root = tmp_path / "checkpoints"
    root.mkdir()
    (root / "svd.safetensors").symlink_to(elsewhere)
    (ckpt,) = present_checkpoints(root)
    assert ckpt.usable and ckpt.version == "svd" and ckpt.path == root / "svd.safetensors"
    record = VerificationRecord(root)
    record.add(root / "svd.safetensors", sha256_file(elsewhere), "hand")
    assert record.key(root / "svd.safetensors") == "svd.safetensors"
    assert record.status(root / "svd.safetensors") == "verified"
    assert VerificationRecord(tmp_path / "other").key(elsewhere) == elsewhere.as_posix()  # outside the root

def test_incomplete_and_truncated_checkpoints_are_not_usable(tmp_path):
    root = tmp_path / "checkpoints"
    folder = _diffusers_folder(root / "svd")
    (folder / "vae" / "diffusion_pytorch_model.fp16.safetensors").unlink()
    (ckpt,) = present_checkpoints(root)
    assert not ckpt.usable and "missing vae/diffusion_pytorch_model.safetensors (or .fp16)" in ckpt.reason
    assert "svd-lab download svd" in ckpt.reason
    _safetensors(folder / "vae" / "diffusion_pytorch_model.fp16.safetensors", {"w": b"v" * 300})
    unet = folder / "unet" / "diffusion_pytorch_model.fp16.safetensors"
    unet.write_bytes(unet.read_bytes()[:-7])  # truncated, no record: the structure gives it away
    assert "truncated" in inspect_path(folder).reason
    assert find_checkpoint("svd", dir=root) is None
    with pytest.raises(UnusableCheckpointError, match="cannot be loaded"):
        require_usable(folder)
    placed = _safetensors(root / "svd_xt.safetensors", {"w": b"x" * 1000})
    placed.write_bytes(placed.read_bytes()[:500])  # generative-models #405: a truncated file loaded anyway
    with pytest.raises(UnusableCheckpointError, match="truncated"):
        require_usable(placed)
    with pytest.raises(UnusableCheckpointError, match="does not exist"):
        require_usable(root / "nothing_here")


def test_doctor_lists_usable_checkpoints(tmp_path):
    from svd_lab.diagnostics import check_checkpoints

    root = tmp_path / "checkpoints"
    _diffusers_folder(root / "svd")
    check, found = check_checkpoints(root)
    assert "svd" in check.value and found[0].usable


# ------------------------------------------------------------------------------------------- commands


def test_models_command_reads_well(tmp_path, capsys):
    from svd_lab.cli import main

    root = tmp_path / "checkpoints"
    _diffusers_folder(root / "svd")
    (root / "svd_xt").mkdir()
    (root / "svd_xt" / "model_index.json").write_text("{}")  # an interrupted copy
    assert main(["models", "--dir", str(root)]) == 0
    out = capsys.readouterr().out
    for word in ("name", "format", "size", "local", "gated", "licence", "svd_xt_1_1", "mini",
                 "stable-video-diffusion-1-1-community", "4.5 GB", "9.6 GB", "https://hf-mirror.com",
                 "svd-lab download svd", "hf auth login"):
        assert word in out, word
    svd_line = next(line for line in out.splitlines() if line.startswith("svd ") and "diffusers" in line)
    assert "yes fp16" in svd_line
    xt11 = next(line for line in out.splitlines() if line.startswith("svd_xt_1_1"))
    assert " yes " in xt11  # gated
    assert "Present but not usable" in out and "INCOMPLETE" in out
    assert main(["models", "--dir", str(root), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    row = next(r for r in data["rows"] if r["name"] == "svd" and r["format"] == "diffusers")
    assert row["local"] == "yes fp16" and row["repo_id"] == "stabilityai/stable-video-diffusion-img2vid"


def test_download_help_reads_well(capsys):
    from svd_lab.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["download", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for word in ("https://hf-mirror.com", "HF_ENDPOINT", "HF_TOKEN", "hf auth login", "HF_HUB_OFFLINE",
                 "obs://", "--variant", "--format", "resumes", "sha256", "gated", "--dry-run"):
        assert word in out, word


def test_download_rejects_bad_names_and_the_mini_model(tmp_path, capsys):
    from svd_lab.cli import main

    assert main(["download", "svd-xt", "--dir", str(tmp_path)]) == 2
    assert "did you mean svd_xt" in capsys.readouterr().err
    assert main(["download", "mini", "--dir", str(tmp_path)]) == 2
    assert "shipped in the repository" in capsys.readouterr().err
    assert main(["download", "svd_image_decoder", "--dir", str(tmp_path)]) == 2
    assert "--format sgm" in capsys.readouterr().err
    assert main(["download", "svd", "--endpoint", "hf-mirror.com", "--dir", str(tmp_path)]) == 2
    assert "not an http(s) URL" in capsys.readouterr().err


def test_the_shipped_models_are_found_whatever_svd_lab_checkpoints_says(tmp_path, monkeypatch):
    """A user's own weights folder (SVD_LAB_CHECKPOINTS, e.g. ModelArts persistent storage) adds to the course's
    shipped models; it does not hide them. And the small SVD is listed as itself, never taken for svd."""
    from svd_lab.paths import shipped_checkpoints_dir

    own = tmp_path / "my-weights"
    _diffusers_folder(own / "svd_xt", num_frames=25)
    monkeypatch.setenv("SVD_LAB_CHECKPOINTS", str(own))
    found = {(c.name, c.format): c for c in present_checkpoints()}
    assert ("svd_xt", "diffusers") in found
    shipped = shipped_checkpoints_dir()
    for name in ("mini", "small"):
        if (shipped / name).is_dir():
            assert found[(name, name)].path == shipped / name and found[(name, name)].placed == "shipped"
    assert find_checkpoint("svd") is None                        # the small SVD is not an svd checkpoint
