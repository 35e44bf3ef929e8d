"""Options several commands share, checked where they are parsed: --device (a device this machine has) and
--threads (a positive count), so a bad value is argparse's one line, not a failure halfway through the work."""

from __future__ import annotations

import argparse


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


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=_device, default="cpu", help="cpu (default), cuda or cuda:N")


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=_threads, default=None, help="torch.set_num_threads (default: torch's)")


__all__ = ["add_device_option", "add_threads_option"]
