"""The course's regression baselines: what the notebooks recorded last time, compared with what they record now.

Every notebook records the values that matter with :func:`svd_lab.record.record`; a baseline in ``tests/baselines/``
holds them for the CPU profiles, with the signature of the machine that recorded them. :func:`regression_rows`
compares a run (:class:`svd_lab.notebook_runs.NotebookRun`) with its baseline value by value, each under its own
tolerance; ``svd-lab course regress`` prints the table and ``--update`` rewrites the baselines.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svd_lab import notebook_runs
from svd_lab.atomic import write_text_atomic
from svd_lab.errors import CourseError
from svd_lab.notebook_runs import NotebookRun, format_table
from svd_lab.record import parse_tolerance

#: profiles whose runs have baselines (the CPU ones: the same on every CPU of a kind): SVD's tiny and small
#: profiles (00, 03, 04) and the mini world model (01, 02)
BASELINE_PROFILES = ("tiny", "small", "mini")

@dataclass
class Comparison:
    notebook: str
    name: str
    baseline: Any
    now: Any
    tolerance: str
    verdict: str   # "ok" | "CHANGED" | "MISSING" (recorded in the baseline, not now) | "new" (not in the baseline)
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.verdict in ("CHANGED", "MISSING")


def _close(a: float, b: float, r: float) -> bool:
    # Relative tolerance with an absolute floor of r * 1e-2, so values near 0 do not demand impossible agreement.
    return abs(a - b) <= r * max(abs(a), abs(b)) + r * 1e-2


def compare_value(baseline: Any, now: Any, tolerance: str) -> tuple[bool, str]:
    """Whether ``now`` matches ``baseline`` under ``tolerance``, and a short account of the difference."""
    kind, r = parse_tolerance(tolerance)
    if kind == "exact":
        return (baseline == now), ("" if baseline == now else "exact value changed")
    if kind == "size":
        if not isinstance(now, int) or now <= 0:
            return False, f"size {now!r} is not a positive byte count"
        ratio = now / baseline if baseline else math.inf
        ok = 1 / r <= ratio <= r
        return ok, f"size ratio {ratio:.2f}" + ("" if ok else f" outside [{1 / r:g}, {r:g}]")
    # relative: same structure, non-float leaves exact, float leaves close
    worst = [0.0, ""]

    def walk(a: Any, b: Any, where: str) -> bool:
        if isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                worst[1] = f"length {len(a)} -> {len(b)}{where and ' at ' + where}"
                return False
            # a list, not a generator: every element is visited so the report names the largest difference
            return all([walk(x, y, f"{where}[{i}]") for i, (x, y) in enumerate(zip(a, b))])  # noqa: C419
        if isinstance(a, dict) and isinstance(b, dict):
            if set(a) != set(b):
                worst[1] = f"keys {sorted(a)} -> {sorted(b)}{where and ' at ' + where}"
                return False
            return all([walk(a[k], b[k], f"{where}[{k!r}]") for k in sorted(a)])  # noqa: C419
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
                and not isinstance(b, bool) and (isinstance(a, float) or isinstance(b, float)):
            rel = abs(a - b) / max(abs(a), abs(b), 1e-300)
            if rel > worst[0]:
                worst[0] = rel
                worst[1] = f"rel diff {rel:.2e}{where and ' at ' + where}"
            return _close(a, b, r)
        if a != b:
            worst[1] = f"{a!r} -> {b!r}{where and ' at ' + where}"
            return False
        return True

    ok = walk(baseline, now, "")
    detail = worst[1] if worst[1] else "identical"
    if ok and detail != "identical":
        detail += f" <= {r:g}"
    elif not ok and detail.startswith("rel diff"):
        detail += f" > {r:g}"
    return ok, detail


def compare_records(notebook: str, records: dict, baseline: dict) -> list[Comparison]:
    """Compare a notebook's records with its baseline entries (``{name: {"value", "tolerance"}}``)."""
    rows = []
    for name, entry in baseline.items():
        if name not in records:
            rows.append(Comparison(notebook, name, entry["value"], None, entry["tolerance"], "MISSING",
                                   "recorded in the baseline but not by this run"))
            continue
        now = records[name]["value"]
        ok, detail = compare_value(entry["value"], now, entry["tolerance"])
        rows.append(Comparison(notebook, name, entry["value"], now, entry["tolerance"],
                               "ok" if ok else "CHANGED", detail))
    for name, entry in records.items():
        if name not in baseline:
            rows.append(Comparison(notebook, name, None, entry["value"], entry["tolerance"], "new",
                                   "not in the baseline (make regress UPDATE=1 adds it)"))
    return rows


