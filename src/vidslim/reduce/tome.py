"""ToMe, token merging (Bolya et al., ICLR 2023), as a reducer for any vidslim encoder (spec tempme §5.1).

In every block, after the attention residual and before the MLP, r tokens of every sequence are merged into
their most similar partners by bipartite soft matching on the attention keys averaged over heads
(`AttentionInfo.keys_mean`). Merged features are size-weighted averages, sizes add up (`Tokens.size`), and
proportional attention adds log(size) to every key's logit so a merged token weighs as the tokens it stands for.

    model = vs.create_model("clip-b16", reduction=[vs.ToMe(r=8)])
    model = vs.create_model("videomae-b16", reduction=[vs.ToMe(r=16, schedule="decreasing")])
    model = vs.create_model("clip-b32", reduction=[vs.ToMe(schedule=[4, 4, 2, 2])])   # r per layer, then 0

Protected tokens: the CLS tokens (`HookContext.cls_per_sequence`: one per frame for CLIP, none for the video
ViT) are never merged and stay at the head in order; the A/B split and the output order follow the official
code (`vidslim.reduce.matching`), so merges match it token for token.

Sequences of unequal lengths (a packed batch after RLT on the video ViT, CLIP's frames after RLT) are merged in one
pass, each min(r, half its patches) tokens (`vidslim.reduce.token_merge`, `vidslim.reduce.ragged_merge`); their
index tables for every layer are built at the first merge of a forward, since r per layer and the lengths decide
them all. The official release handles equal lengths only (spec rlt §4.6).

Schedules (ToMe's `parse_r`): "constant" merges r in every layer; "decreasing" ramps linearly from 1.5·r in the
first layer to 0.5·r in the last (the same total), "increasing" the other way; or give r per layer as a list.

Source tracing (`trace_source=True`): after each forward `reducer.sources` is a `SourceMap` giving, for every
input token, the output token that covers it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

from vidslim.errors import ConfigError
from vidslim.reduce.sources import SourceMap
from vidslim.reduce.token_merge import LayoutCache, merge_steps, merge_tokens
from vidslim.tokens import Tokens
from vidslim.tokens.protocol import AttentionInfo, HookContext

SCHEDULES = {"constant": 0.0, "decreasing": -0.5, "increasing": 0.5}


@dataclasses.dataclass
class _Forward:
    """ToMe's state during one forward: r per layer, and the ragged layouts built ahead at the first merge."""

    per_layer: list[int]
    layouts: LayoutCache | None = None


