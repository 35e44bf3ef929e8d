"""V-JEPA 2 (Meta, 2025): a video ViT over 2x16x16 tubelets whose only position signal is a 3-D rotary embedding.

Input: float video [B, T, C, H, W] (transformers' `pixel_values_videos`), ImageNet-normalised, or decoded uint8
frames (or a `Clip`), which the model prepares itself (`input_spec`).

    tubelets (Conv3d `patch_embed.proj`, no position table)
    -> pre-LN blocks, q and k rotated by each token's (t, h, w) (`vidslim.models.vit_block.Rotary3d`; the blocks
       share one `RotaryTables`, so the cos/sin of the packed positions are computed once per forward)
    -> LayerNorm `norm`                                   `forward_tokens` ends here (transformers' encoder output)
    -> attentive pooler (self-attention layers, then one learned query cross-attending to every token) -> `head`
       for a classifier (num_classes > 0); the size-weighted mean of the normalised tokens without one

Because positions live in the attention and each token carries its own (t, h, w) in the packed container, every
before-the-model reducer simply selects tubelets: RLT keeps one token per run (its run length in `size`), random
masking keeps a fraction, and the kept tokens turn by their own positions. Clips with different numbers of tokens
run as one packed batch. ToMe, token pruning and block-sparse attention act between and inside the blocks.

Differences from transformers:
- The predictor (the pretraining head that predicts masked tokens) is not built; a checkpoint's `predictor.*`
  tensors are left out when reading, so writing back gives transformers a predictor to initialise afresh.
- Rotary positions are the tokens' true grid coordinates for any input size; transformers derives them from the
  configured crop size, which gives the same angles at that size only.
- The attentive pooler attends over the packed tokens of each clip (any lengths) instead of a padded batch.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.models.base import ReducibleModel
from vidslim.models.blocks import VideoMAEMLP, drop_path_rates, init_linear_, run_blocks
from vidslim.models.config_shape import TubeletShape
from vidslim.models.tubelet_embed import embed_tubelets, tubelet_grid
from vidslim.models.vit_block import RotaryTables, ViTBlock
from vidslim.tokens import Tokens
from vidslim.tokens.segments import segment_softmax
from vidslim.tokens.selection import Selection


@dataclasses.dataclass
class VJEPA2Config(TubeletShape):
    """Shape of a V-JEPA 2 encoder (and its attentive classifier when num_classes > 0)."""

    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_dim: int = 4096
    image_size: int = 256
    num_classes: int = 0
    pooler_layers: int = 3

    def validate(self) -> None:
        """Raise ConfigError when the sizes do not fit together (heads wide enough for 3-D rotary positions too)."""
        super().validate()
        if (self.embed_dim // self.num_heads) < 6:
            raise ConfigError(f"head width {self.embed_dim // self.num_heads} is too small for 3-D rotary positions "
                              "(at least 6: two dims per axis)")


class CrossAttentionPool(nn.Module):
    """One learned query attends to every token of its clip (no output projection), then an MLP; both residual.

    Names: `norm1`, `q`, `kv` (k then v, fused), `norm2`, `mlp.fc1`, `mlp.fc2`."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, eps: float, act: str) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = VideoMAEMLP(dim, mlp_dim, act)

    def forward(self, query: Tensor, tokens: Tokens) -> Tensor:
        """query [1, D], tokens of S sequences -> [S, D]: a softmax over each sequence's keys."""
        d, h = query.shape[-1], self.heads
        hd = d // h
        q = self.q(query).view(h, hd)  # the same query for every clip
        k, v = self.kv(self.norm1(tokens.x)).view(-1, 2, h, hd).unbind(1)  # [total, H, hd]
        scores = (k * q).sum(-1) * hd**-0.5  # [total, H]
        seq = tokens.batch_index
        s = tokens.batch_size
        weights = segment_softmax(scores, seq, s)
        out = scores.new_zeros(s, h, hd).index_add_(0, seq, weights[..., None] * v)
        x = query + out.reshape(s, d)
        return x + self.mlp(self.norm2(x))


