"""Attention backends over packed tokens.

`attend(q, k, v, seqlens, key_bias=None, scale=None, *, pattern=None, backend=None)` is the one entry point
the models call. q, k, v are packed [total, H, d] (the tokens of all videos back to back, as in
`vidslim.tokens.Tokens`). An equal-length batch takes the plain dense SDPA path with no mask; an unequal
one takes a variable-length (block-diagonal) path so that no token ever attends across videos.
`key_bias` is an additive per-key bias [total] such as `size_bias(size)` = log(size), ToMe's proportional
attention. `pattern` restricts attention inside each video (the block-sparse hook SViTT builds on).
"""

from vidslim.attention.api import BACKENDS, attend, use_backend
from vidslim.attention.bias import additive_mask, size_bias
from vidslim.attention.sparse import AttentionPattern, BlockLocalPattern, MaskPattern
from vidslim.attention.varlen import plan_buckets

__all__ = [
    "BACKENDS",
    "AttentionPattern",
    "BlockLocalPattern",
    "MaskPattern",
    "additive_mask",
    "attend",
    "plan_buckets",
    "size_bias",
    "use_backend",
]
