"""The one place the tests write OpenAI-style TorchScript checkpoints.

OpenAI's CLIP `.pt` files are TorchScript archives of nested modules holding fp16 parameters plus a few int
buffers (`input_resolution`, `context_length`, `vocab_size`). Tests import `from checkpoint_files import ...`
(tests/conftest.py puts tests/ on sys.path).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def nested_holder(state: dict[str, torch.Tensor]) -> nn.Module:
    """A module holding `state` under its dotted names, as OpenAI's archives do (fp16 parameters, int buffers)."""

    class Holder(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    root = Holder()
    for key, value in state.items():
        *parents, leaf = key.split(".")
        module = root
        for name in parents:
            if not hasattr(module, name):
                module.add_module(name, nn.Module())
            module = getattr(module, name)
        module.register_parameter(leaf, nn.Parameter(value.detach().clone().half(), requires_grad=False))
    for extra in ("input_resolution", "context_length", "vocab_size"):
        root.register_buffer(extra, torch.tensor(32))
    return root


def openai_torchscript(state: dict[str, torch.Tensor], path: Path) -> None:
    """Write `state` as a TorchScript archive with OpenAI's layout."""
    torch.jit.script(nested_holder(state)).save(str(path))
