"""svd-lab: a notebook course and helper library for image-to-video diffusion.

The library is imported by the course notebooks; every heavy dependency (torch, diffusers, ...) is imported
lazily by the submodule that needs it, so ``import svd_lab`` and ``svd-lab doctor`` stay fast.
"""

from __future__ import annotations

from svd_lab.version import __version__

__all__ = ["__version__", "batch", "doctor"]


def doctor(checkpoints_dir=None, check_network=True):
    """Inspect this machine and return a :class:`svd_lab.diagnostics.DoctorReport` (HTML in Jupyter, text in a shell).

    ``check_network=False`` skips probing the download sources (the hub, its mirror, ModelScope)."""
    from svd_lab.diagnostics import run_doctor

    return run_doctor(checkpoints_dir=checkpoints_dir, check_network=check_network)


def batch(images, out, *, seeds=None, motion_bucket_ids=None, pipe=None, show=True, **options):
    """Generate one video per (image, seed, motion bucket) into ``out``, resumably; returns the manifest as a
    :class:`svd_lab.batches.BatchResult` (a table in a notebook) and, with ``show``, the videos side by side.

    ``images``: a folder, a glob pattern, a file or a list of them. ``pipe``: a loaded pipeline to reuse (else
    one is loaded: ``version=``, ``profile=``). Other keywords: ``SVDPipeline.run``'s (``num_frames``, ``fps_id``,
    ...). See :mod:`svd_lab.batches` and ``svd-lab batch`` for many processes or GPUs.
    """
    from svd_lab.batches import batch as run

    return run(images, out, seeds=seeds, motion_bucket_ids=motion_bucket_ids, pipe=pipe, show=show, **options)
