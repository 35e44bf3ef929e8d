"""`SparseAttention`: SViTT's edge sparsity (spec svitt §2) as a reducer that hands the blocks a pattern.

    model = vs.create_model("videomae-b16", reduction=[vs.SparseAttention(block=56, local=1, random=3)])

In every block it (1) puts each sequence's tokens in the chosen order (`before_attention`), then (2) draws
the random blocks and returns the layer's pattern from the `attention_pattern` hook, which the block passes
to `attend(..., pattern=...)`. The pattern (`SViTTPattern`) runs on the gathered block-sparse kernel (or as
a FlexAttention block mask under `use_backend("flex")`, or as dense masks on the other backends). It never
drops a token: node sparsity is `vidslim.reduce.svitt_prune.TokenPrune`. List it after reducers that
regroup tokens before attention (TempMe's ClipMe), so that blocks are cut from the final sequences.

Token order. Blocks are contiguous runs of each sequence's tokens sorted by their ordering key: raster
(t, h, w), or the index along a 3-D Z-curve or Hilbert curve (`vidslim.attention.curves`), computed from
`Tokens.pos`. The release permutes the full grid once and keeps that order when it prunes (kept tokens are
re-sorted by original index), so its blocks are contiguous runs of the *remaining* tokens in curve order,
which is what sorting the remaining tokens by their key gives: after pruning, RLT or merging, blocks are
re-formed from the tokens that are left, by their own (t, h, w). CLS tokens (NO_POSITION) stay at the head.
Reordering moves x, pos and size together; the models pool by mean and read CLS tokens at the head, so
their outputs do not depend on token order.

Randomness. Random blocks come from this object's own `torch.Generator` seeded by `seed`: with
`resample="train"` (default) they are redrawn at every layer of every training forward and fixed per layer in
eval mode (a draw seeded by (seed, layer)), so evaluation is deterministic; "always" redraws in eval too
(the release's behaviour, still reproducible from the seed); "never" fixes them in training as well.

Deviations from the release, on purpose: padded keys of a short last block are masked (`mask_padding=True`;
False reproduces the release's unmasked zero keys), evaluation is deterministic by default, and no Python
loop over blocks. Our models have absolute (not relative) position embeddings, so there is no relative bias
to gather. With `global_cls=False` CLS tokens are ordinary members of the first block.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import torch

from vidslim.attention.curves import ORDERS, order_keys
from vidslim.attention.svitt_pattern import SViTTPattern, attention_density, ceil_div
from vidslim.errors import ConfigError
from vidslim.tokens.packed import NO_POSITION, Tokens
from vidslim.tokens.protocol import HookContext

RESAMPLE = ("train", "always", "never")


def sort_tokens(tokens: Tokens, grid: tuple[int, int, int], order: str) -> Tokens:
    """Each sequence's tokens sorted by their `order` key (CLS first, stable); the same object if already so."""
    if tokens.pos is None:
        if order != "raster":
            raise ConfigError(
                f"SparseAttention(order={order!r}) needs token positions (Tokens.pos) to order tokens along the "
                "curve; use order='raster' or keep pos on the tokens"
            )
        return tokens
    keys = order_keys(tokens.pos, grid, order)
    perm = torch.argsort(keys, stable=True)
    perm = perm[torch.argsort(tokens.batch_index[perm], stable=True)]
    if torch.equal(perm, torch.arange(tokens.total, device=perm.device)):
        return tokens
    return tokens.replace(
        x=tokens.x[perm], pos=tokens.pos[perm], size=tokens.size[perm] if tokens.size is not None else None
    )


def global_tokens(tokens: Tokens, cls_tokens: int) -> int:
    """CLS tokens at the head of every sequence: counted from pos (NO_POSITION), else `cls_tokens`."""
    if tokens.pos is None:
        return cls_tokens
    is_cls = (tokens.pos == NO_POSITION).any(dim=1)
    counts = torch.bincount(tokens.batch_index[is_cls], minlength=tokens.batch_size).tolist()
    if len(set(counts)) > 1:
        raise ConfigError(
            f"SparseAttention: sequences hold different numbers of CLS tokens {sorted(set(counts))}; the pattern "
            "needs the same count in every sequence (use global_cls=False to treat CLS tokens as ordinary tokens)"
        )
    return counts[0] if counts else 0


def _check_sizes(block: int, local: int, random: int) -> None:
    if block < 1 or local < 1 or local % 2 == 0 or random < 0:
        raise ConfigError(
            f"SparseAttention: need block >= 1, an odd local >= 1 (a window centred on the query block) and "
            f"random >= 0; got block={block}, local={local}, random={random}"
        )


