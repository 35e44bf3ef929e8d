"""A video ViT in the VideoMAE (v2) layout, the backbone RLT is evaluated on (spec rlt §3, §4.4-4.5).

Input: float video [B, C, T, H, W] (channels first, then time), normalised the way the checkpoint expects.
Output of `forward`: logits [B, num_classes].

    tubelets (2x16x16, Conv3d `patch_embed.proj`) + fixed sinusoid position table (no CLS token)
    -> pre-LN blocks (qkv without bias + q_bias/v_bias, GELU, LayerNorm eps 1e-6)
    -> mean over each video's tokens -> fc_norm -> head

`embed(video, keep=None) -> Tokens` embeds every tubelet, or only those a before-the-model reducer keeps (RLT's
`Selection`): the kept tubelets of all clips are read straight out of the video (`gather_blocks`: no copy of the whole
video, no Python loop over clips or tokens), the tubelet embedding is applied as a Linear to those rows only, and each
token gets the position embedding of its *own* (t, h, w) index (spec rlt §2.1); dropped tubelets cost nothing past the
gather. The position table is the fixed sinusoid of spec rlt §2.1 (rebuilt, and cached, for whatever grid the input
has), or a learned `pos_embed` when the config says so (resized in 3-D when the grid differs).

The model also takes decoded uint8 frames [B, T, H, W, C] (or a `Clip`) and prepares them itself
(`input_spec`: ImageNet statistics, [B, C, T, H, W]).
"""

from __future__ import annotations

import dataclasses
import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.models.base import ReducibleModel
from vidslim.models.blocks import VideoMAEBlock, drop_path_rates, init_linear_, run_blocks
from vidslim.models.config_shape import TubeletShape
from vidslim.models.patch_gather import gather_blocks
from vidslim.models.positions import interpolate_3d, sinusoid_table
from vidslim.tokens import Tokens, grid_positions
from vidslim.tokens.kept_tensors import kept_across_calls
from vidslim.tokens.selection import Selection, as_selection

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class VideoViTConfig(TubeletShape):
    """Shape of a VideoMAE-layout video ViT. `grid` is the (t, h, w) token grid of the configured input."""

    fc_norm_eps: float = 1e-6
    learned_pos: bool = False


class PatchEmbed3d(nn.Module):
    """Tubelet embedding: a Conv3d with kernel = stride = (tubelet, patch, patch), named `proj` as in VideoMAE.

    Conv3d is used for dense input because it ran faster than unfold + Linear on CPU for whole clips; `project`
    applies the same weights as a Linear to already-cut tubelets (RLT's kept ones).
    """

    def __init__(self, in_chans: int, dim: int, tubelet: int, patch: int) -> None:
        super().__init__()
        self.tubelet, self.patch = tubelet, patch
        self.proj = nn.Conv3d(in_chans, dim, kernel_size=(tubelet, patch, patch), stride=(tubelet, patch, patch))

    def forward(self, video: Tensor) -> Tensor:
        """[B, C, T, H, W] -> [B, D, T/ts, H/p, W/p]."""
        return self.proj(video)


