"""The packed token container: the one currency every reducer and every encoder speaks.

A batch of videos becomes one tensor `x` of shape [total, D] holding the tokens of all videos back to back,
plus the number of tokens of each video (`seqlens`, kept as Python ints so no step needs a device sync to
learn the layout) and, per token, its footprint in the original video: its grid position (t, h, w) and its
size (how many original patches or tubelets it stands for: a run length for RLT, a merged count for ToMe).

When every video holds the same number of tokens the container is *uniform*, and `dense()` is a view of `x`
as [B, N, D] with no copy: models take the plain dense fast path with no mask.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import cached_property

import torch
from torch import Tensor

#: position value of a token with no place on the (t, h, w) grid, such as a CLS token
NO_POSITION = -1


@dataclasses.dataclass(frozen=True, eq=False)
class Tokens:
    """Tokens of a batch of videos, packed.

    x:        [total, D] features, the tokens of video 0 first, then video 1, ...
    seqlens:  tokens per video, as Python ints (sum == total)
    pos:      [total, 3] int64 grid position (t, h, w) of each token, NO_POSITION for CLS-like tokens, or None
    size:     [total] float, how many original patches each token stands for, or None (all ones)
    """

    x: Tensor
    seqlens: tuple[int, ...]
    pos: Tensor | None = None
    size: Tensor | None = None

    def __post_init__(self) -> None:
        if self.x.dim() != 2:
            raise ValueError(f"Tokens.x must be [total, D], got shape {tuple(self.x.shape)}")
        object.__setattr__(self, "seqlens", tuple(int(n) for n in self.seqlens))
        total = sum(self.seqlens)
        if total != self.x.shape[0]:
            raise ValueError(f"seqlens sum to {total} but x holds {self.x.shape[0]} tokens")
        if any(n < 0 for n in self.seqlens):
            raise ValueError(f"seqlens must be non-negative, got {self.seqlens}")
        if self.pos is not None and tuple(self.pos.shape) != (total, 3):
            raise ValueError(f"pos must be [{total}, 3], got {tuple(self.pos.shape)}")
        if self.size is not None and tuple(self.size.shape) != (total,):
            raise ValueError(f"size must be [{total}], got {tuple(self.size.shape)}")

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_dense(cls, x: Tensor, pos: Tensor | None = None, size: Tensor | None = None) -> Tokens:
        """Pack an equal-length batch [B, N, D] (a view, no copy when x is contiguous).

        pos may be [B, N, 3] or [N, 3] (shared by every video); size may be [B, N] or [N].
        """
        if x.dim() != 3:
            raise ValueError(f"from_dense expects [B, N, D], got shape {tuple(x.shape)}")
        b, n, d = x.shape
        if pos is not None:
            pos = pos.expand(b, n, 3).reshape(b * n, 3)
        if size is not None:
            size = size.expand(b, n).reshape(b * n)
        return cls(x.reshape(b * n, d), (n,) * b, pos, size)

    @classmethod
    def from_list(
        cls,
        xs: Sequence[Tensor],
        pos: Sequence[Tensor] | None = None,
        size: Sequence[Tensor] | None = None,
    ) -> Tokens:
        """Pack per-video tensors [N_i, D] (with optional per-video pos [N_i, 3] and size [N_i])."""
        if len(xs) == 0:
            raise ValueError("from_list needs at least one video")
        return cls(
            torch.cat(list(xs)),
            tuple(t.shape[0] for t in xs),
            torch.cat(list(pos)) if pos is not None else None,
            torch.cat(list(size)) if size is not None else None,
        )

    @classmethod
    def unpad(
        cls,
        padded: Tensor,
        lengths: Sequence[int],
        pos: Tensor | None = None,
        size: Tensor | None = None,
    ) -> Tokens:
        """Inverse of `pad`: keep the first lengths[i] rows of padded[i] ([B, L, D], pos [B, L, 3], size [B, L])."""
        lengths = [int(n) for n in lengths]
        b, width = padded.shape[:2]
        if len(lengths) != b or max(lengths, default=0) > width:
            raise ValueError(f"lengths {lengths} do not fit a padded batch of shape {tuple(padded.shape)}")
        if all(n == width for n in lengths):
            return cls.from_dense(padded, pos, size)
        keep = torch.arange(width, device=padded.device)[None, :] < torch.tensor(lengths, device=padded.device)[:, None]
        return cls(
            padded[keep],
            tuple(lengths),
            pos[keep] if pos is not None else None,
            size[keep] if size is not None else None,
        )

    # ----------------------------------------------------------------- layout
    @property
    def batch_size(self) -> int:
        return len(self.seqlens)

    @property
    def total(self) -> int:
        return self.x.shape[0]

    @property
    def dim(self) -> int:
        return self.x.shape[1]

    @property
    def max_seqlen(self) -> int:
        return max(self.seqlens, default=0)

    @property
    def is_uniform(self) -> bool:
        """True when every video holds the same number of tokens (the dense fast path applies)."""
        return len(set(self.seqlens)) <= 1

    @cached_property
    def cu_seqlens(self) -> Tensor:
        """[B + 1] int32 offsets where each video starts, on x's device (the flash-attention convention)."""
        offsets = [0]
        for n in self.seqlens:
            offsets.append(offsets[-1] + n)
        return torch.tensor(offsets, dtype=torch.int32, device=self.x.device)

    @cached_property
    def lengths(self) -> Tensor:
        """[B] int64 tokens per video, on x's device."""
        return torch.tensor(self.seqlens, dtype=torch.int64, device=self.x.device)

    @cached_property
    def batch_index(self) -> Tensor:
        """[total] int64: which video each token belongs to."""
        return torch.repeat_interleave(torch.arange(self.batch_size, device=self.x.device), self.lengths)

    def sizes(self) -> Tensor:
        """Per-token size, ones when the container does not track sizes."""
        if self.size is not None:
            return self.size
        return torch.ones(self.total, dtype=self.x.dtype, device=self.x.device)

    # ----------------------------------------------------------------- views
    def dense(self) -> Tensor:
        """[B, N, D] view of an equal-length batch, with no copy."""
        if not self.is_uniform:
            raise ValueError(f"dense() needs equal lengths, got {self.seqlens}; use pad() instead")
        return self.x.view(self.batch_size, self.max_seqlen, self.dim)

    def split(self) -> list[Tensor]:
        """Per-video views [N_i, D]."""
        return list(torch.split(self.x, list(self.seqlens)))

    def pad(self, value: float = 0.0) -> tuple[Tensor, Tensor]:
        """Pad to the longest video: ([B, L, D] tensor, [B, L] bool mask that is True on real tokens)."""
        b, width = self.batch_size, self.max_seqlen
        if self.is_uniform:
            mask = torch.ones(b, width, dtype=torch.bool, device=self.x.device)
            return self.dense(), mask
        mask = torch.arange(width, device=self.x.device)[None, :] < self.lengths[:, None]
        padded = self.x.new_full((b, width, self.dim), value)
        padded[mask] = self.x
        return padded, mask

    def replace(self, **changes: object) -> Tokens:
        """A copy with some fields replaced, such as new features of the same layout: `t.replace(x=y)`."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        lens = self.seqlens if len(self.seqlens) <= 8 else (*self.seqlens[:8], "...")
        return (
            f"Tokens(batch={self.batch_size}, total={self.total}, dim={self.dim}, seqlens={lens}, "
            f"pos={'yes' if self.pos is not None else 'no'}, size={'yes' if self.size is not None else 'no'}, "
            f"dtype={self.x.dtype}, device={self.x.device})"
        )
