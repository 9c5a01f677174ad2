"""Batch generation: every image of a folder, several seeds or motion buckets each, resumable, on many processes.

One **job** is one (image, seed, motion_bucket_id) with the run's other sampling options; its id is a hash of
all of them, so the same command plans the same jobs again. The output folder holds::

    DIR/manifest.jsonl          one JSON line per event: planned, claimed, done (with the output), failed (why)
    DIR/<image>-s<seed>-m<bucket>.mp4      one video per job (atomic writes: complete or absent)
    DIR/.claims/<job id>        who works on a job right now (created exclusively: one process per job)

**Resuming.** A job whose last event is ``done`` and whose video is there with every frame is skipped; a failed
job is tried again; a video that exists without a ``done`` event (a run killed between writing and recording)
is checked and adopted when complete, moved aside as ``*.incomplete-N`` otherwise. Nothing is overwritten.

**Many processes.** Under ``accelerate launch --multi_gpu --num_processes N`` (``svd-lab batch --processes N``
starts it; on a machine without CUDA the same launcher runs N CPU processes joined with gloo -- accelerate's
``--cpu`` flag would pick its single-process launcher instead) each process loads the
pipeline once on its own device (``PartialState().device``), takes its share of the pending jobs with
``PartialState().split_between_processes`` and *claims* each job before starting it: a claim is a file created
with ``O_EXCL``, so two processes -- of this run or of two runs at once -- never do the same job. A claim left by a
process that died is taken over (its pid no longer exists). After its share, a process steals what other
processes left unclaimed, so a killed or slow process does not leave work undone.

A bad image fails its own job (the reason goes to the manifest) and the run goes on.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob as globbing
import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from svd_lab.errors import InputError
from svd_lab.processes import pid_alive

MANIFEST = "manifest.jsonl"
CLAIMS = ".claims"
LAST_RESULT = ".last-run.json"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
#: sampling options a job may carry besides image, seed and motion bucket (SVDPipeline.run's keywords)
OPTIONS = ("num_frames", "num_steps", "fps_id", "cond_aug", "min_guidance", "max_guidance", "width", "height",
           "decoding_t")


@dataclass(frozen=True)
class Job:
    """One video to make. ``options``: the other keywords of ``SVDPipeline.run`` (None = the default).

    Its id covers everything that changes the video: the image's *content* (sha256 of the file, not its name),
    the seed, the motion bucket, the options, and ``model`` -- the weights and how they run (profile, version,
    weights fingerprint, dtype, device type; :func:`model_identity`). A folder made with other weights, or with an
    image replaced under the same name, is never taken for this run's.
    """

    image: str
    seed: int
    motion_bucket_id: int | None
    options: tuple[tuple[str, Any], ...] = ()
    image_sha256: str = ""
    model: str = ""

    @property
    def id(self) -> str:
        text = json.dumps([self.image_sha256 or self.image, self.seed, self.motion_bucket_id, list(self.options),
                           self.model], sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    @property
    def output_name(self) -> str:
        bucket = "default" if self.motion_bucket_id is None else str(self.motion_bucket_id)
        return f"{Path(self.image).stem}-s{self.seed}-m{bucket}-{self.id[:6]}.mp4"

    def run_kwargs(self) -> dict:
        return {**dict(self.options), "seed": self.seed, "motion_bucket_id": self.motion_bucket_id}

    def for_model(self, model: str) -> Job:
        return replace(self, model=model)

    def to_dict(self) -> dict:
        return {"id": self.id, "image": self.image, "image_sha256": self.image_sha256, "seed": self.seed,
                "motion_bucket_id": self.motion_bucket_id, "options": dict(self.options), "model": self.model,
                "output": self.output_name}


def model_identity(pipe) -> str:
    """What identifies the weights a pipeline samples with and how: profile, version, the weights' fingerprint
    (:attr:`svd_lab.svd.components.SVDComponents.fingerprint`), dtype and device type."""
    c = pipe.components
    return f"{c.profile} {c.version} [{c.fingerprint or c.source}] {str(pipe.dtype).removeprefix('torch.')} " \
           f"{pipe.device.type}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""          # unreadable: the job fails with the reason when it runs
    return digest.hexdigest()


def find_images(source: str | os.PathLike | list) -> list[Path]:
    """A folder (its images, sorted), a glob pattern, a file, or a list of those -> image paths."""
    sources = source if isinstance(source, (list, tuple)) else [source]
    found: list[Path] = []
    for item in sources:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            matches = sorted(Path(p) for p in globbing.glob(str(item)) if Path(p).is_file())
            if not matches:
                raise InputError(f"{item}: no such folder or file, and no file matches it as a pattern")
            found += matches
    if not found:
        raise InputError(f"no images found in {source} (looked for {', '.join(IMAGE_SUFFIXES)})")
    return [p.resolve() for p in dict.fromkeys(found)]


def plan_jobs(images: list[Path], seeds: list[int] | None = None, motion_bucket_ids: list[int | None] | None = None,
              **options: Any) -> list[Job]:
    """One job per (image, seed, motion bucket), in that order; ``options`` go to every job (None ones dropped)."""
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise InputError(f"unknown sampling option(s) {', '.join(sorted(unknown))}; allowed: {', '.join(OPTIONS)}")
    fixed = tuple(sorted((k, v) for k, v in options.items() if v is not None))
    hashes = {image: _sha256(Path(image)) for image in images}
    return [Job(str(image), int(seed), None if bucket is None else int(bucket), fixed, hashes[image])
            for image in images for seed in (seeds or [23]) for bucket in (motion_bucket_ids or [None])]


# ------------------------------------------------------------------------------------------- the manifest
def _append(out: Path, event: dict) -> None:
    """Append one event line; an exclusive lock keeps lines of concurrent processes whole. A torn last line (a
    process killed while writing) is ended first, so the new event starts a line of its own."""
    line = json.dumps({"time": round(time.time(), 3), **event}, sort_keys=True) + "\n"
    try:
        with open(out / MANIFEST, "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.seek(0, os.SEEK_END)
                if f.tell() > 0:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        line = "\n" + line
                f.write(line.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
    except OSError as exc:
        raise InputError(f"cannot write {out / MANIFEST}: {exc.strerror or exc}; choose a folder you can write "
                         "to (--out)") from None


def read_manifest(out: str | os.PathLike, warn=None) -> list[dict]:
    """Every event of the manifest, in order. Lines that are not events -- a torn last line of a killed process,
    a line that is not UTF-8, JSON that is not an object with a job id -- are skipped, and ``warn`` (default:
    :func:`warnings.warn`) is told which line numbers were."""
    path = Path(out) / MANIFEST
    if not path.is_file():
        return []
    events, bad = [], []
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            event = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            event = None
        if isinstance(event, dict) and isinstance(event.get("job"), str):
            events.append(event)
        else:
            bad.append(number)
    if bad:
        message = (f"{path}: {len(bad)} line(s) are not batch events and were skipped (line "
                   f"{', '.join(map(str, bad[:10]))}{', ...' if len(bad) > 10 else ''})")
        if warn is None:
            import warnings

            warnings.warn(message, stacklevel=2)
        else:
            warn(message)
    return events


def job_states(out: str | os.PathLike) -> dict[str, dict]:
    """job id -> its latest event (planned / claimed / done / failed)."""
    states: dict[str, dict] = {}
    for event in read_manifest(out):
        states[event["job"]] = event
    return states


# ------------------------------------------------------------------------------------------- claims
def _claim(out: Path, job: Job) -> bool:
    """Create the job's claim exclusively; take over a claim whose process (on this host) is gone."""
    claims = out / CLAIMS
    claims.mkdir(exist_ok=True)
    path = claims / job.id
    owner = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                return False  # being written right now: someone else has it
            if holder.get("host") == socket.gethostname() and not pid_alive(int(holder.get("pid", -1))):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # a dead process's claim: try again
                continue
            return False
        with os.fdopen(fd, "w") as f:
            f.write(owner)
        return True
    return False


