"""FlexAttention backend: the whole packed batch in one compiled kernel with a document (block-diagonal) mask.

The packed tensors are read as one sequence [1, H, total, d]. A BlockMask built by hand from the lengths
(no O(total^2) mask evaluation) lists, for each 128-token query block, the key blocks it overlaps inside
its own videos; blocks wholly inside one video are marked full and need no per-element mask. A `pattern`
(see `vidslim.attention.sparse`) is added to the mask_mod on local indices, and its BlockMask is then built
by FlexAttention from the combined mask_mod, so whole blocks a pattern forbids are skipped. `key_bias`
becomes a score_mod.

Timed by benchmarks/attention.py (BENCHMARKS.md): correct, but slower than the bucketed SDPA path, and its
backward is not implemented on CPU, so `backend="auto"` does not pick it.
It needs torch.compile (a C++ compiler on CPU); the first call compiles (seconds; cached on disk after).
Workarounds for torch 2.13's CPU code generation, which failed to build every *recompile* we triggered
(after a shape change, after a new mask_mod) and any dynamic-shape kernel whose mask_mod indexes a
captured tensor (such as `MaskPattern`'s mask):
- the document mask compiles with `dynamic=True` from the first call: one kernel for every length;
  batches of at most one 128-token block (whose block count 1 gets specialised) are padded to two blocks;
- patterns compile with static shapes: one compile per distinct token count (seconds each; after
  dynamo's recompile limit, calls run FlexAttention uncompiled, correct but slow);
- each kind of mask/score function gets its own compiled copy, hence its own dynamo cache.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from vidslim.attention.sparse import AttentionPattern
from vidslim.errors import AttentionBackendError
from vidslim.tokens.kept_tensors import kept_across_calls

BLOCK_SIZE = 128
#: fewest tokens sent to the kernel: with a single 128-token block, torch 2.13 specialises the compiled
#: kernel on the block count 1 and the recompile it triggers later fails to build on CPU
_MIN_TOKENS = BLOCK_SIZE + 1


def _flex_template(
    q: Tensor, k: Tensor, v: Tensor, score_mod: object, block_mask: object, scale: float | None
) -> Tensor:
    from torch.nn.attention.flex_attention import flex_attention

    return flex_attention(q, k, v, score_mod=score_mod, block_mask=block_mask, scale=scale)  # type: ignore[arg-type]


@functools.cache
def _compiled_flex(kind: str, dynamic: bool) -> Callable[..., Tensor]:
    """A compiled FlexAttention for one kind of mask_mod / score_mod.

    Each kind gets its own copy of the code object, hence its own dynamo cache: in torch 2.13, compiling
    a second mask_mod into the cache of the first (a recompile) generated CPU code that failed to build.
    """
    code = _flex_template.__code__.replace(co_name=f"flex_attention_{kind}_{'dynamic' if dynamic else 'static'}")
    function = types.FunctionType(code, _flex_template.__globals__, code.co_name)
    return torch.compile(function, dynamic=dynamic)


def _document_ids(seqlens: Sequence[int], device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """([total] video id per token, [B] start offset per video, [B] length per video)."""
    lengths = torch.tensor(list(seqlens), dtype=torch.int64, device=device)
    starts = torch.cumsum(lengths, 0) - lengths
    doc = torch.repeat_interleave(torch.arange(len(seqlens), device=device), lengths)
    return doc, starts, lengths


def _ordered(blocks: Tensor) -> tuple[Tensor, Tensor]:
    """Dense [Q, K] block booleans -> (count [1, 1, Q], indices [1, 1, Q, K]) with the True blocks first."""
    count = blocks.sum(-1, dtype=torch.int32)
    indices = torch.argsort(blocks.to(torch.int8), dim=-1, descending=True, stable=True).to(torch.int32)
    return count[None, None], indices[None, None]


@functools.lru_cache(maxsize=32)
@kept_across_calls
def document_block_mask(seqlens: tuple[int, ...], device: torch.device) -> object:
    """The BlockMask of block-diagonal attention over packed videos of these lengths (built, not evaluated)."""
    from torch.nn.attention.flex_attention import BlockMask

    total = sum(seqlens)
    doc, _, _ = _document_ids(seqlens, device)
    num_blocks = -(-total // BLOCK_SIZE)
    first = torch.arange(num_blocks, device=device) * BLOCK_SIZE
    last = torch.clamp(first + BLOCK_SIZE, max=total) - 1
    lo, hi = doc[first], doc[last]  # videos a block spans: lo..hi
    touches = (lo[:, None] <= hi[None, :]) & (lo[None, :] <= hi[:, None])
    whole = (lo == hi) & (last - first + 1 == BLOCK_SIZE)  # inside one video and not cut by the end
    full = touches & whole[:, None] & whole[None, :] & (lo[:, None] == lo[None, :])
    partial_count, partial_index = _ordered(touches & ~full)
    full_count, full_index = _ordered(full)

    def same_video(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        return doc[q_idx] == doc[kv_idx]

    return BlockMask.from_kv_blocks(
        partial_count,
        partial_index,
        full_count,
        full_index,
        BLOCK_SIZE=BLOCK_SIZE,
        mask_mod=same_video,
        seq_lengths=(total, total),
    )


def pattern_block_mask(
    seqlens: Sequence[int], pattern: AttentionPattern, device: torch.device, last_is_dummy: bool = False
) -> object:
    """The BlockMask of the document mask AND a per-video pattern (evaluated by FlexAttention, O(total^2)).

    last_is_dummy: the last video is padding added by `flex_attend`; it attends densely, so no row is empty.
    """
    from torch.nn.attention.flex_attention import create_block_mask

    total = sum(seqlens)
    doc, starts, lengths = _document_ids(seqlens, device)
    dense = torch.zeros(len(seqlens), dtype=torch.bool, device=device)  # videos that ignore the pattern
    dense[-1] = last_is_dummy

    def mask_mod(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        video = doc[q_idx]
        start = starts[video]
        local = pattern.allowed(q_idx - start, kv_idx - start, lengths[video])
        return (video == doc[kv_idx]) & (local | dense[video])

    return create_block_mask(mask_mod, None, None, total, total, device=device)


def flex_attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    seqlens: Sequence[int],
    key_bias: Tensor | None = None,
    scale: float | None = None,
    pattern: AttentionPattern | None = None,
) -> Tensor:
    """Block-diagonal attention over packed [total, H, d] tensors with compiled FlexAttention."""
    if q.device.type == "cpu" and torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v)):
        raise AttentionBackendError(
            "attend(backend='flex'): FlexAttention has no backward pass on CPU in this torch; "
            "use backend='sdpa' (or 'auto') for training, or run under torch.no_grad()"
        )
    total = q.shape[0]
    padded = q.device.type == "cpu" and total <= BLOCK_SIZE
    if padded:  # see _MIN_TOKENS: pad tiny batches with one extra video of dummy tokens
        extra = _MIN_TOKENS - total
        seqlens = [*seqlens, extra]
        q, k, v = (torch.cat((t, t.new_zeros(extra, *t.shape[1:]))) for t in (q, k, v))
        if key_bias is not None:
            key_bias = torch.cat((key_bias, key_bias.new_zeros(extra)))
    if pattern is None:
        block_mask = document_block_mask(tuple(int(n) for n in seqlens), q.device)
    else:
        block_mask = pattern_block_mask(seqlens, pattern, q.device, last_is_dummy=padded)
    score_mod = None
    if key_bias is not None:
        bias = key_bias.to(q.dtype)

        def score_mod(score: Tensor, b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
            return score + bias[kv_idx]

    qf, kf, vf = (t.transpose(0, 1)[None] for t in (q, k, v))
    try:
        kind = f"{type(pattern).__qualname__ if pattern is not None else 'document'}_{score_mod is not None}"
        out = _compiled_flex(kind, dynamic=pattern is None)(qf, kf, vf, score_mod, block_mask, scale)
    except Exception as error:  # compile failures surface here, with torch's long message in the chain
        raise AttentionBackendError(
            f"attend(backend='flex'): FlexAttention failed to compile or run ({type(error).__name__}); "
            "it needs torch.compile with a working C++ compiler on CPU. Use backend='sdpa' instead."
        ) from error
    return out[0, :, :total].transpose(0, 1)
