"""Which patches or tubelets of a clip become tokens: what a before-the-model reducer hands the model.

A `TokenSelector` (RLT, random masking) looks at pixels and the model's `InputSpec` and returns a `Selection`: a
keep mask over the model's token grid, optionally each kept slot's footprint (RLT's run length) and an extra
embedding per kept token (RLT's length embedding). The model then embeds only the kept slots
(`model.embed(video, keep=selection)`), so a selector knows nothing of any model's internals.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.io.input_spec import InputSpec

PoolMode = Literal["mean", "length"]


@dataclasses.dataclass
class Selection:
    """keep: bool [B, T', H', W'] (True = becomes a token); size: optional [B, T', H', W'] footprint of each slot
    (stored as the kept tokens' size); extra: optional [K, D] added to the K kept tokens' embeddings, in
    (b, t, h, w) order; index: optional int64 [B, k], the kept slots of each clip in ascending raster order, when
    every clip keeps the same k (a fixed budget): the model then embeds them with static shapes (no host sync),
    which traced, compiled and exported graphs need."""

    keep: Tensor
    size: Tensor | None = None
    extra: Tensor | None = None
    index: Tensor | None = None

    def checked(self, batch: int, grid: tuple[int, int, int], min_tokens: int = 1) -> Selection:
        """Self with `keep` as bool, or a ConfigError saying what shape was expected; with `min_tokens`, every clip
        must keep at least one token (a model with a CLS per frame passes 0)."""
        keep = self.keep
        if tuple(keep.shape) != (batch, *grid):
            raise ConfigError(
                f"token mask has shape {tuple(keep.shape)} but the clips have {batch} x {grid} tokens; build it with "
                "the same frames, size, tubelet and patch as the model input"
            )
        if keep.dtype != torch.bool:
            keep = keep.bool()
        if min_tokens and not keep.flatten(1).any(1).all():
            raise ConfigError("a token mask keeps no token of some clip; every clip needs at least one token")
        return dataclasses.replace(self, keep=keep)


def as_selection(keep: Selection | Tensor) -> Selection:
    """A Selection from itself or from a bare keep mask."""
    return keep if isinstance(keep, Selection) else Selection(keep)


class TokenSelector(nn.Module):
    """Base of the before-the-model reducers: pixels and an input spec in, a `Selection` out.

    pool: how a classifier pools the tokens ("mean", or "length": weighted by each token's size).
    """

    pool: PoolMode = "mean"

    def select(self, video: Tensor, spec: InputSpec, token_mask: Tensor | None = None) -> Selection:
        """The slots of `video` (prepared, in `spec.layout`) that become tokens. `token_mask` is a keep mask
        computed earlier (in a data loader, say) for the same clips."""
        raise NotImplementedError

    def select_frames(self, frames: Tensor, spec: InputSpec) -> Tensor:
        """The keep mask [B, T', H', W'] of decoded uint8 frames [B, T, H, W, C] (counting tokens over a whole video
        without preparing it for a model); by default through `select` on the prepared frames."""
        return self.select(spec.prepare(frames), spec).keep

    def check_spec(self, spec: InputSpec) -> None:
        """Raise a ConfigError when this selector cannot act on a model taking `spec` (called on attach)."""


def check_pool(pool: str) -> PoolMode:
    """`pool` as a PoolMode, or a ConfigError naming the two choices."""
    if pool not in ("mean", "length"):
        raise ConfigError(f"pool must be 'mean' (the release) or 'length' (weighted by run length), got {pool!r}")
    return pool  # type: ignore[return-value]