def baseline_path(notebook: str, folder: Path | None = None) -> Path:
    # notebook_runs.baselines_dir looked up at call time: one place decides (and tests can move it)
    return (folder or notebook_runs.baselines_dir()) / f"{Path(notebook).stem}.json"


def load_baseline(notebook: str, folder: Path | None = None) -> dict | None:
    path = baseline_path(notebook, folder)
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def machine_signature() -> dict[str, Any]:
    """What decides the last bits of a CPU run's floats: torch's version, the instruction set its kernels were
    chosen for, and whether the CPU computes bfloat16 in hardware (the trainers use bf16 only there).

    Measured: the same course on an AVX2-only AMD EPYC and on the machine the first baselines came from differed by up
    to 2.5e-3 relative in sampled frame means and 2e-2 in a guidance-sweep speed error (multi-step sampling
    amplifies kernel rounding), far above the 1e-5 that thread counts cause on one machine.
    """
    import torch

    from svd_lab.training import cpu_has_native_bf16

    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "native_bf16": cpu_has_native_bf16()}


def write_baseline(run: NotebookRun, folder: Path | None = None) -> Path:
    """Write ``run``'s records as the notebook's baseline (atomically)."""
    if run.status != "ok":
        raise CourseError(f"{run.notebook} failed ({run.error}): fix it before updating its baseline")
    if run.profile not in BASELINE_PROFILES:
        raise CourseError(f"{run.notebook} ran with profile {run.profile!r}: baselines are for the CPU profiles "
                          f"{', '.join(BASELINE_PROFILES)} only")
    path = baseline_path(run.notebook, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"notebook": run.notebook, "profile": run.profile, "machine": machine_signature(), "records": run.records}
    write_text_atomic(path, json.dumps(payload, indent=1, sort_keys=True) + "\n", overwrite=True)
    return path


def regression_rows(run: NotebookRun, folder: Path | None = None) -> list[Comparison]:
    """Compare one executed notebook with its baseline; a full-profile run or a failed run gets one info row."""
    if run.status != "ok":
        return [Comparison(run.notebook, "(execution)", None, None, "exact", "CHANGED",
                           f"notebook failed: {run.error}")]
    baseline = load_baseline(run.notebook, folder)
    if run.profile not in BASELINE_PROFILES:
        return [Comparison(run.notebook, "(profile)", None, run.profile, "exact", "no baseline",
                           f"profile {run.profile!r} records values but is not compared")]
    if baseline is None:
        return [Comparison(run.notebook, "(baseline)", None, None, "exact", "MISSING",
                           f"no {baseline_path(run.notebook, folder)}: run `make regress UPDATE=1` and review it")]
    if baseline.get("profile") != run.profile:
        return [Comparison(run.notebook, "(profile)", baseline.get("profile"), run.profile, "exact", "CHANGED",
                           "the baseline was recorded with another profile")]
    rows = compare_records(run.notebook, run.records, baseline["records"])
    recorded_on, here = baseline.get("machine"), machine_signature()
    if recorded_on != here:
        # Relative float tolerances hold on the kind of machine they were recorded on only (machine_signature says
        # why); counts, shapes, schedules (exact) and file sizes are still compared everywhere.
        note = f"baseline from {recorded_on or 'an unrecorded machine'}, this machine {here}: floats not comparable"
        for row in rows:
            if row.verdict == "CHANGED" and row.tolerance.startswith("rel:"):
                row.verdict, row.detail = "other machine", f"{row.detail}; {note}"
    return rows


def _short(value: Any, width: int = 36) -> str:
    if value is None:
        return "-"
    text = json.dumps(value) if not isinstance(value, str) else value
    if isinstance(value, float):
        text = f"{value:.7g}"
    return text if len(text) <= width else text[: width - 3] + "..."


def regression_table(rows: list[Comparison]) -> str:
    body = [[c.notebook, c.name, _short(c.baseline), _short(c.now), c.verdict + (f" ({c.detail})" if c.detail and
             c.verdict != "ok" else "")] for c in rows]
    return format_table(["notebook", "value", "baseline", "now", "verdict"], body)


def regression_failures(rows: list[Comparison]) -> list[str]:
    """One sentence per failing value: which value moved and by how much."""
    out = []
    for c in rows:
        if c.failed:
            out.append(f"{c.notebook}: {c.name} [{c.tolerance}] baseline {_short(c.baseline, 80)} now "
                       f"{_short(c.now, 80)}: {c.detail}")
    return out
