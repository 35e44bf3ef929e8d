"""Equal-length batches: one plain SDPA call on a [B, H, N, d] view of the packed tensors, no copy, no mask."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

from vidslim.attention.bias import additive_mask
from vidslim.attention.sparse import AttentionPattern


def dense_attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    seqlens: Sequence[int],
    key_bias: Tensor | None = None,
    scale: float | None = None,
    pattern: AttentionPattern | None = None,
) -> Tensor:
    """Attention of B equal-length videos packed as [B*N, H, d] -> [B*N, H, d_v].

    q, k, v are viewed as [B, H, N, d] (packed rows split into B videos, then heads moved forward: strides
    only), so with no key_bias and no pattern this is exactly `F.scaled_dot_product_attention` on the
    dense batch.
    """
    total, heads, _ = q.shape
    b = len(seqlens)
    n = seqlens[0] if b else 0
    qd, kd, vd = (t.view(b, n, heads, t.shape[-1]).transpose(1, 2) for t in (q, k, v))
    allowed = pattern.dense_mask(n, q.device)[None, None] if pattern is not None else None
    bias = key_bias.view(b, 1, 1, n) if key_bias is not None else None
    mask = additive_mask(allowed, bias, q.dtype)
    out = F.scaled_dot_product_attention(qd, kd, vd, attn_mask=mask, scale=scale)
    return out.transpose(1, 2).reshape(total, heads, v.shape[-1])