@dataclasses.dataclass(eq=False)
class SparseAttention:
    """SViTT edge sparsity: global CLS + `local` blocks + `random` blocks of `block` tokens per query block.

    block, local, random: the pattern (the release: 56, 1, 3); local must be odd.
    global_cls: CLS tokens see and are seen by every token (the release); False treats them as body tokens.
    order: "raster", "zcurve" or "hilbert" (the release's none / zcurve / hilbert `token_3d_order`).
    seed, resample: where random blocks come from and when they are redrawn (see the module docstring).
    mask_padding: mask the missing keys of a short last block (True) or reproduce the release (False).
    layers: blocks that use the pattern (None: all); the others stay dense.
    """

    block: int = 56
    local: int = 1
    random: int = 3
    global_cls: bool = True
    order: str = "raster"
    seed: int = 0
    resample: str = "train"
    mask_padding: bool = True
    layers: Iterable[int] | None = None

    def __post_init__(self) -> None:
        _check_sizes(self.block, self.local, self.random)
        if self.order not in ORDERS:
            raise ConfigError(f"SparseAttention(order={self.order!r}): use one of {', '.join(ORDERS)}")
        if self.resample not in RESAMPLE:
            raise ConfigError(f"SparseAttention(resample={self.resample!r}): use one of {', '.join(RESAMPLE)}")
        self.layers = None if self.layers is None else frozenset(int(i) for i in self.layers)
        self._generator = torch.Generator().manual_seed(self.seed)
        self._fixed: dict[tuple[int, ...], SViTTPattern] = {}
        #: layer -> (pattern or None when dense, seqlens) of the last forward, for `densities()`
        self.last_patterns: dict[int, tuple[SViTTPattern | None, tuple[int, ...]]] = {}

    def set_sparsity(self, block: int | None = None, local: int | None = None, random: int | None = None) -> None:
        """Change the pattern (the curriculum does this between stages); None leaves a setting as it is."""
        block = self.block if block is None else int(block)
        local = self.local if local is None else int(local)
        random = self.random if random is None else int(random)
        _check_sizes(block, local, random)
        self.block, self.local, self.random = block, local, random

    # ------------------------------------------------------------------------------------------ reducer hooks
    def attach(self, model: Any) -> None:
        """Reset the random stream, so that a freshly attached model draws the same patterns for the same seed."""
        self.reseed(self.seed)

    def reseed(self, seed: int) -> None:
        """Restart the training random stream from `seed`."""
        self.seed = seed
        self._generator = torch.Generator().manual_seed(seed)

    def active(self, layer: int) -> bool:
        """Whether block `layer` uses the sparse pattern."""
        return self.layers is None or layer in self.layers  # type: ignore[operator]

    def before_attention(self, tokens: Tokens, ctx: HookContext) -> Tokens:
        """Put each sequence's tokens in the chosen order (blocks are contiguous runs of that order)."""
        if not self.active(ctx.layer):
            return tokens
        return sort_tokens(tokens, ctx.grid, self.order)

    def attention_pattern(self, tokens: Tokens, ctx: HookContext) -> SViTTPattern | None:
        """This layer's pattern for the tokens about to attend (None: dense), with freshly drawn random blocks."""
        if not self.active(ctx.layer):
            self.last_patterns[ctx.layer] = (None, tokens.seqlens)
            return None
        training = bool(getattr(ctx.model, "training", False))
        num_global = global_tokens(tokens, ctx.cls_tokens) if self.global_cls else 0
        pattern = self.pattern(tokens.seqlens, num_global, ctx.layer, training)
        self.last_patterns[ctx.layer] = (pattern, tokens.seqlens)
        return pattern

    # ------------------------------------------------------------------------------------------ patterns
    def pattern(self, seqlens: Iterable[int], num_global: int, layer: int, training: bool) -> SViTTPattern | None:
        """The pattern of one layer for sequences of these lengths; None when it would allow every pair."""
        seqlens = [int(n) for n in seqlens]
        blocks = [ceil_div(max(n - num_global, 0), self.block) for n in seqlens]
        if all(m <= self.local + self.random for m in blocks):
            return None  # every query sees every block: plain dense attention, exactly
        most = max(blocks)
        if self.resample == "always" or (self.resample == "train" and training):
            scores = torch.rand(most, most, generator=self._generator)
            return SViTTPattern(self.block, self.local, self.random, num_global, scores, self.mask_padding)
        key = (layer, most, num_global, self.block, self.local, self.random, self.mask_padding, self.seed)
        pattern = self._fixed.get(key)
        if pattern is None:  # fixed patterns are kept, with their kernel plans, for the next forward
            if len(self._fixed) >= 256:  # many distinct lengths (RLT): keep the cache bounded
                self._fixed.clear()
            scores = torch.rand(most, most, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + layer))
            pattern = SViTTPattern(self.block, self.local, self.random, num_global, scores, self.mask_padding)
            self._fixed[key] = pattern
        return pattern

    def densities(self) -> dict[int, float]:
        """Layer -> fraction of (query, key) pairs computed in the last forward (1.0 where attention was dense)."""
        return {layer: attention_density(p, lens) for layer, (p, lens) in sorted(self.last_patterns.items())}
