"""SViTT's node sparsity: keep the tokens attention points at, drop the rest (spec svitt §3).

`TokenPrune` acts inside a vision encoder (S_V, spec §3a): after the MLP of each layer in `layers` (0-based;
the release prunes after layers 3, 6 and 9), every sequence keeps its CLS tokens and the ceil(keep · N)
of its N other tokens with the highest score, in their original order; the others are discarded (no fused
"rest" token, no merging). The keep rate compounds: 0.7 at three layers leaves 0.343 of the tokens. The
score is the attention of that same layer:

- "cls": the CLS query's attention probabilities over the sequence's keys, averaged over heads (the release:
  `attn[:, 0, 1:]`), which `AttentionInfo.cls_attention` computes as one row per sequence;
- "mean": for encoders with no CLS token (the VideoMAE-layout video ViT) there is no CLS row, so the score is
  the attention row of the *mean query* (the average of the sequence's queries, per head), averaged over
  heads: one O(N) row like the CLS row, not the full attention matrix;
- "auto" (default): "cls" when the sequences start with CLS tokens, else "mean";
- "random": uniform random scores (the release's `token_keep_strategy='random'` ablation).

It works on packed batches of unequal lengths (after RLT, or TempMe's merges and regrouping) and, for
CLIP's per-frame sequences, prunes each frame's sequence on its own. Scores are taken after the attention
and the tokens pruned after the MLP; when another reducer merges or regroups tokens in between (ToMe or
TempMe in the same layer), each surviving token takes the score of the token at its (video, t, h, w).

Tracing (`prune.trace = True` on an instance, off by default): after each forward `self.kept[layer]` holds a bool
keep mask [B, t, h, w] over each video's input token grid (`HookContext.grid`), True where a token at that
(t, h, w) survived pruning at that layer (CLS tokens are not on the grid). `vidslim.viz.draw_kept_tokens` draws it.
A token another reducer merged marks only the cell of the position it kept.

`TextGuidedPrune` is the cross-modal S_M (spec §3b): in a fusion layer of the cross-modal encoder
(`vidslim.models.cross_modal`), keep the visual tokens that the text CLS query attends to most. The SViTT
release configures it but never turns it on (its configs are not read); here it is a working knob.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from vidslim.errors import ConfigError
from vidslim.tokens.packed import NO_POSITION, Tokens
from vidslim.tokens.protocol import AttentionInfo, HookContext
from vidslim.tokens.segments import segment_softmax

SCORES = ("auto", "cls", "mean", "random")
TEXT_SCORES = ("cls", "mean", "random")


# ------------------------------------------------------------------------------------------------ pure functions
def keep_count(n: Tensor, keep: float) -> Tensor:
    """ceil(keep · n) per entry (int64), robust to float error: 0.7 · 10 keeps 7, not 8."""
    return torch.ceil(n.double() * keep - 1e-9).clamp_min(0).to(torch.int64)


def mean_query_attention(
    q: Tensor, k: Tensor, seqlens: Sequence[int], scale: float, key_bias: Tensor | None = None
) -> Tensor:
    """[total]: each sequence's mean query (per head) attending over the sequence's keys, averaged over heads."""
    seqlens = tuple(int(n) for n in seqlens)
    total, heads, _ = k.shape
    lengths = torch.tensor(seqlens, device=q.device)
    seq = torch.repeat_interleave(torch.arange(len(seqlens), device=q.device), lengths, output_size=total)
    qf, kf = q.float(), k.float()
    mean_q = qf.new_zeros(len(seqlens), heads, q.shape[-1]).index_add_(0, seq, qf)
    mean_q = mean_q / lengths.clamp_min(1).to(qf.dtype)[:, None, None]
    logits = (mean_q[seq] * kf).sum(-1) * scale  # [total, H]
    if key_bias is not None:
        logits = logits + key_bias.float()[:, None]
    return segment_softmax(logits, seq, len(seqlens)).mean(dim=-1).to(q.dtype)


# ------------------------------------------------------------------------------------------------ S_V
@dataclasses.dataclass(eq=False)
class TokenPrune:
    """Vision-encoder node pruning (see the module docstring).

    layers: 0-based blocks after whose MLP tokens are pruned; keep: fraction of the non-CLS tokens kept at each
    of them (1.0: no pruning, exactly the dense model); score: "auto", "cls", "mean" or "random"; seed: the
    generator of the "random" scores. Set `trace = True` to record `self.kept` in every forward (module docstring).
    """

    #: per backbone (what `--method token_prune` starts from): the release's layers 3, 6, 9 of 12 become
    #: floor(l·L/12) in a tower of L layers, so siglip-tiny's 2 layers prune after layers 0 and 1
    #: and V-JEPA 2 ViT-L's 24 after layers 6, 12 and 18
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "siglip-tiny": {"layers": (0, 1)}, "vjepa2-tiny": {"layers": (0, 1)}, "vivit-tiny": {"layers": (0, 1)},
        "vjepa2-vitl-256": {"layers": (6, 12, 18)}, "vjepa2-vith-256": {"layers": (8, 16, 24)},
        "vjepa2-vitg-256": {"layers": (10, 20, 30)},
    }

    layers: Iterable[int] = (3, 6, 9)
    keep: float = 0.7
    score: str = "auto"
    seed: int = 0
    #: set True to record `self.kept` (not a constructor argument, so it never goes into a saved reduction card)
    trace: bool = dataclasses.field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.layers = tuple(sorted({int(i) for i in self.layers}))
        if any(i < 0 for i in self.layers):
            raise ConfigError(f"TokenPrune(layers={self.layers}): layers are 0-based block indices, >= 0")
        self.set_keep(self.keep)
        if self.score not in SCORES:
            raise ConfigError(f"TokenPrune(score={self.score!r}): use one of {', '.join(SCORES)}")
        self._generator = torch.Generator().manual_seed(self.seed)
        #: layer -> bool keep mask [B, t, h, w] of the last forward (filled only when trace is True)
        self.kept: dict[int, Tensor] = {}

    def attach(self, model: Any) -> None:
        """Refuse pruning layers the model does not have."""
        depth = int(model.num_layers)
        beyond = [i for i in self.layers if i >= depth]  # type: ignore[attr-defined]
        if beyond:
            raise ConfigError(f"TokenPrune(layers={list(self.layers)}): the model has {depth} blocks (0-{depth - 1}), "
                              f"so layer(s) {beyond} do not exist; pick layers below {depth}")

    def set_keep(self, keep: float) -> None:
        """Change the keep rate (the curriculum does this between stages)."""
        if not 0.0 < float(keep) <= 1.0:
            raise ConfigError(f"TokenPrune(keep={keep}): keep is the fraction of tokens kept, in (0, 1]")
        self.keep = float(keep)

    def start_forward(self, tokens: Tokens, ctx: HookContext) -> dict[int, tuple[Tensor, Tokens]]:
        """This forward's pending scores: layer -> (scores after attention, the tokens they score)."""
        return {}

    def after_attention(self, tokens: Tokens, info: AttentionInfo, ctx: HookContext) -> Tokens:
        """At a pruning layer, score the tokens with this layer's attention (kept until after the MLP)."""
        if ctx.layer in self.layers and self.keep < 1.0:
            ctx.state_of(self)[ctx.layer] = (self.scores(tokens, info, ctx), tokens)
        return tokens

    def after_mlp(self, tokens: Tokens, ctx: HookContext) -> Tokens:
        """At a pruning layer, keep each sequence's CLS tokens and its ceil(keep · N) best other tokens."""
        if ctx.layer not in self.layers:
            return tokens
        if self.keep >= 1.0:
            return self._record(tokens, ctx)
        scored = ctx.state_of(self).pop(ctx.layer, None)
        if scored is None:
            raise ConfigError("TokenPrune: no attention scores for this layer; the model must call after_attention")
        scores, before = scored
        if before.seqlens != tokens.seqlens or before.pos is not tokens.pos:  # another reducer changed the tokens
            scores = carry_scores(scores, before, tokens, ctx.batch_size, ctx.grid)
        cls = ctx.cls_per_sequence(tokens)  # CLS tokens head every sequence (the protocol): a count on the host
        if tokens.is_uniform:  # equal lengths: [S, N] views; static shapes for traced and exported graphs
            return self._record(self.prune_equal(tokens, scores, cls), ctx)
        return self._record(self.prune(tokens, scores, cls), ctx)

    def _record(self, tokens: Tokens, ctx: HookContext) -> Tokens:
        """When tracing, store the keep mask of this layer (cleared at the first pruning layer of a forward)."""
        if self.trace:
            if ctx.layer == self.layers[0]:
                self.kept = {}
            self.kept[ctx.layer] = keep_mask(tokens, ctx.batch_size, ctx.grid)
        return tokens

    # -------------------------------------------------------------------------------------------- pieces
    def scores(self, tokens: Tokens, info: AttentionInfo, ctx: HookContext) -> Tensor:
        """[total] score of every token from the layer's attention (higher: more likely kept)."""
        kind = self.score
        if kind == "auto":
            kind = "cls" if ctx.cls_per_sequence(tokens) > 0 else "mean"  # the protocol puts CLS at the head
        if kind == "random":
            return torch.rand(tokens.total, generator=self._generator).to(tokens.x.device)
        if kind == "cls":
            return info.cls_attention
        return mean_query_attention(info.q, info.k, info.seqlens, info.scale, info.key_bias)

    def prune(self, tokens: Tokens, scores: Tensor, cls_tokens: int | None = None) -> Tokens:
        """Keep the CLS tokens and the top ceil(keep · N) of the N other tokens of every sequence, in order.

        cls_tokens: the CLS tokens heading every sequence (the reducer protocol's layout), so every count is a
        Python int and nothing is read back from the device; None reads them off `pos` (NO_POSITION) or takes 0.
        """
        c = _head_cls(tokens) if cls_tokens is None else int(cls_tokens)
        keep = [min(n, c) + max(math.ceil((n - c) * self.keep - 1e-9), 0) for n in tokens.seqlens]
        width, device = tokens.max_seqlen, scores.device
        head = torch.arange(width, device=device) < c
        ranked = tokens.pad_values(scores.float(), float("-inf")).masked_fill(head, float("inf"))
        # padding scores -inf and sits after a row's tokens, so the stable sort ranks it after any real -inf
        best = torch.sort(ranked, dim=1, descending=True, stable=True).indices  # [S, L], ties: the earlier token
        best = best.masked_fill(torch.arange(width, device=device) >= tokens.lengths.new_tensor(keep)[:, None], width)
        chosen = torch.sort(best, dim=1).values[:, : max(keep, default=0)]  # [S, K]: kept tokens in order, padding
        out = Tokens(tokens.x.new_empty(sum(keep), 0), tuple(keep))  # the output layout (no features)
        index = (chosen + tokens.cu_seqlens[:-1].long()[:, None]).reshape(-1).index_select(0, out.padded_index)
        return tokens.replace(
            x=tokens.x.index_select(0, index),
            seqlens=tuple(keep),
            pos=tokens.pos.index_select(0, index) if tokens.pos is not None else None,
            size=tokens.size.index_select(0, index) if tokens.size is not None else None,
        )

    def prune_equal(self, tokens: Tokens, scores: Tensor, cls_per_sequence: int) -> Tokens:
        """`prune` for sequences of equal length N whose first c tokens are their CLS tokens (the reducer protocol):
        the same tokens, with every count a Python int, so traced and exported graphs have static shapes."""
        s, n, c = tokens.batch_size, tokens.max_seqlen, cls_per_sequence
        keep = c + max(math.ceil((n - c) * self.keep - 1e-9), 0)  # keep_count's rounding, in Python
        ranked = scores.float().view(s, n).masked_fill(torch.arange(n, device=scores.device) < c, float("inf"))
        best = torch.sort(ranked, dim=1, descending=True, stable=True).indices[:, :keep]  # ties: the earlier token
        index = (torch.sort(best, dim=1).values + n * torch.arange(s, device=best.device)[:, None]).reshape(-1)
        return tokens.replace(
            x=tokens.x[index],
            seqlens=(keep,) * s,
            pos=tokens.pos[index] if tokens.pos is not None else None,
            size=tokens.size[index] if tokens.size is not None else None,
        )


