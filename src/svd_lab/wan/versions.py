"""The Wan versions svd-lab runs, their reference settings and where they are published.

Wan (Alibaba, Apache-2.0) is a video diffusion transformer trained with flow matching: Sora's recipe in open
weights. Two versions fit a course reader's GPU; both are in diffusers' layout on the Hugging Face hub and on
ModelScope (``Wan-AI/<name>-Diffusers``; the ModelScope ids are the ones DiffSynth-Studio's documentation and
ModelScope-cache paths in public code use)::

    version          task                     size x frames @ fps   steps  guidance  shift  image conditioning
    wan2.1-t2v-1.3b  text -> video            832x480 x 81 @ 16     50     5.0       3.0    none (text only)
    wan2.2-ti2v-5b   text (+ image) -> video  1280x704 x 121 @ 24   50     5.0       5.0    the first latent frame

Settings are Wan's own (the model cards and the diffusers examples); the VRAM figures are Wan's own claims,
labelled so, until a GPU run here measures them (``benchmarks/bench_wan.py``). Wan2.1's separate image-to-video
models (14B, a CLIP image encoder and concatenated latents) are not registered: too large for the GPUs this course
targets; Wan2.2-TI2V-5B is its image-to-video model.

Names: one word per model, lower case, the release's own name (``wan2.1-t2v-1.3b``), beside the SVD versions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from svd_lab.errors import UnknownNameError

#: Wan's default negative prompt (the Wan repositories' shared config, used by the diffusers examples): what the
#: guidance steers away from. Chinese, as Wan was trained: oversaturated, overexposed, static, blurry details,
#: subtitles, ..., worst quality, JPEG artefacts, extra fingers, deformed limbs, cluttered background, walking
#: backwards.
DEFAULT_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
    "丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，"
    "静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)

T2V, TI2V = "t2v", "ti2v"


@dataclass(frozen=True)
class WanVersion:
    """One Wan release: its reference sampling settings and where it is published."""

    name: str
    task: str                 # T2V (text only) or TI2V (text, optionally an image as the first frame)
    hub_repo: str
    modelscope_repo: str
    description: str
    height: int
    width: int
    num_frames: int           # 4 k + 1: the VAE keeps the first frame and compresses the rest 4x in time
    fps: int
    num_steps: int = 50
    guidance: float = 5.0
    shift: float = 3.0        # flow_shift of the release's scheduler config
    solver: str = "unipc"     # the released pipelines' scheduler: UniPC (flow sigmas, bh2, order 2)
    seed: int = 42
    max_sequence_length: int = 512
    vram_claim: str = ""      # Wan's own figure, not measured here
    licence: str = "Apache-2.0"
    spatial_factor: int = 8   # the VAE's down-sampling in space (Wan's vae_stride (4, s, s))
    temporal_factor: int = 4  # ... and in time

    @property
    def size_multiple(self) -> int:
        """Height and width must be multiples of this: the VAE's spatial factor times the 2x2 patch."""
        return 2 * self.spatial_factor

    @property
    def takes_image(self) -> bool:
        return self.task == TI2V

    def defaults(self) -> dict:
        """The sampling settings (what `svd-lab sample` fills in), without the release facts."""
        keep = ("height", "width", "num_frames", "fps", "num_steps", "guidance", "shift", "solver", "seed")
        return {k: v for k, v in asdict(self).items() if k in keep}


WAN_VERSIONS: dict[str, WanVersion] = {v.name: v for v in (
    WanVersion(
        name="wan2.1-t2v-1.3b", task=T2V,
        hub_repo="Wan-AI/Wan2.1-T2V-1.3B-Diffusers", modelscope_repo="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        description="Wan 2.1 text-to-video, 1.3B transformer (480p; UMT5-XXL text encoder, 8x spatial VAE)",
        height=480, width=832, num_frames=81, fps=16, shift=3.0,
        vram_claim="8.19 GB at 480p (Wan 2.1 README, with offloading)"),
    WanVersion(
        name="wan2.2-ti2v-5b", task=TI2V,
        hub_repo="Wan-AI/Wan2.2-TI2V-5B-Diffusers", modelscope_repo="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
        description="Wan 2.2 text- and image-to-video, 5B transformer (720p 24 fps; 16x spatial VAE, 48 channels)",
        height=704, width=1280, num_frames=121, fps=24, shift=5.0, spatial_factor=16,
        vram_claim="720p on one 24 GB consumer GPU (Wan 2.2 README, with offloading)"),
)}

#: every Wan name `svd-lab sample --version` accepts
WAN_NAMES = tuple(WAN_VERSIONS)


def is_wan(name: str | None) -> bool:
    return name is not None and name.lower() in WAN_VERSIONS


def get_wan_version(name: str) -> WanVersion:
    try:
        return WAN_VERSIONS[name.lower()]
    except KeyError:
        raise UnknownNameError(f"unknown Wan version {name!r}; known: {', '.join(WAN_VERSIONS)}") from None
