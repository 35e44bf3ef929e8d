"""The reducer protocol: where a reducer acts inside a transformer, and what it sees there.

A *reducer* is any object passed in a model's `reduction=[...]` list (ToMe, TempMe, SViTT node pruning, ...).
Every hook is optional: a reducer defines only the methods it needs. Once per forward, before the first block,

    state = reducer.start_forward(tokens, ctx)             # per-forward state, read back with ctx.state_of(reducer)

then the encoder calls the block hooks at three points of every block, in list order:

    tokens = reducer.before_attention(tokens, ctx)        # e.g. TempMe's cross-clip merge (ClipMe, step 1)
    x = x + attn(ln1(x))
    tokens = reducer.after_attention(tokens, info, ctx)   # e.g. ToMe / ImgMe merge on info.keys_mean
    x = x + mlp(ln2(x))
    tokens = reducer.after_mlp(tokens, ctx)               # e.g. SViTT pruning on the CLS attention row

Each hook receives and returns a `vidslim.tokens.Tokens` (possibly with fewer tokens, or regrouped into fewer,
longer sequences). `ctx.layer` says which block is running, so a reducer carries its own schedule.

`info` (an `AttentionInfo`) exposes what the attention computed, lazily: `keys_mean` (keys averaged over heads)
and `cls_attention` (the first query's attention row per sequence). Nothing is computed unless a hook reads
it, and with no reducers the model builds no `info` and no context at all, so the dense model pays nothing.

Token bookkeeping a reducer must keep: each sequence's CLS tokens (pos == NO_POSITION) stay at its head, are
never dropped or merged, and keep their order (CLIP reads one CLS per frame after the last block); `pos` and
`size` follow the tokens they describe. With no CLS (the video ViT) `cls_attention` is the first token's row.
`ctx.cls_per_sequence(tokens)` says how many CLS tokens head each sequence now (the protected count of a merge;
more than `ctx.cls_tokens` once sequences were joined).

CLIP's vision tower computes only the CLS tokens in its last block (`VisionTransformer.cls_readout`): there the
before_attention hooks run, the after_attention and after_mlp hooks do not (their work could not reach a CLS
token), and the block returns the CLS tokens alone.

A reducer that acts *before* the model (RLT, random masking) is a `TokenSelector` (`vidslim.tokens.selection`):
it picks which patches or tubelets become tokens, and the model embeds only those (`model.embed(video, keep)`).

Optional attributes and methods a reducer may also have:
    proportional_attention: bool   when any reducer sets it, attention adds log(size) to every key's logit
                                   (ToMe's proportional attention), for tokens whose `size` is set
    attention_pattern(tokens, ctx) -> AttentionPattern | None
                                   edge sparsity (SViTT): which keys each query may see inside its sequence
                                   in this block (`vidslim.attention.sparse`); the first reducer that returns
                                   a pattern decides, None leaves attention full
    attach(model) -> None          called once when the reducer is attached to a model: check compatibility
                                   (raise `vidslim.errors.ConfigError`) or create per-layer parameters
A reducer that is an `nn.Module` is registered under the model (`model.reduction_modules`), so its
parameters move with `.to()`, train with the model and are saved by `save_model`.

Profiling: while `torch.profiler` records, every hook call (and the attention-pattern and size-bias calls) runs
inside a range named `vidslim.reduce.<Reducer>.<hook>` (`reduce_range`), so a trace shows what the reductions
themselves cost (`vidslim.bench.overhead` sums them). Otherwise `reduce_range` returns a shared no-op context
after reading one flag: the labels cost nothing outside a profiler.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

import torch
import torch.autograd.profiler as _autograd_profiler
from torch import Tensor, nn

from vidslim.tokens.packed import Tokens
from vidslim.tokens.segments import segment_softmax

#: name prefix of the profiler ranges around reducer calls (summed by `vidslim.bench.overhead`)
REDUCE_RANGE_PREFIX = "vidslim.reduce."

_NO_RANGE = contextlib.nullcontext()


def reduce_range(owner: object, point: str) -> contextlib.AbstractContextManager[Any]:
    """A profiler range `vidslim.reduce.<owner's class>.<point>` while torch.profiler records, else a shared no-op.

    `owner` is the reducer, one of its bound methods, or a name. The check is one read of the flag torch's profiler
    sets on entry (a private attribute of `torch.autograd.profiler`; a missing flag counts as "not profiling").
    """
    if not getattr(_autograd_profiler, "_is_profiler_enabled", False):
        return _NO_RANGE
    name = owner if isinstance(owner, str) else type(getattr(owner, "__self__", owner)).__name__
    return torch.profiler.record_function(f"{REDUCE_RANGE_PREFIX}{name}.{point}")


@dataclasses.dataclass
class HookContext:
    """What a hook knows about the forward pass it runs in (one per forward, `layer` updated per block).

    layer:        index of the running block, 0-based
    num_layers:   blocks in this encoder
    batch_size:   videos in the batch (sequences may be more: CLIP starts with one sequence per frame)
    num_frames:   frames per video at the input (CLIP) or temporal tubelet slots (video ViT)
    cls_tokens:   leading CLS tokens per input sequence (1 for CLIP's vision tower, 0 for the video ViT)
    grid:         (t, h, w) token grid of one video at the input
    model:        the encoder running the hooks (read its config, never mutate it here)
    states:       what each reducer's `start_forward` returned for this forward, by reducer (`state_of`):
                  how a reducer carries things from one hook or layer to the next (ToMe its per-layer r,
                  SViTT's pruning the scores it takes after attention and uses after the MLP)
    proportional_attention: add log(size) to attention logits (set from the reducers' attributes)
    input_sequences: sequences entering the first block (CLIP: batch_size · num_frames, one per frame; the video
                  ViT: batch_size); 0 means batch_size
    """

    layer: int
    num_layers: int
    batch_size: int
    num_frames: int
    cls_tokens: int
    grid: tuple[int, int, int]
    model: nn.Module
    states: dict[int, Any] = dataclasses.field(default_factory=dict)
    proportional_attention: bool = False
    input_sequences: int = 0

    def start(self, tokens: Tokens, *reducers: object) -> HookContext:
        """Run `start_forward` of each reducer that has one on the tokens entering the first block (a model does
        this through `ReducerHooks.start`; a test or a hand-driven block calls it directly). Returns self."""
        for reducer in reducers:
            begin = getattr(reducer, "start_forward", None)
            if callable(begin):
                self.states[id(reducer)] = begin(tokens, self)
        return self

    def state_of(self, reducer: object) -> Any:
        """What `reducer.start_forward` returned for this forward (a KeyError names a reducer that has none)."""
        try:
            return self.states[id(reducer)]
        except KeyError:
            raise KeyError(f"{type(reducer).__name__} has no per-forward state: define start_forward") from None

    @property
    def cls_total(self) -> int:
        """CLS tokens in the whole batch (they are never dropped or merged, so this never changes)."""
        return self.cls_tokens * (self.input_sequences or self.batch_size)

    def cls_per_sequence(self, tokens: Tokens) -> int:
        """How many CLS tokens head each sequence of `tokens` now: the protected count of a merge. Sequences that
        were joined (TempMe's ClipMe) hold the CLS tokens of all their parts."""
        total, sequences = self.cls_total, tokens.batch_size
        if sequences == 0 or total % sequences:
            raise ValueError(
                f"{total} CLS tokens do not spread evenly over {sequences} sequences: a reducer regrouped frames "
                "into sequences of different origins; join the same number of frames into every sequence"
            )
        return total // sequences


class AttentionInfo:
    """What one attention layer computed, exposed lazily to `after_attention` hooks.

    q, k are the packed projections [total, H, d] (with their biases; q not yet scaled), `seqlens` the layout
    they were computed on, `scale` the softmax scale and `key_bias` the additive per-key bias used ([total]
    or None). Both properties are computed on first access and cached.
    """

    def __init__(self, q: Tensor, k: Tensor, seqlens: Sequence[int], scale: float, key_bias: Tensor | None) -> None:
        self.q, self.k, self.seqlens, self.scale, self.key_bias = q, k, tuple(seqlens), scale, key_bias

    @cached_property
    def keys_mean(self) -> Tensor:
        """[total, d]: the keys averaged over heads (ToMe's and TempMe's similarity metric)."""
        return self.k.mean(dim=1)

    @cached_property
    def cls_attention(self) -> Tensor:
        """[total] float: softmax attention of each sequence's first query (its CLS) over that sequence's keys,
        averaged over heads. Each sequence's entries sum to 1; entry 0 of a sequence is the CLS key itself."""
        return cls_attention_row(self.q, self.k, self.seqlens, self.scale, self.key_bias)


def cls_attention_row(
    q: Tensor, k: Tensor, seqlens: Sequence[int], scale: float, key_bias: Tensor | None = None
) -> Tensor:
    """Attention probabilities of the first query of each packed sequence, averaged over heads: [total].

    Only the one query row per sequence is computed (O(total·H·d)), never the full attention matrix.
    Every sequence must hold at least one token.
    """
    seqlens = tuple(int(n) for n in seqlens)
    total, heads, _ = k.shape
    if len(set(seqlens)) <= 1:  # equal lengths: plain batched views
        s, n = len(seqlens), seqlens[0] if seqlens else 0
        kd = k.reshape(s, n, heads, -1)
        logits = torch.einsum("shd,snhd->snh", q.reshape(s, n, heads, -1)[:, 0].float(), kd.float()) * scale
        if key_bias is not None:
            logits = logits + key_bias.reshape(s, n, 1).float()
        return logits.softmax(dim=1).mean(dim=-1).reshape(total).to(q.dtype)
    lengths = torch.tensor(seqlens, device=q.device)
    starts = torch.cumsum(lengths, 0) - lengths
    seq = torch.repeat_interleave(torch.arange(len(seqlens), device=q.device), lengths, output_size=total)  # [total]
    logits = (q[starts].float()[seq] * k.float()).sum(-1) * scale  # [total, H]
    if key_bias is not None:
        logits = logits + key_bias.float()[:, None]
    return segment_softmax(logits, seq, len(seqlens)).mean(dim=-1).to(q.dtype)


@runtime_checkable
class Reducer(Protocol):
    """The (structural) type of a reducer. Every method is optional; see the module docstring."""

    def start_forward(self, tokens: Tokens, ctx: HookContext) -> Any:  # pragma: no cover - protocol
        """Once per forward, before the first block: return this forward's state (`ctx.state_of(self)`)."""
        ...

    def before_attention(self, tokens: Tokens, ctx: HookContext) -> Tokens:  # pragma: no cover - protocol
        """Shrink or regroup the tokens entering a block (before its first LayerNorm)."""
        ...

    def after_attention(self, tokens: Tokens, info: AttentionInfo, ctx: HookContext) -> Tokens:  # pragma: no cover
        """Shrink the tokens after the attention residual, with the attention's keys at hand."""
        ...

    def after_mlp(self, tokens: Tokens, ctx: HookContext) -> Tokens:  # pragma: no cover - protocol
        """Shrink the tokens leaving a block (after its MLP residual)."""
        ...


HookFn = Callable[..., Tokens]


@dataclasses.dataclass(frozen=True)
class ReducerHooks:
    """The hooks of a reducer list, gathered once when the list is attached (so no per-block lookups)."""

    start_forward: tuple[Callable[..., Any], ...] = ()
    before_attention: tuple[HookFn, ...] = ()
    after_attention: tuple[HookFn, ...] = ()
    after_mlp: tuple[HookFn, ...] = ()
    attention_pattern: tuple[Callable[..., Any], ...] = ()
    proportional_attention: bool = False

    @classmethod
    def gather(cls, reducers: Sequence[object]) -> ReducerHooks | None:
        """Collect the bound hook methods of `reducers`; None when no reducer has any hook or flag."""

        def bound(name: str) -> tuple[HookFn, ...]:
            return tuple(getattr(r, name) for r in reducers if callable(getattr(r, name, None)))

        hooks = cls(
            bound("start_forward"),
            bound("before_attention"),
            bound("after_attention"),
            bound("after_mlp"),
            bound("attention_pattern"),
            any(bool(getattr(r, "proportional_attention", False)) for r in reducers),
        )
        empty = not (hooks.before_attention or hooks.after_attention or hooks.after_mlp or hooks.attention_pattern)
        return None if empty and not hooks.proportional_attention else hooks

    def start(self, tokens: Tokens, ctx: HookContext) -> None:
        """Run every `start_forward` hook once, before the first block, keeping what each returns in `ctx`."""
        for hook in self.start_forward:
            with reduce_range(hook, "start_forward"):
                ctx.states[id(hook.__self__)] = hook(tokens, ctx)  # type: ignore[attr-defined]


def check_tokens(result: object, hook: HookFn) -> Tokens:
    """Make sure a hook returned Tokens (a common slip is returning None from an in-place edit)."""
    if not isinstance(result, Tokens):
        owner = type(getattr(hook, "__self__", hook)).__name__
        raise TypeError(f"{owner}.{getattr(hook, '__name__', 'hook')} must return Tokens, got {type(result).__name__}")
    return result