def tome_schedule(num_layers: int, r: int, schedule: str = "constant") -> list[int]:
    """r per layer: constant, or a linear ramp around r (ToMe's inflection ±0.5) with about the same total."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"ToMe schedule={schedule!r} is unknown; use one of {sorted(SCHEDULES)} or a list of r")
    inflect = SCHEDULES[schedule]
    if num_layers <= 1 or inflect == 0:
        return [int(r)] * num_layers
    start = int(r * (1.0 - inflect))  # decreasing: int(1.5 r) down to 2r - int(1.5 r)
    end = 2 * r - start
    step = (end - start) / (num_layers - 1)
    return [int(start + step * i) for i in range(num_layers)]


class ToMe:
    """Token merging after attention in every block (see the module docstring).

    `PRESETS` is the r a method string ("--method tome") starts from per backbone: on CLIP, TempMe's ImgMe r for the
    same backbone (a like-for-like row); on the video ViT-B (1568 tokens at 16 frames), 100 per layer, which leaves
    368 tokens after the 12th and about 0.65 of the dense FLOPs, near TokenPrune's default (ToMe's paper merges
    r=65 per layer in a 24-layer ViT-L on the same token count); "*" for any other backbone.

    r: tokens merged per sequence in each layer (with a named schedule); schedule: "constant", "decreasing",
    "increasing", or a list of r per layer (then leave r out; layers past the list merge nothing);
    proportional_attention: add log(size) to attention logits (ToMe advises it for off-the-shelf models and
    off for training); trace_source: keep a `SourceMap` in `self.sources` after each forward.
    """

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "clip-b32": {"r": 2}, "clip-b16": {"r": 10}, "videomae-b16": {"r": 100}, "*": {"r": 8},
        # SigLIP: TempMe's SigLIP ImgMe r (`tempme.SIGLIP_PRESETS`), the like-for-like row as on CLIP; the tiny
        # model's frames have 16 patches and 2 layers, where "*"'s 8 would halve every frame in its first layer
        "siglip-b16-224": {"r": 10}, "siglip2-b16-224": {"r": 10}, "siglip-tiny": {"r": 1},
        # X-CLIP: TempMe's X-CLIP ImgMe r (`tempme.XCLIP_PRESETS`), as on the CLIP each size is built on
        "xclip-b32": {"r": 2}, "xclip-b16": {"r": 10}, "xclip-tiny": {"r": 1},
        # V-JEPA 2 (2048 tubelets at 16x256) and ViViT-B (3136 + CLS at 32x224): r per layer so that about a quarter
        # of the tokens reach the last block, as videomae-b16's 100; the tiny models' 8 tubelets take 2
        "vjepa2-vitl-256": {"r": 65}, "vjepa2-vith-256": {"r": 50}, "vjepa2-vitg-256": {"r": 40},
        "vivit-b": {"r": 200}, "vjepa2-tiny": {"r": 2}, "vivit-tiny": {"r": 2},
    }

    def __init__(
        self,
        r: int | None = None,
        schedule: str | Sequence[int] = "constant",
        proportional_attention: bool = True,
        trace_source: bool = False,
    ) -> None:
        if isinstance(schedule, str):
            if r is None or int(r) < 0:
                raise ConfigError(f"ToMe(r=...) needs r >= 0 tokens per layer with schedule={schedule!r}, got r={r}")
            self._per_layer: tuple[int, ...] | None = None
            tome_schedule(1, int(r), schedule)  # validates the name
        else:
            if r is not None:
                raise ConfigError("ToMe: give either r (with a named schedule) or schedule=[r per layer], not both")
            if any(int(v) < 0 for v in schedule):
                raise ConfigError(f"ToMe schedule must hold r >= 0 per layer, got {list(schedule)}")
            self._per_layer = tuple(int(v) for v in schedule)
        self.r, self.schedule = r, schedule
        self.proportional_attention = bool(proportional_attention)
        self.trace_source = bool(trace_source)
        self.sources: SourceMap | None = None

    def layer_r(self, num_layers: int) -> list[int]:
        """The r of every layer of an encoder with `num_layers` blocks."""
        if self._per_layer is None:
            return tome_schedule(num_layers, int(self.r or 0), str(self.schedule))
        if len(self._per_layer) > num_layers:
            raise ConfigError(f"ToMe schedule has {len(self._per_layer)} entries for a model of {num_layers} layers")
        return [*self._per_layer, *([0] * (num_layers - len(self._per_layer)))]

    def start_forward(self, tokens: Tokens, ctx: HookContext) -> _Forward:
        """This forward's r per layer; the source map restarts at the input tokens. Within a sequence's tokens, r
        is clamped to what one matching can merge (half of them, as ToMe's release does); an r larger than every
        sequence entering the first block is a mistake and is refused."""
        per_layer = self.layer_r(ctx.num_layers)
        protected = ctx.cls_per_sequence(tokens)
        patches = tokens.max_seqlen - protected
        if per_layer and max(per_layer) > patches:
            besides = " besides CLS" if protected else ""
            raise ConfigError(
                f"ToMe(r={max(per_layer)}): the longest sequence entering the first block holds {patches} tokens"
                f"{besides}, fewer than the r it is asked to merge per layer; pick r <= {patches // 2}"
            )
        if self.trace_source:
            self.sources = SourceMap.identity(tokens.seqlens, tokens.x.device, tokens.pos, ctx.batch_size)
        return _Forward(per_layer)

    def after_attention(self, tokens: Tokens, info: AttentionInfo, ctx: HookContext) -> Tokens:
        """Merge this layer's r tokens per sequence on the mean keys. At the first merge of unequal sequences, the
        index tables of this and every later layer's merge are built in one burst (`LayoutCache`)."""
        state: _Forward = ctx.state_of(self)
        r = state.per_layer[ctx.layer]
        if r <= 0:
            return tokens
        c = ctx.cls_per_sequence(tokens)
        if state.layouts is None and not tokens.is_uniform:
            state.layouts = LayoutCache()
            state.layouts.prepare(merge_steps(tokens.seqlens, state.per_layer[ctx.layer :], c), tokens.x.device)
        merged, moved = merge_tokens(tokens, info.keys_mean, r, c, self.trace_source, state.layouts)
        if self.sources is not None and moved is not None:
            self.sources = self.sources.moved(moved)
        return merged

    def __repr__(self) -> str:
        what = f"r={self.r}, schedule={self.schedule!r}" if self._per_layer is None else f"schedule={self.schedule!r}"
        return f"ToMe({what}, proportional_attention={self.proportional_attention})"
