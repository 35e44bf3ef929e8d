"""SigLIP and SigLIP 2 for video: the image tower applied to every frame, plus the text tower; no CLS token.

Per frame like CLIP (`vidslim.models.clip`), with SigLIP's differences:
- a frame is its patches only, [g·g] tokens with a learned position table (no CLS, no pre-LayerNorm);
- the frame embedding is read out by an attention-pooling ("MAP") head: one learned probe query attends over the
  sequence's tokens (one multi-head attention, then LayerNorm + MLP on a residual), after `ln_post`;
- the text tower is bidirectional and pools the last position, then a Linear `text_head`;
- similarity is sigmoid-style: logit_scale.exp() · cos + logit_bias.

Reducers see sequences with no protected token (`cls_tokens=0`): ToMe, TempMe and token pruning may merge or drop
any token, and per-frame RLT drops any repeated patch (a frame with none left keeps its first patch, so no
sequence is empty). The pooling head reads whatever tokens are left, with log(size) added to its logits when the
reducers use proportional attention (a merged token counts for the patches it stands for). Once TempMe has joined
frames into one sequence there is no per-frame token left to read, so `encode_frames` returns one embedding per
sequence (per group of frames; one per video after the last regrouping), and `encode_video` averages those.

SigLIP 2 (transformers' `Siglip2Model`, the NaFlex checkpoints) is the same network with a Linear patch embedding
(stored here as the equal Conv2d) and a position table resized per image; vidslim runs it at the table's own square
grid (`hf_model_type="siglip2"` writes it back as Siglip2Model). Fixed-resolution SigLIP 2 checkpoints
(google/siglip2-base-patch16-224, ...) are `SiglipModel`s and load as SigLIP.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.models.base import ReducibleModel
from vidslim.models.blocks import ClipMLP
from vidslim.models.clip import Transformer
from vidslim.models.config_shape import FrameTextShape
from vidslim.models.patch_gather import gather_blocks
from vidslim.models.positions import frame_positions
from vidslim.tokens import Tokens
from vidslim.tokens.segments import segment_softmax
from vidslim.tokens.selection import Selection, as_selection

SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)


@dataclasses.dataclass
class SiglipConfig(FrameTextShape):
    """Shape of a SigLIP ViT (vision + text). `embed_dim` is the text head's output and must equal vision_width."""

    embed_dim: int = 768
    patch_size: int = 16
    context_length: int = 64
    vocab_size: int = 32000
    text_width: int = 768
    text_heads: int = 12
    text_mlp_dim: int = 3072
    norm_eps: float = 1e-6
    act: str = "gelu_tanh"
    num_frames: int = 8
    image_mean: tuple[float, ...] = SIGLIP_MEAN
    image_std: tuple[float, ...] = SIGLIP_STD
    hf_model_type: str = "siglip"  # "siglip2": written back as transformers' Siglip2Model

    def validate(self) -> None:
        """Raise ConfigError when the sizes do not fit together."""
        super().validate()
        if self.embed_dim != self.vision_width:
            raise ConfigError(f"embed_dim={self.embed_dim} (the text head's output) must equal "
                              f"vision_width={self.vision_width}: SigLIP compares them directly")
        if self.hf_model_type not in ("siglip", "siglip2"):
            raise ConfigError(f"hf_model_type={self.hf_model_type!r}: use 'siglip' or 'siglip2'")


class AttentionPool(nn.Module):
    """SigLIP's MAP head over packed sequences: probe -> multi-head attention -> x + mlp(ln(x)), one row each."""

    def __init__(self, width: int, heads: int, mlp_dim: int, eps: float, act: str) -> None:
        super().__init__()
        self.heads = heads
        self.probe = nn.Parameter(torch.randn(width) * width**-0.5)
        self.in_proj_weight = nn.Parameter(torch.randn(3 * width, width) * width**-0.5)
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        self.ln = nn.LayerNorm(width, eps=eps)
        self.mlp = ClipMLP(width, mlp_dim, act)

    def forward(self, tokens: Tokens, log_size: bool = False) -> Tensor:
        """[total, W] packed tokens -> [S, W], one pooled row per sequence."""
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3)
        x, h = tokens.x, self.heads
        d = x.shape[-1] // h
        q = F.linear(self.probe.to(x.dtype), w_q, b_q).view(h, d) * d**-0.5  # [H, d]
        k = F.linear(x, w_k, b_k).view(-1, h, d)  # [total, H, d]
        v = F.linear(x, w_v, b_v).view(-1, h, d)
        bias = tokens.size.log().to(x.dtype) if log_size and tokens.size is not None else None
        s = tokens.batch_size
        if tokens.is_uniform:
            n = tokens.max_seqlen
            logits = torch.einsum("snhd,hd->shn", k.view(s, n, h, d), q)
            if bias is not None:
                logits = logits + bias.view(s, 1, n)
            out = torch.einsum("shn,snhd->shd", logits.softmax(-1), v.view(s, n, h, d))
        else:  # a softmax per sequence over packed rows
            logits = (k * q).sum(-1)  # [total, H]
            if bias is not None:
                logits = logits + bias[:, None]
            seq = tokens.batch_index
            weight = segment_softmax(logits, seq, s)
            out = v.new_zeros(s, h, d).index_add_(0, seq, weight[..., None] * v)
        pooled = self.out_proj(out.reshape(s, h * d))
        return pooled + self.mlp(self.ln(pooled))


