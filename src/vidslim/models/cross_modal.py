"""A small cross-modal encoder: text tokens cross-attend to cached video tokens; a re-ranker and a QA scorer.

This is the multimodal half of SViTT (spec svitt §1, BERT layers 9-11 with cross-attention), small and
self-contained, with the text-guided node sparsity of spec §3b (S_M) actually switched on:

    text ids -> token + position embedding -> `text_layers` self-attention blocks (once per text)
             -> `fusion_layers` blocks: self-attention, cross-attention to the video tokens, MLP (once per pair)
             -> LayerNorm -> score = Linear(width, 1) on the text CLS output (position 0)

Two-stage retrieval (gaps §8): the visual tokens of every video are normalised, projected and turned into
each fusion layer's keys and values once (`cache_video`); a query then only gathers the keys and values of
its shortlisted videos, and `TextGuidedPrune` keeps, per (text, video) pair, the visual tokens the text CLS
attends to most in fusion layer `prune.layer`, so the later layers read only those (a gather of cached rows,
no recomputation).

    encoder = CrossModalEncoder(CrossModalConfig(video_width=768), prune=TextGuidedPrune(keep=0.1))
    cache = encoder.cache_video(vision_tokens)            # Tokens from a vision encoder, or [B, N, W]
    scores = encoder.rerank(cache, text_ids, shortlist)   # [Q, K] for shortlist [Q, K] of video indices
    scores = encoder.score_choices(cache, choice_ids)     # [B, C] for choices [B, C, L] (question + answer)

Blocks are pre-LN (like the vision towers here); BERT's are post-LN, so SViTT's weights do not load as is.
Text padding (ids == pad_token_id after the first token) is masked everywhere; the text CLS is position 0.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.reduce.svitt_prune import TextGuidedPrune
from vidslim.tokens import NO_POSITION, Tokens


@dataclasses.dataclass
class CrossModalConfig:
    """Shape of the cross-modal encoder. video_width: width of the visual tokens it is given."""

    width: int = 256
    heads: int = 4
    text_layers: int = 2
    fusion_layers: int = 3
    mlp_dim: int = 1024
    vocab_size: int = 49408
    context_length: int = 77
    video_width: int = 768
    pad_token_id: int = 0
    norm_eps: float = 1e-6

    def validate(self) -> None:
        """Raise ConfigError when the sizes do not fit together."""
        if self.width % self.heads:
            raise ConfigError(f"CrossModalConfig: width={self.width} is not divisible by heads={self.heads}")
        if self.fusion_layers < 1 or self.text_layers < 0:
            raise ConfigError(
                f"CrossModalConfig: need fusion_layers >= 1 and text_layers >= 0, got {self.fusion_layers}, "
                f"{self.text_layers}"
            )


@dataclasses.dataclass(frozen=True, eq=False)
class VideoCache:
    """Visual tokens of Nv videos, ready for cross-attention (padded to the longest, Lv).

    valid / is_cls: [Nv, Lv] real tokens / visual CLS tokens; keys, values: per fusion layer [Nv, Lv, H, d].
    """

    valid: Tensor
    is_cls: Tensor
    keys: tuple[Tensor, ...]
    values: tuple[Tensor, ...]

    def __len__(self) -> int:
        return self.valid.shape[0]

    def select(self, index: Tensor) -> VideoCache:
        """The cache of videos `index` (a subset, e.g. a shortlist)."""
        keys, values = tuple(k[index] for k in self.keys), tuple(v[index] for v in self.values)
        return VideoCache(self.valid[index], self.is_cls[index], keys, values)


@dataclasses.dataclass(frozen=True, eq=False)
class TextState:
    """Texts after the text-only layers: hidden [T, Lt, width] and valid [T, Lt] (real tokens)."""

    hidden: Tensor
    valid: Tensor


class MLP(nn.Module):
    """fc1 -> GELU -> fc2."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, hidden), nn.Linear(hidden, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SelfAttention(nn.Module):
    """Multi-head self-attention over padded texts [P, L, width] with a key padding mask."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        p, n, width = x.shape
        q, k, v = self.qkv(x).view(p, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=valid[:, None, None, :])
        return self.proj(out.transpose(1, 2).reshape(p, n, width))


class CrossAttention(nn.Module):
    """Text queries attend to visual keys and values (projected once per video by `kv`, see `cache_video`)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.kv, self.proj = nn.Linear(width, width), nn.Linear(width, 2 * width), nn.Linear(width, width)

    def project_video(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """[Nv, Lv, width] -> keys, values [Nv, Lv, H, d]."""
        nv, lv, _ = video.shape
        k, v = self.kv(video).view(nv, lv, 2, self.heads, -1).unbind(2)
        return k, v

    def forward(
        self, x: Tensor, keys: Tensor, values: Tensor, valid: Tensor, want_probs: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """x [P, Lt, width], keys/values [P, Lv, H, d], valid [P, Lv] -> ([P, Lt, width], probs [P, H, Lt, Lv])."""
        p, n, width = x.shape
        q = self.q(x).view(p, n, self.heads, -1).transpose(1, 2)
        k, v = keys.transpose(1, 2), values.transpose(1, 2)
        if want_probs:  # the pruning layer needs the attention itself: computed explicitly (Lt is short)
            logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
            probs = logits.masked_fill(~valid[:, None, None, :], float("-inf")).softmax(dim=-1)
            out = probs @ v
        else:
            probs = None
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=valid[:, None, None, :])
        return self.proj(out.transpose(1, 2).reshape(p, n, width)), probs


class TextBlock(nn.Module):
    """Pre-LN text-only block: self-attention and MLP."""

    def __init__(self, c: CrossModalConfig) -> None:
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(c.width, eps=c.norm_eps), SelfAttention(c.width, c.heads)
        self.ln_2, self.mlp = nn.LayerNorm(c.width, eps=c.norm_eps), MLP(c.width, c.mlp_dim)

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x), valid)
        return x + self.mlp(self.ln_2(x))


