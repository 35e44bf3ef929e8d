"""`attend`: the one attention entry point the models call, dispatching to a backend.

Backends (pick per call with `backend=`, or for a whole region with `use_backend(...)`):

- "auto" (default) = "sdpa": equal lengths take one plain SDPA call on a dense view (`dense.py`, exactly
  `F.scaled_dot_product_attention`); unequal lengths take length buckets of dense SDPA calls
  (`varlen.py`), the fastest variable-length path measured on CPU.
- "padded": pad every video to the longest and mask (`padded.py`), the baseline.
- "flex": compiled FlexAttention with a document mask (`flex.py`); no backward on CPU.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence

from torch import Tensor

from vidslim.attention.dense import dense_attend
from vidslim.attention.flex import flex_attend
from vidslim.attention.padded import padded_attend
from vidslim.attention.sparse import AttentionPattern
from vidslim.attention.varlen import varlen_attend
from vidslim.errors import AttentionBackendError, TokenLayoutError

BACKENDS = ("auto", "sdpa", "padded", "flex")

_default_backend: contextvars.ContextVar[str] = contextvars.ContextVar("vidslim_attention_backend", default="auto")


def _check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise AttentionBackendError(f"unknown attention backend {name!r}; use one of {', '.join(BACKENDS)}")
    return name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run every `attend` call inside the `with` block on backend `name` (unless a call names its own)."""
    token = _default_backend.set(_check_backend(name))
    try:
        yield
    finally:
        _default_backend.reset(token)


def _check_inputs(q: Tensor, k: Tensor, v: Tensor, seqlens: Sequence[int], key_bias: Tensor | None) -> None:
    if q.dim() != 3 or k.shape != q.shape or v.dim() != 3 or v.shape[:2] != q.shape[:2]:
        raise TokenLayoutError(
            f"attend: q, k, v must be packed [total, heads, head_dim] of one total and head count, got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if sum(seqlens) != q.shape[0] or any(n < 0 for n in seqlens):
        raise TokenLayoutError(
            f"attend: seqlens {list(seqlens)[:8]}{'...' if len(seqlens) > 8 else ''} must be non-negative "
            f"and sum to the {q.shape[0]} packed tokens"
        )
    if key_bias is not None and tuple(key_bias.shape) != (q.shape[0],):
        raise TokenLayoutError(f"attend: key_bias must be [{q.shape[0]}] (one per key), got {tuple(key_bias.shape)}")


def attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    seqlens: Sequence[int],
    key_bias: Tensor | None = None,
    scale: float | None = None,
    *,
    pattern: AttentionPattern | None = None,
    backend: str | None = None,
) -> Tensor:
    """Block-diagonal attention over packed tokens: [total, H, d] x3 -> [total, H, d_v].

    seqlens:  tokens per video (Python ints); no token attends across videos.
    key_bias: optional additive bias per key, [total] (e.g. `size_bias(tokens.size)`, ToMe's proportional
              attention); cast to q's dtype.
    scale:    softmax scale, head_dim**-0.5 when None.
    pattern:  optional block-sparse pattern applied inside each video (`vidslim.attention.sparse`); on "auto"
              and "sdpa" a pattern with its own kernel (`sparse_attend`) runs it, else masks apply.
    backend:  "auto", "sdpa", "padded" or "flex" (see the module docstring); None uses `use_backend`'s.
    """
    seqlens = [int(n) for n in seqlens]
    _check_inputs(q, k, v, seqlens, key_bias)
    name = _check_backend(backend) if backend is not None else _default_backend.get()
    if q.shape[0] == 0:
        return v.new_empty(0, *v.shape[1:])
    if pattern is not None and name in ("auto", "sdpa"):
        out = pattern.sparse_attend(q, k, v, seqlens, key_bias, scale)
        if out is not None:  # the pattern brought its own block-sparse kernel (SViTT's gathered blocks)
            return out
    if name == "flex":
        return flex_attend(q, k, v, seqlens, key_bias, scale, pattern)
    if len(set(seqlens)) <= 1:
        return dense_attend(q, k, v, seqlens, key_bias, scale, pattern)
    if name == "padded":
        return padded_attend(q, k, v, seqlens, key_bias, scale, pattern)
    return varlen_attend(q, k, v, seqlens, key_bias, scale, pattern)
