"""The one place a failure becomes what the user sees (`vidslim.cli.main.run_command`), attacked with failures of
every kind: a bug deep inside a command, Ctrl-C, a file name holding a terminal escape, standard output full."""

from __future__ import annotations

import argparse
import errno
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vidslim.cli.main as cli_main
from vidslim.errors import ConfigError, VideoDecodeError, printable

SRC = Path(__file__).resolve().parents[2] / "src"


def run(func: object, debug: bool = False, command: str = "tokens") -> tuple[int, list[str], str]:
    """run_command on a namespace whose func is `func`: (status, stderr lines, stderr text)."""
    err = io.StringIO()
    args = argparse.Namespace(command=command, func=func)
    old = sys.stderr
    sys.stderr = err
    try:
        status = cli_main.run_command(args, debug=debug)
    finally:
        sys.stderr = old
    text = err.getvalue()
    return status, text.splitlines(), text


def raising(error: BaseException) -> object:
    def func(args: argparse.Namespace) -> int:
        raise error

    return func


def test_a_bug_inside_a_command_is_one_line_and_status_2() -> None:
    status, lines, text = run(raising(ZeroDivisionError("Fraction(1, 0)")))
    assert status == 2 and len(lines) == 1 and "Traceback" not in text
    assert lines[0].startswith("vidslim tokens: error: ZeroDivisionError: Fraction(1, 0)") and "--debug" in lines[0]


def test_debug_adds_the_traceback_and_keeps_the_line() -> None:
    status, lines, text = run(raising(ZeroDivisionError("Fraction(1, 0)")), debug=True)
    assert status == 2 and "Traceback" in text and lines[-1].startswith("vidslim tokens: error: ZeroDivisionError")


@pytest.mark.parametrize(("argv", "env", "wanted"), [
    (["tokens", "x.mp4"], {}, False),
    (["--debug", "tokens", "x.mp4"], {}, True),
    (["tokens", "x.mp4", "--debug"], {}, True),  # anywhere on the line
    (["tokens", "x.mp4"], {"VIDSLIM_DEBUG": "1"}, True),
    (["tokens", "--", "--debug"], {}, False),  # after --, it is an argument
])
def test_debug_is_asked_for_by_flag_or_environment(monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                                   env: dict[str, str], wanted: bool) -> None:
    monkeypatch.delenv("VIDSLIM_DEBUG", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    kept, debug = cli_main._debug_wanted(argv)
    assert debug is wanted and ("--debug" in kept) is (argv[-1] == "--debug" and "--" in argv)


def test_ctrl_c_is_one_line_and_status_130() -> None:
    status, lines, _ = run(raising(KeyboardInterrupt()))
    assert (status, lines) == (130, ["vidslim tokens: interrupted"])


def test_control_characters_in_a_name_are_escaped_not_echoed() -> None:
    name = "clip\x1b[2J\nrm -rf.mp4"
    status, lines, _ = run(raising(VideoDecodeError(name, "no such file")))
    assert status == 2 and len(lines) == 1 and "\x1b" not in lines[0]
    assert "clip\\x1b[2J\\nrm -rf.mp4: no such file" in lines[0]
    assert printable("a\tb\u00e9\udcff") == "a\\tb\u00e9\\udcff"  # printable text (é) is kept as it is


def test_an_os_error_names_its_file() -> None:
    error = PermissionError(errno.EACCES, "Permission denied", "/root/secret.yaml")
    status, lines, _ = run(raising(error))
    assert status == 2 and lines == ["vidslim tokens: error: /root/secret.yaml: Permission denied"]


def test_standard_output_that_cannot_be_written_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    class Full(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sys, "stdout", Full())

    def prints(args: argparse.Namespace) -> int:
        print("a table")
        return 0

    status, lines, _ = run(prints)
    assert status == 2 and lines == ["vidslim tokens: error: cannot write to standard output: No space left on device"]


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["bench", "--help"]])
def test_help_that_cannot_be_written_is_one_line_not_a_silent_success(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """argparse swallows write errors of its help and version text, which exited 0 having printed nothing."""
    class Full(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sys, "stdout", Full())
    assert cli_main.main(argv) == 2
    assert capsys.readouterr().err.splitlines() == ["vidslim: error: cannot write its output: No space left on device"]


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli_main.main(["tokens", "a.mp4", "--fps", "abc"])
    err = capsys.readouterr().err
    assert caught.value.code == 2 and len(err.splitlines()) == 1
    assert err.startswith("vidslim tokens: error: argument --fps: invalid float value: 'abc'") and "--help" in err


def test_overrides_after_an_option_join_the_others() -> None:
    parser = cli_main.build_parser()
    args = cli_main._parse(parser, ["train", "classify", "c.yaml", "data.frames=4", "--json", "lr=1e-4", "seed=3"])
    assert args.json and args.overrides == ["data.frames=4", "lr=1e-4", "seed=3"]
    with pytest.raises(SystemExit):  # anything else after them is still an unknown argument
        cli_main._parse(parser, ["train", "classify", "c.yaml", "--json", "--nope"])
    with pytest.raises(SystemExit):  # and a command without overrides takes none
        cli_main._parse(parser, ["info", "a.mp4", "--json", "lr=1e-4"])


def test_a_library_error_keeps_its_message(capsys: pytest.CaptureFixture[str]) -> None:
    status, lines, _ = run(raising(ConfigError("--fps must be a frame rate between 0.01 and 1000")))
    assert status == 2 and lines == ["vidslim tokens: error: --fps must be a frame rate between 0.01 and 1000"]


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    """`vidslim info --json a.mp4 | head -0`: no traceback, no 'Exception ignored' at exit, status 141."""
    video = tmp_path / "a.mp4"
    video.write_bytes(b"")  # the command fails or prints: either way it must not print a traceback
    code = ("import sys, vidslim.cli.main as m\n"
            "m._COMMANDS = ('info',)\n"
            "def prints(args):\n    print('x' * 100000)\n    return 0\n"
            "import argparse\nsys.exit(m.run_command(argparse.Namespace(command='info', func=prints)))\n")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": str(SRC)})
    assert process.stdout is not None
    process.stdout.close()
    _, err = process.communicate(timeout=120)
    assert process.returncode == cli_main.EXIT_PIPE and err == b""