def _release(out: Path, job: Job) -> None:
    with contextlib.suppress(FileNotFoundError):
        (out / CLAIMS / job.id).unlink()


# ------------------------------------------------------------------------------------------- running
def video_is_complete(path: Path, num_frames: int | None) -> bool:
    """The video exists and decodes to ``num_frames`` frames (any number > 0 when unknown)."""
    from svd_lab.video import count_frames

    if not path.is_file():
        return False
    try:
        n = count_frames(path)
    except Exception:  # noqa: BLE001 -- any decoding failure means "not a complete video"
        return False
    return n > 0 and (num_frames is None or n == num_frames)


def _move_aside(path: Path) -> Path:
    for n in range(1, 10_000):
        target = path.with_name(f"{path.name}.incomplete-{n}")
        if not target.exists():
            path.rename(target)
            return target
    raise RuntimeError(f"too many incomplete copies of {path}")


def _finished(out: Path, job: Job, state: dict | None) -> bool:
    """Whether the job is done; adopts a complete video a killed run wrote but did not record."""
    video = out / job.output_name
    if state and state.get("status") == "done" and video_is_complete(video, state.get("frames")):
        return True
    if video.exists():
        if video_is_complete(video, None) and state and state.get("status") == "claimed":
            from svd_lab.video import count_frames

            _append(out, {"job": job.id, "status": "done", "output": job.output_name, "frames": count_frames(video),
                          "adopted": True})
            return True
        _move_aside(video)
    return False


