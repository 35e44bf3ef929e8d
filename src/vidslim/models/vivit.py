"""ViViT (Arnab et al., 2021), the factorised-free "spatio-temporal attention" model transformers ships: tubelet
embedding plus a CLS token over one joint sequence.

Input: float video [B, T, C, H, W] (transformers' `pixel_values`), normalised to [-1, 1] (mean = std = 0.5), or
decoded uint8 frames (or a `Clip`), which the model prepares itself (`input_spec`).

    tubelets (Conv3d `patch_embed.proj`) + learned positions `pos_embed[1:]`, [CLS + pos_embed[0]] in front
    -> pre-LN blocks (fused q/k/v with bias, tanh-approximated GELU)   -> LayerNorm `norm` of the CLS
    -> `head` (a classifier, transformers' VivitForVideoClassification), or `pooler.dense` + tanh (the base model,
       VivitModel's `pooler_output`, when `pooler_dim` > 0), or nothing (the features themselves)

`encode_video` is the normalised CLS token in every case (what a classifier reads; VivitModel's
`last_hidden_state[:, 0]`); `forward` adds the head or the pooler.

The CLS token is the model's own, never the input's: a before-the-model reducer (RLT, which keeps one tubelet per
run) selects tubelets only, and every clip's sequence still starts with its CLS, so the CLS is always kept. Kept
tubelets take the learned position of their own (t, h, w) slot. Inside the blocks the CLS is protected (the hook
context says one CLS token per sequence): ToMe never merges it, token pruning scores the others by its attention,
block-sparse attention makes it global. The last block computes the CLS rows only (`cls_readout`), the one thing
the classifier reads.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.models.base import ReducibleModel
from vidslim.models.blocks import drop_path_rates, init_linear_, run_blocks
from vidslim.models.config_shape import TubeletShape
from vidslim.models.tubelet_embed import embed_tubelets, tubelet_grid
from vidslim.models.vit_block import ViTBlock
from vidslim.tokens import NO_POSITION, Tokens, grid_positions
from vidslim.tokens.selection import Selection


@dataclasses.dataclass
class ViViTConfig(TubeletShape):
    """Shape of a ViViT classifier (transformers' VivitForVideoClassification), or of the base model (VivitModel:
    num_classes 0, its tanh pooler `pooler_dim` wide; 0 for none)."""

    num_frames: int = 32
    pooler_dim: int = 0
    act: str = "gelu_tanh"
    image_mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    image_std: tuple[float, ...] = (0.5, 0.5, 0.5)


class ViViT(ReducibleModel):
    """ViViT over packed tokens with its CLS token always kept (see the module docstring)."""

    family = "vivit"
    layout = "TCHW"

    def __init__(self, config: ViViTConfig, reduction: list[object] | None = None) -> None:
        config.validate()
        super().__init__(config)
        c = config
        t, h, w = c.grid
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + t * h * w, c.embed_dim))
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(
            c.in_chans, c.embed_dim, (c.tubelet_size, c.patch_size, c.patch_size),
            stride=(c.tubelet_size, c.patch_size, c.patch_size),
        )
        rates = drop_path_rates(c.drop_path, c.depth)
        self.blocks = nn.ModuleList(
            ViTBlock(c.embed_dim, c.num_heads, c.mlp_dim, c.norm_eps, c.act, c.qkv_bias, False, rates[i])
            for i in range(c.depth)
        )
        self.norm = nn.LayerNorm(c.embed_dim, eps=c.norm_eps)
        self.head = nn.Linear(c.embed_dim, c.num_classes) if c.num_classes > 0 else nn.Identity()
        if c.pooler_dim > 0:
            self.pooler = nn.Module()
            self.pooler.dense = nn.Linear(c.embed_dim, c.pooler_dim)
            init_linear_(self.pooler)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        init_linear_(self.blocks)
        init_linear_(self.head)
        self.set_reduction(reduction)

    @property
    def token_dim(self) -> int:
        return self.config.embed_dim

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    def grid_of(self, video: Tensor) -> tuple[int, int, int]:
        c = self.config
        grid = tubelet_grid(video, c.in_chans, c.tubelet_size, c.patch_size, "ViViT")
        if grid != c.grid:
            raise ConfigError(f"this ViViT was built for {c.num_frames} frames of {c.image_size} px (grid {c.grid}), "
                              f"got a {grid} grid: sample {c.num_frames} frames resized to {c.image_size} px")
        return grid

    def embed(self, video: Tensor, keep: Selection | Tensor | None = None) -> Tokens:
        """[CLS, tubelets] per clip: every tubelet, or those `keep` selects, each with its own slot's position."""
        grid = self.grid_of(video)
        embedded = embed_tubelets(self.patch_embed.proj, video, grid, keep)
        tokens, table = embedded.tokens, self.pos_embed[0].to(embedded.tokens.x.dtype)
        cls = (self.cls_token[0, 0].to(table.dtype) + table[0])[None]  # [1, D]
        b = video.shape[0]
        if embedded.slots is None:  # dense: one view, CLS concatenated in front
            x = tokens.dense() + table[1:]
            x = torch.cat((cls.expand(b, 1, -1), x), dim=1)
            pos = torch.cat((torch.full((1, 3), NO_POSITION, device=x.device), grid_positions(*grid, device=x.device)))
            return Tokens.from_dense(x, pos=pos)
        kept = torch.tensor(tokens.seqlens, device=tokens.x.device)
        seqlens = [n + 1 for n in tokens.seqlens]
        starts = torch.cumsum(kept + 1, 0) - (kept + 1)  # each clip's CLS slot
        clip = torch.repeat_interleave(torch.arange(b, device=kept.device), kept)
        rows = torch.arange(tokens.x.shape[0], device=kept.device) + clip + 1  # clips before + own CLS
        x = tokens.x.new_empty(sum(seqlens), tokens.dim)
        x[starts] = cls
        x[rows] = tokens.x + table[1 + embedded.slots]
        pos = torch.full((x.shape[0], 3), NO_POSITION, dtype=torch.int64, device=x.device)
        pos[rows] = tokens.pos
        size = None
        if tokens.size is not None:
            size = tokens.size.new_ones(x.shape[0])
            size[rows] = tokens.size
        return Tokens(x, seqlens, pos, size)

    def forward_features(self, video: Tensor, token_mask: Tensor | None = None) -> Tensor:
        """[B, T, C, H, W] (or decoded frames) -> the normalised CLS features [B, D] (before the head)."""
        video = self.prepare_input(video)
        tokens = self.embed_input(video, token_mask)
        b, ctx = video.shape[0], None
        if self.hooks is not None:
            grid = self.config.grid
            ctx = self.hook_context(len(self.blocks), b, grid[0], 1, grid, self)
        tokens = run_blocks(self.blocks, tokens, ctx, self.hooks, cls_readout=b)
        return self.norm(tokens.x[tokens.cu_seqlens[:-1].long()] if tokens.x.shape[0] != b else tokens.x)

    def encode_video(self, video: Tensor, token_mask: Tensor | None = None) -> Tensor:
        """[B, T, C, H, W] -> video features [B, D]: the CLS token after the final LayerNorm."""
        return self.forward_features(video, token_mask)

    def forward(self, video: Tensor, token_mask: Tensor | None = None) -> Tensor:
        """[B, T, C, H, W] -> logits [B, num_classes]; without a head, the base model's pooled output
        tanh(pooler.dense(features)) [B, pooler_dim], or the features [B, D] when it has no pooler either."""
        features = self.forward_features(video, token_mask)
        if self.config.num_classes > 0 or not hasattr(self, "pooler"):
            return self.head(features)
        return torch.tanh(self.pooler.dense(features))


__all__ = ["ViViT", "ViViTConfig"]
