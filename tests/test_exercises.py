"""The exercise checks: right, wrong, unanswered and crashing answers; the solution cells are collapsed."""

from __future__ import annotations

import nbformat
import pytest

from course_runs import NOTEBOOKS
from svd_lab import exercises, record


@pytest.fixture()
def clean(monkeypatch):
    monkeypatch.delenv(record.RECORD_FILE_ENV, raising=False)
    record.clear()
    yield
    record.clear()


def test_right_answer(clean, capsys):
    assert exercises.check("two", 2, lambda a: a == 2, hint="1 + 1") is True
    assert "[two] correct" in capsys.readouterr().out
    assert record.records()["exercise.two"] == {"value": True, "tolerance": "exact"}


def test_wrong_and_missing_answers_say_not_yet_with_the_hint(clean, capsys):
    assert exercises.check("two", 3, lambda a: a == 2, hint="1 + 1") is False
    out = capsys.readouterr().out
    assert "[two] not yet" in out and "hint: 1 + 1" in out
    assert exercises.check("two", None, lambda a: a == 2, hint="1 + 1") is False
    assert "no answer yet" in capsys.readouterr().out
    assert record.records()["exercise.two"]["value"] is False


def test_an_answer_that_raises_is_reported_not_raised(clean, capsys):
    assert exercises.check("shape", "abc", lambda a: a.shape == (1,), hint="a tensor") is False
    assert "AttributeError" in capsys.readouterr().out


def test_solution_and_record_cells_are_collapsed_in_the_committed_notebooks():
    hidden = 0
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            tags = set(cell.metadata.get("tags", []))
            if tags & {"solution", "record"}:
                assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, (path.name, cell.id)
                hidden += 1
    assert hidden >= 5


def test_notebooks_00_to_04_have_two_or_three_exercises_each_with_a_solution_and_a_catalogued_hint():
    """The course's pattern: a task, a hidden solution cell, a check whose hint is in svd_lab.messages."""
    import re

    from svd_lab import messages

    for path in sorted(NOTEBOOKS.glob("0[0-4]_*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        checks = [(i, name) for i, c in enumerate(cells) if c.cell_type == "code"
                  for name in re.findall(r'exercises\.check\("(\w+)"', c.source)]
        assert 2 <= len(checks) <= 3, (path.name, checks)
        for i, name in checks:
            assert any("solution" in c.metadata.get("tags", []) for c in cells[max(0, i - 3):i]), (path.name, name)
            assert messages.has(f"hint.{name}"), (path.name, name)