@dataclass
class BatchResult:
    """What a batch run left: every job with its final status, and where the videos are."""

    out: Path
    jobs: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    processes: int = 1

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for job in self.jobs:
            counts[job["status"]] = counts.get(job["status"], 0) + 1
        return counts

    def videos(self) -> list[Path]:
        return [self.out / j["output"] for j in self.jobs if j["status"] == "done"]

    def table(self) -> str:
        """A plain-text table: one row per job, then the totals."""
        lines = [f"{'status':<8} {'image':<28} {'seed':>5} {'bucket':>7}  output / reason"]
        for j in self.jobs:
            bucket = "-" if j["motion_bucket_id"] is None else j["motion_bucket_id"]
            detail = j["output"] if j["status"] == "done" else j.get("error") or ""
            lines.append(f"{j['status']:<8} {Path(j['image']).name[:28]:<28} {j['seed']:>5} {bucket!s:>7}  {detail}")
        totals = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()))
        lines.append(f"{len(self.jobs)} jobs: {totals} ({self.seconds:.1f} s, {self.processes} process"
                     f"{'es' if self.processes != 1 else ''}) in {self.out}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><td>{j['status']}</td><td>{html.escape(Path(j['image']).name)}</td><td>{j['seed']}</td>"
            f"<td>{'-' if j['motion_bucket_id'] is None else j['motion_bucket_id']}</td>"
            f"<td>{html.escape(j['output'] if j['status'] == 'done' else j.get('error') or '')}</td></tr>"
            for j in self.jobs)
        return (f"<table><tr><th>status</th><th>image</th><th>seed</th><th>motion_bucket_id</th><th>output / reason"
                f"</th></tr>{rows}</table><p>{html.escape(self.table().splitlines()[-1])}</p>")


def process_state():
    """accelerate's view of this process (rank, world size, device). Without CUDA it asks for the CPU explicitly:
    accelerate then joins the processes of a multi-process launch with the gloo backend."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def run_batch(jobs: list[Job], out: str | os.PathLike, *, version: str | None = None, profile: str = "auto",
              checkpoint: str | None = None, device: str | None = None, dtype: str | None = None,
              memory: str = "auto", progress: bool = True, pipe=None, log=print, lora: str | None = None,
              lora_scale: float = 1.0) -> BatchResult:
    """Run the pending ``jobs`` into ``out`` (see the module docstring); returns every job's final state.

    ``device`` None: the process's accelerate device (``cuda:<local rank>`` on GPUs, else the CPU). ``pipe``: an
    already loaded :class:`SVDPipeline` to use instead of loading one (a notebook). ``lora``: an adapter file
    applied at ``lora_scale`` (the adapter's hash and scale are part of every job's identity).
    """
    from svd_lab.progress import progress_bar

    start = time.time()
    out = Path(out)
    _check_writable(out)
    state = process_state()
    if pipe is None:
        # loaded before planning: a job's identity includes the weights (a finished folder costs one load)
        from svd_lab.svd.profiles import load_pipeline

        pipe, choice = load_pipeline(version, profile=profile, checkpoint=checkpoint,
                                     device=device or ("cpu" if state.device.type == "cpu" else str(state.device)),
                                     dtype=dtype, memory=memory, progress=False, lora=lora, lora_scale=lora_scale)
        reason = f"; profile {choice.profile} ({choice.reason})"
    else:
        reason = f"; profile {pipe.components.profile} (the pipeline given)"
    model = model_identity(pipe)
    jobs = [job.for_model(model) for job in jobs]
    states = job_states(out)
    if state.is_main_process:
        for job in jobs:
            if job.id not in states:
                _append(out, {"job": job.id, "status": "planned", "params": job.to_dict()})
        other = _done_with_other_settings(out, jobs)
        if other:
            log(f"{other} video(s) in {out} were made with other settings (another model, weights, dtype, device "
                "or image content): kept, and not counted as done for this run")
    state.wait_for_everyone()
    states = job_states(out)
    pending = [j for j in jobs if not (states.get(j.id, {}).get("status") == "done"
                                       and video_is_complete(out / j.output_name, states[j.id].get("frames")))]
    if state.is_main_process:
        log(f"{len(pending)} of {len(jobs)} jobs to do on {state.num_processes} process(es){reason}")
    with state.split_between_processes(pending) as mine:
        mine = list(mine)
    # after its own share, a process also takes what others left unclaimed (a killed or slow process)
    order = mine + [j for j in pending if j not in mine]
    bar = progress_bar(total=len(mine), desc=f"batch [{state.process_index}]", enabled=progress)
    for job in order:
        if not _claim(out, job):
            continue
        try:
            current = job_states(out).get(job.id)
            if current and current.get("status") == "failed" and current.get("time", 0) >= start:
                continue  # another process of this run tried it already; the next run retries it
            if _finished(out, job, current):
                continue
            _append(out, {"job": job.id, "status": "claimed", "process": state.process_index, "pid": os.getpid()})
            _run_one(pipe, job, out)
        finally:
            _release(out, job)
            if job in mine:
                bar.update()
    bar.close()
    state.wait_for_everyone()
    final = job_states(out)
    rows = []
    for job in jobs:
        event = final.get(job.id, {})
        rows.append({**job.to_dict(), "status": event.get("status", "planned"), "error": event.get("error")})
    result = BatchResult(out, rows, round(time.time() - start, 1), state.num_processes)
    if state.is_main_process:
        from svd_lab.atomic import write_text_atomic

        write_text_atomic(out / LAST_RESULT, json.dumps({"jobs": rows, "seconds": result.seconds}), overwrite=True)
    return result


def last_result(out: str | os.PathLike) -> dict | None:
    """The job table the last run into ``out`` left (``.last-run.json``), or None."""
    path = Path(out) / LAST_RESULT
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _check_writable(out: Path) -> None:
    """Before any work: ``out`` is (or can be made) a folder this process can write to."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder: choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"cannot write into {out}: {exc.strerror or exc}; choose a folder you can write to "
                         "(--out)") from None


