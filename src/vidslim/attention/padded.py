"""The padding baseline: pad every video to the longest, mask the padded keys, run one SDPA, unpad.

Correct for any lengths and a single kernel call, but it spends (B * L_max^2) attention work where the
videos need sum(L_i^2). Kept as the reference the faster variable-length path is measured against
(`backend="padded"`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from vidslim.attention.bias import additive_mask
from vidslim.attention.sparse import AttentionPattern


def padded_attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    seqlens: Sequence[int],
    key_bias: Tensor | None = None,
    scale: float | None = None,
    pattern: AttentionPattern | None = None,
) -> Tensor:
    """Block-diagonal attention over packed [total, H, d] tensors by padding to the longest video."""
    b, width = len(seqlens), max(seqlens, default=0)
    lengths = torch.tensor(list(seqlens), dtype=torch.int64, device=q.device)
    valid = torch.arange(width, device=q.device)[None, :] < lengths[:, None]  # [B, L]

    def pad(t: Tensor) -> Tensor:
        out = t.new_zeros(b, width, *t.shape[1:])
        out[valid] = t
        return out

    qd, kd, vd = (pad(t).transpose(1, 2) for t in (q, k, v))
    # [B, 1, L, L] with a pattern, else [B, 1, 1, L]
    allowed = pattern.padded_mask(lengths, width)[:, None] if pattern is not None else valid[:, None, None, :]
    allowed = allowed | (lengths == 0).view(b, 1, 1, 1)  # an empty video's rows stay finite (and unused)
    bias = pad(key_bias).view(b, 1, 1, width) if key_bias is not None else None
    out = F.scaled_dot_product_attention(qd, kd, vd, attn_mask=additive_mask(allowed, bias, q.dtype), scale=scale)
    return out.transpose(1, 2)[valid]
