"""The padded baseline: run a batch the way a plain batch tensor does, every sequence padded to the longest.

A pipeline that batches a fixed number of windows into one [B, L, D] tensor must pad ragged sequences (RLT
keeps a different number of tokens in every frame) to the longest one in the batch and mask the padding out of
attention (a key padding mask). Every layer then works on B * L tokens, padding included. vidslim packs the
tokens instead and never pays for padding; `PadToLongest` is how the embedding benchmark measures the padded way
on the same model, so both run the same weights, kernels and job:

    model.set_reduction([vs.RLT(), PadToLongest()])      # the CLIP family; RLT picks the tokens, this pads them

Before the first block it pads every sequence to the batch's longest with zero tokens of size 0 (real tokens
size 1) and switches on proportional attention, which adds log(size) to every key's logit: 0 for real keys, -inf
for padding, so the padding is exactly a key padding mask and the real tokens' outputs equal the packed run.
CLIP reads one CLS token per frame, at the head of its sequence, so the padding never reaches the embedding.

Only for models whose tokens carry no sizes of their own and that read CLS tokens (the CLIP family), with no
reducers inside the model (they would merge or prune padding as if it were content).
"""

from __future__ import annotations

import weakref
from typing import Any

import torch

from vidslim.errors import ConfigError
from vidslim.tokens import Tokens
from vidslim.tokens.protocol import HookContext
from vidslim.tokens.selection import TokenSelector

#: block hooks another reducer may have; with any of them the padding would be merged or pruned as content
_HOOKS = ("start_forward", "before_attention", "after_attention", "after_mlp", "attention_pattern")


class PadToLongest:
    """Pads the batch's sequences to the longest before the first block (see the module docstring)."""

    proportional_attention = True

    def __init__(self) -> None:
        self._model: weakref.ref[Any] | None = None

    def attach(self, model: Any) -> None:
        """Refuse models it cannot pad without changing their output (the other reducers are checked at the first
        forward: they are not attached yet)."""
        if getattr(model, "family", None) != "clip":
            raise ConfigError(f"PadToLongest pads CLIP-family models (they read CLS tokens), not "
                              f"{type(model).__name__}; use it with a CLIP model")
        self._model = weakref.ref(model)

    def before_attention(self, tokens: Tokens, ctx: HookContext) -> Tokens:
        """At the first block: [CLS, kept patches] per sequence -> equal-length sequences, padding of size 0."""
        if ctx.layer != 0:
            return tokens
        model = self._model() if self._model is not None else None
        for other in getattr(model, "reduction", ()):
            if other is not self and not isinstance(other, TokenSelector) and any(hasattr(other, h) for h in _HOOKS):
                raise ConfigError(f"PadToLongest cannot run with {type(other).__name__}, which acts inside the "
                                  "model; attach it with a before-the-model reducer (RLT) only")
        if tokens.is_uniform:
            return tokens
        if tokens.size is not None:
            raise ConfigError("PadToLongest needs tokens without sizes (a size is what masks the padding); "
                              "use it with RLT on a CLIP model only")
        return pad_to_longest(tokens)


def pad_to_longest(tokens: Tokens) -> Tokens:
    """An equal-length copy of `tokens`: each sequence gets zero tokens of size 0 (position (0, 0, 0)) at its end,
    up to the longest; real tokens get size 1."""
    x = tokens.pad_values(tokens.x)  # [S, L, D]
    size = tokens.pad_values(torch.ones(tokens.total, dtype=tokens.x.dtype, device=tokens.x.device))  # [S, L]
    pos = tokens.pad_values(tokens.pos) if tokens.pos is not None else None  # [S, L, 3]
    return Tokens.from_dense(x, pos, size)
