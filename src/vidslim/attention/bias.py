"""Additive attention biases: proportional attention (log size per key) and mask combination.

ToMe's proportional attention adds log(size_j) to the logit of every key j, so a token that stands for s
merged patches gets the softmax weight s identical tokens would get together (spec tempme §1.11). The bias
is per key, [total], broadcast over heads and queries; every backend takes it as `key_bias`.
"""

from __future__ import annotations

import torch
from torch import Tensor


def size_bias(size: Tensor | None) -> Tensor | None:
    """log(size) per key ([total] -> [total] float32), or None when sizes are not tracked (all ones).

    Computed in float32 so that bf16 models do not round sizes; the backends cast it to the query dtype.
    A size of 0 gives -inf: that key is ignored.
    """
    if size is None:
        return None
    return size.float().log()


def additive_mask(allowed: Tensor | None, bias: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """One SDPA `attn_mask` from a boolean `allowed` mask and an additive `bias` (either may be None).

    With no bias the boolean mask is returned as is (SDPA takes it directly); with a bias the result is
    the bias in `dtype` with -inf where `allowed` is False. Shapes broadcast.
    """
    if bias is None:
        return allowed
    bias = bias.to(dtype)
    if allowed is None:
        return bias
    return torch.where(allowed, bias, torch.tensor(float("-inf"), dtype=dtype, device=bias.device))