def _head_cls(tokens: Tokens) -> int:
    """CLS tokens heading every sequence, read off `pos` (one device read; 0 without positions): for direct callers
    of `TokenPrune.prune` that do not know the count."""
    if tokens.pos is None or tokens.total == 0:
        return 0
    return int((tokens.pos == NO_POSITION).any(dim=1).sum()) // max(tokens.batch_size, 1)


def keep_mask(tokens: Tokens, batch_size: int, grid: tuple[int, int, int]) -> Tensor:
    """bool [batch_size, t, h, w]: True at the (t, h, w) of every non-CLS token of each video.

    Sequences map to videos in order, len(seqlens) // batch_size per video (CLIP: one per frame, or the joined
    sequences after TempMe's ClipMe; the video ViT: one per video).
    """
    if tokens.pos is None:
        raise ConfigError(
            "TokenPrune.trace: the tokens carry no positions (Tokens.pos), so the kept tokens cannot be put "
            "on the grid; trace a model that sets Tokens.pos (vidslim's CLIP and video ViT do)"
        )
    t, h, w = grid
    per_video = max(tokens.batch_size // max(batch_size, 1), 1)
    video = torch.div(tokens.batch_index, per_video, rounding_mode="floor")
    real = ~(tokens.pos == NO_POSITION).any(dim=1)
    pos = tokens.pos[real]
    flat = video[real] * (t * h * w) + pos[:, 0] * (h * w) + pos[:, 1] * w + pos[:, 2]
    mask = torch.zeros(batch_size * t * h * w, dtype=torch.bool, device=tokens.x.device)
    mask[flat] = True
    return mask.view(batch_size, t, h, w)


def carry_scores(scores: Tensor, before: Tokens, after: Tokens, batch_size: int, grid: tuple[int, int, int]) -> Tensor:
    """Scores of `before`'s tokens moved onto `after`'s tokens by (video, t, h, w); CLS tokens get +inf.

    Used when another reducer merged or regrouped tokens between scoring and pruning: a merged token keeps
    the score of the token whose position it kept; a token with no match scores -inf.
    """
    if before.pos is None or after.pos is None:
        raise ConfigError(
            "TokenPrune: another reducer changed the tokens between this layer's attention and its MLP and the "
            "tokens carry no positions (Tokens.pos), so the attention scores cannot follow them; list "
            "TokenPrune after that reducer, or prune at other layers"
        )
    t, h, w = grid
    cells = t * h * w

    def keys(tokens: Tokens) -> tuple[Tensor, Tensor]:
        per_video = max(tokens.batch_size // max(batch_size, 1), 1)
        video = torch.div(tokens.batch_index, per_video, rounding_mode="floor")
        pos = tokens.pos.clamp_min(0)  # type: ignore[union-attr]
        flat = video * cells + pos[:, 0] * (h * w) + pos[:, 1] * w + pos[:, 2]
        return flat, (tokens.pos == NO_POSITION).any(dim=1)  # type: ignore[union-attr]

    old_key, old_cls = keys(before)
    new_key, new_cls = keys(after)
    table = scores.new_full((batch_size * cells + 1,), float("-inf"))  # + a spare slot the CLS tokens write to
    table.index_put_((torch.where(old_cls, batch_size * cells, old_key),), scores)  # an index: no device sync
    carried = table[new_key.clamp(0, batch_size * cells - 1)]
    return torch.where(new_cls, torch.tensor(float("inf"), device=scores.device, dtype=scores.dtype), carried)


# ------------------------------------------------------------------------------------------------ S_M
@dataclasses.dataclass(eq=False)
class TextGuidedPrune:
    """Cross-modal node pruning: keep the visual tokens the text attends to most (spec svitt §3b, gaps §8).

    keep: fraction of the non-CLS visual tokens kept (0.1 for retrieval and pretraining, 0.5 for QA in the
    configs); layer: 0-based fusion layer after whose cross-attention the visual keys and values are pruned
    for the later fusion layers (1: the 2nd fusion layer, our reading of the configs' [1]); score: "cls" (the
    text CLS query's cross-attention averaged over heads, the release default), "mean" (averaged over all real
    text queries) or "random". Visual CLS tokens are always kept.
    """

    keep: float = 0.1
    layer: int = 1
    score: str = "cls"
    seed: int = 0

    def __post_init__(self) -> None:
        self.set_keep(self.keep)
        if self.layer < 0:
            raise ConfigError(f"TextGuidedPrune(layer={self.layer}): the fusion layer index is 0-based, >= 0")
        if self.score not in TEXT_SCORES:
            raise ConfigError(f"TextGuidedPrune(score={self.score!r}): use one of {', '.join(TEXT_SCORES)}")
        self._generator = torch.Generator().manual_seed(self.seed)

    def set_keep(self, keep: float) -> None:
        """Change the keep rate."""
        if not 0.0 < float(keep) <= 1.0:
            raise ConfigError(f"TextGuidedPrune(keep={keep}): keep is the fraction of visual tokens kept, in (0, 1]")
        self.keep = float(keep)

    def text_scores(self, probs: Tensor, text_valid: Tensor | None = None) -> Tensor:
        """Visual-token scores [P, Lv] from cross-attention probabilities [P, H, Lt, Lv] (text CLS at row 0)."""
        if self.score == "random":
            return torch.rand(probs.shape[0], probs.shape[-1], generator=self._generator).to(probs.device)
        if self.score == "cls":
            return probs[:, :, 0].mean(dim=1)
        per_query = probs.mean(dim=1)  # [P, Lt, Lv]
        if text_valid is None:
            return per_query.mean(dim=1)
        weights = text_valid.to(probs.dtype)
        return (per_query * weights[..., None]).sum(1) / weights.sum(1, keepdim=True).clamp_min(1)

    def select(self, scores: Tensor, valid: Tensor, is_cls: Tensor) -> tuple[Tensor, Tensor]:
        """Which visual tokens each pair keeps: (index [P, K], real [P, K]) from scores [P, Lv].

        valid: [P, Lv] real (not padded) tokens; is_cls: [P, Lv] visual CLS tokens (always kept). Each row keeps
        its CLS tokens and ceil(keep · N) of its N other real tokens, highest scores first, listed in their
        original order; K is the largest count, and `real` marks the slots that hold a kept token.
        """
        num_cls = (is_cls & valid).sum(-1)
        keep = num_cls + keep_count((valid & ~is_cls).sum(-1), self.keep)
        ranked = torch.where(is_cls, torch.tensor(float("inf"), device=scores.device), scores.float())
        ranked = ranked.masked_fill(~valid, float("-inf"))
        width = int(keep.max()) if keep.numel() else 0
        best = torch.sort(ranked, dim=-1, descending=True, stable=True).indices[:, :width]
        real = torch.arange(width, device=scores.device)[None, :] < keep[:, None]
        # restore the original order of the kept tokens; padding slots sort last
        order_key = torch.where(real, best, torch.full_like(best, scores.shape[-1]))
        index = torch.sort(order_key, dim=-1).values
        return index.clamp_max(max(scores.shape[-1] - 1, 0)), real
