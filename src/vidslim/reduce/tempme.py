"""TempMe, temporal token merging (Shen et al., ICLR 2025), as a reducer for CLIP's vision tower (spec tempme §1).

CLIP runs every frame of a video as its own sequence [CLS, patches]. TempMe merges progressively:

* ImgMe layers (before the first merge layer): ToMe inside each frame, r tokens per frame after attention, on
  the mean keys (§1.4).
* ClipMe layers (`merge_layers`, group factor k): k neighbouring sequences of a video are joined into one,
  CLS tokens first (clip 0's CLS, clip 1's CLS, ..., then clip 0's patches, clip 1's patches, ...). A learned
  temporal position embedding ([1, F_cur, 1, D], zero-init, one entry per sequence before joining, trainable)
  is added to every token, then M0 tokens are merged *across* the joined clips on the hidden states (before
  attention); after attention M1 tokens are merged *within* the clip on the mean keys (§1.5).
* Intra-clip layers (after the first merge layer, not merge layers): M tokens merged after attention (§1.3).

Merge counts follow §1.6 exactly (`vidslim.reduce.tempme_schedule`): M0 = min(int(n·k·rc), (n-c)·k // 2),
M1 and M = min(int(n'·ri), (n'-c')//2), with float-then-truncate arithmetic; `rc` and `ri` are *merge* fractions
(the paper's keep ratios are R_C = 1 - rc, R_I = 1 - ri). Every merge is size-weighted, sizes add up, and
attention is proportional (log size per key). The CLS tokens are never merged; after the last join the CLS of
frame t sits at index t of the video's sequence, which is where `CLIP.encode_video` reads it (§1.8).

    model = vs.create_model("clip-b32", reduction=[vs.TempMe.paper("clip-b32")])   # r 2, R_C 70 %, R_I 90 %
    model = vs.create_model("clip-b16", reduction=[vs.TempMe.paper("clip-b16")])   # r 10, R_C 60 %, R_I 80 %
    vs.TempMe(r=2, merge_layers=(6, 8, 10), groups=(2, 3, 2), rc=0.3, ri=0.1)

Sequences of unequal lengths (per-frame RLT before TempMe, `vidslim.tokenize.frame_rlt`) are vidslim's extension:
the paper only ever merges full frames. Each sequence merges in proportion to its own length, so a frame RLT cut
to a few patches is not emptied by counts meant for 196 (the counts are Python ints from the lengths, one per
sequence, no device sync; `merge_tokens` takes them as a list):

* ImgMe: a frame of p patches (CLS excluded) merges round(r_l · p / P_l), halves rounded up, where r_l is the
  static schedule's ImgMe count at layer l (`TempMe.schedule`, full frames) and P_l the full frame's patch count
  entering that merge: r scaled by the frame's share of patches. B/16 (r 10, P_0 196): 16 patches merge 1,
  4 patches none, 196 patches 10;
* ClipMe and intra-clip layers: the schedule's *fractions* applied to each joined sequence's own length n (CLS
  included, as the paper counts): M0 = int(n·rc), then M1 or M = int(n'·ri). This is the schedule's formula, so it
  equals round(M_full · p / P_full) up to rounding, and the equal-length path computes the same numbers;
* every count is clamped to half the sequence's patches (`merge_tokens`), so a short frame keeps its CLS and at
  least one patch (all of them when it has one).

A full-length sequence gets exactly the schedule's count, so full frames (and TempMe alone) merge as before, and a
count depends only on the sequence's own length, never on the other videos of the batch: a video gives the same
output alone or batched. (An equal-length batch takes the paper's counts from its own length, r for ImgMe; after
RLT an equal-length ImgMe batch is all full frames, since frame 0 always keeps every patch, so the two agree.)
ClipMe joins k neighbouring sequences whatever their lengths, CLS tokens first, then the
patches of each part in order; the temporal embedding is added when the full-frame schedule merges at that layer.

Differences from the release, on purpose:
* source tracing works through ClipMe layers (`trace_source=True`; the release crashes at the first ClipMe layer,
  §6.2-1): `self.sources` is a `SourceMap` after each forward, with the original tokens' positions (`pos0`), so
  ragged layouts after RLT can be drawn (`vidslim.viz.merge`);
* ImgMe's r is clamped to half the patches (the release fails there instead);
* matching scores and sizes are float32 and the weighted average never forms size·x, so bf16/fp16 are safe
  (§6.2-6);
* the last layer computes the CLS tokens only (CLIP's `cls_readout`), which skips its intra-clip merge: that
  merge cannot change the embedding (§6.3-6).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.reduce.sources import SourceMap
from vidslim.reduce.tempme_schedule import LayerPlan, imgme_merges, proportional_merges, tempme_schedule
from vidslim.reduce.token_merge import LayoutCache, MergeCounts, merge_tokens, next_merge
from vidslim.tokens import Tokens
from vidslim.tokens.protocol import AttentionInfo, HookContext

#: the paper's settings per backbone (§1.7, §1.7b): ImgMe r, merge layers (0-indexed), group factors, rc, ri
PAPER: dict[str, dict[str, Any]] = {
    "clip-b32": dict(r=2, merge_layers=(8, 9, 10), groups=(2, 2, 3), rc=0.3, ri=0.1),
    "clip-b16": dict(r=10, merge_layers=(8, 9, 10), groups=(2, 2, 3), rc=0.4, ri=0.2),
}

#: SigLIP's presets: clip-b16's settings moved to each tower as the paper's relate to its 12 layers and 12 frames.
#: Paper layer l becomes floor(l·L/12) in a tower of L layers (duplicates dropped: 8, 9, 10 -> 1 for siglip-tiny's
#: 2 layers); the groups join all the config's frames by the last merge layer, as the paper's (2, 2, 3) joins its 12
#: (SigLIP runs 8 frames, siglip-tiny 4); ImgMe r keeps the paper's share of a frame's patches (10 of 196 on a
#: B/16 at 224 px, so 1 of siglip-tiny's 16); rc and ri as clip-b16. SigLIP has no CLS, so every token may merge.
SIGLIP_PRESETS: dict[str, dict[str, Any]] = {
    "siglip-b16-224": dict(r=10, merge_layers=(8, 9, 10), groups=(2, 2, 2), rc=0.4, ri=0.2),
    "siglip2-b16-224": dict(r=10, merge_layers=(8, 9, 10), groups=(2, 2, 2), rc=0.4, ri=0.2),
    "siglip-tiny": dict(r=1, merge_layers=(1,), groups=(4,), rc=0.4, ri=0.2),
}

#: X-CLIP's presets: its per-frame tower is CLIP's, so each size takes the paper's setting of the CLIP it is built on,
#: with groups that join its 8 frames (2, 2, 2) by the last merge layer, as the paper's (2, 2, 3) joins 12; the tiny
#: test model (2 layers, 4 frames of 16 patches) as siglip-tiny. Message tokens are never merged (`XCLIP`).
XCLIP_PRESETS: dict[str, dict[str, Any]] = {
    "xclip-b32": dict(PAPER["clip-b32"], groups=(2, 2, 2)),
    "xclip-b16": dict(PAPER["clip-b16"], groups=(2, 2, 2)),
    "xclip-tiny": dict(r=1, merge_layers=(1,), groups=(4,), rc=0.4, ri=0.2),
}


@dataclasses.dataclass
class _Forward:
    """TempMe's state during one forward: the full-frame schedule, computed when unequal frames first need it."""

    plan: list[LayerPlan] | None = None
    layouts: LayoutCache | None = None  # the ragged merges' index tables, built ahead at the first one
    #: the ragged joins' tables built ahead, by layer: (the lengths they are for, `join_tables`)
    joins: dict[int, tuple[tuple[int, ...], tuple[Tensor, Tensor, tuple[int, ...]]]] = dataclasses.field(
        default_factory=dict)


