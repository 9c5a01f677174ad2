"""The ``svd-lab`` command line: one subcommand per capability of the library.

Each subcommand lives beside the code it drives and is registered here by name, so ``svd-lab --help`` stays fast
(nothing heavy is imported until a command runs). A subcommand module provides ``register(subparsers)`` which
adds its parser and sets ``func`` to a function ``(args) -> int`` (the exit status).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from svd_lab import __version__

# name of the module providing register(subparsers); order = order in --help
COMMAND_MODULES = [
    "svd_lab.commands.doctor",
    "svd_lab.commands.kernel",
    "svd_lab.commands.course",
    "svd_lab.commands.models",
    "svd_lab.commands.download",
    "svd_lab.commands.convert",
    "svd_lab.commands.mini",
    "svd_lab.commands.sample",
]


class UserError(Exception):
    """An error caused by the user's input or environment: printed as one clear message, exit status 2."""


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
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"svd-lab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