class AttentivePooler(nn.Module):
    """Self-attention layers over each clip's tokens, then `CrossAttentionPool` with a learned query -> [S, D]."""

    def __init__(self, c: VJEPA2Config) -> None:
        super().__init__()
        self.query_tokens = nn.Parameter(torch.zeros(1, c.embed_dim))
        hidden = 4 * c.embed_dim  # the pooler's MLPs are 4x wide whatever the encoder's ratio (as released)
        self.blocks = nn.ModuleList(
            ViTBlock(c.embed_dim, c.num_heads, hidden, c.norm_eps, c.act) for _ in range(c.pooler_layers)
        )
        self.cross = CrossAttentionPool(c.embed_dim, c.num_heads, hidden, c.norm_eps, c.act)
        nn.init.trunc_normal_(self.query_tokens, std=0.02)

    def forward(self, tokens: Tokens) -> Tensor:
        return self.cross(self.query_tokens, run_blocks(self.blocks, tokens, None, None))


class VJEPA2(ReducibleModel):
    """V-JEPA 2 encoder over packed tokens, with an optional attentive classifier (see the module docstring)."""

    family = "vjepa2"
    layout = "TCHW"

    def __init__(self, config: VJEPA2Config, reduction: list[object] | None = None) -> None:
        config.validate()
        super().__init__(config)
        c = config
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(
            c.in_chans, c.embed_dim, (c.tubelet_size, c.patch_size, c.patch_size),
            stride=(c.tubelet_size, c.patch_size, c.patch_size),
        )
        rates = drop_path_rates(c.drop_path, c.depth)
        tables = RotaryTables(c.embed_dim // c.num_heads)  # shared: cos/sin once per forward, not once per block
        self.blocks = nn.ModuleList(
            ViTBlock(c.embed_dim, c.num_heads, c.mlp_dim, c.norm_eps, c.act, c.qkv_bias, tables, rates[i])
            for i in range(c.depth)
        )
        self.norm = nn.LayerNorm(c.embed_dim, eps=c.norm_eps)
        init_linear_(self.blocks)
        if c.num_classes > 0:
            self.pooler = AttentivePooler(c)
            self.head = nn.Linear(c.embed_dim, c.num_classes)
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
        return tubelet_grid(video, c.in_chans, c.tubelet_size, c.patch_size, "VJEPA2")

    def embed(self, video: Tensor, keep: Selection | Tensor | None = None) -> Tokens:
        """Tokens of every tubelet, or of those `keep` selects; pos (t, h, w) drives the rotary positions."""
        return embed_tubelets(self.patch_embed.proj, video, self.grid_of(video), keep).tokens

    def forward_tokens(self, video: Tensor, token_mask: Tensor | None = None) -> Tokens:
        """Normalised tokens after the last block (transformers' `last_hidden_state`, packed), reducers applied."""
        video = self.prepare_input(video)
        tokens = self.embed_input(video, token_mask)
        ctx = None
        if self.hooks is not None:
            grid = self.grid_of(video)
            ctx = self.hook_context(len(self.blocks), video.shape[0], grid[0], 0, grid, self)
        tokens = run_blocks(self.blocks, tokens, ctx, self.hooks)
        return tokens.replace(x=self.norm(tokens.x))

    def encode_video(self, video: Tensor, token_mask: Tensor | None = None) -> Tensor:
        """[B, T, C, H, W] (or decoded frames) -> [B, D]: the attentive pooler's output when the model has one,
        else the mean of the tokens weighted by their size (each original tubelet counts once)."""
        tokens = self.forward_tokens(video, token_mask)
        if hasattr(self, "pooler"):
            return self.pooler(tokens)
        if tokens.size is None and tokens.is_uniform:
            return tokens.dense().mean(dim=1)
        lengths = torch.tensor(tokens.seqlens, device=tokens.x.device)
        weight = tokens.sizes().to(tokens.x.dtype)
        sums = torch.segment_reduce(tokens.x * weight[:, None], "sum", lengths=lengths)  # contiguous runs per clip
        return sums / torch.segment_reduce(weight, "sum", lengths=lengths)[:, None]

    def forward(self, video: Tensor, token_mask: Tensor | None = None) -> Tensor:
        """[B, T, C, H, W] -> logits [B, num_classes], or video features [B, D] without a classifier."""
        features = self.encode_video(video, token_mask)
        return self.head(features) if hasattr(self, "head") else features


__all__ = ["VJEPA2", "VJEPA2Config"]
