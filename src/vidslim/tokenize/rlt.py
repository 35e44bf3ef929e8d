"""RLT, run-length tokenization (Choudhury et al., NeurIPS 2024), as a before-the-model reducer for the video ViT.

    model = vs.create_model("videomae-b16", num_classes=400, reduction=[vs.RLT(tau=0.1)])

Tubelets that repeat the one before them (by the release's rule, `vidslim.tokenize.rlt_mask`) are dropped before
the patch embedding; each kept tubelet starts a run and becomes one token, with the fixed position embedding of its
own (t, h, w) index and, optionally, a learned length embedding indexed by run length - 1 (spec rlt §2). Clips
keep different numbers of tokens, so the batch is packed with no padding.

Where vidslim departs from the release, on purpose (spec rlt §7.2):
- run lengths are computed in token (t, h, w) order; the release computes them in (h, w, t) order and so adds
  most tokens another token's length embedding;
- `random_keep` combines RLT with random masking of the kept tokens (the paper's Table 3 setting, which the
  release has no code path for): lengths come from the RLT runs, then a fraction of the kept tokens is sampled;
- each token's `size` is its run length, so pooling can weight tokens by the tubelets they stand for
  (`pool="length"`), and size-aware reducers downstream (ToMe) see the real footprint.

The mask can be computed in the data loader on uint8 frames (`keep_mask_uint8`) and passed as
`model(video, token_mask=mask)`; it is the same mask.

On CLIP (`vs.create_model("clip-b16", reduction=[vs.RLT(), vs.TempMe.paper("clip-b16")])`) the same object runs
vidslim's per-frame extension of RLT (`vidslim.tokenize.frame_rlt`; the paper targets video ViTs only): patches
that repeat the previous frame's are dropped, every frame keeps its CLS and becomes a shorter sequence.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.tokenize.frame_rlt import FrameTower, embed_frames_masked, frame_keep_mask
from vidslim.tokenize.masked import TubeletModel, embed_masked
from vidslim.tokenize.random_mask import random_keep_mask
from vidslim.tokenize.rlt_mask import keep_mask
from vidslim.tokenize.run_length import run_length_map
from vidslim.tokens import Tokens

PoolMode = Literal["mean", "length"]


def _check_pool(pool: str) -> PoolMode:
    if pool not in ("mean", "length"):
        raise ConfigError(f"pool must be 'mean' (the release) or 'length' (weighted by run length), got {pool!r}")
    return pool  # type: ignore[return-value]


def _check_tubelet_model(model: nn.Module, reducer: str) -> None:
    if not all(hasattr(model, name) for name in ("tubelets", "project", "position_table", "grid_of")):
        raise ConfigError(
            f"{reducer} acts on tubelet video models such as 'videomae-b16'; {type(model).__name__} has no tubelets"
        )


def _generator(seed: int | None) -> torch.Generator | None:
    return torch.Generator().manual_seed(seed) if seed is not None else None


class RLT(nn.Module):
    """Run-length tokenization: keep a tubelet only when it differs from the one before it by more than tau.

    tau:          threshold on the mean absolute difference of normalised pixels (0.1 in every shipped config;
                  tau < 0 keeps every tubelet and gives the dense model's output)
    length_embed: add a learned embedding of the run length (off in the release's configs)
    random_keep:  also keep only this fraction of the RLT tokens, at random (paper Table 3); None = off
    pool:         'mean' over tokens (the release) or 'length', weighted by run length
    seed:         seed of the random_keep generator (None = the global RNG)
    """

    def __init__(
        self,
        tau: float = 0.1,
        length_embed: bool = False,
        random_keep: float | None = None,
        pool: PoolMode = "mean",
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if random_keep is not None and not 0.0 < random_keep <= 1.0:
            raise ConfigError(f"random_keep must be a fraction in (0, 1], got {random_keep}")
        self.tau = float(tau)
        self.use_length_embed = bool(length_embed)
        self.random_keep = random_keep
        self.pool = _check_pool(pool)
        self.generator = _generator(seed)
        self.length_embed: nn.Parameter | None = None

    def attach(self, model: nn.Module) -> None:
        """Check the model is a tubelet model (or CLIP: per-frame RLT); create the length table [T', D] (std 0.02)."""
        if getattr(model, "family", "") == "clip":
            if self.use_length_embed or self.random_keep is not None:
                raise ConfigError(
                    "RLT on CLIP (per-frame RLT) has no length embedding and no random_keep: use vs.RLT(tau=...) "
                    "alone there, or a video ViT ('videomae-b16') for those options"
                )
            return
        _check_tubelet_model(model, "RLT")
        if self.use_length_embed and self.length_embed is None:
            slots, dim = model.config.grid[0], model.config.embed_dim
            self.length_embed = nn.Parameter(torch.zeros(slots, dim))
            nn.init.trunc_normal_(self.length_embed, std=0.02)

    def token_mask(self, model: TubeletModel, video: Tensor) -> Tensor:
        """The RLT keep mask [B, T', H', W'] of a normalised video, with the model's tubelet and patch sizes."""
        config = model.config  # type: ignore[attr-defined]
        return keep_mask(video, self.tau, config.tubelet_size, config.patch_size)

    def embed_video(self, model: TubeletModel, video: Tensor, token_mask: Tensor | None = None) -> Tokens:
        """Packed tokens of the kept tubelets; `token_mask` is a precomputed RLT mask (e.g. from the loader)."""
        with torch.no_grad():
            mask = self.token_mask(model, video) if token_mask is None else token_mask.to(video.device).bool()
            lengths = run_length_map(mask)
            if self.random_keep is not None:
                mask = random_keep_mask(mask, self.random_keep, self.generator)
        extra = None
        if self.length_embed is not None:
            table = self.length_embed
            if lengths.max() > table.shape[0]:
                raise ConfigError(f"run length {int(lengths.max())} exceeds the length table ({table.shape[0]} slots)")
            extra = table[lengths[mask] - 1]
        return embed_masked(model, video, mask, size=lengths, extra=extra)

    def frame_token_mask(self, tower: FrameTower, video: Tensor) -> Tensor:
        """CLIP: the per-frame keep mask [B, T, H', W'] of a normalised [B, T, C, H, W] video (`frame_keep_mask`
        with the tower's patch size). CLIP's `encode_frames` calls it under a `reduce_range`, so a profiled pass
        counts it as RLT's own time."""
        with torch.no_grad():
            return frame_keep_mask(video, self.tau, tower.conv1.weight.shape[-1])

    def embed_frames(self, tower: FrameTower, video: Tensor, token_mask: Tensor | None = None) -> Tokens:
        """CLIP: packed [CLS, kept patches] per frame of a normalised [B, T, C, H, W] video (`frame_rlt`);
        `token_mask` is a precomputed [B, T, H', W'] mask (`frame_token_mask`, computed here when None)."""
        if token_mask is None:
            token_mask = self.frame_token_mask(tower, video)
        return embed_frames_masked(tower, video, token_mask)

    def extra_repr(self) -> str:
        return (
            f"tau={self.tau}, length_embed={self.use_length_embed}, random_keep={self.random_keep}, pool={self.pool!r}"
        )


class RandomMask(nn.Module):
    """Random token masking, the baseline: keep `keep` of every clip's tubelets, chosen uniformly (spec rlt §4.1).

    The release keeps int(p·N) - 1 tokens when asked for p; this keeps round(keep·N).
    """

    def __init__(self, keep: float, seed: int | None = None, pool: PoolMode = "mean") -> None:
        super().__init__()
        if not 0.0 < keep <= 1.0:
            raise ConfigError(f"keep must be a fraction in (0, 1], got {keep}")
        self.keep = float(keep)
        self.pool = _check_pool(pool)
        self.generator = _generator(seed)

    def attach(self, model: nn.Module) -> None:
        _check_tubelet_model(model, "RandomMask")

    def embed_video(self, model: TubeletModel, video: Tensor, token_mask: Tensor | None = None) -> Tokens:
        """Packed tokens of a random subset of tubelets (`token_mask`, if given, restricts the candidates)."""
        grid = model.grid_of(video)
        base = torch.ones(video.shape[0], *grid, dtype=torch.bool) if token_mask is None else token_mask.bool().cpu()
        mask = random_keep_mask(base, self.keep, self.generator)
        return embed_masked(model, video, mask)

    def extra_repr(self) -> str:
        return f"keep={self.keep}, pool={self.pool!r}"
