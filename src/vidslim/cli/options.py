"""Options several commands share, checked where they are parsed: --device (a device this machine has),
--threads (a positive count), and counts and amounts with a least value (`whole`, `amount`), so a bad value is
argparse's one line, not a failure halfway through the work or a value silently replaced by the default."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable


def _device(text: str) -> str:
    from vidslim.devices import usable_device
    from vidslim.errors import ConfigError

    try:
        usable_device(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--device ")) from None
    return text


def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of threads") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: use at least 1 thread (or leave --threads out for torch's default)")
    return value


def whole(least: int, unit: str) -> Callable[[str], int]:
    """An argparse type: a whole number of `unit` >= `least`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of {unit}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} {unit}: use at least {least}")
        return value

    return parse


def amount(least: float) -> Callable[[str], float]:
    """An argparse type: a finite number >= `least` (NaN and infinity refused)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value < least:
            raise argparse.ArgumentTypeError(f"{text}: use a finite number >= {least:g}")
        return value

    return parse


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=_device, default="cpu", help="cpu (default), cuda or cuda:N")


def add_threads_option(parser: argparse.ArgumentParser, timed: bool = False) -> None:
    default = ("torch's, fewer when other processes keep cores busy while timing" if timed else "torch's")
    parser.add_argument("--threads", type=_threads, default=None, help=f"torch.set_num_threads (default: {default})")


def set_timing_threads(requested: int | None, command: str, timing: bool = True) -> int:
    """Set torch's threads for a command that times: `requested` (--threads) as given, else torch's default capped
    at the cores other processes leave idle (`vidslim.bench.spread.timing_threads`), said in one line on standard
    error when it caps. Without timing, only `requested` applies."""
    import torch

    if not timing:
        if requested:
            torch.set_num_threads(requested)
        return torch.get_num_threads()
    from vidslim.bench.spread import timing_threads

    threads, why = timing_threads(requested, torch.get_num_threads())
    torch.set_num_threads(threads)
    if why:
        print(f"vidslim {command}: {why}", file=sys.stderr)
    return threads


__all__ = ["add_device_option", "add_threads_option", "amount", "set_timing_threads", "whole"]
