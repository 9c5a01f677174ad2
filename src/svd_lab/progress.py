"""The one progress-bar switch: every tqdm bar svd-lab shows goes through :func:`progress_bar`.

A bar is shown unless the caller passes ``progress=False`` or the environment variable ``TQDM_DISABLE`` holds a
value other than empty, ``0``, ``false``, ``no`` or ``off`` (so ``TQDM_DISABLE=1`` and ``TQDM_DISABLE=2`` both
silence the sampler, the trainers and the downloader alike). The Makefile and the course runner set it: tqdm in a
papermill kernel would write a widget or a line per update into the executed notebook.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

_OFF_VALUES = ("", "0", "false", "no", "off")


def progress_enabled(progress: bool = True) -> bool:
    """True unless ``progress`` is False or ``TQDM_DISABLE`` is set to a true value (read now, not at import)."""
    return bool(progress) and os.environ.get("TQDM_DISABLE", "").strip().lower() in _OFF_VALUES


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str | None = None,
                 enabled: bool = True, **kwargs):
    """``tqdm.auto.tqdm``, fully disabled (no output at all) when :func:`progress_enabled` says so."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not progress_enabled(enabled), **kwargs)
