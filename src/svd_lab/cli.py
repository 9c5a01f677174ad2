"""The ``svd-lab`` command line: one subcommand per capability of the library.

Each subcommand lives beside the code it drives and is registered here by name, so ``svd-lab --help`` stays fast
(nothing heavy is imported until a command runs). A subcommand module provides ``register(subparsers)`` which
adds its parser and sets ``func`` to a function ``(args) -> int`` (the exit status).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import warnings

# Re-exported: commands raise it, library modules import it from svd_lab.errors (the bottom of the graph).
from svd_lab.errors import UserError
from svd_lab.version import __version__

# name of the module providing register(subparsers); order = order in --help
COMMAND_MODULES = [
    "svd_lab.commands.doctor",
    "svd_lab.commands.kernel",
    "svd_lab.commands.course",
    "svd_lab.commands.models",
    "svd_lab.commands.download",
    "svd_lab.commands.convert",
    "svd_lab.commands.mini",
    "svd_lab.commands.small",
    "svd_lab.commands.sample",
    "svd_lab.commands.batch",
    "svd_lab.commands.finetune",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="svd-lab",
        description="Image-to-video diffusion course tools: doctor, kernel, checkpoints, sampling, mini world model.",
    )
    parser.add_argument("--version", action="version", version=f"svd-lab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:  # a capability whose dependencies are missing still leaves the others usable
            if exc.name and exc.name.startswith("svd_lab"):
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        with _plain_warnings(args.command):
            return int(args.func(args) or 0)
    except UserError as exc:
        print(f"svd-lab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _plain_warnings(command: str):
    """svd-lab's own warnings (values outside the trained range, ...) as one line each: 'svd-lab CMD: warning: ...'
    instead of Python's file:line form; other libraries' warnings keep Python's format. Only the formatting
    changes, so callers recording warnings (pytest, catch_warnings) still see them."""
    original = warnings.formatwarning

    def plain(message, category, filename, lineno, line=None):
        if issubclass(category, UserWarning) and "svd_lab" in str(filename):
            return f"svd-lab {command}: warning: {message}\n"
        return original(message, category, filename, lineno, line)

    warnings.formatwarning = plain
    try:
        yield
    finally:
        warnings.formatwarning = original


if __name__ == "__main__":
    sys.exit(main())
