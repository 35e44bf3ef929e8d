"""Shared helpers for the reducer tests: narrow CLIP models with real token grids, and a probe reducer that records
what every layer sees. Token counts do not depend on the width, so width 64 with 12 layers reproduces the
ViT-B tables while staying fast."""

from __future__ import annotations

from typing import Any

import torch

import vidslim as vs
from vidslim.models import CLIP
from vidslim.tokens import Tokens
from vidslim.tokens.protocol import HookContext

NARROW = dict(
    vision_width=64, vision_heads=2, vision_mlp_dim=64, text_width=32, text_heads=1, text_layers=1, text_mlp_dim=32,
    embed_dim=32,
)  # fmt: skip


def narrow_clip(patch: int = 32, reduction: list[Any] | None = None, seed: int = 0, **overrides: Any) -> CLIP:
    """A 12-layer CLIP at 224 px with patch `patch` (50 or 197 tokens per frame) but width 64, in eval mode."""
    torch.manual_seed(seed)
    model = vs.create_model(f"clip-b{patch}", reduction=reduction, **{**NARROW, **overrides})
    return model.eval()


def video(batch: int = 1, frames: int = 12, side: int = 224, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, frames, 3, side, side, generator=torch.Generator().manual_seed(seed))


class Probe:
    """Identity reducer, put last: records (sequences, tokens per sequence into attention, out) per layer, and keeps
    the tokens leaving every layer (in `outputs`)."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, int]] = []
        self.outputs: list[Tokens] = []
        self._current: tuple[int, int] = (0, 0)

    def before_attention(self, tokens: Tokens, ctx: HookContext) -> Tokens:
        self._current = (tokens.batch_size, tokens.seqlens[0])
        return tokens

    def after_mlp(self, tokens: Tokens, ctx: HookContext) -> Tokens:
        assert tokens.is_uniform
        self.rows.append((*self._current, tokens.seqlens[0]))
        self.outputs.append(tokens)
        return tokens

    def table(self, videos: int) -> list[tuple[int, int, int]]:
        """(sequences per video, tokens per sequence into attention, tokens per sequence out) per layer."""
        return [(s // videos, attn, out) for s, attn, out in self.rows]
