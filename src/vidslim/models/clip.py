"""CLIP as CLIP4Clip and TempMe use it for video: the image tower applied to every frame, plus the text tower.

Parameter names are OpenAI CLIP's (`visual.conv1`, `visual.transformer.resblocks.{i}.attn.in_proj_weight`,
`token_embedding`, `ln_final`, `text_projection`, `logit_scale`, ...), so an OpenAI checkpoint loads as is.

Video input: float frames [B, T, C, H, W] (time before channels), normalised with CLIP's mean/std, or decoded uint8
frames [B, T, H, W, C] (or a `Clip`), which the model prepares itself (`input_spec`).
- `encode_frames(video) -> [B, T, E]`: per-frame embeddings (CLS -> ln_post -> proj), not normalised.
- `encode_video(video) -> [B, E]`: the mean over frames of the L2-normalised frame embeddings (the CLIP4Clip /
  TempMe convention, spec tempme §1.8; not renormalised).
- `encode_text(ids or strings) -> [N, E]`: the end-of-text token's feature after ln_final, projected
  (not normalised, as in CLIP). Strings need a tokenizer attached to the model (`load_model` attaches one when
  the checkpoint folder has the vocabulary, or set `model.tokenizer`).

Reducers act in the vision tower, where every frame starts as its own sequence [CLS, patches]. They may merge,
drop or regroup tokens (TempMe joins neighbouring frames into one sequence) but must keep every frame's CLS
token, at the head of its sequence, in frame order: the readout takes those CLS tokens. After TempMe's last
regrouping one sequence holds a whole video as [CLS of frame 0, ..., CLS of frame T-1, merged patches], so the CLS
of frame t sits at index t. The last block computes only the CLS tokens (`VisionTransformer.cls_readout`).

A before-the-model reducer (vs.RLT: per-frame RLT, vidslim's extension of the paper's video-ViT method,
`vidslim.tokenize.frame_rlt`) selects the patches `embed(video, keep)` embeds: frames then become sequences of
different lengths, [CLS, the patches that changed since the previous frame]; only kept patches are embedded (conv1
applied as a Linear to the gathered rows). Its selection runs inside a `reduce_range` labelled
`<Selector>.token_mask` (`ReducibleModel.embed_input`), so `vidslim.bench.overhead` counts it as the reduction's
own time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.models.base import ReducibleModel
from vidslim.models.blocks import ClipBlock, drop_path_rates, run_blocks
from vidslim.models.config_shape import FrameTextShape
from vidslim.models.patch_gather import gather_blocks
from vidslim.models.positions import frame_positions
from vidslim.tokens import NO_POSITION, Tokens
from vidslim.tokens.kept_tensors import kept_across_calls
from vidslim.tokens.protocol import HookContext, ReducerHooks
from vidslim.tokens.selection import Selection, as_selection


@dataclasses.dataclass
class ClipConfig(FrameTextShape):
    """Shape of a CLIP ViT (vision + text). `eot_token_id=None` pools at argmax(ids) (OpenAI's rule)."""

    eot_token_id: int | None = 49407
    logit_scale_init: float = math.log(1 / 0.07)


class Transformer(nn.Module):
    """A stack of CLIP blocks under OpenAI's name `resblocks`."""

    def __init__(
        self, width: int, layers: int, heads: int, mlp_dim: int, eps: float, act: str, causal: bool, drop_path: float
    ) -> None:
        super().__init__()
        rates = drop_path_rates(drop_path, layers)
        self.resblocks = nn.ModuleList(
            ClipBlock(width, heads, mlp_dim, eps, act, causal, rates[i]) for i in range(layers)
        )

    def forward(
        self,
        tokens: Tokens,
        ctx: HookContext | None = None,
        hooks: ReducerHooks | None = None,
        cls_readout: int | None = None,
    ) -> Tokens:
        """Run the blocks; `cls_readout` (CLS tokens in the batch) makes the last one compute only those."""
        return run_blocks(self.resblocks, tokens, ctx, hooks, cls_readout)


class VisionTransformer(nn.Module):
    """CLIP's image tower, run on every frame: conv1 -> [CLS; patches] + positions -> ln_pre -> blocks.

    `cls_readout` (default True): the last block computes the per-frame CLS tokens only, the one thing the readout
    takes (spec tempme §6.3-6): the same embeddings, for a fraction of the last block's cost. Set it to False to
    run the last block on every token (e.g. to look at its output tokens).
    """

    cls_readout: bool = True

    def __init__(self, c: ClipConfig) -> None:
        super().__init__()
        self.config = c
        width, scale = c.vision_width, c.vision_width**-0.5
        self.conv1 = nn.Conv2d(c.in_chans, width, kernel_size=c.patch_size, stride=c.patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(1 + c.grid[0] * c.grid[1], width))
        self.ln_pre = nn.LayerNorm(width, eps=c.norm_eps)
        self.transformer = Transformer(
            width, c.vision_layers, c.vision_heads, c.vision_mlp_dim, c.norm_eps, c.act, False, c.drop_path
        )
        self.ln_post = nn.LayerNorm(width, eps=c.norm_eps)
        self.proj = nn.Parameter(scale * torch.randn(width, c.embed_dim))
        self._positions: dict[tuple[int, torch.device], Tensor] = {}

    def check_video(self, video: Tensor) -> tuple[int, int]:
        """(B, T) of a [B, T, C, H, W] video; a clear error for a wrong layout, size or dtype."""
        c = self.config
        if video.dim() != 5 or video.shape[2] != c.in_chans:
            hint = ""
            if video.dim() == 5 and video.shape[1] == c.in_chans:
                hint = "; it looks like [B, C, T, H, W]: pass video.permute(0, 2, 1, 3, 4)"
            elif video.dim() == 4:
                hint = "; for images use encode_image, or video.unsqueeze(1) for one-frame videos"
            raise ConfigError(f"CLIP takes frames [B, T, C={c.in_chans}, H, W], got shape {tuple(video.shape)}{hint}")
        if tuple(video.shape[-2:]) != (c.image_size, c.image_size):
            raise ConfigError(
                f"this CLIP was built for {c.image_size}x{c.image_size} frames, got {tuple(video.shape[-2:])}: resize "
                f"the frames, or load with vs.load_model(path, image_size={video.shape[-1]}) to resize its positions"
            )
        if not video.is_floating_point():
            raise ConfigError(f"CLIP takes float frames (normalised), got dtype {video.dtype}")
        return video.shape[0], video.shape[1]

    def frame_positions(self, frames: int, device: torch.device) -> Tensor:
        """[T, 1 + g·g, 3] token coordinates (cached): CLS rows NO_POSITION, patches (frame, row, col)."""
        key = (frames, torch.device(device))
        if key not in self._positions:
            build = kept_across_calls(frame_positions)
            self._positions[key] = build(frames, *self.config.grid, cls_tokens=1, device=device)
        return self._positions[key]

    def embed(self, video: Tensor, keep: Selection | Tensor | None = None) -> Tokens:
        """[B, T, C, H, W] -> Tokens with one sequence [CLS, patches] per frame (B·T sequences), after ln_pre.

        keep: bool [B, T, H', W'] (or a Selection): only those patches become tokens, so frames become sequences
        of different lengths [CLS, kept patches in (h, w) order]; `pos` is (t, h, w) for patches and NO_POSITION
        for CLS tokens; `size` stays None (a kept patch stands for itself in its own frame).
        """
        b, t = self.check_video(video)
        if keep is not None:
            return self._embed_kept(video, as_selection(keep), b, t)
        frames = video.reshape(b * t, *video.shape[2:]).to(self.conv1.weight.dtype)
        x = self.conv1(frames).flatten(2).transpose(1, 2)  # [BT, g·g, W]
        cls = self.class_embedding.to(x.dtype).expand(b * t, 1, -1)
        x = torch.cat((cls, x), dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        pos = self.frame_positions(t, x.device).unsqueeze(0).expand(b, -1, -1, -1).reshape(b * t, -1, 3)
        return Tokens.from_dense(x, pos=pos)

    def _embed_kept(self, video: Tensor, selection: Selection, b: int, t: int) -> Tokens:
        """Packed [CLS, kept patches] per frame (frame-major): only kept patches are read and embedded."""
        weight = self.conv1.weight
        p = weight.shape[-1]
        grid = (video.shape[-2] // p, video.shape[-1] // p)
        keep = selection.checked(b, (t, *grid), min_tokens=0).keep.to(video.device).reshape(b * t, -1)
        slots = torch.cat((keep.new_ones(b * t, 1), keep), 1)  # [BT, 1 + g·g]: slot 0 the CLS, always kept
        frame_idx, slot_idx = slots.nonzero(as_tuple=True)  # [N] frame-major, then CLS, (h, w): the packing order
        seqlens = slots.sum(1).tolist()  # one host sync: the layout must be known in Python
        at = (slot_idx > 0).nonzero().squeeze(1)  # [K] the patches' rows in the packed layout
        cell = slot_idx[at] - 1
        frames = video.reshape(b * t, -1, grid[0], p, grid[1], p).permute(0, 2, 4, 1, 3, 5)  # [BT, g, g, C, p, p]
        rows = gather_blocks(frames, (frame_idx[at], cell // grid[1], cell % grid[1])).to(weight.dtype)
        patches = F.linear(rows, weight.reshape(weight.shape[0], -1))  # [K, W]; bf16 under autocast, as conv1's
        table = self.positional_embedding.to(patches.dtype)  # the dense path adds its table in conv1's dtype too
        table = torch.cat(((self.class_embedding.to(patches.dtype) + table[0])[None], table[1:]))  # CLS row: + class
        x = table[slot_idx].index_add_(0, at, patches)  # [N, W]
        pos = self.frame_positions(t, x.device).reshape(-1, 3)[(frame_idx % t) * slots.shape[1] + slot_idx]
        return Tokens(self.ln_pre(x), seqlens, pos)

    def frame_cls(self, tokens: Tokens, batch: int, frames: int) -> Tensor:
        """The per-frame CLS features [B, T, W] from the final tokens (see the module docstring)."""
        if tokens.batch_size == batch * frames:  # still one sequence per frame: CLS heads each sequence
            cls = tokens.dense()[:, 0] if tokens.is_uniform else tokens.x[tokens.cu_seqlens[:-1].long()]
            return cls.reshape(batch, frames, -1)
        if tokens.is_uniform and (batch * frames) % tokens.batch_size == 0:
            # sequences were joined (TempMe's ClipMe): each holds its frames' CLS tokens at its head, in frame order
            # (the reducer protocol), so a static slice finds them; traced and exported graphs need this shape
            c = batch * frames // tokens.batch_size
            if c <= tokens.max_seqlen:
                return tokens.dense()[:, :c].reshape(batch, frames, -1)
        if tokens.pos is None:
            raise ValueError("a reducer regrouped frames but dropped Tokens.pos: the CLS tokens cannot be found")
        is_cls = tokens.pos[:, 1] == NO_POSITION
        cls = tokens.x[is_cls]
        if cls.shape[0] != batch * frames:
            raise ValueError(
                f"expected {batch * frames} CLS tokens (one per frame) after the blocks, found {cls.shape[0]}"
            )
        return cls.reshape(batch, frames, -1)

    def project(self, cls: Tensor) -> Tensor:
        """ln_post then the projection: [..., W] -> [..., E]."""
        return self.ln_post(cls) @ self.proj


class CLIP(ReducibleModel):
    """CLIP ViT for video retrieval: per-frame image tower + text tower (see the module docstring)."""

    family = "clip"
    layout = "TCHW"
    per_frame = True

    def __init__(self, config: ClipConfig, reduction: list[object] | None = None) -> None:
        config.validate()
        super().__init__(config)
        c = config
        self.visual = VisionTransformer(c)
        self.transformer = Transformer(
            c.text_width, c.text_layers, c.text_heads, c.text_mlp_dim, c.norm_eps, c.act, True, 0.0
        )
        self.token_embedding = nn.Embedding(c.vocab_size, c.text_width)
        self.positional_embedding = nn.Parameter(torch.empty(c.context_length, c.text_width))
        self.ln_final = nn.LayerNorm(c.text_width, eps=c.norm_eps)
        self.text_projection = nn.Parameter(torch.empty(c.text_width, c.embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(c.logit_scale_init))
        if c.num_classes > 0:
            self.head = nn.Linear(c.embed_dim, c.num_classes)
        self.tokenizer: Any = None
        self._init_text()
        self.set_reduction(reduction)

    def _init_text(self) -> None:
        """OpenAI's initialisation of the text tower and the attention/MLP weights of both towers."""
        c = self.config
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=c.text_width**-0.5)
        for tower, width, layers in (
            (self.transformer, c.text_width, c.text_layers),
            (self.visual.transformer, c.vision_width, c.vision_layers),
        ):
            proj_std, attn_std, fc_std = (
                (width**-0.5) * ((2 * max(layers, 1)) ** -0.5),
                width**-0.5,
                (2 * width) ** -0.5,
            )
            for block in tower.resblocks:
                nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
                nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
                nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
                nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)

    # ------------------------------------------------------------------------------------------ vision
    @property
    def token_dim(self) -> int:
        return self.config.vision_width

    @property
    def num_layers(self) -> int:
        return len(self.visual.transformer.resblocks)

    def embed(self, video: Tensor, keep: Selection | Tensor | None = None) -> Tokens:
        """The vision tower's input tokens (`VisionTransformer.embed`)."""
        return self.visual.embed(video, keep)

    def encode_frames(self, video: Tensor, token_mask: Tensor | None = None) -> Tensor:
        """[B, T, C, H, W] (or decoded frames) -> per-frame embeddings [B, T, E] (projected, not normalised).

        token_mask: an optional precomputed [B, T, H', W'] keep mask for the attached selector (per-frame RLT).
        """
        video = self.prepare_input(video)
        b, t = self.visual.check_video(video)
        tokens = self.embed_input(video, token_mask)
        ctx = None
        if self.hooks is not None:
            g = self.config.grid
            ctx = self.hook_context(self.num_layers, b, t, 1, (t, g[0], g[1]), self.visual, input_sequences=b * t)
        readout = b * t if self.visual.cls_readout else None
        tokens = self.visual.transformer(tokens, ctx, self.hooks, readout)
        return self.visual.project(self.visual.frame_cls(tokens, b, t))

    def encode_video(self, video: Tensor, frame_mask: Tensor | None = None, token_mask: Tensor | None = None) -> Tensor:
        """[B, T, C, H, W] -> [B, E]: mean of the L2-normalised frame embeddings over the valid frames.

        frame_mask: optional [B, T] bool/0-1 tensor, True on real frames (padding frames are left out).
        token_mask: optional precomputed keep mask for the attached tokenizer (see `encode_frames`).
        """
        frames = F.normalize(self.encode_frames(video, token_mask), dim=-1)
        if frame_mask is None:
            return frames.mean(dim=1)
        weights = frame_mask.to(frames.dtype)[..., None]
        return (frames * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)

    def encode_image(self, images: Tensor) -> Tensor:
        """[B, C, H, W] -> [B, E] image embeddings (projected, not normalised), as CLIP's encode_image."""
        if images.dim() != 4:
            raise ConfigError(f"encode_image takes images [B, C, H, W], got shape {tuple(images.shape)}")
        return self.encode_frames(images.unsqueeze(1))[:, 0]

    # ------------------------------------------------------------------------------------------ text
    def tokenize(self, texts: str | Sequence[str]) -> Tensor:
        """Strings -> token ids [N, context] with the attached tokenizer (a clear error when there is none)."""
        if self.tokenizer is None:
            raise ConfigError(
                "this CLIP has no tokenizer attached, so it cannot encode strings: pass token ids [N, L], load "
                "with vs.load_model(path, tokenizer=FOLDER) where FOLDER holds the CLIP vocabulary, or set "
                "model.tokenizer = ClipTokenizer.from_folder(FOLDER) (vidslim.models.clip_tokenizer)"
            )
        return self.tokenizer([texts] if isinstance(texts, str) else list(texts))

    def eot_positions(self, ids: Tensor) -> Tensor:
        """[N] index of the end-of-text token of each row: the first `eot_token_id`, else argmax(ids)."""
        last = ids.argmax(dim=-1)
        eot = self.config.eot_token_id
        if eot is None:
            return last
        is_eot = ids == eot
        return torch.where(is_eot.any(dim=-1), is_eot.int().argmax(dim=-1), last)

    def encode_text(self, text: Tensor | str | Sequence[str]) -> Tensor:
        """Token ids [N, L] (L <= context_length) or strings -> text embeddings [N, E] (not normalised)."""
        ids = text if isinstance(text, Tensor) else self.tokenize(text)  # type: ignore[arg-type]
        if ids.dim() == 1:
            ids = ids.unsqueeze(0)
        ids = ids.to(self.token_embedding.weight.device).long()
        if ids.shape[1] > self.config.context_length:
            raise ConfigError(f"text of {ids.shape[1]} tokens exceeds context_length={self.config.context_length}")
        at = self.eot_positions(ids)
        # causal attention: tokens after the last end-of-text never reach the pooled ones, so skip them
        length = int(at.max()) + 1 if ids.numel() else 0
        x = self.token_embedding(ids[:, :length]) + self.positional_embedding[:length]
        tokens = self.transformer(Tokens.from_dense(x))
        pooled = tokens.dense()[torch.arange(ids.shape[0], device=ids.device), at]
        return self.ln_final(pooled) @ self.text_projection

    # ------------------------------------------------------------------------------------------ heads
    def similarity(self, video_emb: Tensor, text_emb: Tensor) -> Tensor:
        """logit_scale.exp() · cos(text, video): [N_text, N_video] retrieval logits."""
        return self.logit_scale.exp() * F.normalize(text_emb, dim=-1) @ F.normalize(video_emb, dim=-1).t()

    def forward(self, video: Tensor) -> Tensor:
        """[B, T, C, H, W] -> video embeddings [B, E], or logits [B, num_classes] when built with num_classes."""
        emb = self.encode_video(video)
        head = getattr(self, "head", None)
        return head(emb) if head is not None else emb
