"""Record the results of a notebook that matter, for the course's regression runs.

A notebook calls ``record("sigmas", sigmas)`` for a value a silent bug would change (a schedule, a shape, a
frame count, a summary statistic of generated frames). Recording prints nothing and returns nothing, so a reader
sees only the line of code. Where the value goes:

- always into this process's registry (:func:`records`), so an interactive user can inspect it;
- when the environment variable ``SVD_LAB_RECORD_FILE`` names a file (the course runner and the tests set it for
  each notebook they execute), into that JSON file, rewritten atomically after every call. The runner then copies
  the records into the executed notebook's metadata (``metadata["svd_lab"]["records"]``).

Each value carries a *tolerance* that the regression comparison (:mod:`svd_lab.notebook_runs`) applies:

- ``"exact"``: counts, shapes, schedules, parameters, strings -- any change is a regression;
- ``"rel:R"``: floats compared with relative tolerance R (and an absolute floor of R * 1e-2 for values near 0).
  The default ``rel:1e-4`` sits well above the thread-count noise of float32 CPU kernels (~5e-6 measured here)
  and well below any real change of a sampler or a model;
- ``"size"``: file sizes in bytes, which depend on the bundled ffmpeg/Pillow builds: must stay positive and within
  a factor of 2 of the baseline (a dropped frame or an empty file still fails; an encoder update does not).

Without an explicit tolerance: booleans, integers, strings and lists of them are exact, names ending in
``_bytes`` are sizes, everything else holding a float is ``rel:1e-4``.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from pathlib import Path
from typing import Any

from svd_lab.atomic import write_text_atomic

RECORD_FILE_ENV = "SVD_LAB_RECORD_FILE"
DEFAULT_RELATIVE_TOLERANCE = 1e-4
FORMAT_VERSION = 1

_records: dict[str, dict[str, Any]] = {}


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: tensors and arrays become (nested) lists, tuples lists, numpy scalars numbers.

    Raises TypeError for anything else (objects, NaN/inf floats), so a record is always comparable.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        if not math.isfinite(f):
            raise TypeError(f"cannot record a non-finite float ({f}): record a count of bad values instead")
        return f
    if hasattr(value, "detach") and hasattr(value, "tolist"):  # torch.Tensor, without importing torch
        return to_jsonable(value.detach().cpu().tolist())
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy array or scalar
        return to_jsonable(value.tolist())
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot record a value of type {type(value).__name__}: record numbers, strings or lists")


def _leaves(value: Any):
    if isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    else:
        yield value


def default_tolerance(name: str, value: Any) -> str:
    """The tolerance a value gets when the notebook does not say (see the module docstring)."""
    if name.endswith("_bytes"):
        return "size"
    if any(isinstance(v, float) for v in _leaves(value)):
        return f"rel:{DEFAULT_RELATIVE_TOLERANCE:g}"
    return "exact"


def parse_tolerance(tolerance: str) -> tuple[str, float]:
    """``"exact"`` -> ("exact", 0); ``"rel:1e-4"`` -> ("rel", 1e-4); ``"size"`` -> ("size", 2.0).

    Raises ValueError with the accepted forms otherwise.
    """
    if tolerance == "exact":
        return "exact", 0.0
    if tolerance == "size":
        return "size", 2.0
    if isinstance(tolerance, str) and tolerance.startswith("rel:"):
        try:
            r = float(tolerance[4:])
        except ValueError:
            r = -1.0
        if r > 0 and math.isfinite(r):
            return "rel", r
    raise ValueError(f"tolerance {tolerance!r}: use 'exact', 'size' or 'rel:R' with R > 0 (e.g. 'rel:1e-4')")


def record(name: str, value: Any, *, tolerance: str | None = None) -> None:
    """Record ``value`` under ``name`` for the regression comparison; shows nothing, returns None.

    ``tolerance``: "exact", "rel:R" or "size" (default chosen from the value, see the module docstring).
    Recording the same name again replaces the value (re-running a cell is harmless).
    """
    if not isinstance(name, str) or not name or not name.replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"record name {name!r}: use letters, digits, '_' and '.' only")
    plain = to_jsonable(value)
    tol = tolerance if tolerance is not None else default_tolerance(name, plain)
    parse_tolerance(tol)
    if tol == "size" and not (isinstance(plain, int) and not isinstance(plain, bool)):
        raise ValueError(f"record {name!r}: tolerance 'size' is for a byte count (an int), got {plain!r}")
    _records[name] = {"value": plain, "tolerance": tol}
    target = os.environ.get(RECORD_FILE_ENV)
    if target:
        write_records(Path(target), _records)


def records() -> dict[str, dict[str, Any]]:
    """A copy of everything recorded in this process: ``{name: {"value": ..., "tolerance": ...}}``."""
    return json.loads(json.dumps(_records))


def clear() -> None:
    """Forget the records of this process (the file named by SVD_LAB_RECORD_FILE is left as it is)."""
    _records.clear()


def write_records(path: Path, values: dict[str, dict[str, Any]]) -> None:
    """Write ``values`` to ``path`` as JSON through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT_VERSION, "records": values}
    write_text_atomic(path, json.dumps(payload, indent=1, sort_keys=True) + "\n", overwrite=True)


def read_records(path: Path) -> dict[str, dict[str, Any]]:
    """The records stored in a file written by :func:`write_records` ({} when the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return {}
    payload = json.loads(path.read_text())
    if payload.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: unknown records format {payload.get('format')!r}")
    return payload["records"]


def reproducible(seed: int, *, threads: int | None = None) -> None:
    """Make what follows deterministic: seed Python, NumPy and torch, and ask torch for deterministic kernels.

    ``threads``: fix torch's intra-op thread count (default: the environment variable ``SVD_LAB_NUM_THREADS``
    when set, else leave it). Thread count changes float32 reductions by ~5e-6 relative on this CPU, which the
    default regression tolerance absorbs.
    """
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads is None and os.environ.get("SVD_LAB_NUM_THREADS"):
        threads = int(os.environ["SVD_LAB_NUM_THREADS"])
    if threads:
        torch.set_num_threads(threads)