def regroup_layout(seqlens: Sequence[int], k: int, cls_tokens: int, per_video: int) -> tuple[np.ndarray, ...]:
    """Host side of `regroup_order` for sequences of `seqlens`: (new_from_old [total], the clip index inside its video
    of each joined token [total], the joined seqlens as an array). Built with numpy from the lengths alone."""
    n = np.asarray(seqlens, dtype=np.int64)
    seq = np.repeat(np.arange(len(n)), n)
    local = np.arange(int(n.sum()), dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
    key = ((seq // k * 2 + (local >= cls_tokens)) * k + seq % k) * max(int(n.max(initial=0)), 1) + local
    order = np.argsort(key, kind="stable")
    return order, (seq % max(per_video, 1))[order], np.add.reduceat(n, np.arange(0, len(n), k)) if len(n) else n


def regroup_order(tokens: Tokens, k: int, cls_tokens: int) -> tuple[Tensor, tuple[int, ...]]:
    """Packed `regroup_clips` for sequences of any lengths: (new_from_old [total] int64, the joined seqlens).

    Output j holds input sequences j·k .. j·k+k-1 as [their CLS tokens, clip by clip | their patches, clip by
    clip]; `tokens.x[new_from_old]` is the joined packed tensor. One sort of a key computed on the host from the
    lengths (no Python loop, nothing read back from the device)."""
    order, _, joined = regroup_layout(tokens.seqlens, k, cls_tokens, 1)
    return torch.from_numpy(order).to(tokens.x.device, non_blocking=True), tuple(joined.tolist())


def join_tables(seqlens: tuple[int, ...], k: int, cls_tokens: int, per_video: int, device: torch.device
                ) -> tuple[Tensor, Tensor, tuple[int, ...]]:
    """`regroup_layout` on the device, as one transfer: (new_from_old, clip index of each joined token, joined
    seqlens)."""
    order, clip_of, joined = regroup_layout(seqlens, k, cls_tokens, per_video)
    tables = torch.from_numpy(np.concatenate((order, clip_of))).to(device, non_blocking=True)
    return tables[: order.size], tables[order.size :], tuple(joined.tolist())


def regroup_clips(t: Tensor, k: int, cls_tokens: int) -> Tensor:
    """Join every k consecutive sequences of t [S, N, C] into one [S/k, k·N, C]: the k·c CLS tokens first (clip
    by clip), then the patches of clip 0, clip 1, ... (§1.5 step 2)."""
    s, n, ch = t.shape
    g = t.view(s // k, k, n, ch)
    cls = g[:, :, :cls_tokens].reshape(s // k, k * cls_tokens, ch)
    patches = g[:, :, cls_tokens:].reshape(s // k, k * (n - cls_tokens), ch)
    return torch.cat((cls, patches), dim=1)


def share_merges(merges_full: int, patches_full: int, patches: Sequence[int]) -> list[int]:
    """round(merges_full · p / patches_full) for each p in `patches`, halves rounded up, in exact integer
    arithmetic: the full frame's count scaled by each sequence's share of its patches (ImgMe on unequal frames;
    `merge_tokens` clamps to half the patches)."""
    if patches_full <= 0 or merges_full <= 0:
        return [0] * len(patches)
    return [(2 * merges_full * max(p, 0) + patches_full) // (2 * patches_full) for p in patches]


class TempMe(nn.Module):
    """Temporal token merging in CLIP's vision tower (see the module docstring).

    r: ImgMe merges per frame and layer; merge_layers: ClipMe layers (0-indexed, increasing); groups: sequences
    joined at each of them (their product must divide the frame count); rc, ri: cross-clip and intra-clip merge
    fractions; temporal_pos: learned temporal position embeddings at the ClipMe layers; proportional_attention:
    log(size) key bias; trace_source: keep `self.sources`; num_frames: frames per video (default: the model's
    config), which fixes the embedding tables' shapes.
    """

    #: settings per backbone (what `--method tempme` and `{"tempme": "paper"}` start from): the paper's for CLIP,
    #: their depth-scaled counterparts for SigLIP (`SIGLIP_PRESETS`), their 8-frame counterparts for X-CLIP
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {**PAPER, **SIGLIP_PRESETS, **XCLIP_PRESETS}

    def __init__(
        self,
        r: int = 2,
        merge_layers: Sequence[int] = (8, 9, 10),
        groups: Sequence[int] = (2, 2, 3),
        rc: float = 0.3,
        ri: float = 0.1,
        *,
        temporal_pos: bool = True,
        proportional_attention: bool = True,
        trace_source: bool = False,
        num_frames: int | None = None,
    ) -> None:
        super().__init__()
        if int(r) < 0:
            raise ConfigError(f"TempMe r={r}: the ImgMe merges per layer must be >= 0")
        for name, value in (("rc", rc), ("ri", ri)):
            if not 0.0 <= float(value) < 1.0:
                raise ConfigError(
                    f"TempMe {name}={value} must be a merge fraction in [0, 1), e.g. 0.3 for the paper's keep "
                    f"ratio of 70 %"
                )
        self.r, self.rc, self.ri = int(r), float(rc), float(ri)
        self.merge_layers, self.groups = tuple(int(m) for m in merge_layers), tuple(int(k) for k in groups)
        try:  # validates the layers and the group factors
            tempme_schedule(
                max(self.merge_layers, default=0) + 1,
                math.prod(self.groups),
                2,
                0,
                self.merge_layers,
                self.groups,
                0.0,
                0.0,
            )
        except ValueError as error:
            raise ConfigError(f"TempMe: {error}") from error
        self.temporal_pos = bool(temporal_pos)
        self.proportional_attention = bool(proportional_attention)
        self.trace_source = bool(trace_source)
        self.num_frames = num_frames
        self.first_merge = self.merge_layers[0] if self.merge_layers else None
        self.group_at = dict(zip(self.merge_layers, self.groups, strict=True))
        self.temporal_embeddings = nn.ParameterDict()
        self.sources: SourceMap | None = None

    @classmethod
    def paper(cls, backbone: str, **overrides: Any) -> TempMe:
        """The paper's settings for "clip-b32" (r 2, R_C 70 %, R_I 90 %) or "clip-b16" (r 10, 60 %, 80 %)."""
        if backbone not in PAPER:
            raise ConfigError(f"TempMe.paper({backbone!r}): no paper settings; use one of {sorted(PAPER)}")
        return cls(**{**PAPER[backbone], **overrides})

    # ------------------------------------------------------------------------------------------ setup
    def attach(self, model: nn.Module) -> None:
        """Check the model is a CLIP deep enough for the merge layers; create the temporal embedding tables."""
        if not getattr(model.input_spec, "per_frame", False):  # the registry refuses other families first
            raise ConfigError(
                f"TempMe merges CLIP's per-frame sequences; {type(model).__name__} has none. Use it with a CLIP "
                "model (vs.create_model('clip-b32', ...)), or vs.ToMe for the video ViT"
            )
        layers = model.num_layers
        frames = int(self.num_frames or model.input_spec.num_frames)
        if any(m >= layers for m in self.merge_layers):
            raise ConfigError(
                f"TempMe merge_layers {list(self.merge_layers)} do not fit a model of {layers} layers (0 to "
                f"{layers - 1}): pass merge_layers within them (TempMe(merge_layers=...) or "
                "--set tempme.merge_layers=...)"
            )
        if frames % math.prod(self.groups):
            raise ConfigError(
                f"TempMe groups {list(self.groups)} (product {math.prod(self.groups)}) do not divide {frames} frames: "
                "change groups, or num_frames (TempMe(num_frames=...) or the model's config)"
            )
        self.num_frames = frames
        if not self.temporal_pos:
            return
        ref = next(model.parameters())
        sequences = frames
        for layer, k in zip(self.merge_layers, self.groups, strict=True):
            shape = (1, sequences, 1, model.token_dim)
            old = self.temporal_embeddings.get(str(layer))
            if old is None or tuple(old.shape) != shape:
                self.temporal_embeddings[str(layer)] = nn.Parameter(
                    torch.zeros(shape, device=ref.device, dtype=ref.dtype)
                )
            sequences //= k

    def schedule(self, num_layers: int, num_frames: int, tokens_per_frame: int) -> list[LayerPlan]:
        """The static per-layer plan for videos of `num_frames` frames of `tokens_per_frame` tokens (incl. CLS)."""
        return tempme_schedule(
            num_layers, num_frames, tokens_per_frame, self.r, self.merge_layers, self.groups, self.rc, self.ri
        )

    # ------------------------------------------------------------------------------------------ hooks
    def start_forward(self, tokens: Tokens, ctx: HookContext) -> _Forward:
        """Once per forward: reset the source map (recording where the original tokens sit)."""
        self.sources = None
        if self.trace_source:
            self.sources = SourceMap.identity(tokens.seqlens, tokens.x.device, tokens.pos, ctx.batch_size)
        return _Forward()

    def _layout(self, tokens: Tokens, ctx: HookContext) -> tuple[int, int, int]:
        """(sequences, tokens per sequence (the longest), CLS per sequence)."""
        return tokens.batch_size, tokens.max_seqlen, ctx.cls_per_sequence(tokens)

    def _full_frame_plan(self, ctx: HookContext, layer: int | None = None) -> LayerPlan:
        """This layer's (or `layer`'s) entry of the schedule for full frames (what ImgMe scales on unequal-length
        frames)."""
        state: _Forward = ctx.state_of(self)
        if state.plan is None:
            frame = ctx.cls_tokens + ctx.grid[1] * ctx.grid[2]
            try:
                state.plan = self.schedule(ctx.num_layers, ctx.num_frames, frame)
            except ValueError as error:
                raise ConfigError(f"TempMe on {ctx.num_frames} frames: {error}") from error
        return state.plan[ctx.layer if layer is None else layer]

    def _after_counts(self, seqlens: tuple[int, ...], c: int, layer: int, ctx: HookContext) -> MergeCounts:
        """The merges of `after_attention` at `layer` on sequences of `seqlens` holding c CLS tokens each: ImgMe
        (r per frame) before the first merge layer, else the intra-clip M1 or M; per sequence when lengths differ
        (see the module docstring)."""
        imgme = self.first_merge is None or layer < self.first_merge
        if len(set(seqlens)) > 1:
            if imgme:
                plan = self._full_frame_plan(ctx, layer)
                patches = [m - c for m in seqlens]
                return share_merges(plan.merge_after_attn, plan.tokens_attn - plan.cls_tokens, patches)
            return [proportional_merges(m, c, self.ri) for m in seqlens]
        n = seqlens[0] if seqlens else 0
        return imgme_merges(n, c, self.r) if imgme else proportional_merges(n, c, self.ri)

    def _plan_ahead(self, tokens: Tokens, ctx: HookContext, joins_here: bool, state: _Forward) -> None:
        """Build the index tables of every ragged merge and join left in this forward in one burst (`LayoutCache`,
        `state.joins`): the lengths and counts follow from the lengths now, as the hooks will compute them.
        `joins_here`: called before this layer's join."""
        lengths, c, steps = tokens.seqlens, ctx.cls_per_sequence(tokens), []
        for layer in range(ctx.layer, ctx.num_layers):
            k = self.group_at.get(layer)
            if k is not None and (joins_here or layer > ctx.layer):
                if len(set(lengths)) > 1:
                    per_video = len(lengths) // max(ctx.batch_size, 1)
                    state.joins[layer] = (lengths, join_tables(lengths, k, c, per_video, tokens.x.device))
                lengths = tuple(sum(lengths[j : j + k]) for j in range(0, len(lengths), k))
                c *= k
                step, lengths = next_merge(lengths, [proportional_merges(n, c, self.rc) for n in lengths], c)
                steps.append(step)
            step, lengths = next_merge(lengths, self._after_counts(lengths, c, layer, ctx), c)
            steps.append(step)
        state.layouts = LayoutCache()
        state.layouts.prepare([step for step in steps if step is not None], tokens.x.device)

    def _layouts(self, tokens: Tokens, ctx: HookContext, joins_here: bool) -> _Forward:
        """This forward's state, with the tables built ahead at the first hook that sees unequal lengths."""
        state: _Forward = ctx.state_of(self)
        if state.layouts is None and not tokens.is_uniform:
            self._plan_ahead(tokens, ctx, joins_here, state)
        return state

    def before_attention(self, tokens: Tokens, ctx: HookContext) -> Tokens:
        """ClipMe step 1 at a merge layer: join k clips, add the temporal embedding, merge M0 across clips."""
        k = self.group_at.get(ctx.layer)
        if k is None:
            return tokens
        s, n, c = self._layout(tokens, ctx)
        per_video = s // max(ctx.batch_size, 1)
        if per_video * ctx.batch_size != s or per_video % k:
            raise ConfigError(
                f"TempMe layer {ctx.layer} joins {k} sequences but a video holds {per_video} here: the group "
                f"factors {list(self.groups)} must divide the frame count {ctx.num_frames}"
            )
        if not tokens.is_uniform:
            return self._join_packed(tokens, ctx, k, c, per_video)
        d = tokens.dim
        x = tokens.x.view(s, n, d)
        m0 = proportional_merges(n * k, c * k, self.rc)
        metric = regroup_clips(x.detach(), k, c)  # the hidden states, before the embedding is added (§1.5-1)
        if m0 > 0 and self.temporal_pos:
            table = self._temporal_table(ctx, per_video)
            x = (x.view(ctx.batch_size, per_video, n, d) + table.to(x.dtype)).view(s, n, d)
        joined = Tokens(
            regroup_clips(x, k, c).reshape(-1, d),
            (n * k,) * (s // k),
            regroup_clips(tokens.pos.view(s, n, 3), k, c).reshape(-1, 3) if tokens.pos is not None else None,
            regroup_clips(tokens.size.view(s, n, 1), k, c).reshape(-1) if tokens.size is not None else None,
        )
        if self.sources is not None:
            new_from_old = regroup_clips(torch.arange(tokens.total, device=x.device).view(s, n, 1), k, c).reshape(-1)
            old_to_new = torch.empty_like(new_from_old).scatter_(
                0, new_from_old, torch.arange(tokens.total, device=x.device)
            )
            self.sources = self.sources.moved(old_to_new)
        return self._merge(joined, metric.reshape(-1, d), m0, c * k)

    def _temporal_table(self, ctx: HookContext, per_video: int) -> Tensor:
        """The temporal embedding table [1, per_video, 1, D] of this ClipMe layer (a clear error for a wrong size)."""
        table = self.temporal_embeddings[str(ctx.layer)]
        if table.shape[1] != per_video:
            raise ConfigError(
                f"TempMe was built for {self.num_frames} frames (a table of {table.shape[1]} sequences at layer "
                f"{ctx.layer}), got {ctx.num_frames}: create it with TempMe(num_frames={ctx.num_frames}, ...)"
            )
        return table

    def _join_packed(self, tokens: Tokens, ctx: HookContext, k: int, c: int, per_video: int) -> Tokens:
        """ClipMe step 1 on sequences of unequal lengths: join, add the temporal embedding, merge M0 = int(n·rc) of
        each joined sequence of n tokens (see the module docstring)."""
        state = self._layouts(tokens, ctx, joins_here=True)
        lengths, ahead = state.joins.pop(ctx.layer, ((), None))
        if ahead is None or lengths != tokens.seqlens:
            ahead = join_tables(tokens.seqlens, k, c, per_video, tokens.x.device)
        order, clip_of, seqlens = ahead
        m0 = self._full_frame_plan(ctx).merge_cross  # decides the temporal embedding, like the schedule's merges
        metric = tokens.x.detach().index_select(0, order)  # the hidden states, before the embedding is added
        x = metric if tokens.x.requires_grad is False else tokens.x.index_select(0, order)
        if m0 > 0 and self.temporal_pos:
            table = self._temporal_table(ctx, per_video)[0, :, 0].to(x.dtype)  # [per_video, D]
            x = x + table.index_select(0, clip_of)
        joined = Tokens(
            x,
            seqlens,
            tokens.pos.index_select(0, order) if tokens.pos is not None else None,
            tokens.size.index_select(0, order) if tokens.size is not None else None,
        )
        if self.sources is not None:
            old_to_new = torch.empty_like(order).scatter_(0, order, torch.arange(tokens.total, device=order.device))
            self.sources = self.sources.moved(old_to_new)
        counts = [proportional_merges(n, c * k, self.rc) for n in seqlens]
        return self._merge(joined, metric, counts, c * k, state.layouts)

    def after_attention(self, tokens: Tokens, info: AttentionInfo, ctx: HookContext) -> Tokens:
        """ImgMe (r per frame) before the first merge layer, else the intra-clip merge (M1 or M), on the keys."""
        c = ctx.cls_per_sequence(tokens)
        layouts = self._layouts(tokens, ctx, joins_here=False).layouts
        return self._merge(tokens, info.keys_mean, self._after_counts(tokens.seqlens, c, ctx.layer, ctx), c, layouts)

    def _merge(
        self, tokens: Tokens, metric: Tensor, m: MergeCounts, cls_tokens: int, layouts: LayoutCache | None = None
    ) -> Tokens:
        nothing = not any(m) if isinstance(m, Sequence) else m <= 0
        if nothing:
            return tokens
        merged, moved = merge_tokens(tokens, metric, m, cls_tokens, self.sources is not None, layouts)
        if self.sources is not None and moved is not None:
            self.sources = self.sources.moved(moved)
        return merged

    def extra_repr(self) -> str:
        return (
            f"r={self.r}, merge_layers={list(self.merge_layers)}, groups={list(self.groups)}, rc={self.rc}, "
            f"ri={self.ri}, temporal_pos={self.temporal_pos}"
        )

    def __repr__(self) -> str:  # one line: the settings (the tables are listed by named_parameters)
        return f"TempMe({self.extra_repr()})"
