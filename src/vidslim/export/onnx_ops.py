"""Translations the ONNX exporter lacks for ops vidslim's reducers use (passed as its `custom_translation_table`).

- `aten.sort.stable`: the exporter translates `aten.sort` to ONNX TopK, whose ties go to the lower index (a stable
  sort by definition of the operator), but has no entry for the `stable=True` overload that RLTBudget and
  TokenPrune use to break ties the same way in eager mode; this routes it to the same TopK.
- `aten.repeat_interleave.Tensor` with `output_size=` (Tokens.batch_index, the mean-query score): the exporter's
  function takes no output size; the size is only a hint, so it is dropped.

Imported only when exporting to ONNX (it needs onnxscript, the `export` extra).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from onnxscript.function_libs.torch_lib.ops import core


def sort_stable(self: Any, stable: bool | None = None, dim: int = -1, descending: bool = False) -> Any:
    """aten::sort.stable as TopK over the whole axis (ties: lower index first)."""
    return core.aten_sort(self, dim=dim, descending=descending)


def repeat_interleave_sized(repeats: Any, output_size: int | None = None) -> Any:
    """aten::repeat_interleave.Tensor(repeats, output_size=) without the size hint."""
    return core.aten_repeat_interleave_Tensor(repeats)


def translation_table() -> dict[Callable[..., Any], Callable[..., Any]]:
    """The table for `torch.onnx.export(..., custom_translation_table=...)`."""
    return {
        torch.ops.aten.sort.stable: sort_stable,
        torch.ops.aten.repeat_interleave.Tensor: repeat_interleave_sized,
    }
