"""The `vidslim` command: one subcommand per module in this package.

Each subcommand module defines `add_parser(subparsers)` which registers its parser and sets `func`, a
callable taking the parsed arguments and returning the exit status. Errors vidslim raises on purpose
(`VidslimError`) become one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from vidslim import __version__
from vidslim.errors import VidslimError

# subcommand modules, in the order `vidslim --help` lists them
_COMMANDS = ("info", "tokens", "bench", "tune", "train", "evaluate", "embed", "search", "classify", "data",
             "export", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidslim",
        description="Make video transformers fast by not spending compute on what a video repeats.",
    )
    parser.add_argument("--version", action="version", version=f"vidslim {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"vidslim.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except VidslimError as error:
        print(f"vidslim {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
