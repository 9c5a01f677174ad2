# %% [markdown]
# # 04 · From mp4 to GIF, and showing videos in a notebook
#
# Stable Video Diffusion's reference script writes an mp4. To share a result in a chat, a README or a slide you
# usually want a GIF, and in a notebook you want to *see* it, frame by frame. This notebook does all of that and
# checks the files: how many frames each really holds, how long it plays, how big it is.
#
# On a CPU the video comes from the `small` profile (the small SVD this project trained, not the untrained `tiny`
# one: the rocket photo panning, at the 64x64<!-- r:video_size --> and 8<!-- r:video_shape[0] --> frames it
# was trained for); on a GPU with a checkpoint, from the
# real model. You can also point `video_path` at any mp4, for example one written by notebook 03.
# %% [bootstrap]
# %% [markdown]
# ## Parameters
# %% tags=["parameters"]
profile = "auto"          # "auto", "small", "tiny" or "full": where the video comes from when video_path is None
version = "auto"          # "auto": the best SVD checkpoint here that fits the GPU, svd's shape on a CPU (as in 03)
device = "auto"
seed = 23
num_frames = None         # None: the model's own (small: the 8 it was trained for; svd: 14); tiny: 14
num_steps = None          # None: 3 on tiny, else the weights' default (the small SVD's record, or the version's)
height = None             # None: the model's own on small (64), 64 on tiny, 576 on full
width = None              # None: the model's own on small (64), 64 on tiny, 1024 on full
video_path = None         # an existing mp4 to convert instead of sampling one
output_dir = None         # None: outputs/notebooks/04_gif_display
solutions = False         # True: the exercises' solutions are filled in
language = "en"           # "en" or "zh-CN" (set by the zh-CN edition): hints, doctor and profile lines
# %%
from pathlib import Path

import IPython.display

from svd_lab import display, exercises, messages, paths
from svd_lab.record import record, reproducible
from svd_lab.video import Video, count_frames, read_frames, read_video, save_numbered

messages.set_language(language)

reproducible(seed)
out_dir = Path(output_dir) if output_dir else paths.outputs_dir() / "notebooks" / "04_gif_display"
out_dir.mkdir(parents=True, exist_ok=True)
if video_path is None:
    from svd_lab.svd.profiles import load_pipeline

    pipe, choice = load_pipeline(version, profile=profile, device=device, seed=seed, progress=False)
    resolved_profile = choice.profile
    tiny = resolved_profile == "tiny"
    video = pipe(str(paths.project_root() / "assets" / "rocket.png"), num_frames=num_frames or (14 if tiny else None),
                 num_steps=num_steps or (3 if tiny else None), height=height or (64 if tiny else None),
                 width=width or (64 if tiny else None), seed=seed, progress=False)
    mp4_path = save_numbered(video, out_dir)["mp4"]
    print(choice.line())
else:
    resolved_profile = "file"
    mp4_path = Path(video_path)
    file_frames, file_fps = read_video(mp4_path)          # the frame rate is the file's, not assumed
    video = Video(file_frames, fps=file_fps)
print(f"{mp4_path}: {video}")
# %% [markdown]
# Every frame is decoded by the model's VAE, so the VAE's round trip of the input (encode, decode) shows what any of
# its videos can keep of it (a generated frame may score close to it, or even above it: the UNet's latent need not be the
# encoder's). The input, that round trip and the video's first frame, each with its PSNR against the input, and the
# video's last frame:
# %%
if video_path is None:
    import torch

    from svd_lab.pixels import psnr, quantize
    from svd_lab.small.metrics import vae_round_trip
    from svd_lab.svd.images import image_to_tensor

    given = image_to_tensor(pipe.prepare_image(str(paths.project_root() / "assets" / "rocket.png"), video.width,
                                               video.height))[0]
    vae_module = pipe.components.vae
    trip = quantize(vae_round_trip(vae_module, given.unsqueeze(0).to(next(vae_module.parameters()).device)).cpu()[0])
    first, last = (torch.from_numpy(video.frames[i]).permute(2, 0, 1).float() / 255 for i in (0, -1))
    picture_psnr = {"round trip": psnr(given, trip), "first frame": psnr(given, first)}
    IPython.display.display(display.frame_grid(
        torch.stack([given, trip, first, last]), columns=4, size=2.4,
        labels=["input", f"VAE round trip, {picture_psnr['round trip']:.1f} dB",
                f"frame 0, {picture_psnr['first frame']:.1f} dB", f"frame {video.num_frames - 1}"]))
