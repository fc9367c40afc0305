"""The ``cem`` command. Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the parsed
arguments and returning an exit code."""

from __future__ import annotations

import argparse
import importlib
import sys

from cemlib import __version__
from cemlib.errors import CemError

# Order is the order shown in ``cem --help``.
SUBCOMMANDS: tuple[str, ...] = (
    "generate",
    "collect",
    "validate",
    "identity",
    "churn",
    "offers",
    "run",
)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit 2, without the usage
    block (a cron log or a CI step shows what was wrong, not seven lines of options)."""

    def error(self, message: str):
        """Print ``message`` as one line and exit 2 (argparse's hook for a bad argument)."""
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``cem`` parser; with ``only``, just that subcommand is imported (fast start-up)."""
    parser = OneLineParser(
        prog="cem",
        description="cemlib: customer data checks, identity resolution, churn/CLV and next offers.",
    )
    parser.add_argument("--version", action="version", version=f"cemlib {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS if only is None else (only,):
        importlib.import_module(f"cemlib.cli.{name}").register(sub)
    return parser


def _chosen(argv: list[str]) -> str | None:
    first = next((a for a in argv if not a.startswith("-")), None)
    return first if first in SUBCOMMANDS else None


def main(argv: list[str] | None = None) -> int:
    """``cem`` entry point: parse ``argv`` and run the subcommand; returns the exit code
    (2 with one line on bad input, never a traceback).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(only=_chosen(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CemError as exc:
        print(f"cem {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
