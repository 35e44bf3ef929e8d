"""The `vidslim` command: one subcommand per module in this package.

Each subcommand module defines `add_parser(subparsers)` which registers its parser and sets `func`, a
callable taking the parsed arguments and returning the exit status.

`main` is the one place where a failure becomes what the user sees: whatever escapes a command (an error vidslim
raises on purpose, an OSError, or a bug) is one line on stderr, `vidslim COMMAND: error: ...`, with control
characters escaped, and exit status 2; usage errors are one line too. Ctrl-C is one line and status 130; a reader
that goes away (`vidslim info --json a.mp4 | head -1`) ends the command quietly with status 141, as SIGPIPE would.
`--debug` (anywhere on the line) or VIDSLIM_DEBUG=1 prints the traceback as well.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from vidslim import __version__
from vidslim.errors import VidslimError, printable

# subcommand modules, in the order `vidslim --help` lists them
_COMMANDS = ("info", "tokens", "bench", "tune", "train", "evaluate", "embed", "search", "classify", "data",
             "export", "demo")
DEBUG_FLAG = "--debug"
#: exit status of a command whose standard output was closed by its reader (128 + SIGPIPE, as a shell reports it)
EXIT_PIPE = 141


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, naming the command and where its help is; exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {printable(message)} (see {self.prog} --help)\n")

    def _print_message(self, message: str, file: Any = None) -> None:
        """Write help, version and usage text, and let a write error through: argparse's own swallows it, so
        `vidslim --help > /dev/full` exited 0 having printed nothing."""
        if message:
            stream = file if file is not None else sys.stderr
            stream.write(message)
            stream.flush()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="vidslim",
        description="Make video transformers fast by not spending compute on what a video repeats.",
    )
    parser.add_argument("--version", action="version", version=f"vidslim {__version__}")
    parser.add_argument(DEBUG_FLAG, action="store_true", help="print the traceback of an error as well (or set "
                        "VIDSLIM_DEBUG=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"vidslim.cli.{name}").add_parser(subparsers)
    return parser


def error_line(command: str | None, error: BaseException) -> str:
    """`vidslim COMMAND: error: what went wrong`: one line, control characters escaped."""
    if isinstance(error, VidslimError):
        text = str(error)
    elif isinstance(error, OutputError):
        text = str(error.strerror)
    elif isinstance(error, OSError) and error.filename is not None:
        text = f"{os.fsdecode(error.filename)}: {error.strerror or error}"
        if error.filename2 is not None:
            text += f" ({os.fsdecode(error.filename2)})"
    elif isinstance(error, OSError) and error.strerror:
        text = error.strerror
    elif isinstance(error, MemoryError):
        text = f"out of memory{f' ({error})' if str(error) else ''}: ask for less (fewer frames, a smaller size)"
    else:
        detail = str(error) or "no message"
        text = f"{type(error).__name__}: {detail} (unexpected: run again with --debug and report the traceback)"
    return f"vidslim{f' {command}' if command else ''}: error: {printable(text.strip())}"


def _debug_wanted(argv: list[str]) -> tuple[list[str], bool]:
    """argv without `--debug` (accepted anywhere before a `--`), and whether it or VIDSLIM_DEBUG asked for it."""
    end = argv.index("--") if "--" in argv else len(argv)
    kept = [a for a in argv[:end] if a != DEBUG_FLAG] + argv[end:]
    env = os.environ.get("VIDSLIM_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")
    return kept, env or len(kept) != len(argv)


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse; KEY=VALUE overrides after an option (`train classify c.yaml --json lr=1e-4`) join the others."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        overrides = getattr(args, "overrides", None)
        if overrides is None or any(a.startswith("-") or "=" not in a for a in extra):
            command = parser._subparsers._group_actions[0].choices.get(args.command) if args.command else None  # type: ignore[union-attr]
            (command or parser).error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*overrides, *extra]
    return args


def _silence_stdout(stream: TextIO | None) -> None:
    """Point standard output at the null device, so the flush at exit does not fail (and print) again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())  # type: ignore[union-attr]
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file behind stdout (captured in a test)
        pass


class OutputError(OSError):
    """Standard output cannot take what the command prints (a full disk, /dev/full, an I/O error)."""


class _Stdout:
    """sys.stdout whose write and flush failures are `OutputError`, so they are told apart from other OSErrors."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as error:
            raise OutputError(error.errno, f"cannot write to standard output: {error.strerror or error}") from error

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise OutputError(error.errno, f"cannot write to standard output: {error.strerror or error}") from error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def run_command(args: argparse.Namespace, debug: bool = False) -> int:
    """Run the parsed command; turn whatever escapes it into one line and an exit status (see the module doc)."""
    command = getattr(args, "command", None)
    original = sys.stdout
    if original is not None:
        sys.stdout = _Stdout(original)  # type: ignore[assignment]
    try:
        status = int(args.func(args) or 0)
        if original is not None:
            sys.stdout.flush()  # a write error shows here, not as a traceback at interpreter exit
        return status
    except BrokenPipeError:
        _silence_stdout(original)
        return EXIT_PIPE
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"vidslim{f' {command}' if command else ''}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the one place any failure becomes one line
        if debug:
            traceback.print_exc()
        if isinstance(error, OutputError):
            _silence_stdout(original)
        print(error_line(command, error), file=sys.stderr)
        return 2
    finally:
        sys.stdout = original


def main(argv: Sequence[str] | None = None) -> int:
    argv, debug = _debug_wanted(list(sys.argv[1:] if argv is None else argv))
    try:
        parser = build_parser()  # imports every command: seconds, long enough to press Ctrl-C in
        args = _parse(parser, argv)
    except KeyboardInterrupt:
        print("vidslim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # help or version text read by `head`: quiet, as a command's output
        _silence_stdout(sys.stdout)
        return EXIT_PIPE
    except OSError as error:  # help or version text to a full disk or /dev/full
        _silence_stdout(sys.stdout)
        with contextlib.suppress(OSError):  # standard error may be the full one
            print(f"vidslim: error: cannot write its output: {error.strerror or error}", file=sys.stderr)
        return 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    return run_command(args, debug)


if __name__ == "__main__":
    sys.exit(main())