# %% [markdown]
# ## 1. mp4 → GIF with moviepy
#
# Most SVD tutorials (the article this course grew from among them) convert with moviepy. moviepy 2<!-- r:moviepy_major --> changed its API: `from moviepy.editor import *` is gone, import
# the classes from `moviepy` directly, and `set_*`/`subclip`/`resize` became `with_*`/`subclipped`/`resized`.
# %%
from moviepy import ImageSequenceClip, VideoFileClip

gif_moviepy = out_dir / f"{mp4_path.stem}.moviepy.gif"
with VideoFileClip(str(mp4_path)) as clip:
    print(f"moviepy reads: {clip.fps:g} fps, {clip.duration:.3f} s, {clip.n_frames} frames, size {clip.size}")
    clip.write_gif(str(gif_moviepy), fps=clip.fps, logger=None)
print(f"{gif_moviepy.name}: {count_frames(gif_moviepy)} frames")
# %% [markdown]
# ### A trap: building a clip from frames at 7<!-- r:fps --> fps
#
# The GIF above already came out one frame short (its count against the video's, printed at the top of the
# notebook): moviepy read the mp4 as a frame fewer than it holds, from the duration it found in the file. When the
# frames are still in memory it is tempting to skip the mp4 and write
# `ImageSequenceClip(frames, fps=7).write_gif(...)`. With moviepy 2<!-- r:moviepy_major --> (the version is printed below)
# that GIF can be **one frame short**: the clip's duration is the sum of the frames' durations
# 1/7<!-- r:fps --> computed in floating point, a hair under the exact
# value (printed below), and the writer stops before the last frame. Counting the frames of what was written
# catches it:
# %%
import moviepy

gif_sequence = out_dir / f"{mp4_path.stem}.sequence.gif"
sequence = ImageSequenceClip(list(video.frames), fps=video.fps)
print(f"moviepy {moviepy.__version__}: ImageSequenceClip duration {sequence.duration!r} s")
sequence.write_gif(str(gif_sequence), fps=video.fps, logger=None)
sequence.close()
sequence_frames = count_frames(gif_sequence)
print(f"{gif_sequence.name}: {sequence_frames} frames written of {video.num_frames}")
# %% [markdown]
# Which frame went missing? On a bouncing ball it is plain to see: 14<!-- r:ball_frames --> frames of a ball falling and
# bouncing, at 7<!-- r:ball_fps --> fps, written the same way. The GIF ends one position early, so on every loop the ball jumps back from the
# second-to-last position instead of the last one.
# %%
import torch

from svd_lab.mini import data as ball_data

# the fastest speed bucket: a ball that moves a few pixels a frame, so a missing position is visible
ball = ball_data.generate(1, seed=3, frames=14, speed_bucket=torch.tensor([ball_data.NUM_SPEED_BUCKETS - 1]))
ball_speed = float(ball.velocities[0, 0].norm())
print(f"the ball moves {ball_speed:.2f} px per frame on a {ball.frames.shape[-1]} px picture")
ball_frames = (ball.frames[0, :, 0, :, :, None].repeat(1, 1, 1, 3).numpy() * 255).round().astype("uint8")
gif_ball = out_dir / "ball.sequence.gif"
ball_clip = ImageSequenceClip(list(ball_frames), fps=7)
ball_clip.write_gif(str(gif_ball), fps=7, logger=None)
ball_clip.close()
ball_written, _ = read_video(gif_ball)
ball_video = Video(ball_frames, fps=7)
print(f"{gif_ball.name}: {len(ball_written)} of {len(ball_frames)} frames written")
IPython.display.display(display.compare([ball_frames, ball_written],
                                        ["the 14 frames", f"ImageSequenceClip GIF ({len(ball_written)} frames)"],
                                        fps=7, title="the ball's last position never appears in the short GIF"))
display.frame_grid(ball_frames, fps=7, columns=3, frame_indices=range(len(ball_frames) - 3, len(ball_frames)),
                   title="the last three frames: the GIF stops at the second of them")
