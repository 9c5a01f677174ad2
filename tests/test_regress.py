"""Regression runs: what notebooks record, how it is compared with the committed baselines, and that it bites.

The comparison tests reuse the notebook executions of test_notebooks.py (tests/course_runs.py memoises them):
the course is executed once per pytest run.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from course_runs import QUICK, executed, fail_if_failed, solutions_run
from svd_lab import record as rec
from svd_lab.baselines import (
    BASELINE_PROFILES,
    Comparison,
    compare_records,
    compare_value,
    load_baseline,
    regression_failures,
    regression_rows,
    regression_table,
    write_baseline,
)
from svd_lab.notebook_runs import COURSE, NotebookRun, baselines_dir

# --------------------------------------------------------------------------------------------------------------
# record()


@pytest.fixture
def clean_records(monkeypatch, tmp_path):
    rec.clear()
    target = tmp_path / "r.json"
    monkeypatch.setenv(rec.RECORD_FILE_ENV, str(target))
    yield target
    rec.clear()


def test_record_converts_and_writes_the_file(clean_records):
    import torch

    assert rec.record("shape", (4, 3, 64, 64)) is None  # nothing to display in a notebook
    rec.record("sigmas", torch.tensor([700.0, 0.5, 0.0]))
    rec.record("mean", np.float32(0.25))
    rec.record("mp4_bytes", 12345)
    rec.record("scales", [1.0, 2.5], tolerance="exact")
    stored = rec.read_records(clean_records)
    assert stored == rec.records()
    assert stored["shape"] == {"value": [4, 3, 64, 64], "tolerance": "exact"}
    assert stored["sigmas"] == {"value": [700.0, 0.5, 0.0], "tolerance": "rel:0.0001"}
    assert stored["mean"]["value"] == 0.25 and stored["mean"]["tolerance"] == "rel:0.0001"
    assert stored["mp4_bytes"]["tolerance"] == "size"
    assert stored["scales"]["tolerance"] == "exact"
    rec.record("shape", [1])  # re-running a cell replaces the value
    assert rec.read_records(clean_records)["shape"]["value"] == [1]


@pytest.mark.parametrize("name, value, tolerance, message", [
    ("bad name!", 1, None, "letters, digits"),
    ("x", object(), None, "cannot record a value of type object"),
    ("x", float("nan"), None, "non-finite"),
    ("x", 1.0, "loose", "tolerance 'loose'"),
    ("x", 1.0, "rel:-1", "tolerance 'rel:-1'"),
    ("x", 1.5, "size", "byte count"),
])
def test_record_rejects_what_cannot_be_compared(clean_records, name, value, tolerance, message):
    with pytest.raises((ValueError, TypeError), match=message):
        rec.record(name, value, tolerance=tolerance)
    assert not clean_records.exists()


def test_record_without_a_file_keeps_values_in_memory(monkeypatch):
    rec.clear()
    monkeypatch.delenv(rec.RECORD_FILE_ENV, raising=False)
    rec.record("frames", 14)
    assert rec.records() == {"frames": {"value": 14, "tolerance": "exact"}}
    rec.clear()


def test_reproducible_seeds_everything_and_restores_nothing_else(monkeypatch):
    import random

    import torch

    before = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
    monkeypatch.setenv("SVD_LAB_NUM_THREADS", "1")
    try:
        rec.reproducible(7)
        first = (random.random(), float(np.random.rand()), float(torch.rand(())))
        assert torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == 1
        rec.reproducible(7)
        assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == first
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.set_num_threads(before[1])


# --------------------------------------------------------------------------------------------------------------
# compare


@pytest.mark.parametrize("baseline, now, tolerance, ok", [
    ([4, 3, 64, 64], [4, 3, 64, 64], "exact", True),
    ([4, 3, 64, 64], [4, 2, 64, 64], "exact", False),
    ([1.0, 1.75, 2.5], [1.0, 1.75, 2.5], "exact", True),
    ([1.0, 1.75, 2.5], [1.0, 1.7500001, 2.5], "exact", False),   # schedules are exact
    (127.3, 127.3 * (1 + 5e-6), "rel:1e-4", True),               # thread-count noise passes
    (127.3, 127.3 * (1 + 5e-4), "rel:1e-4", False),              # a real change fails
    (0.0, 5e-7, "rel:1e-4", True),                               # absolute floor near zero
    ([0.5, 0.25], [0.5, 0.25, 0.1], "rel:1e-4", False),          # a dropped/added element
    ({"psnr": 30.0, "n": 4}, {"psnr": 30.0001, "n": 4}, "rel:1e-4", True),
    ({"psnr": 30.0, "n": 4}, {"psnr": 30.0, "n": 5}, "rel:1e-4", False),   # ints inside stay exact
    (10000, 14000, "size", True),                                # another ffmpeg build: fine
    (10000, 4000, "size", False),                                # lost most frames: fails
    (10000, 0, "size", False),                                   # empty file
])
def test_compare_value(baseline, now, tolerance, ok):
    assert compare_value(baseline, now, tolerance)[0] is ok


def test_compare_value_says_what_moved_and_by_how_much():
    ok, detail = compare_value([1.0, 2.0, 3.0], [1.0, 2.0, 3.3], "rel:1e-4")
    assert not ok and detail == "rel diff 9.09e-02 at [2] > 0.0001"


def test_compare_records_missing_and_new_values():
    baseline = {"a": {"value": 1, "tolerance": "exact"}, "b": {"value": 2.0, "tolerance": "rel:1e-4"}}
    now = {"a": {"value": 1, "tolerance": "exact"}, "c": {"value": 3, "tolerance": "exact"}}
    rows = {r.name: r for r in compare_records("nb.ipynb", now, baseline)}
    assert rows["a"].verdict == "ok"
    assert rows["b"].verdict == "MISSING" and rows["b"].failed
    assert rows["c"].verdict == "new" and not rows["c"].failed
    table = regression_table(list(rows.values()))
    assert table.splitlines()[0].split() == ["notebook", "value", "baseline", "now", "verdict"]


def _run(records, profile="tiny", status="ok"):
    records = dict(records, profile={"value": profile, "tolerance": "exact"})
    return NotebookRun("02_latent_diffusion.ipynb", status, 1.0, None, [], records, None if status == "ok" else "x")


def test_float_tolerances_hold_on_the_machine_kind_they_were_recorded_on(tmp_path):
    """A baseline carries its machine signature. On another kind of machine (CPU instruction set, native bf16,
    torch) a moved relative-tolerance float is reported, not failed; exact values are compared everywhere."""
    from svd_lab.baselines import machine_signature

    recorded = _run({"mean": {"value": 0.5, "tolerance": "rel:1e-4"}, "steps": {"value": 3, "tolerance": "exact"}})
    path = write_baseline(recorded, tmp_path)
    assert json.loads(path.read_text())["machine"] == machine_signature()
    moved_float = _run({"mean": {"value": 0.501, "tolerance": "rel:1e-4"}, "steps": {"value": 3, "tolerance": "exact"}})
    assert [r.name for r in regression_rows(moved_float, tmp_path) if r.failed] == ["mean"]  # same machine: fails

    # another kind of machine than this one, whichever this one is
    payload = json.loads(path.read_text())
    here = payload["machine"]
    other_isa = "AVX2" if here["cpu_capability"] == "AVX512" else "AVX512"
    payload["machine"] = dict(here, cpu_capability=other_isa, native_bf16=not here["native_bf16"])
    path.write_text(json.dumps(payload))
    rows = {r.name: r for r in regression_rows(moved_float, tmp_path)}
    assert rows["mean"].verdict == "other machine" and not rows["mean"].failed and other_isa in rows["mean"].detail
    moved_exact = _run({"mean": {"value": 0.5, "tolerance": "rel:1e-4"}, "steps": {"value": 4, "tolerance": "exact"}})
    assert [r.name for r in regression_rows(moved_exact, tmp_path) if r.failed] == ["steps"]


def test_baseline_round_trip_and_profiles(tmp_path):
    run = _run({"steps": {"value": 3, "tolerance": "exact"}})
    path = write_baseline(run, tmp_path)
    assert json.loads(path.read_text())["profile"] == "tiny"
    assert all(r.verdict == "ok" for r in regression_rows(run, tmp_path))
    # a GPU run (full profile) records but is not compared, and never becomes a baseline
    full = _run({"steps": {"value": 25, "tolerance": "exact"}}, profile="full")
    assert [r.verdict for r in regression_rows(full, tmp_path)] == ["no baseline"]
    with pytest.raises(Exception, match="CPU profiles"):
        write_baseline(full, tmp_path)
    with pytest.raises(Exception, match="failed"):
        write_baseline(_run({}, status="failed"), tmp_path)
    # no baseline file: fails with the command that creates one
    (row,) = regression_rows(run, tmp_path / "empty")
    assert row.failed and "make regress UPDATE=1" in row.detail


# --------------------------------------------------------------------------------------------------------------
# The course's records against the committed baselines (same executions as test_notebooks.py)


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("name", COURSE)
def test_records_match_baseline(name):
    run = executed(name)
    fail_if_failed(run)
    rows = regression_rows(run)
    print("\n" + regression_table(rows))
    failures = regression_failures(rows)
    assert not failures, ("values moved (if intended: make regress UPDATE=1 and review the diff of tests/baselines/):"
                          "\n" + "\n".join(failures))


def test_every_notebook_has_a_committed_baseline():
    for name in COURSE:
        baseline = load_baseline(name)
        assert baseline is not None, f"no baseline for {name} in {baselines_dir()}: make regress UPDATE=1"
        assert baseline["records"], name
        # a baseline whose profile is not compared would pass every run unseen
        # the world model; Wan's tiny networks (06: no trained Wan fits a CPU); SVD's small profile
        expected = {"01": "mini", "02": "mini", "06": "tiny"}.get(name[:2], "small")
        assert baseline["profile"] == expected and expected in BASELINE_PROFILES, (name, baseline["profile"])


# --------------------------------------------------------------------------------------------------------------
# The harness bites: a notebook run with a changed guidance maximum fails the comparison.

PERTURBED_NOTEBOOK = "02_latent_diffusion.ipynb"


@pytest.mark.notebooks
@pytest.mark.slow
def test_harness_detects_a_changed_guidance_ramp():
    baseline = load_baseline(PERTURBED_NOTEBOOK)
    assert baseline is not None
    max_guidance = baseline["records"]["guidance_scales"]["value"][-1]
    assert QUICK[PERTURBED_NOTEBOOK]["max_guidance"] != max_guidance   # the quick run is the perturbed one
    run = solutions_run(PERTURBED_NOTEBOOK)
    fail_if_failed(run)
    failures = regression_failures(regression_rows(run))
    moved = {line.split(":")[1].split("[")[0].strip() for line in failures}
    assert "guidance_scales" in moved, failures
    # the unperturbed run of the same notebook passes, so the failure is the perturbation's doing
    assert not regression_failures(regression_rows(executed(PERTURBED_NOTEBOOK)))


def test_failed_run_is_a_regression_failure():
    rows = regression_rows(_run({}, status="failed"))
    assert [r.verdict for r in rows] == ["CHANGED"] and isinstance(rows[0], Comparison)


# --------------------------------------------------------------------------------------------------------------
# `svd-lab course run/regress` (what `make run` and `make regress [UPDATE=1]` call), end to end on a stand-in
# notebook: the real course is executed once per pytest run, by the tests above.


def _stand_in_course(folder, value):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "svd-lab", "display_name": "Python (svd-lab)", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("scale = 1.0\noutput_dir = None", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "from pathlib import Path\nfrom svd_lab.record import record\n"
            "Path(output_dir, 'clip.txt').write_text('x')\n"
            "record('profile', 'tiny')\nrecord('frames', 14)\n"
            f"record('mean', {value} * scale)\n"),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / COURSE[0])


def test_cli_run_and_regress_with_update(tmp_path, monkeypatch, capsys):
    from svd_lab import notebook_runs as course
    from svd_lab.cli import main

    monkeypatch.setattr(course, "notebooks_dir", lambda edition="en": tmp_path / "notebooks")
    monkeypatch.setattr(course, "baselines_dir", lambda: tmp_path / "baselines")
    _stand_in_course(tmp_path / "notebooks", 0.5)
    out = str(tmp_path / "out")

    assert main(["course", "run", "00", "--output", out]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["notebook", "status", "seconds", "artifacts"]
    assert "00_setup.ipynb  ok" in table and "1: clip.txt" in table

    # no baseline yet: regress fails and says how to create one
    assert main(["course", "regress", "00", "--output", out]) == 1
    assert "make regress UPDATE=1" in capsys.readouterr().out
    assert main(["course", "regress", "00", "--output", out, "--update"]) == 0
    baseline = json.loads((tmp_path / "baselines" / "00_setup.json").read_text())
    assert baseline["records"]["mean"] == {"value": 0.5, "tolerance": "rel:0.0001"}
    assert main(["course", "regress", "00", "--output", out]) == 0
    assert "all 3 recorded values match" in capsys.readouterr().out

    # a parameter that moves a value: the comparison fails and names it, with the size of the move
    assert main(["course", "regress", "00", "--output", out, "-p", "scale=1.01"]) == 1
    report = capsys.readouterr().out
    assert "00_setup.ipynb: mean [rel:0.0001] baseline 0.5 now 0.505: rel diff 9.90e-03 > 0.0001" in report


def test_cli_course_errors(capsys):
    from svd_lab.cli import main

    assert main(["course", "run", "07"]) == 2
    assert "no notebook '07' in the course" in capsys.readouterr().err
    assert main(["course", "run", "00", "-p", "novalue"]) == 2
    assert "write NAME=VALUE" in capsys.readouterr().err
    assert main(["course", "list"]) == 0
    assert [line.rsplit("/", 1)[-1] for line in capsys.readouterr().out.split()] == list(COURSE)
