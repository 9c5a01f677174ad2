"""The checkpoints svd-lab knows about: where they live on the Hugging Face hub, which files make them, how big they
are, under which licence they were released and whether the repository is gated.

Two on-disk formats exist for every SVD release:

- ``diffusers``: a folder (``model_index.json``, ``unet/``, ``vae/``, ``image_encoder/``, ``scheduler/``,
  ``feature_extractor/``) that diffusers' ``StableVideoDiffusionPipeline`` loads. The weights come in full precision
  (about 9 GB) and as an ``fp16`` variant (about 4.5 GB: files named ``*.fp16.safetensors``).
- ``sgm``: one safetensors file holding Stability's whole ``DiffusionEngine`` state dict in fp32 (about 9.6 GB),
  what Stability's generative-models scripts (and the seed article) use, e.g. ``checkpoints/svd.safetensors``.

Sizes below are the bytes of the weights (parameter count x bytes per value; the safetensors header adds ~0.1 MB).
They are used for the ``svd-lab models`` table and as an estimate; a download always checks free space against the
exact sizes the hub reports.

Where each fact lives: a release's hub repository, frame count, description, licence and gating are
:data:`svd_lab.svd.versions.VERSIONS` (one row per version: the registry has an entry for every version); the
diffusers file names are :mod:`svd_lab.svd.layout`; the networks' parameter counts are
:data:`svd_lab.svd.configs.FULL_PARAMETER_COUNTS`. What only a download needs stays here: the formats a release
comes in, the sizes, the sgm files' value counts, the hub's web address and mirror, and the entries of the course's
own shipped models (the mini world model, the small SVD).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from svd_lab.checkpoints.errors import CheckpointError
from svd_lab.errors import UnknownNameError
from svd_lab.svd.configs import FULL_PARAMETER_COUNTS
from svd_lab.svd.layout import FP16, WEIGHT_STEMS, checkpoint_files
from svd_lab.svd.versions import DECODER_IMAGE, DECODER_TEMPORAL, VERSIONS, VersionSpec

DIFFUSERS, SGM, MINI, SMALL = "diffusers", "sgm", "mini", "small"
FORMATS = (DIFFUSERS, SGM, MINI, SMALL)
#: the course's own trained weights: shipped in the repository (checkpoints/<name>/), never downloaded
SHIPPED = (MINI, SMALL)

HUB_WEB = "https://huggingface.co"
HF_MIRROR = "https://hf-mirror.com"  # community mirror reachable from mainland China
MODELSCOPE_WEB = "https://www.modelscope.cn"

# ModelScope copies of the hub repositories (``svd-lab download NAME --source modelscope``), only where one was
# confirmed from public sources: AI-ModelScope/stable-video-diffusion-img2vid-xt serves svd_xt.safetensors (its
# direct link https://www.modelscope.cn/api/v1/models/AI-ModelScope/stable-video-diffusion-img2vid-xt/repo?
# Revision=master&FilePath=svd_xt.safetensors is given by DiffSynth-Studio's ExVideo instructions and used by its
# model manager) and the diffusers fp16 files (OmniRT's deployment notes download image_encoder/, unet/ and vae/
# model.fp16 files from it and validated the layout on hardware). Left out on purpose: svd (the only ModelScope
# copy seen, AI-ModelScope/stable-video-diffusion-img2vid-fp16, mirrors a community fp16 repository, not
# stabilityai's) and svd_xt_1_1 (no copy confirmed). A download checks every file against ModelScope's listing, so
# a file a copy lacks is reported, never guessed. svd_xt_image_decoder (same hub repository as svd_xt) is left out
# too: no source shows its file svd_xt_image_decoder.safetensors on ModelScope. Keyed by release name.
MODELSCOPE_REPOS = {
    "svd_xt": "AI-ModelScope/stable-video-diffusion-img2vid-xt",
}

# Values in Stability's whole sgm DiffusionEngine state dicts (fp32 on disk): a registry fact, since only the
# sizes of the single files need them. The two decoders differ, the UNet and the image embedder do not.
_SGM_VALUES = {DECODER_TEMPORAL: 2_389_819_785, DECODER_IMAGE: 2_375_730_873}


@dataclass(frozen=True)
class CheckpointSpec:
    """One known checkpoint.

    ``name`` is what users type (``svd-lab download svd_xt``) and the folder under ``checkpoints/``; ``version`` is
    the model version the sampling code understands (frames, steps and guidance defaults follow from it).
    """

    name: str
    version: str
    description: str
    formats: tuple[str, ...]
    repo_id: str | None = None
    modelscope_repo: str | None = None  # its copy on ModelScope, where one was confirmed (MODELSCOPE_REPOS)
    sgm_file: str | None = None  # file name of the sgm single file in the repo (also its hand-placed name)
    num_frames: int | None = None
    licence: str = ""
    licence_note: str = ""
    gated: bool = False
    sizes: dict[str, int] = field(default_factory=dict)  # "diffusers" / "diffusers-fp16" / "sgm" / "mini" -> bytes
    family: str = "svd"  # "svd" or "wan": which model family (and which diffusers layout) the release is

    @property
    def listed(self) -> bool:
        """True when the files are chosen from the repository's listing (Wan: sharded weights whose count the
        registry does not fix) rather than named in advance (SVD's fixed layout)."""
        return self.family == WAN

    @property
    def downloadable(self) -> bool:
        return self.repo_id is not None

    @property
    def repo_url(self) -> str | None:
        """The model page on the hub: where the licence is read (and, for a gated repo, accepted)."""
        return f"{HUB_WEB}/{self.repo_id}" if self.repo_id else None

    def files(self, format: str, variant: str | None = None, listing: list[str] | None = None) -> list[str]:
        """Repository paths that make this checkpoint in ``format`` (variant only matters for SVD's diffusers
        layout). A :attr:`listed` release needs the repository's ``listing`` to choose from."""
        if format not in self.formats:
            raise ValueError(f"{self.name} has no {format!r} format (it has: {', '.join(self.formats)})")
        if self.listed:
            if listing is None:
                raise ValueError(f"{self.name}'s files are chosen from its repository listing: pass listing=")
            return wan_files(listing)
        if format == DIFFUSERS:
            return checkpoint_files(variant)
        if format == SGM:
            return [self.sgm_file]
        return []

    def size(self, format: str, variant: str | None = None) -> int | None:
        key = f"{format}-{variant}" if (format == DIFFUSERS and variant) else format
        return self.sizes.get(key)


WAN = "wan"
#: the folders of a Wan diffusers repository that the pipeline loads (an image encoder is Wan2.1-I2V's only)
WAN_FOLDERS = ("scheduler", "text_encoder", "tokenizer", "transformer", "vae", "image_encoder", "image_processor")
#: weights in other formats that some repositories carry beside the safetensors: never fetched (no pickle)
_NOT_FETCHED = (".bin", ".pth", ".pt", ".ckpt", ".msgpack", ".h5", ".onnx")


def wan_files(listing) -> list[str]:
    """The files of a Wan diffusers repository that a download fetches: ``model_index.json`` and everything in
    the network folders except pickled or foreign weight formats; configs and small files first."""
    chosen = [p for p in listing
              if p == "model_index.json" or (p.split("/", 1)[0] in WAN_FOLDERS and "/" in p
                                             and not p.endswith(_NOT_FETCHED))]
    return sorted(chosen, key=lambda p: (p.endswith(".safetensors"), p))


def _sizes(version: VersionSpec) -> dict[str, int]:
    """Bytes of the weights in each format the version is released in (parameters x 4 bytes in fp32, 2 in fp16)."""
    sizes = {SGM: 4 * _SGM_VALUES[version.decoder]}
    if version.diffusers_format:
        # the diffusers releases hold the temporal decoder: FULL_PARAMETER_COUNTS["vae"] is that one
        parameters = sum(FULL_PARAMETER_COUNTS[part] for part in WEIGHT_STEMS)
        sizes.update({DIFFUSERS: 4 * parameters, f"{DIFFUSERS}-{FP16}": 2 * parameters})
    return sizes


def _spec_of_version(version: VersionSpec) -> CheckpointSpec:
    """The download entry of an SVD version: every fact is the version's, only the formats and sizes are derived."""
    return CheckpointSpec(
        name=version.name, version=version.name, description=version.description,
        formats=(DIFFUSERS, SGM) if version.diffusers_format else (SGM,),
        repo_id=version.hub_repo, modelscope_repo=MODELSCOPE_REPOS.get(version.name), sgm_file=version.sgm_file,
        num_frames=version.num_frames,
        licence=version.licence, licence_note=version.licence_note, gated=version.gated,
        sizes=_sizes(version),
    )


def _versions_by_repository() -> list[VersionSpec]:
    """The versions grouped by hub repository (in the order the repositories first appear in VERSIONS).

    So ``svd-lab models`` lists what one repository holds together: svd then svd_image_decoder, svd_xt then
    svd_xt_image_decoder, then svd_xt_1_1.
    """
    repositories = list(dict.fromkeys(v.hub_repo for v in VERSIONS.values()))
    return sorted(VERSIONS.values(), key=lambda v: repositories.index(v.hub_repo))


REGISTRY: dict[str, CheckpointSpec] = {spec.name: spec for spec in map(_spec_of_version, _versions_by_repository())}
REGISTRY[MINI] = CheckpointSpec(
    name=MINI, version=MINI,
    description=("the course's mini world model (autoencoder.safetensors + dit.safetensors), trained with "
                 "tools/train_mini.sh and shipped in the repository at checkpoints/mini/"),
    formats=(MINI,), repo_id=None,
    licence="Apache-2.0", licence_note="part of svd-lab",
    gated=False,
)
REGISTRY[SMALL] = CheckpointSpec(
    name=SMALL, version=SMALL,
    description=("the small SVD trained by svd-lab (SVD's own networks at 64x64, 8 frames; diffusers layout, fp16), "
                 "trained with tools/train_small.sh and shipped in the repository at checkpoints/small/"),
    formats=(SMALL,), repo_id=None,
    licence="Apache-2.0", licence_note="part of svd-lab",
    gated=False,
)


def _wan_specs() -> dict[str, CheckpointSpec]:
    """One entry per registered Wan version; size: parameters x 4 bytes (the repositories hold float32 weights;
    an estimate for `svd-lab models`, a download checks the exact sizes the server reports)."""
    from svd_lab.wan.configs import FULL_PARAMETER_COUNTS as WAN_COUNTS
    from svd_lab.wan.versions import WAN_VERSIONS

    return {v.name: CheckpointSpec(
        name=v.name, version=v.name, description=v.description, formats=(DIFFUSERS,), repo_id=v.hub_repo,
        modelscope_repo=v.modelscope_repo, num_frames=v.num_frames, licence=v.licence,
        licence_note="Apache-2.0 (Wan's model card): free to use, keep the licence notice", gated=False,
        sizes={DIFFUSERS: 4 * sum(WAN_COUNTS[v.name].values())}, family=WAN) for v in WAN_VERSIONS.values()}


REGISTRY.update(_wan_specs())


def get_spec(name: str) -> CheckpointSpec:
    """The registry entry called ``name``; an :class:`~svd_lab.errors.UnknownNameError` (a KeyError) listing the
    known names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(REGISTRY)
        close = [n for n in REGISTRY if n.replace("_", "-") == name.replace("_", "-").lower()]
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UnknownNameError(f"unknown checkpoint {name!r}{hint}; known: {known}. See `svd-lab models`.") from None


def spec_for_sgm_file(filename: str) -> CheckpointSpec | None:
    """The registry entry whose sgm single file is called ``filename`` (e.g. ``svd.safetensors``)."""
    for spec in REGISTRY.values():
        if spec.sgm_file == filename:
            return spec
    return None


def downloadable_spec(name: str, format: str) -> CheckpointSpec:
    """The registry entry to download as ``name`` in ``format``; a :class:`CheckpointError` saying what to use
    instead for an unknown name, a shipped model (mini, small), or a format the release does not come in."""
    try:
        spec = get_spec(name)
    except UnknownNameError as exc:  # a download's errors are all CheckpointErrors: callers catch one kind
        raise CheckpointError(str(exc)) from None
    if not spec.downloadable:
        raise CheckpointError(f"{name} is not downloaded: it is shipped in the repository at checkpoints/{name}/ "
                              f"({spec.description})")
    if format not in spec.formats:
        raise CheckpointError(f"{name} is published only as {' and '.join(spec.formats)} (not {format}): "
                              f"use --format {spec.formats[0]}")
    return spec


def normalize_variant(format: str, variant: str | None, spec: CheckpointSpec | None = None) -> str | None:
    """The file variant to fetch: 'fp16', or None for full precision ('fp32', 'full', ...); None outside SVD's
    diffusers layout (Wan's repositories come in one precision)."""
    if format != DIFFUSERS or (spec is not None and spec.listed):
        return None
    if variant in (None, "", "fp32", "none", "full"):
        return None
    if variant != FP16:
        raise CheckpointError(f"unknown variant {variant!r}: use fp16 (about 4.5 GB) or fp32 (about 9 GB)")
    return variant