# %% [markdown]
# ### Exercise 1 · Predict the loss, then explain it
#
# A clip of `n` frames at `fps` frames per second lasts `n / fps` seconds in exact arithmetic. `ImageSequenceClip`
# adds up the `n` frame durations `1 / fps` in floating point, and the GIF writer then writes
# `int(duration * fps)` frames. **Predict** how many frames it writes for 21<!-- r:exercise_clips[0][0] --> frames at
# 7<!-- r:exercise_clips[0][1] --> fps, and for 16<!-- r:exercise_clips[1][0] --> frames at
# 8<!-- r:exercise_clips[1][1] --> fps, reasoning with Python's floats (`sum([1 / fps] * n)`); the check writes both
# GIFs and counts. Then **explain** the difference by choosing one sentence:
#
# - `"a"`: moviepy drops the last frame of every GIF it builds from frames;
# - `"b"`: `1 / 8` is a power of two, stored exactly in binary floating point, so the durations add up to exactly
#   the clip's length; `1 / 7` is not, the sum ends a hair short, and `int()` rounds the frame count down;
# - `"c"`: the GIF format cannot store a frame rate of 7<!-- r:exercise_clips[0][1] --> fps, so the writer resamples the clip.
# %%
my_frames_written = None   # your answer: {(21, 7): frames, (16, 8): frames}
my_reason = None           # your answer: "a", "b" or "c"
# %% tags=["solution"]
# Solution (click to reveal)
if solutions:
    my_frames_written = {(n, fps): int(sum([1 / fps] * n) * fps) for n, fps in ((21, 7), (16, 8))}
    print(my_frames_written)       # int(20.999999999999993) = 20; int(2.0 * 8) = 16
    my_reason = "b"
# %%
exercise_clips = [(21, 7), (16, 8)]


def _written(n: int, fps: int) -> int:
    """Frames in the GIF moviepy writes for n distinct frames at fps (identical frames would be merged)."""
    frames_n = ball_data.generate(1, seed=3, frames=n).frames[0, :, 0, :, :, None].repeat(1, 1, 1, 3)
    clip_n = ImageSequenceClip(list((frames_n.numpy() * 255).round().astype("uint8")), fps=fps)
    path = out_dir / "exercise.gif"
    clip_n.write_gif(str(path), fps=fps, logger=None)
    clip_n.close()
    count = count_frames(path)
    path.unlink()
    return count


exercise_written = {clip: _written(*clip) for clip in exercise_clips}
exercises.check("frames_written", (my_frames_written, my_reason) if my_frames_written is not None else None,
                lambda a: all(int(a[0][clip]) == n for clip, n in exercise_written.items()) and a[1] == "b")
# %% [markdown]
# ### Exercise 2 · Write the ball GIF with every frame
#
# Write `ball_frames` (14<!-- r:ball_frames --> frames, 7<!-- r:ball_fps --> fps) to `out_dir / "ball.full.gif"` so that the
# file holds all 14<!-- r:ball_frames --> frames, and set `my_gif` to its path. Any way that works is fine.
# %%
my_gif = None   # your answer: the path of the GIF you wrote
# %% tags=["solution"]
# Solution (click to reveal)
if solutions:
    my_gif = out_dir / "ball.full.gif"
    if my_gif.exists():
        my_gif.unlink()
    ball_video.save_gif(my_gif)                              # ffmpeg, one palette, every frame
# %%
exercises.check("full_ball_gif", my_gif, lambda a: count_frames(Path(a)) == len(ball_frames))
# %% [markdown]
# The library's writer (`Video.save_gif`, ffmpeg with one palette computed from all frames) writes every frame;
# that is what `svd-lab sample --gif` uses.
# %%
gif_library = out_dir / f"{mp4_path.stem}.gif"
if gif_library.exists():
    gif_library.unlink()   # re-running the notebook replaces its own GIF
video.save_gif(gif_library)
print(f"{gif_library.name}: {count_frames(gif_library)} frames")
# %% [markdown]
# ## 2. Checking the files
#
# Frame counts are decoded from the files (not read from their headers); durations follow from the frame count
# and frame rate; sizes depend on the encoder (an mp4 is much smaller than a GIF of the same frames).
# %%
files = {"mp4": mp4_path, "GIF (moviepy, from the mp4)": gif_moviepy,
         "GIF (moviepy ImageSequenceClip)": gif_sequence, "GIF (Video.save_gif)": gif_library}