class VideoViT(ReducibleModel):
    """VideoMAE-layout video classifier over packed tokens (see the module docstring)."""

    family = "video_vit"
    layout = "CTHW"

    def __init__(self, config: VideoViTConfig, reduction: list[object] | None = None) -> None:
        config.validate()
        super().__init__(config)
        c = config
        self.patch_embed = PatchEmbed3d(c.in_chans, c.embed_dim, c.tubelet_size, c.patch_size)
        if c.learned_pos:
            self.pos_embed = nn.Parameter(torch.zeros(1, c.grid[0] * c.grid[1] * c.grid[2], c.embed_dim))
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        rates = drop_path_rates(c.drop_path, c.depth)
        self.blocks = nn.ModuleList(
            VideoMAEBlock(c.embed_dim, c.num_heads, c.mlp_dim, c.norm_eps, c.qkv_bias, c.act, rates[i])
            for i in range(c.depth)
        )
        self.fc_norm = nn.LayerNorm(c.embed_dim, eps=c.fc_norm_eps)
        self.head = nn.Linear(c.embed_dim, c.num_classes) if c.num_classes > 0 else nn.Identity()
        init_linear_(self.blocks)
        init_linear_(self.head)
        self._tables: dict[tuple[tuple[int, int, int], torch.device, torch.dtype], Tensor] = {}
        self.set_reduction(reduction)

    # ------------------------------------------------------------------------------------------ tokenizer
    def grid_of(self, video: Tensor) -> tuple[int, int, int]:
        """The (t, h, w) token grid of a [B, C, T, H, W] video; a clear error for a wrong layout or size."""
        c = self.config
        if video.dim() != 5:
            raise ConfigError(f"VideoViT takes video [B, C, T, H, W], got shape {tuple(video.shape)}")
        if video.shape[1] != c.in_chans:
            hint = ""
            if video.shape[2] == c.in_chans:
                hint = "; it looks like [B, T, C, H, W]: pass video.permute(0, 2, 1, 3, 4)"
            raise ConfigError(
                f"VideoViT takes video [B, C, T, H, W] with C={c.in_chans}, got {tuple(video.shape)}{hint}"
            )
        _, _, t, h, w = video.shape
        if t % c.tubelet_size or h % c.patch_size or w % c.patch_size:
            raise ConfigError(
                f"video of {t} frames of {h}x{w} does not split into {c.tubelet_size}x{c.patch_size}x{c.patch_size} "
                f"tubelets; sample a multiple of {c.tubelet_size} frames and resize to a multiple of {c.patch_size}"
            )
        if not video.is_floating_point():
            raise ConfigError(f"VideoViT takes a float video (normalised), got dtype {video.dtype}")
        return (t // c.tubelet_size, h // c.patch_size, w // c.patch_size)

    def position_table(self, grid: tuple[int, int, int], device: torch.device, dtype: torch.dtype) -> Tensor:
        """[t·h·w, D] position embedding of every token of `grid`, row index t·h·w + h·w + w."""
        if self.config.learned_pos:
            table = self.pos_embed[0]
            if tuple(grid) != self.config.grid:
                table = interpolate_3d(table, self.config.grid, grid)
            return table.to(device=device, dtype=dtype)
        key = (tuple(grid), torch.device(device), dtype)
        table = self._tables.get(key)
        if table is None:
            table = kept_across_calls(sinusoid_table)(grid[0] * grid[1] * grid[2], self.config.embed_dim)
            table = table.to(device=device, dtype=dtype)
            self._tables[key] = table
        return table

    def cells(self, video: Tensor) -> Tensor:
        """[B, C, T, H, W] -> [B, t, h, w, C, ts, p, p]: a view of the video by tubelet, nothing copied."""
        t, h, w = self.grid_of(video)
        b, c = video.shape[:2]
        ts, p = self.config.tubelet_size, self.config.patch_size
        return video.reshape(b, c, t, ts, h, p, w, p).permute(0, 2, 4, 6, 1, 3, 5, 7)

    def tubelets(self, video: Tensor) -> Tensor:
        """[B, C, T, H, W] -> [B, N, C·ts·p·p]: every tubelet flattened in (c, t, h, w) order, tokens row-major."""
        x = self.cells(video)
        return x.reshape(x.shape[0], x.shape[1] * x.shape[2] * x.shape[3], -1)

    def project(self, tubelets: Tensor) -> Tensor:
        """Apply the tubelet embedding as a Linear to flattened tubelets [..., C·ts·p·p] -> [..., D]."""
        proj = self.patch_embed.proj
        return F.linear(tubelets, proj.weight.reshape(proj.weight.shape[0], -1), proj.bias)

    @property
    def token_dim(self) -> int:
        return self.config.embed_dim

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    def embed(self, video: Tensor, keep: Selection | Tensor | None = None) -> Tokens:
        """Tokens of every tubelet, or of those `keep` selects (bool [B, T', H', W'] or a Selection), each plus its
        position embedding; pos holds (t, h, w), size the selection's footprint (RLT's run length)."""
        grid = self.grid_of(video)
        dtype = self.patch_embed.proj.weight.dtype
        if keep is None:
            x = self.patch_embed(video.to(dtype)).flatten(2).transpose(1, 2)  # [B, N, D]
            x = x + self.position_table(grid, x.device, x.dtype)
            return Tokens.from_dense(x, pos=grid_positions(*grid, device=x.device))
        if isinstance(keep, Selection) and keep.index is not None:
            return self._embed_budget(video.to(dtype), keep.checked(video.shape[0], grid, min_tokens=0), grid)
        selection = as_selection(keep).checked(video.shape[0], grid)
        flat = selection.keep.to(video.device).flatten(1)  # [B, N] in (t, h, w) order
        batch_idx, slot_idx = flat.nonzero(as_tuple=True)  # (b, t, h, w) order, as tokens are packed
        _, h, w = grid
        index = (batch_idx, slot_idx // (h * w), slot_idx // w % h, slot_idx % w)
        x = self.project(gather_blocks(self.cells(video), index).to(dtype))  # only the kept tubelets are read
        x = x + self.position_table(grid, x.device, x.dtype)[slot_idx]
        if selection.extra is not None:
            x = x + selection.extra
        seqlens = flat.sum(1).tolist()  # one host sync per batch: the layout must be known in Python
        pos = grid_positions(*grid, device=x.device)[slot_idx]
        size = selection.size
        token_size = size.to(x.device).flatten(1)[batch_idx, slot_idx].to(x.dtype) if size is not None else None
        return Tokens(x, seqlens, pos, token_size)

    def _embed_budget(self, video: Tensor, selection: Selection, grid: tuple[int, int, int]) -> Tokens:
        """`embed` of a fixed budget (`Selection.index` [B, k]): the same tokens as the mask path, gathered as an
        equal-length [B, k] batch, so every shape is static."""
        index = selection.index.to(video.device)  # type: ignore[union-attr]
        b, k = index.shape
        tubelets = self.tubelets(video)  # [B, N, C·ts·p·p]
        x = self.project(tubelets.gather(1, index[..., None].expand(-1, -1, tubelets.shape[-1])))  # [B, k, D]
        x = x + self.position_table(grid, x.device, x.dtype)[index]
        if selection.extra is not None:
            x = x + selection.extra.reshape(b, k, -1)
        pos = grid_positions(*grid, device=x.device)[index]  # [B, k, 3]
        size = selection.size
        token_size = size.to(x.device).flatten(1).gather(1, index).to(x.dtype) if size is not None else None
        return Tokens.from_dense(x, pos, token_size)

    # ------------------------------------------------------------------------------------------ encoder
    def forward_tokens(self, video: Tensor, token_mask: Tensor | None = None) -> Tokens:
        """Tokens after the last block (reducers applied).

        video: decoded uint8 frames (or a `Clip`), or a normalised [B, C, T, H, W] float video.
        token_mask: an optional precomputed keep mask [B, T', H', W'] for the attached selector (RLT's mask built
        in the data loader, say); an error without a selector.
        """
        return self._run(self.prepare_input(video), token_mask)

    def _run(self, video: Tensor, token_mask: Tensor | None) -> Tokens:
        """The blocks on a prepared batch."""
        tokens = self.embed_input(video, token_mask)
        ctx = None
        if self.hooks is not None:
            grid = self.grid_of(video)
            ctx = self.hook_context(len(self.blocks), video.shape[0], grid[0], 0, grid, self)
        return run_blocks(self.blocks, tokens, ctx, self._hooks)

    def pool(self, tokens: Tokens, batch_size: int, weighted: bool = False) -> Tensor:
        """Mean over each video's tokens -> [B, D] (a video may span several consecutive sequences).

        weighted: weight each token by its size (the run length under RLT, the merged count under ToMe), so
        every original tubelet counts once, as in the dense model; the release's RLT pools unweighted.
        """
        if not weighted and tokens.is_uniform and tokens.batch_size == batch_size:
            return tokens.dense().mean(dim=1)
        per_video = tokens.batch_size // batch_size
        if per_video * batch_size != tokens.batch_size:
            raise ValueError(f"{tokens.batch_size} sequences do not split evenly over {batch_size} videos")
        video = torch.div(tokens.batch_index, per_video, rounding_mode="floor")
        weight = tokens.sizes().to(tokens.x.dtype) if weighted else torch.ones_like(tokens.x[:, 0])
        sums = tokens.x.new_zeros(batch_size, tokens.dim).index_add_(0, video, tokens.x * weight[:, None])
        totals = tokens.x.new_zeros(batch_size).index_add_(0, video, weight).clamp_min(1e-6)
        return sums / totals[:, None]

    def pools_by_size(self) -> bool:
        """True when an attached reducer asks for size-weighted pooling (e.g. vs.RLT(pool="length"))."""
        selector = self.selector
        return selector is not None and selector.pool == "length"

    def forward_features(self, video: Tensor, token_mask: Tensor | None = None) -> Tensor:
        """[B, C, T, H, W] (or decoded frames) -> pooled, normalised features [B, D] (before the head)."""
        video = self.prepare_input(video)
        tokens = self._run(video, token_mask)
        return self.fc_norm(self.pool(tokens, video.shape[0], weighted=self.pools_by_size()))

    def encode_video(self, video: Tensor, token_mask: Tensor | None = None) -> Tensor:
        """[B, C, T, H, W] -> video features [B, D] (pooled, fc_norm), the name CLIP uses for the same idea."""
        return self.forward_features(video, token_mask)

    def forward(self, video: Tensor, token_mask: Tensor | None = None) -> Tensor:
        """[B, C, T, H, W] -> logits [B, num_classes] (features [B, D] when num_classes == 0)."""
        return self.head(self.forward_features(video, token_mask))

    def predict_views(self, views: Tensor, token_mask: Tensor | None = None) -> Tensor:
        """Multi-view testing: [B, V, C, T, H, W] -> class probabilities [B, num_classes], the softmax averaged over
        the V views (the RLT release's test step). All B·V clips run as one packed batch."""
        if views.dim() != 6:
            raise ConfigError(f"predict_views takes [B, V, C, T, H, W], got shape {tuple(views.shape)}")
        b, v = views.shape[:2]
        mask = token_mask.flatten(0, 1) if token_mask is not None else None
        logits = self.forward(views.flatten(0, 1), mask)
        return logits.float().softmax(dim=-1).view(b, v, -1).mean(dim=1)
