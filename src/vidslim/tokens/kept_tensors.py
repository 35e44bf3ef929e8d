"""Tensors kept across calls (index plans, position tables) are built outside inference mode.

A tensor created under `torch.inference_mode()` can never be saved for backward. Caches of index plans and
position tables outlive the call that filled them, so one filled during an inference-mode evaluation would break
the next training step on the same lengths ("Inference tensors cannot be saved for backward"). Building them
with inference mode switched off gives ordinary tensors that serve both kinds of call; they hold no gradients, so
nothing is lost.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import torch

P = ParamSpec("P")
R = TypeVar("R")


def kept_across_calls(build: Callable[P, R]) -> Callable[P, R]:
    """`build`, run with inference mode off, so the tensors it returns may be cached and used by any later call."""

    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with torch.inference_mode(False):
            return build(*args, **kwargs)

    return wrapper
