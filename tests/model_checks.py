"""What the tests of the tubelet video families (ViViT, V-JEPA 2) share: the clip they feed, a transformers model
taken through a folder, a checkpoint folder written for transformers, and a reducer attached for a while.

Every test folder imports it as `from model_checks import ...` (tests/conftest.py puts tests/ on sys.path).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

import vidslim as vs

#: float32 parity with transformers (DESIGN: pretrained weights load exactly)
TOL = 1e-4


def video(batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A float clip [B, 4, 3, 32, 32] (the tiny test configs' size) from its own generator."""
    return torch.randn(batch, 4, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def decoded_frames(batch: int = 2) -> torch.Tensor:
    """Decoded uint8 frames [B, 4, 32, 32, 3], which the model prepares itself."""
    return torch.randint(0, 255, (batch, 4, 32, 32, 3), dtype=torch.uint8)


def through_folder(hf: Any, folder: Path) -> Any:
    """`hf` saved with save_pretrained and read back with vs.load_model."""
    hf.save_pretrained(folder)
    return vs.load_model(folder)


def write_hf_folder(folder: Path, config: dict[str, Any], state: dict[str, torch.Tensor]) -> Path:
    """config.json + model.safetensors, the folder transformers' from_pretrained reads."""
    (folder / "config.json").write_text(json.dumps(config))
    save_file(state, str(folder / "model.safetensors"))
    return folder


@contextlib.contextmanager
def reduced(model: Any, reduction: Sequence[object]) -> Iterator[Any]:
    """`model` with `reduction` attached, detached again afterwards (the module fixtures are shared)."""
    model.set_reduction(list(reduction))
    try:
        yield model
    finally:
        model.set_reduction(None)


def switched_off_gap(model: Any, x: torch.Tensor, reducer: object) -> float:
    """Largest difference between the dense output and the output with `reducer` attached (set to do nothing)."""
    dense = model(x)
    with reduced(model, [reducer]):
        return float((model(x) - dense).abs().max())


__all__ = ["TOL", "decoded_frames", "reduced", "switched_off_gap", "through_folder", "video", "write_hf_folder"]