class FusionBlock(TextBlock):
    """Pre-LN fusion block: self-attention, cross-attention to the video, MLP."""

    def __init__(self, c: CrossModalConfig) -> None:
        super().__init__(c)
        self.ln_cross, self.cross = nn.LayerNorm(c.width, eps=c.norm_eps), CrossAttention(c.width, c.heads)

    def fuse(
        self, x: Tensor, text_valid: Tensor, keys: Tensor, values: Tensor, video_valid: Tensor, want_probs: bool
    ) -> tuple[Tensor, Tensor | None]:
        x = x + self.attn(self.ln_1(x), text_valid)
        h, probs = self.cross(self.ln_cross(x), keys, values, video_valid, want_probs)
        x = x + h
        return x + self.mlp(self.ln_2(x)), probs


class CrossModalEncoder(nn.Module):
    """Text-to-video cross encoder scoring (text, video) pairs (see the module docstring)."""

    def __init__(self, config: CrossModalConfig | None = None, prune: TextGuidedPrune | None = None) -> None:
        super().__init__()
        c = config or CrossModalConfig()
        c.validate()
        if prune is not None and prune.layer >= c.fusion_layers:
            raise ConfigError(
                f"TextGuidedPrune(layer={prune.layer}) needs a fusion layer, but the encoder has {c.fusion_layers} "
                f"(layers 0..{c.fusion_layers - 1}); lower prune.layer or raise fusion_layers"
            )
        self.config, self.prune = c, prune
        self.token_embedding = nn.Embedding(c.vocab_size, c.width)
        self.positional_embedding = nn.Parameter(torch.zeros(c.context_length, c.width))
        self.text_blocks = nn.ModuleList(TextBlock(c) for _ in range(c.text_layers))
        self.fusion_blocks = nn.ModuleList(FusionBlock(c) for _ in range(c.fusion_layers))
        self.video_norm = nn.LayerNorm(c.video_width, eps=c.norm_eps)
        self.video_proj = nn.Linear(c.video_width, c.width) if c.video_width != c.width else nn.Identity()
        self.ln_final = nn.LayerNorm(c.width, eps=c.norm_eps)
        self.head = nn.Linear(c.width, 1)
        self._init()

    def _init(self) -> None:
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    # ------------------------------------------------------------------------------------------ inputs
    def cache_video(self, video: Tokens | Tensor, num_videos: int | None = None, cls_tokens: int = 0) -> VideoCache:
        """Visual tokens -> `VideoCache` (normalised, projected, per-layer keys and values), computed once.

        video: Tokens (one sequence per video; with num_videos, consecutive sequences are joined, e.g. CLIP's
        per-frame sequences; CLS tokens are found by pos == NO_POSITION) or a dense [B, N, video_width] tensor
        whose first `cls_tokens` tokens are CLS.
        """
        if isinstance(video, Tokens):
            tokens = video
            if num_videos is not None and num_videos != tokens.batch_size:
                if tokens.batch_size % num_videos:
                    raise ConfigError(
                        f"cache_video: {tokens.batch_size} sequences do not split evenly into num_videos={num_videos}"
                    )
                per = tokens.batch_size // num_videos
                lens = [sum(tokens.seqlens[i * per:(i + 1) * per]) for i in range(num_videos)]
                tokens = Tokens(tokens.x, lens, tokens.pos, tokens.size)
            x, valid = tokens.pad()
            if tokens.pos is not None:
                is_cls = tokens.pad_values((tokens.pos == NO_POSITION).any(dim=1), False) & valid
            else:
                is_cls = torch.zeros_like(valid)
        elif isinstance(video, Tensor) and video.dim() == 3:
            x = video
            valid = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
            is_cls = torch.arange(x.shape[1], device=x.device)[None, :].expand_as(valid) < cls_tokens
        else:
            raise ConfigError("cache_video takes Tokens or a [B, N, video_width] tensor of visual tokens")
        if x.shape[-1] != self.config.video_width:
            raise ConfigError(
                f"cache_video: visual tokens are {x.shape[-1]} wide but the encoder was built with "
                f"video_width={self.config.video_width}; set CrossModalConfig(video_width={x.shape[-1]})"
            )
        x = self.video_proj(self.video_norm(x))
        kv = [block.cross.project_video(x) for block in self.fusion_blocks]
        return VideoCache(valid, is_cls, tuple(k for k, _ in kv), tuple(v for _, v in kv))

    def text_ids(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """Token ids [T, L] -> (ids cut to the longest text, valid mask): padding is pad_token_id after position 0."""
        if ids.dim() != 2:
            raise ConfigError(f"text ids must be [T, L] token ids, got shape {tuple(ids.shape)}")
        if ids.shape[1] > self.config.context_length:
            raise ConfigError(f"text of {ids.shape[1]} tokens exceeds context_length={self.config.context_length}")
        ids = ids.to(self.token_embedding.weight.device).long()
        valid = ids != self.config.pad_token_id
        valid[:, 0] = True
        length = int(valid.sum(-1).max()) if ids.numel() else 0
        return ids[:, :length], valid[:, :length]

    def encode_text(self, ids: Tensor) -> TextState:
        """Token ids [T, L] -> TextState after the text-only layers (computed once per text)."""
        ids, valid = self.text_ids(ids)
        x = self.token_embedding(ids) + self.positional_embedding[: ids.shape[1]]
        for block in self.text_blocks:
            x = block(x, valid)
        return TextState(x, valid)

    # ------------------------------------------------------------------------------------------ scoring
    def score_pairs(
        self, text: TextState, cache: VideoCache, text_index: Tensor, video_index: Tensor, return_kept: bool = False
    ) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor] | None]:
        """Scores [P] of the pairs (text_index[p], video_index[p]); with return_kept also the pruning's
        (index [P, K], real [P, K]) of kept visual tokens (None without pruning)."""
        x, text_valid = text.hidden[text_index], text.valid[text_index]
        video_valid = cache.valid[video_index]
        kept: tuple[Tensor, Tensor] | None = None
        rows = video_index[:, None]
        for layer, block in enumerate(self.fusion_blocks):
            if kept is None:
                keys, values = cache.keys[layer][video_index], cache.values[layer][video_index]
            else:
                keys, values = cache.keys[layer][rows, kept[0]], cache.values[layer][rows, kept[0]]
            prune_here = self.prune is not None and layer == self.prune.layer and self.prune.keep < 1.0
            x, probs = block.fuse(x, text_valid, keys, values, video_valid, want_probs=prune_here)
            if prune_here:
                assert self.prune is not None and probs is not None
                scores = self.prune.text_scores(probs, text_valid)
                kept = self.prune.select(scores, video_valid, cache.is_cls[video_index])
                video_valid = kept[1]
        out = self.head(self.ln_final(x[:, 0])).squeeze(-1)
        return (out, kept) if return_kept else out

    def forward(self, cache: VideoCache, ids: Tensor, video_index: Tensor | None = None) -> Tensor:
        """Scores [T] of text i with video video_index[i] (default: video i): the matching score (ITM-style)."""
        text = self.encode_text(ids)
        t = text.hidden.shape[0]
        index = torch.arange(t, device=text.hidden.device)
        return self.score_pairs(text, cache, index, index if video_index is None else video_index)  # type: ignore[return-value]

    @torch.no_grad()
    def rerank(self, cache: VideoCache, ids: Tensor, shortlist: Tensor, chunk: int = 64) -> Tensor:
        """Scores [Q, K] of each text ids[q] against its shortlisted videos shortlist[q] (indices into cache).

        The texts go through the text-only layers once; pairs run through the fusion layers `chunk` at a time.
        """
        if shortlist.dim() != 2 or shortlist.shape[0] != ids.shape[0]:
            raise ConfigError(
                f"rerank: shortlist must be [Q, K] video indices, one row per text; got {tuple(shortlist.shape)} "
                f"for {ids.shape[0]} texts"
            )
        text = self.encode_text(ids)
        q, k = shortlist.shape
        device = text.hidden.device
        text_index = torch.arange(q, device=device).repeat_interleave(k)
        video_index = shortlist.reshape(-1).to(device)
        parts = [
            self.score_pairs(text, cache, text_index[i:i + chunk], video_index[i:i + chunk])
            for i in range(0, q * k, max(chunk, 1))
        ]
        return torch.cat(parts).view(q, k)  # type: ignore[arg-type]

    def score_choices(self, video: VideoCache | Tokens | Tensor, choices: Tensor) -> Tensor:
        """Multiple-choice scores [B, C]: choices [B, C, L] token ids (question and answer) for each of B videos
        (or [C, L] for one video); the answer is the argmax over C."""
        cache = video if isinstance(video, VideoCache) else self.cache_video(video)
        if choices.dim() == 2:
            choices = choices[None]
        if choices.dim() != 3 or choices.shape[0] != len(cache):
            raise ConfigError(
                f"score_choices: choices must be [B, C, L] token ids for B={len(cache)} videos, got "
                f"{tuple(choices.shape)}"
            )
        b, c, length = choices.shape
        text = self.encode_text(choices.reshape(b * c, length))
        device = text.hidden.device
        text_index = torch.arange(b * c, device=device)
        video_index = torch.arange(b, device=device).repeat_interleave(c)
        return self.score_pairs(text, cache, text_index, video_index).view(b, c)  # type: ignore[union-attr]
