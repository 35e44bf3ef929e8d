"""Attention backends over packed tokens.

`attend(q, k, v, seqlens, key_bias=None, scale=None, *, pattern=None, backend=None)` is the one entry point
the models call. q, k, v are packed [total, H, d] (the tokens of all videos back to back, as in
`vidslim.tokens.Tokens`). An equal-length batch takes the plain dense SDPA path with no mask; an unequal
one takes a variable-length (block-diagonal) path so that no token ever attends across videos.
`key_bias` is an additive per-key bias [total] such as `size_bias(size)` = log(size), ToMe's proportional
attention. `pattern` restricts attention inside each video (the block-sparse hook SViTT builds on).
"""

from __future__ import annotations

from vidslim._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "BACKENDS": "vidslim.attention.api",
    "attend": "vidslim.attention.api",
    "use_backend": "vidslim.attention.api",
    "additive_mask": "vidslim.attention.bias",
    "size_bias": "vidslim.attention.bias",
    "AttentionPattern": "vidslim.attention.sparse",
    "BlockLocalPattern": "vidslim.attention.sparse",
    "MaskPattern": "vidslim.attention.sparse",
    "plan_buckets": "vidslim.attention.varlen",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
