"""Attention backends over packed tokens.

`attend(q, k, v, seqlens, key_bias=None)` is the one entry point the models call. q, k, v are packed
[total, H, d] (the tokens of all videos back to back, as in `vidslim.tokens.Tokens`). An equal-length batch
takes the plain dense SDPA path with no mask; an unequal one takes a variable-length (block-diagonal) path
so that no token ever attends across videos. `key_bias` is an additive per-key bias [total] such as
log(size) for ToMe's proportional attention.
"""

from vidslim.attention.api import attend

__all__ = ["attend"]
