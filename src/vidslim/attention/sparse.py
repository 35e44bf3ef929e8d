"""The block-sparse hook: attention patterns that say which keys each query may see inside one video.

A pattern is one pure tensor function, `allowed(q_idx, kv_idx, seqlen) -> bool`, of a query's and a key's
index *inside their video* and of that video's length. Written with tensor ops only, the same function
serves every backend:

- the SDPA backends evaluate it on an index grid to get a dense boolean mask (per video, or per padded
  bucket of videos), which is exact but saves no compute on CPU;
- the FlexAttention backend uses it as a `mask_mod` (combined with the document mask that keeps videos
  apart), so FlexAttention's BlockMask skips the key blocks no query of a block can see.

Patterns here are the hook and two small examples: `MaskPattern` (any hand-built [M, M] boolean mask) and
`BlockLocalPattern` (global tokens plus block-diagonal local attention: the local part of SViTT's pattern).
SViTT's full local + random + global pattern is built on the same hook in the SViTT module.

Every query must be allowed at least one key (its own, say): a row with no key gives NaN under softmax.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import Tensor

from vidslim.errors import TokenLayoutError


class AttentionPattern:
    """Base class: which keys each query may attend to inside one video (local indices)."""

    def allowed(self, q_idx: Tensor, kv_idx: Tensor, seqlen: Tensor) -> Tensor:
        """True where query q_idx may see key kv_idx in a video of seqlen tokens (broadcasting int tensors).

        Use tensor ops only (no `.item()`, no Python branches on values): the function also runs as a
        FlexAttention mask_mod under torch.compile.
        """
        raise NotImplementedError

    def sparse_attend(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        seqlens: Sequence[int],
        key_bias: Tensor | None = None,
        scale: float | None = None,
    ) -> Tensor | None:
        """The pattern's own block-sparse kernel over packed [total, H, d] tensors, or None (the default).

        `attend` calls it on the "auto" and "sdpa" backends; None makes the backend apply `allowed` as a mask
        (which is exact but computes every pair). "padded" and "flex" always use `allowed`.
        """
        return None

    def dense_mask(self, seqlen: int, device: torch.device | str | None = None) -> Tensor:
        """[seqlen, seqlen] bool mask of one video, True where the query (row) may see the key (column)."""
        idx = torch.arange(seqlen, device=device)
        n = torch.tensor(seqlen, device=device)
        return self.allowed(idx[:, None], idx[None, :], n).expand(seqlen, seqlen)

    def padded_mask(self, lengths: Tensor, width: int) -> Tensor:
        """[b, width, width] bool mask of videos padded to `width` (lengths [b] int64).

        Padded keys are never allowed. Padded query rows (whose output is thrown away) may see every real
        key, so that no row is empty and no NaN reaches the backward pass.
        """
        idx = torch.arange(width, device=lengths.device)
        n = lengths[:, None, None]
        key_real = idx[None, None, :] < n
        query_real = idx[None, :, None] < n
        allowed = self.allowed(idx[None, :, None], idx[None, None, :], n)
        return key_real & (allowed | ~query_real)


@dataclasses.dataclass(frozen=True, eq=False)
class MaskPattern(AttentionPattern):
    """A hand-built pattern: `mask[q, k]` ([M, M] bool) for every video of at most M tokens."""

    mask: Tensor

    def __post_init__(self) -> None:
        if self.mask.dim() != 2 or self.mask.shape[0] != self.mask.shape[1] or self.mask.dtype != torch.bool:
            raise TokenLayoutError(
                f"MaskPattern: mask must be a square [M, M] bool tensor, got {tuple(self.mask.shape)} "
                f"{self.mask.dtype}"
            )

    def allowed(self, q_idx: Tensor, kv_idx: Tensor, seqlen: Tensor) -> Tensor:
        m = self.mask.shape[0]
        # clamping keeps padded slots and (under FlexAttention) other videos' keys in range; the caller
        # masks those anyway
        return self.mask.to(q_idx.device)[q_idx.clamp(0, m - 1), kv_idx.clamp(0, m - 1)]

    def _check(self, seqlen: int) -> None:
        if seqlen > self.mask.shape[0]:
            raise TokenLayoutError(
                f"MaskPattern: a video of {seqlen} tokens is longer than the [{self.mask.shape[0]}, "
                f"{self.mask.shape[0]}] mask; build the mask for the longest video"
            )

    def dense_mask(self, seqlen: int, device: torch.device | str | None = None) -> Tensor:
        self._check(seqlen)
        return self.mask[:seqlen, :seqlen].to(device)

    def padded_mask(self, lengths: Tensor, width: int) -> Tensor:
        self._check(width)
        return super().padded_mask(lengths, width)


@dataclasses.dataclass(frozen=True)
class BlockLocalPattern(AttentionPattern):
    """Global tokens plus block-diagonal local attention.

    The first `num_global` tokens (CLS-like) see and are seen by every token. The others are cut, in order,
    into blocks of `block_size` tokens; a query sees the keys of its own block (SViTT's local window of 1).
    """

    block_size: int
    num_global: int = 0

    def __post_init__(self) -> None:
        if self.block_size < 1 or self.num_global < 0:
            raise TokenLayoutError(
                f"BlockLocalPattern: block_size must be >= 1 and num_global >= 0, got {self.block_size}, "
                f"{self.num_global}"
            )

    def allowed(self, q_idx: Tensor, kv_idx: Tensor, seqlen: Tensor) -> Tensor:
        g, b = self.num_global, self.block_size
        same_block = torch.div(q_idx - g, b, rounding_mode="floor") == torch.div(kv_idx - g, b, rounding_mode="floor")
        return (q_idx < g) | (kv_idx < g) | same_block
