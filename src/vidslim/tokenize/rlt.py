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

RLT only produces a `Selection` (keep mask, run lengths, length embeddings) from pixels and the model's
`InputSpec`; the model embeds the kept slots itself (`model.embed(video, keep=selection)`). The mask can be
computed in the data loader on uint8 frames (`keep_mask_uint8`) and passed as `model(video, token_mask=mask)`;
it is the same mask.

On a per-frame model (CLIP: `spec.per_frame`; `vs.create_model("clip-b16", reduction=[vs.RLT(),
vs.TempMe.paper("clip-b16")])`) the same object runs vidslim's per-frame extension of RLT
(`vidslim.tokenize.frame_rlt`; the paper targets video ViTs only): tubelets are one frame long, patches that
repeat the previous frame's are dropped, every frame keeps its CLS and becomes a shorter sequence, and a kept patch
stands for itself only (no size), since each frame is encoded on its own.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.io.input_spec import InputSpec
from vidslim.tokenize.random_mask import random_keep_mask
from vidslim.tokenize.rlt_mask import keep_mask, keep_mask_uint8
from vidslim.tokenize.run_length import run_length_map
from vidslim.tokens.selection import PoolMode, Selection, TokenSelector, check_pool


def _generator(seed: int | None) -> torch.Generator | None:
    return torch.Generator().manual_seed(seed) if seed is not None else None


def channels_first(video: Tensor, spec: InputSpec) -> Tensor:
    """A prepared batch in `spec.layout` as a [B, C, T, H, W] view, in the spec's normalised units (the mask
    rescales its scores to ImageNet units with `spec.imagenet_scale()`, on the patch sums, not on every pixel)."""
    return video.transpose(1, 2) if spec.layout == "TCHW" else video


def length_table(spec: InputSpec, dim: int) -> nn.Parameter:
    """RLT's learned run-length embedding: one row [D] per tubelet slot of the clip (T' rows), std 0.02."""
    table = nn.Parameter(torch.zeros(spec.grid()[0], dim))
    nn.init.trunc_normal_(table, std=0.02)
    return table


class RLT(TokenSelector):
    """Run-length tokenization: keep a tubelet only when it differs from the one before it by more than tau.

    tau:          threshold on the mean absolute difference of ImageNet-normalised pixels (0.1 in every shipped
                  config; a finite number >= 0: 0 drops only exact repeats)
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
        tau = float(tau)
        # NaN compares false with everything (it would keep an arbitrary half), a negative tau keeps every tubelet
        # and an infinite one drops all but the first frame's: none is a threshold anyone means
        if not (math.isfinite(tau) and tau >= 0):
            raise ConfigError(f"RLT(tau={tau}): tau must be a finite number >= 0 (0.1 is the paper's; 0 drops only "
                              "exact repeats)")
        if random_keep is not None and not 0.0 < random_keep <= 1.0:
            raise ConfigError(f"random_keep must be a fraction in (0, 1], got {random_keep}")
        self.tau = tau
        self.use_length_embed = bool(length_embed)
        self.random_keep = random_keep
        self.pool = check_pool(pool)
        self.generator = _generator(seed)
        self.length_embed: nn.Parameter | None = None

    def check_spec(self, spec: InputSpec) -> None:
        if spec.per_frame and (self.use_length_embed or self.random_keep is not None):
            raise ConfigError(
                "RLT on a per-frame model such as CLIP (per-frame RLT) has no length embedding and no random_keep: "
                "use vs.RLT(tau=...) alone there, or a video ViT ('videomae-b16') for those options"
            )

    def attach(self, model: nn.Module) -> None:
        """Create the length table [T', D] (std 0.02) when asked for, sized by the model's input spec."""
        spec: InputSpec = model.input_spec  # type: ignore[assignment]
        self.check_spec(spec)
        if self.use_length_embed and self.length_embed is None:
            self.length_embed = length_table(spec, int(model.token_dim))  # type: ignore[arg-type]

    def token_mask(self, video: Tensor, spec: InputSpec) -> Tensor:
        """The RLT keep mask [B, T', H', W'] of a prepared video, with the spec's tubelet and patch sizes."""
        with torch.no_grad():
            x = channels_first(video, spec)
            return keep_mask(x, self.tau, spec.tubelet_size, spec.patch_size, spec.imagenet_scale())

    def select_frames(self, frames: Tensor, spec: InputSpec) -> Tensor:
        """The RLT mask of decoded uint8 frames [B, T, H, W, C], computed on the integers (`keep_mask_uint8`)."""
        return keep_mask_uint8(frames, self.tau, spec.tubelet_size, spec.patch_size)

    def select(self, video: Tensor, spec: InputSpec, token_mask: Tensor | None = None) -> Selection:
        """Keep mask, run lengths (the kept tokens' sizes, except per frame) and length embeddings of `video`."""
        with torch.no_grad():
            mask = self.token_mask(video, spec) if token_mask is None else token_mask.to(video.device).bool()
            if spec.per_frame:
                return Selection(mask)
            lengths = run_length_map(mask)
            if self.random_keep is not None:
                mask = random_keep_mask(mask, self.random_keep, self.generator)
        extra = None
        if self.length_embed is not None:
            table = self.length_embed
            if lengths.max() > table.shape[0]:
                raise ConfigError(f"run length {int(lengths.max())} exceeds the length table ({table.shape[0]} slots)")
            extra = table[lengths[mask] - 1]
        return Selection(mask, size=lengths, extra=extra)

    def extra_repr(self) -> str:
        return (
            f"tau={self.tau}, length_embed={self.use_length_embed}, random_keep={self.random_keep}, pool={self.pool!r}"
        )


class RandomMask(TokenSelector):
    """Random token masking, the baseline: keep `keep` of every clip's tubelets, chosen uniformly (spec rlt §4.1).

    The release keeps int(p·N) - 1 tokens when asked for p; this keeps round(keep·N).
    """

    def __init__(self, keep: float = 0.5, seed: int | None = None, pool: PoolMode = "mean") -> None:
        super().__init__()
        if not 0.0 < keep <= 1.0:
            raise ConfigError(f"keep must be a fraction in (0, 1], got {keep}")
        self.keep = float(keep)
        self.pool = check_pool(pool)
        self.generator = _generator(seed)

    def select(self, video: Tensor, spec: InputSpec, token_mask: Tensor | None = None) -> Selection:
        """A random subset of the slots (`token_mask`, if given, restricts the candidates)."""
        frames, height, width = spec.check(video)
        grid = spec.grid(frames, height, width)
        base = torch.ones(video.shape[0], *grid, dtype=torch.bool) if token_mask is None else token_mask.bool().cpu()
        return Selection(random_keep_mask(base, self.keep, self.generator))

    def select_frames(self, frames: Tensor, spec: InputSpec) -> Tensor:
        """A random keep mask over the token grid of decoded frames [B, T, H, W, C]."""
        grid = spec.grid(frames.shape[1], frames.shape[2], frames.shape[3])
        return random_keep_mask(torch.ones(frames.shape[0], *grid, dtype=torch.bool), self.keep, self.generator)

    def extra_repr(self) -> str:
        return f"keep={self.keep}, pool={self.pool!r}"
