"""A playground for image-to-video: an ipywidgets panel over a loaded :class:`~svd_lab.svd.pipeline.SVDPipeline`.

Pick one of the course's images or upload your own; set ``motion_bucket_id``, ``fps_id``, the number of steps, the
guidance ramp and the seed with sliders; press **Generate**. A progress bar follows the sampler's steps, then the
video is shown with its motion measured between consecutive frames (:func:`svd_lab.small.metrics.displacement`:
sub-pixel phase correlation, the median shift; positive = content moving left), beside what the small SVD's
training rule asks (on the small profile, where that rule is the model's). It runs whatever the pipeline runs: the
tiny, small or full profile, on a CPU or a GPU.

    from svd_lab.playground import Playground
    Playground(pipe)          # the last expression of a notebook cell shows the panel

Everything a test needs is an attribute: set the widgets' values, call ``panel.generate_button.click()``, then read
``panel.result`` (the :class:`~svd_lab.svd.pipeline.Generation`), ``panel.motion`` (pixels per frame) and the HTML
of ``panel.video`` and ``panel.motion_label``.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

from svd_lab import display, paths
from svd_lab.errors import UserError

#: the course's input images (assets/), offered in the image menu
ASSETS = ("rocket", "astronaut", "coffee")
UPLOADED = "(your upload)"
#: fps_id range of the slider: SVD's trained range is 5..30 (values outside are warned about by the pipeline)
FPS_ID_RANGE = (3, 30)
MAX_STEPS = 50
MAX_SEED = 999


class Playground:
    """The panel; ``widget`` is the ipywidgets box shown in a notebook (the panel itself displays as it)."""

    def __init__(self, pipe: Any, *, image: str | Path | None = None, num_frames: int | None = None,
                 height: int | None = None, width: int | None = None, num_steps: int | None = None,
                 seed: int | None = None, video_format: str = "auto") -> None:
        import ipywidgets as widgets

        self.pipe = pipe
        defaults = pipe.resolve_params(num_frames=num_frames, height=height, width=width, num_steps=num_steps,
                                       seed=seed)
        self.num_frames, self.height, self.width = defaults["num_frames"], defaults["height"], defaults["width"]
        self.video_format = video_format
        self.result = None
        self.motion: float | None = None
        self._uploaded: Any = None
        self.images = {name: paths.project_root() / "assets" / f"{name}.png" for name in ASSETS}
        if image is not None and Path(image).stem not in self.images:
            self.images[Path(image).stem] = Path(image)
        first = Path(image).stem if image is not None else ASSETS[0]

        style = {"description_width": "170px"}
        wide = widgets.Layout(width="480px")
        self.image_menu = widgets.Dropdown(options=[*self.images, UPLOADED], value=first, description="image",
                                           style=style, layout=wide)
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="upload",
                                         layout=widgets.Layout(width="140px"))
        self.motion_bucket = widgets.IntSlider(value=defaults["motion_bucket_id"], min=0, max=255,
                                               description="motion_bucket_id", style=style, layout=wide)
        self.fps_id = widgets.IntSlider(value=defaults["fps_id"], min=FPS_ID_RANGE[0], max=FPS_ID_RANGE[1],
                                        description="fps_id", style=style, layout=wide)
        self.steps = widgets.IntSlider(value=defaults["num_steps"], min=1, max=max(MAX_STEPS, defaults["num_steps"]),
                                       description="steps", style=style, layout=wide)
        self.guidance = widgets.FloatRangeSlider(value=(defaults["min_guidance"], defaults["max_guidance"]), min=0.0,
                                                 max=5.0, step=0.1, description="guidance first → last",
                                                 style=style, layout=wide)
        self.seed = widgets.IntSlider(value=defaults["seed"], min=0, max=max(MAX_SEED, defaults["seed"]),
                                      description="seed", style=style, layout=wide)
        self.generate_button = widgets.Button(description="Generate", button_style="primary", icon="play")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="", layout=widgets.Layout(width="300px"))
        self.status = widgets.HTML(value="")
        self.video = widgets.HTML(value="")
        self.motion_label = widgets.HTML(value="")

        self.upload.observe(self._on_upload, names="value")
        self.generate_button.on_click(lambda _button: self.generate())
        controls = widgets.VBox([widgets.HBox([self.image_menu, self.upload]), self.motion_bucket, self.fps_id,
                                 self.steps, self.guidance, self.seed,
                                 widgets.HBox([self.generate_button, self.progress, self.status])])
        self.widget = widgets.VBox([widgets.HTML(f"<b>SVD playground</b> · {self.width}x{self.height}, "
                                                 f"{self.num_frames} frames, profile {pipe.components.profile}"),
                                    controls, self.video, self.motion_label])

    # -- what a notebook shows
    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- the input image
    def _on_upload(self, change: dict) -> None:
        files = change["new"]
        if files:
            self._uploaded = files[0]
            self.image_menu.value = UPLOADED

    def chosen_image(self) -> Any:
        """The image to animate: a path to one of the course's images, or the uploaded file as a PIL image."""
        if self.image_menu.value != UPLOADED:
            return str(self.images[self.image_menu.value])
        if self._uploaded is None:
            raise UserError("choose an image, or upload one first")
        from PIL import Image

        try:
            return Image.open(io.BytesIO(bytes(self._uploaded["content"]))).convert("RGB")
        except Exception as exc:  # noqa: BLE001 -- any undecodable upload is the user's to fix
            raise UserError(f"{self._uploaded.get('name', 'the upload')} is not an image PIL can read ({exc})") \
                from None

    # -- one generation
    def generate(self):
        """Generate with the widgets' values; shows the video and its measured motion. Returns the Generation (None
        when the input was refused: the reason is shown in the panel)."""
        from svd_lab.small import data as pan_data
        from svd_lab.small.metrics import displacement

        steps = int(self.steps.value)
        self.progress.max, self.progress.value = steps + 1, 0     # the sampler's steps, then the decode
        self.status.value = "sampling ..."
        self.generate_button.disabled = True
        try:
            result = self.pipe.run(
                self.chosen_image(), num_frames=self.num_frames, height=self.height, width=self.width,
                num_steps=steps, min_guidance=float(self.guidance.value[0]),
                max_guidance=float(self.guidance.value[1]), fps_id=int(self.fps_id.value),
                motion_bucket_id=int(self.motion_bucket.value), seed=int(self.seed.value),
                callback=self._on_step, progress=False)
        except UserError as exc:
            self.status.value = f"<span style='color:#b00'>{html.escape(str(exc))}</span>"
            return None
        finally:
            self.generate_button.disabled = False
        self.progress.value = self.progress.max
        self.result = result
        self.motion = displacement(result.frames)
        self.video.value = display.show_video(result.video, self.video_format).data
        direction = "content moving left" if self.motion > 0 else "content moving right" if self.motion < 0 else "still"
        line = f"measured motion: <b>{self.motion:.2f} px per frame</b> ({direction}; consecutive frames, median shift)"
        if self.pipe.components.profile == "small":
            rule = float(pan_data.speed_to_step(int(self.motion_bucket.value), int(self.fps_id.value), self.width))
            line += f"; the small SVD's training rule asks {rule:.2f}"
        if result.params.get("warnings"):
            line += "<br>" + html.escape("; ".join(result.params["warnings"]))
        self.motion_label.value = line
        self.status.value = f"done: seed {int(self.seed.value)}, {steps} steps"
        return result

    def _on_step(self, step: Any) -> None:
        self.progress.value = min(self.progress.value + 1, self.progress.max - 1)
