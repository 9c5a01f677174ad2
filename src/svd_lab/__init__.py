"""svd-lab: a notebook course and helper library for image-to-video diffusion.

The library is imported by the course notebooks; every heavy dependency (torch, diffusers, ...) is imported
lazily by the submodule that needs it, so ``import svd_lab`` and ``svd-lab doctor`` stay fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "doctor"]


def doctor(checkpoints_dir=None):
    """Inspect this machine and return a :class:`svd_lab.diagnostics.DoctorReport` (HTML in Jupyter, text in a shell)."""
    from svd_lab.diagnostics import run_doctor

    return run_doctor(checkpoints_dir=checkpoints_dir)
