"""Subcommands of the ``svd-lab`` command line (see :mod:`svd_lab.cli`)."""

from __future__ import annotations

import argparse
import math


def finite_float(text: str) -> float:
    """argparse type for a float option: a finite number (nan and inf are refused with a clear message)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number (nan and inf are not allowed)")
    return value
