"""Translations the ONNX exporter lacks for ops vidslim's reducers use (passed as its `custom_translation_table`).

- `aten.sort.stable`: the exporter translates `aten.sort` to ONNX TopK, whose ties go to the lower index (a stable
  sort by definition of the operator), but has no entry for the `stable=True` overload that RLTBudget and
  TokenPrune use to break ties the same way in eager mode; this routes it to the same TopK.
- `aten.repeat_interleave.Tensor` with `output_size=` (Tokens.batch_index, the mean-query score): the exporter's
  function takes no output size; the size is only a hint, so it is dropped.
- `aten.segment_reduce` with "sum" over `lengths` (V-JEPA 2's size-weighted mean of each clip's tokens once a
  reducer has changed their sizes): the exporter has none; each row is added into its segment's row with
  ScatterND (reduction "add"), the segment of every row given by repeat_interleave of the lengths.

Imported only when exporting to ONNX (it needs onnxscript, the `export` extra).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from onnxscript import opset18 as op
from onnxscript.function_libs.torch_lib.ops import core


def sort_stable(self: Any, stable: bool | None = None, dim: int = -1, descending: bool = False) -> Any:
    """aten::sort.stable as TopK over the whole axis (ties: lower index first)."""
    return core.aten_sort(self, dim=dim, descending=descending)


def repeat_interleave_sized(repeats: Any, output_size: int | None = None) -> Any:
    """aten::repeat_interleave.Tensor(repeats, output_size=) without the size hint."""
    return core.aten_repeat_interleave_Tensor(repeats)


def segment_sum(data: Any, reduce: str, lengths: Any = None, indices: Any = None, offsets: Any = None,
                axis: int = 0, unsafe: bool = False, initial: Any = None) -> Any:
    """aten::segment_reduce(data, "sum", lengths=) along axis 0: [sum of each run of rows]."""
    if reduce != "sum" or lengths is None or axis != 0 or initial is not None:
        raise NotImplementedError(f"segment_reduce({reduce!r}, axis={axis}): vidslim translates only 'sum' over "
                                  "lengths on axis 0")
    segment = op.Unsqueeze(core.aten_repeat_interleave_Tensor(lengths), op.Constant(value_ints=[1]))  # [rows, 1]
    shape = op.Concat(op.Shape(lengths), op.Shape(data, start=1), axis=0)
    zeros = op.Expand(op.CastLike(op.Constant(value_float=0.0), data), shape)
    return op.ScatterND(zeros, segment, data, reduction="add")


def translation_table() -> dict[Callable[..., Any], Callable[..., Any]]:
    """The table for `torch.onnx.export(..., custom_translation_table=...)`."""
    return {
        torch.ops.aten.sort.stable: sort_stable,
        torch.ops.aten.repeat_interleave.Tensor: repeat_interleave_sized,
        torch.ops.aten.segment_reduce.default: segment_sum,
    }