counts = {name: count_frames(path) for name, path in files.items()}
print(f"{'file':<34}{'frames':>7}{'seconds':>9}{'bytes':>10}")
for name, path in files.items():
    print(f"{name:<34}{counts[name]:>7}{counts[name] / video.fps:>9.2f}{path.stat().st_size:>10,}")
short = {name: n for name, n in counts.items() if n != video.num_frames}
print(f"files missing frames (of {video.num_frames}):", short or "none")
# %% [markdown]
# ## 3. Showing a video inline
#
# `display.show_video` embeds the video in the notebook: as an HTML5 `<video>` (an mp4; small files, player
# controls) or as a GIF (plays everywhere, including GitHub and nbviewer, which strip `<video>` tags). Small videos
# are scaled up with sharp pixels.
# %%
display.show_video(video, "html5", caption="HTML5 video (mp4 inside the notebook)")
# %%
display.show_video(gif_library, "gif", caption="the GIF written above, read back from disk")
# %% [markdown]
# ## 4. Looking at single frames
#
# A grid shows every frame at once, labelled with its time; the scrubber lets you step through them (drag the
# slider or press play). The scrubber is an interactive widget: it needs a running kernel, so a saved copy of the
# notebook shows only its first frame.
# %%
display.frame_grid(video, columns=min(video.num_frames, 8), title=f"{video.num_frames} frames at {video.fps:g} fps")
# %%
display.scrubber(video, caption="frame scrubber")
# %% [markdown]
# ## 5. Side by side
#
# `display.compare` puts videos next to each other, looping in step: here the mp4's frames and the two moviepy
# GIFs decoded back (a file with fewer frames than the mp4 restarts early: the labels give each one's count).
# %%
display.compare([read_frames(mp4_path), read_frames(gif_moviepy), read_frames(gif_sequence)],
                ["mp4", f"moviepy from mp4 ({counts['GIF (moviepy, from the mp4)']} frames)",
                 f"ImageSequenceClip ({sequence_frames} frames)"], fps=video.fps, title="decoded files")
# %% [markdown]
# ## What you learned
#
# - Convert an mp4 to a GIF with moviepy 2<!-- r:moviepy_major --> (the new imports), and why frames go missing when a
#   clip is built from frames at 7<!-- r:fps --> fps (a floating-point duration that `1 / 8` would not have); how
#   to count what a file really holds.
# - Show videos inline as HTML5 or GIF, as a frame grid, with a scrubber, and side by side.
#
# ## References
#
# - [moviepy 2<!-- r:moviepy_major --> documentation](https://zulko.github.io/moviepy/) and its
#   [v1 -> v2 migration guide](https://zulko.github.io/moviepy/getting_started/updating_to_v2.html).
# - [FFmpeg's palettegen/paletteuse filters](https://ffmpeg.org/ffmpeg-filters.html#palettegen) (how `Video.save_gif`
#   makes one palette for all frames).
# - Stability AI's `scripts/sampling/simple_video_sample.py`, which writes the mp4 this notebook starts from.
# %% tags=["record"]
# Values the course's regression runs compare with their baselines (see tests/baselines/); nothing is shown.
record("profile", resolved_profile)
record("video_shape", [video.num_frames, video.height, video.width, 3])
record("fps", video.fps)
record("frame_counts", counts)
record("ball_gif_frames", len(ball_written))
record("ball_frames", len(ball_frames))
record("ball_fps", ball_video.fps)
record("video_size", [video.height, video.width])
record("moviepy_major", int(moviepy.__version__.split(".")[0]))
record("exercise_clips", [list(clip) for clip in exercise_clips])
record("exercise_written", [exercise_written[clip] for clip in exercise_clips])
record("mp4_bytes", mp4_path.stat().st_size)
record("gif_moviepy_bytes", gif_moviepy.stat().st_size)
record("gif_library_bytes", gif_library.stat().st_size)
record("frame_mean", float(video.frames.mean()))
if video_path is None:
    record("round_trip_psnr_db", picture_psnr["round trip"])
    record("first_frame_psnr_db", picture_psnr["first frame"])