class SiglipVision(nn.Module):
    """SigLIP's image tower, run on every frame: conv1 -> patches + positions -> blocks -> ln_post -> MAP head."""

    def __init__(self, c: SiglipConfig) -> None:
        super().__init__()
        self.config = c
        width = c.vision_width
        self.conv1 = nn.Conv2d(c.in_chans, width, kernel_size=c.patch_size, stride=c.patch_size)
        self.positional_embedding = nn.Parameter(torch.randn(c.grid[0] * c.grid[1], width) * width**-0.5)
        self.transformer = Transformer(width, c.vision_layers, c.vision_heads, c.vision_mlp_dim, c.norm_eps, c.act,
                                       False, c.drop_path)
        self.ln_post = nn.LayerNorm(width, eps=c.norm_eps)
        self.head = AttentionPool(width, c.vision_heads, c.vision_mlp_dim, c.norm_eps, c.act)

    def check_video(self, video: Tensor) -> tuple[int, int]:
        """(B, T) of a [B, T, C, H, W] float video; a clear error for a wrong layout or size."""
        c = self.config
        if video.dim() != 5 or video.shape[2] != c.in_chans or tuple(video.shape[-2:]) != (c.image_size,) * 2:
            raise ConfigError(f"SigLIP takes frames [B, T, C={c.in_chans}, {c.image_size}, {c.image_size}], got "
                              f"shape {tuple(video.shape)}; load with image_size= to run another frame size")
        if not video.is_floating_point():
            raise ConfigError(f"SigLIP takes float frames (normalised), got dtype {video.dtype}")
        return video.shape[0], video.shape[1]

    def embed(self, video: Tensor, keep: Selection | Tensor | None = None) -> Tokens:
        """[B, T, C, H, W] -> Tokens, one sequence of patches per frame (B·T sequences); `keep` selects patches."""
        b, t = self.check_video(video)
        if keep is not None:
            return self._embed_kept(video, as_selection(keep), b, t)
        x = self.conv1(video.reshape(b * t, *video.shape[2:]).to(self.conv1.weight.dtype))
        x = x.flatten(2).transpose(1, 2) + self.positional_embedding.to(x.dtype)  # [BT, g·g, W]
        pos = frame_positions(t, *self.config.grid, cls_tokens=0, device=x.device)
        return Tokens.from_dense(x, pos=pos.unsqueeze(0).expand(b, -1, -1, -1).reshape(b * t, -1, 3))

    def _embed_kept(self, video: Tensor, selection: Selection, b: int, t: int) -> Tokens:
        """Packed kept patches per frame (frame-major); a frame with none kept keeps its first patch."""
        weight, g = self.conv1.weight, self.config.grid
        p = weight.shape[-1]
        mask = selection.checked(b, (t, *g), min_tokens=0).keep.to(video.device).reshape(b * t, -1).clone()
        mask[:, 0] |= ~mask.any(1)
        frame_idx, slot_idx = mask.nonzero(as_tuple=True)
        frames = video.reshape(b * t, -1, g[0], p, g[1], p).permute(0, 2, 4, 1, 3, 5)  # [BT, g, g, C, p, p], a view
        rows = gather_blocks(frames, (frame_idx, slot_idx // g[1], slot_idx % g[1])).to(weight.dtype)  # [K, C·p·p]
        x = F.linear(rows, weight.reshape(weight.shape[0], -1), self.conv1.bias) + self.positional_embedding[slot_idx]
        pos = torch.stack((frame_idx % t, slot_idx // g[1], slot_idx % g[1]), dim=1)
        return Tokens(x, tuple(mask.sum(1).tolist()), pos)


class SigLIP(ReducibleModel):
    """SigLIP / SigLIP 2 for video retrieval: per-frame image tower + text tower (see the module docstring)."""

    family = "siglip"
    layout = "TCHW"
    per_frame = True

    def __init__(self, config: SiglipConfig, reduction: list[object] | None = None) -> None:
        config.validate()
        super().__init__(config)
        c = config
        self.visual = SiglipVision(c)
        self.transformer = Transformer(c.text_width, c.text_layers, c.text_heads, c.text_mlp_dim, c.norm_eps, c.act,
                                       False, 0.0)
        self.token_embedding = nn.Embedding(c.vocab_size, c.text_width)
        self.positional_embedding = nn.Parameter(torch.randn(c.context_length, c.text_width) * 0.01)
        self.ln_final = nn.LayerNorm(c.text_width, eps=c.norm_eps)
        self.text_head = nn.Linear(c.text_width, c.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor([2.3026]))  # log(10), SigLIP's init
        self.logit_bias = nn.Parameter(torch.tensor([-10.0]))
        if c.num_classes > 0:
            self.head = nn.Linear(c.embed_dim, c.num_classes)
        self.tokenizer: Any = None
        self.set_reduction(reduction)

    @property
    def token_dim(self) -> int:
        return self.config.vision_width

    @property
    def num_layers(self) -> int:
        return len(self.visual.transformer.resblocks)

    def embed(self, video: Tensor, keep: Selection | Tensor | None = None) -> Tokens:
        return self.visual.embed(video, keep)

    def encode_frames(self, video: Tensor, token_mask: Tensor | None = None) -> Tensor:
        """Video -> [B, S, E] embeddings of its S sequences (S = T frames unless TempMe joined them), not
        normalised. token_mask: a precomputed keep mask for the attached selector (per-frame RLT)."""
        video = self.prepare_input(video)
        b, t = self.visual.check_video(video)
        tokens = self.embed_input(video, token_mask)
        ctx = None
        if self.hooks is not None:
            g = self.config.grid
            ctx = self.hook_context(self.num_layers, b, t, 0, (t, g[0], g[1]), self.visual, input_sequences=b * t)
        tokens = self.visual.transformer(tokens, ctx, self.hooks)
        tokens = tokens.replace(x=self.visual.ln_post(tokens.x))
        proportional = self.hooks is not None and self.hooks.proportional_attention
        pooled = self.visual.head(tokens, log_size=proportional)
        return pooled.view(b, -1, pooled.shape[-1])

    def encode_video(self, video: Tensor, frame_mask: Tensor | None = None, token_mask: Tensor | None = None) -> Tensor:
        """Video -> [B, E]: the mean of the L2-normalised sequence embeddings (per frame unless TempMe joined them).

        frame_mask: optional [B, T], True on real frames (only while every frame is its own sequence)."""
        seqs = F.normalize(self.encode_frames(video, token_mask), dim=-1)
        if frame_mask is None:
            return seqs.mean(dim=1)
        if frame_mask.shape[1] != seqs.shape[1]:
            raise ConfigError(f"frame_mask has {frame_mask.shape[1]} frames but the reducers left {seqs.shape[1]} "
                              "sequences per video; pass frame_mask only with per-frame sequences")
        weights = frame_mask.to(seqs.dtype)[..., None]
        return (seqs * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)

    def encode_image(self, images: Tensor) -> Tensor:
        """[B, C, H, W] -> [B, E] image embeddings (not normalised), as SiglipModel.get_image_features."""
        if images.dim() != 4:
            raise ConfigError(f"encode_image takes images [B, C, H, W], got shape {tuple(images.shape)}")
        return self.encode_frames(images.unsqueeze(1))[:, 0]

    def encode_text(self, text: Tensor | str | Sequence[str]) -> Tensor:
        """Token ids [N, L] (padded as the SigLIP processor pads, to max_length) or strings with an attached
        tokenizer (`vidslim.models.siglip_tokenizer`, padded to context_length) -> [N, E]: the last position after
        ln_final, through text_head (not normalised)."""
        if not isinstance(text, Tensor):
            if self.tokenizer is None:
                raise ConfigError("this SigLIP has no tokenizer attached, so it cannot encode strings: pass token "
                                  "ids [N, L], load with vs.load_model(path, tokenizer=FOLDER) where FOLDER holds "
                                  "spiece.model or tokenizer.json, or set model.tokenizer = "
                                  "SiglipTokenizer.from_folder(FOLDER) (vidslim.models.siglip_tokenizer)")
            text = self.tokenizer([text] if isinstance(text, str) else list(text))
        ids = text.unsqueeze(0) if text.dim() == 1 else text
        ids = ids.to(self.token_embedding.weight.device).long()
        if ids.shape[1] > self.config.context_length:
            raise ConfigError(f"text of {ids.shape[1]} tokens exceeds context_length={self.config.context_length}")
        x = self.token_embedding(ids) + self.positional_embedding[: ids.shape[1]]
        x = self.transformer(Tokens.from_dense(x)).dense()
        return self.text_head(self.ln_final(x[:, -1]))

    def similarity(self, video_emb: Tensor, text_emb: Tensor) -> Tensor:
        """logit_scale.exp() · cos(text, video) + logit_bias: [N_text, N_video] (sigmoid of it: match probability)."""
        cos = F.normalize(text_emb, dim=-1) @ F.normalize(video_emb, dim=-1).t()
        return cos * self.logit_scale.exp() + self.logit_bias

    def forward(self, video: Tensor) -> Tensor:
        """Video -> embeddings [B, E], or logits [B, num_classes] when built with num_classes."""
        emb = self.encode_video(video)
        head = getattr(self, "head", None)
        return head(emb) if head is not None else emb
