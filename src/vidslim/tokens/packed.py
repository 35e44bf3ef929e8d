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
import itertools
from collections.abc import Sequence
from functools import cached_property

import torch
from torch import Tensor

from vidslim.errors import TokenLayoutError

#: position value of a token with no place on the (t, h, w) grid, such as a CLS token
NO_POSITION = -1


def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


@dataclasses.dataclass(frozen=True, eq=False)
class Tokens:
    """Tokens of a batch of videos, packed.

    x:        [total, D] features, the tokens of video 0 first, then video 1, ...
    seqlens:  tokens per video, as Python ints (sum == total)
    pos:      [total, 3] integer grid position (t, h, w) of each token, NO_POSITION for CLS-like tokens, or None
    size:     [total] float, how many original patches each token stands for, or None (all ones)
    """

    x: Tensor
    seqlens: tuple[int, ...]
    pos: Tensor | None = None
    size: Tensor | None = None

    def __post_init__(self) -> None:
        if self.x.dim() != 2:
            raise TokenLayoutError(
                f"Tokens.x must be [total, D], got shape {_shape(self.x)}; "
                "use Tokens.from_dense for a [B, N, D] batch"
            )
        object.__setattr__(self, "seqlens", tuple(int(n) for n in self.seqlens))
        if any(n < 0 for n in self.seqlens):
            raise TokenLayoutError(f"Tokens.seqlens must be non-negative, got {self.seqlens}")
        total = sum(self.seqlens)
        if total != self.x.shape[0]:
            raise TokenLayoutError(
                f"Tokens.seqlens sum to {total} but x holds {self.x.shape[0]} tokens; "
                "seqlens must count the tokens of each video in x"
            )
        if self.pos is not None:
            if _shape(self.pos) != (total, 3):
                raise TokenLayoutError(f"Tokens.pos must be [{total}, 3] (t, h, w), got {_shape(self.pos)}")
            if self.pos.is_floating_point() or self.pos.is_complex():
                raise TokenLayoutError(f"Tokens.pos must be an integer tensor, got {self.pos.dtype}")
        if self.size is not None and _shape(self.size) != (total,):
            raise TokenLayoutError(f"Tokens.size must be [{total}], got {_shape(self.size)}")

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_dense(cls, x: Tensor, pos: Tensor | None = None, size: Tensor | None = None) -> Tokens:
        """Pack an equal-length batch [B, N, D] (a view, no copy when x is contiguous).

        pos may be [B, N, 3] or [N, 3] (shared by every video); size may be [B, N] or [N].
        """
        if x.dim() != 3:
            raise TokenLayoutError(f"from_dense expects x of shape [B, N, D], got {_shape(x)}")
        b, n, d = x.shape
        if pos is not None:
            if _shape(pos) not in ((b, n, 3), (n, 3)):
                raise TokenLayoutError(f"from_dense: pos must be [{b}, {n}, 3] or [{n}, 3], got {_shape(pos)}")
            pos = pos.expand(b, n, 3).reshape(b * n, 3)
        if size is not None:
            if _shape(size) not in ((b, n), (n,)):
                raise TokenLayoutError(f"from_dense: size must be [{b}, {n}] or [{n}], got {_shape(size)}")
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
            raise TokenLayoutError("from_list needs at least one video, got an empty list")
        if any(t.dim() != 2 for t in xs) or len({t.shape[1] for t in xs}) != 1:
            raise TokenLayoutError(
                f"from_list expects [N_i, D] tensors of one width D, got shapes {[_shape(t) for t in xs]}"
            )
        seqlens = tuple(t.shape[0] for t in xs)
        for name, parts in (("pos", pos), ("size", size)):
            if parts is not None and (
                len(parts) != len(xs) or any(p.shape[0] != n for p, n in zip(parts, seqlens, strict=True))
            ):
                raise TokenLayoutError(
                    f"from_list: {name} must hold one tensor per video with N_i rows {list(seqlens)}, "
                    f"got {[_shape(p) for p in parts]}"
                )
        return cls(
            torch.cat(list(xs)),
            seqlens,
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
        if padded.dim() != 3:
            raise TokenLayoutError(f"unpad expects a padded batch [B, L, D], got {_shape(padded)}")
        b, width = padded.shape[:2]
        if len(lengths) != b or max(lengths, default=0) > width or min(lengths, default=0) < 0:
            raise TokenLayoutError(
                f"unpad: lengths {lengths} do not fit a padded batch of shape {_shape(padded)}; "
                f"give {b} lengths between 0 and {width}"
            )
        if pos is not None and _shape(pos) != (b, width, 3):
            raise TokenLayoutError(f"unpad: pos must be [{b}, {width}, 3], got {_shape(pos)}")
        if size is not None and _shape(size) != (b, width):
            raise TokenLayoutError(f"unpad: size must be [{b}, {width}], got {_shape(size)}")
        if all(n == width for n in lengths):
            return cls.from_dense(padded, pos, size)
        keep = _valid_mask(lengths, width, padded.device)
        return cls(
            padded[keep],
            tuple(lengths),
            pos[keep] if pos is not None else None,
            size[keep] if size is not None else None,
        )

    # ----------------------------------------------------------------- layout
    @property
    def batch_size(self) -> int:
        """Number of videos."""
        return len(self.seqlens)

    @property
    def total(self) -> int:
        """Number of tokens of all videos together."""
        return self.x.shape[0]

    @property
    def dim(self) -> int:
        """Feature width D."""
        return self.x.shape[1]

    @property
    def max_seqlen(self) -> int:
        """Tokens of the longest video."""
        return max(self.seqlens, default=0)

    @property
    def is_uniform(self) -> bool:
        """True when every video holds the same number of tokens (the dense fast path applies)."""
        return len(set(self.seqlens)) <= 1

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        """[B + 1] Python ints: where each video starts in x, then `total` (cu_seqlens without a device)."""
        return (0, *itertools.accumulate(self.seqlens))

    @cached_property
    def cu_seqlens(self) -> Tensor:
        """[B + 1] int32 offsets where each video starts, on x's device (the flash-attention convention)."""
        return torch.tensor(self.offsets, dtype=torch.int32, device=self.x.device)

    @cached_property
    def lengths(self) -> Tensor:
        """[B] int64 tokens per video, on x's device."""
        return torch.tensor(self.seqlens, dtype=torch.int64, device=self.x.device)

    @cached_property
    def batch_index(self) -> Tensor:
        """[total] int64: which video each token belongs to."""
        return torch.repeat_interleave(
            torch.arange(self.batch_size, device=self.x.device), self.lengths, output_size=self.total
        )

    def sizes(self) -> Tensor:
        """Per-token size, ones when the container does not track sizes."""
        if self.size is not None:
            return self.size
        return torch.ones(self.total, dtype=self.x.dtype, device=self.x.device)

    # ----------------------------------------------------------------- views
    def dense(self) -> Tensor:
        """[B, N, D] view of an equal-length batch, with no copy when x is contiguous."""
        if not self.is_uniform:
            raise TokenLayoutError(f"dense() needs equal lengths, got seqlens {self.seqlens}; use pad() instead")
        return self.x.reshape(self.batch_size, self.max_seqlen, self.dim)

    def split(self) -> list[Tensor]:
        """Per-video views [N_i, D]."""
        return list(torch.split(self.x, list(self.seqlens)))

    def pad(self, value: float = 0.0) -> tuple[Tensor, Tensor]:
        """Pad to the longest video: ([B, L, D] tensor, [B, L] bool mask that is True on real tokens).

        An equal-length batch returns the `dense()` view itself (no copy) and an all-True mask.
        """
        b, width = self.batch_size, self.max_seqlen
        if self.is_uniform:
            return self.dense(), torch.ones(b, width, dtype=torch.bool, device=self.x.device)
        return self.pad_values(self.x, value), _valid_mask(self.seqlens, width, self.x.device)

    def pad_values(self, values: Tensor, value: float = 0.0) -> Tensor:
        """Pad any per-token tensor [total, ...] (x, pos, size, ...) to [B, L, ...], filling with `value`."""
        if values.shape[0] != self.total:
            raise TokenLayoutError(
                f"pad_values: values must have {self.total} rows (one per token), got {_shape(values)}"
            )
        b, width = self.batch_size, self.max_seqlen
        if self.is_uniform:
            return values.reshape(b, width, *values.shape[1:])
        padded = values.new_full((b * width, *values.shape[1:]), value)
        padded.index_copy_(0, self.padded_index, values)  # an index, not a bool mask: no nonzero, no device sync
        return padded.view(b, width, *values.shape[1:])

    @cached_property
    def padded_index(self) -> Tensor:
        """[total] int64: the row of every token in the [B·L] rows of `pad` (L = the longest sequence), so that
        `padded.view(B·L, ...)[padded_index]` is the packed tensor again. Built on the device without a sync."""
        local = torch.arange(self.total, device=self.x.device) - self.cu_seqlens.long()[:-1][self.batch_index]
        return self.batch_index * self.max_seqlen + local

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


def _valid_mask(lengths: Sequence[int], width: int, device: torch.device) -> Tensor:
    """[B, width] bool, True on the first lengths[i] slots of row i."""
    lengths_t = torch.tensor(list(lengths), dtype=torch.int64, device=device)
    return torch.arange(width, device=device)[None, :] < lengths_t[:, None]
