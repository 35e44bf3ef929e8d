"""Attention backends over packed tokens.

`attend(q, k, v, seqlens, key_bias=None, scale=None, *, pattern=None, backend=None)` is the one entry point
the models call. q, k, v are packed [total, H, d] (the tokens of all videos back to back, as in
`vidslim.tokens.Tokens`). An equal-length batch takes the plain dense SDPA path with no mask; an unequal
one takes a variable-length (block-diagonal) path so that no token ever attends across videos.
`key_bias` is an additive per-key bias [total] such as `size_bias(size)` = log(size), ToMe's proportional
attention. `pattern` restricts attention inside each video (the block-sparse hook SViTT builds on).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidslim._lazy import lazy_exports

if TYPE_CHECKING:  # the public names: what IDEs read; at run time each module is imported on first use
    from vidslim.attention.api import BACKENDS as BACKENDS
    from vidslim.attention.api import attend as attend
    from vidslim.attention.api import use_backend as use_backend
    from vidslim.attention.bias import additive_mask as additive_mask
    from vidslim.attention.bias import size_bias as size_bias
    from vidslim.attention.sparse import AttentionPattern as AttentionPattern
    from vidslim.attention.sparse import BlockLocalPattern as BlockLocalPattern
    from vidslim.attention.sparse import MaskPattern as MaskPattern
    from vidslim.attention.varlen import plan_buckets as plan_buckets

__getattr__, __dir__, __all__ = lazy_exports(__name__)