def _done_with_other_settings(out: Path, jobs: list[Job]) -> int:
    """Done jobs of the manifest for the same (image path, seed, bucket, options) whose id differs from this run's."""
    mine = {(j.image, j.seed, j.motion_bucket_id, json.dumps(dict(j.options), sort_keys=True)): j.id for j in jobs}
    planned = {e["job"]: e.get("params", {}) for e in read_manifest(out) if e.get("status") == "planned"}
    count = 0
    for job_id, event in job_states(out).items():
        p = planned.get(job_id)
        if event.get("status") != "done" or not p:
            continue
        key = (p.get("image"), p.get("seed"), p.get("motion_bucket_id"), json.dumps(p.get("options", {}),
                                                                                    sort_keys=True))
        if key in mine and mine[key] != job_id:
            count += 1
    return count


def _run_one(pipe, job: Job, out: Path) -> None:
    """Sample one job's video and record done or failed (the reason: one line)."""
    from svd_lab.errors import UserError

    try:
        generation = pipe.run(job.image, progress=False, **job.run_kwargs())
        generation.video.save_mp4(out / job.output_name)   # atomic, never overwrites
    except (UserError, ValueError, FileNotFoundError, OSError, RuntimeError) as exc:
        _append(out, {"job": job.id, "status": "failed", "error": f"{type(exc).__name__}: {exc}".splitlines()[0]})
        return
    params = {k: v for k, v in generation.params.items() if isinstance(v, (int, float, str, bool, type(None)))}
    _append(out, {"job": job.id, "status": "done", "output": job.output_name,
                  "frames": generation.video.num_frames, "params": params})


def batch(images: str | os.PathLike | list, out: str | os.PathLike, *, seeds: list[int] | None = None,
          motion_bucket_ids: list[int] | None = None, pipe=None, version: str | None = None, profile: str = "auto",
          progress: bool = False, show: bool = True, **options: Any) -> BatchResult:
    """Notebook entry point: plan and run the jobs in this process; returns the :class:`BatchResult` (a table in
    a notebook). ``show=True`` also displays the finished videos side by side."""
    jobs = plan_jobs(find_images(images), seeds, motion_bucket_ids, **options)
    result = run_batch(jobs, out, version=version, profile=profile, pipe=pipe, progress=progress,
                       log=lambda message: None)
    if show and result.videos():
        from svd_lab import display

        labels = [f"{Path(j['image']).stem} s{j['seed']} m{j['motion_bucket_id']}" for j in result.jobs
                  if j["status"] == "done"]
        from IPython.display import display as ipython_display

        ipython_display(display.compare([str(v) for v in result.videos()], labels,
                                        title=f"batch: {len(labels)} videos"))
    return result


__all__ = ["BatchResult", "Job", "batch", "find_images", "job_states", "plan_jobs", "read_manifest", "run_batch"]
