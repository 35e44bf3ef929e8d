"""Reference dispatch for packed attention (see the package docstring)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    seqlens: Sequence[int],
    key_bias: Tensor | None = None,
    scale: float | None = None,
) -> Tensor:
    """Block-diagonal attention over packed tokens: [total, H, d] x3 -> [total, H, d].

    seqlens: tokens per video (Python ints). key_bias: optional additive bias per key, [total].
    """
    seqlens = [int(n) for n in seqlens]
    total, heads, head_dim = q.shape
    b, n = len(seqlens), max(seqlens, default=0)
    if len(set(seqlens)) <= 1:  # dense fast path: a view, no mask
        qd, kd, vd = (t.view(b, n, heads, head_dim).transpose(1, 2) for t in (q, k, v))
        bias = None
        if key_bias is not None:
            bias = key_bias.view(b, 1, 1, n).to(q.dtype)
        out = F.scaled_dot_product_attention(qd, kd, vd, attn_mask=bias, scale=scale)
        return out.transpose(1, 2).reshape(total, heads, head_dim)
    # reference variable-length path: pad to the longest, mask padded keys, unpad
    lengths = torch.tensor(seqlens, device=q.device)
    valid = torch.arange(n, device=q.device)[None, :] < lengths[:, None]  # [B, L]

    def pad(t: Tensor) -> Tensor:
        out = t.new_zeros(b, n, *t.shape[1:])
        out[valid] = t
        return out

    qd, kd, vd = (pad(t).transpose(1, 2) for t in (q, k, v))
    bias = torch.zeros(b, 1, 1, n, dtype=q.dtype, device=q.device)
    bias.masked_fill_(~valid[:, None, None, :], float("-inf"))
    if key_bias is not None:
        bias = bias + pad(key_bias).view(b, 1, 1, n).to(q.dtype)
    out = F.scaled_dot_product_attention(qd, kd, vd, attn_mask=bias, scale=scale)
    return out.transpose(1, 2)[valid]
