"""Checks for the course's exercises: tell the learner whether an answer is right, and never crash.

An exercise in a notebook is three cells: the task (the learner replaces ``None`` with an answer), a hidden
solution cell (``if solutions: answer = ...``; JupyterLab shows it collapsed, a click reveals it) and a check::

    check("fast_rocket", answer, lambda a: measured(a) > 1.5 * measured(64))

``check`` prints ``correct`` or ``not yet`` with the hint (an answer that raises says what it raised), in the
notebook's language (:mod:`svd_lab.messages`: the hint is the catalogue's ``hint.<name>``, so the code cell holds no
text to translate), records
``exercise.<name>`` as True or False for the course's runs (the tests execute every notebook once without and
once with the solutions, and require every check to fail and to pass respectively), and returns the verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from svd_lab import messages
from svd_lab.record import record

#: every check made in this process: name -> passed (the last verdict)
RESULTS: dict[str, bool] = {}


def check(name: str, answer: Any, test: Callable[[Any], Any], hint: str | None = None) -> bool:
    """Whether ``test(answer)`` holds; ``answer`` None means "not answered yet". Prints the verdict.

    ``name``: letters, digits and "_" (it names the record and the catalogue's hint ``hint.<name>``); ``hint``
    overrides the catalogue (for exercises outside the course).
    """
    if answer is None:
        ok, why = False, messages.t("exercise.no_answer")
    else:
        try:
            ok, why = bool(test(answer)), ""
        except Exception as exc:  # noqa: BLE001 -- the learner's code: report it, never crash the notebook
            ok, why = False, messages.t("exercise.raised", error=f"{type(exc).__name__}: {exc}")
    RESULTS[name] = ok
    record(f"exercise.{name}", ok, tolerance="exact")
    if ok:
        print(messages.t("exercise.correct", name=name))
    else:
        if hint is None:
            hint = messages.t(f"hint.{name}") if messages.has(f"hint.{name}") else ""
        print(messages.t("exercise.not_yet", name=name, hint=hint,
                         why=messages.t("exercise.why", reason=why) if why else ""))
    return ok
