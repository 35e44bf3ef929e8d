"""SViTT's edge sparsity as an attention pattern: global CLS + local blocks + random blocks (spec svitt §2).

Inside one video (one packed sequence) the first `num_global` tokens are its CLS tokens; the other tokens
(the *body*, already in the chosen token order, see `vidslim.attention.svitt`) are cut, in order, into
blocks of `block` tokens (56 in every released config). Then:

- a CLS query sees every key, and every query sees the CLS keys (global);
- a body query of block i sees the keys of the `local` blocks centred on i, taken circularly as the release
  does with `roll` (local = 1: its own block; `local` must be odd);
- and of `random` other blocks, drawn uniformly without replacement from the blocks outside that window.

The random draw is one matrix of uniform scores [M, M] (M: the most blocks of any video), shared by every
video, head and query of the call, as in the release; block i of a video of m blocks picks the `random`
eligible j < m with the smallest scores. Videos of different lengths (RLT, node pruning) each use the pattern
of their own block count. The last block of a video may be short: the missing keys do not exist here, so
they are masked. The release instead pads with zero keys that still take softmax mass; `mask_padding=False`
reproduces that (gathered kernel only).

Two ways to run it, both from `vidslim.attention.attend(..., pattern=p)`:
- `sparse_attend`: the block-sparse kernels of `vidslim.attention.block_sparse`, which compute only the
  allowed blocks: the fast path for training and inference on CPU and GPU (float32 CPU inference runs a fused
  C kernel, `vidslim.attention.cpu`);
- `allowed`: the pattern as a pure tensor function of (query index, key index, video length), which the
  FlexAttention backend turns into a BlockMask and the SDPA backends into dense masks (references).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vidslim.attention.block_sparse import ZERO_KEY, GatherGroup, gathered_attend
from vidslim.attention.sparse import AttentionPattern
from vidslim.errors import ConfigError
from vidslim.tokens.kept_tensors import kept_across_calls


def ceil_div(a: int, b: int) -> int:
    """ceil(a / b) for non-negative ints."""
    return -(-a // b)


def block_table(scores: Tensor, local: int, random: int) -> Tensor:
    """[M, M, M] bool: entry [m - 1, i, j] says whether query block i sees key block j in a video of m blocks.

    scores: [M, M] uniform draws; query block i picks the `random` blocks j < m outside its circular local
    window with the smallest scores[i, j] (all of them when fewer are eligible). Rows i >= m are all False.
    """
    size = scores.shape[0]
    device = scores.device
    m = torch.arange(1, size + 1, device=device)[:, None, None]
    i = torch.arange(size, device=device)[None, :, None]
    j = torch.arange(size, device=device)[None, None, :]
    inside = (i < m) & (j < m)
    half = local // 2
    dist = torch.remainder(j - i, m)
    window = inside & ((dist <= half) | (dist >= m - half))
    eligible = inside & ~window
    if random <= 0 or size <= 1:
        return window
    ranked = torch.where(eligible, scores[None].expand(size, size, size), torch.tensor(float("inf"), device=device))
    picks = ranked.topk(min(random, size), dim=-1, largest=False).indices
    picked = torch.zeros_like(eligible).scatter_(-1, picks, True) & eligible
    return window | picked


class SViTTPattern(AttentionPattern):
    """Global + local + random block pattern of one attention call (see the module docstring).

    block: tokens per block; local: odd window of blocks; random: random blocks per query block;
    num_global: leading CLS tokens of every video; scores: [M, M] uniform draws for the random blocks (M is
    the most blocks any video of the call may have); mask_padding: mask the missing keys of a short last
    block (True), or let the gathered kernel use unmasked zero keys there as the release does (False).
    """

    def __init__(
        self,
        block: int,
        local: int,
        random: int,
        num_global: int,
        scores: Tensor,
        mask_padding: bool = True,
    ) -> None:
        if block < 1 or local < 1 or local % 2 == 0 or random < 0 or num_global < 0:
            raise ConfigError(
                f"SViTTPattern: need block >= 1, an odd local >= 1, random >= 0 and num_global >= 0; got "
                f"block={block}, local={local}, random={random}, num_global={num_global}"
            )
        if scores.dim() != 2 or scores.shape[0] != scores.shape[1] or scores.shape[0] < 1:
            raise ConfigError(f"SViTTPattern: scores must be a square [M, M] tensor, got {tuple(scores.shape)}")
        self.block, self.local, self.random, self.num_global = block, local, random, num_global
        self.mask_padding = mask_padding
        self.scores = scores
        self.table = block_table(scores, local, random)
        self._plans: dict[tuple[tuple[int, ...], torch.device], list[GatherGroup]] = {}

    # ------------------------------------------------------------------------------------------ layout
    @property
    def max_blocks(self) -> int:
        """The most blocks a video may have under this pattern (M)."""
        return self.table.shape[0]

    def blocks(self, seqlen: int) -> int:
        """Blocks of the body of a video of `seqlen` tokens (0 when it holds only CLS tokens)."""
        return ceil_div(max(seqlen - self.num_global, 0), self.block)

    def _check(self, seqlens: Sequence[int]) -> None:
        longest = max((self.blocks(n) for n in seqlens), default=0)
        if longest > self.max_blocks:
            raise ConfigError(
                f"SViTTPattern: a video of {max(seqlens)} tokens has {longest} blocks of {self.block}, but the "
                f"pattern was drawn for at most {self.max_blocks}; a reducer made sequences longer after the "
                "pattern was built: list SparseAttention after reducers that regroup tokens in reduction=[...]"
            )

    # ------------------------------------------------------------------------------------------ hook
    def allowed(self, q_idx: Tensor, kv_idx: Tensor, seqlen: Tensor) -> Tensor:
        g, b = self.num_global, self.block
        table = self.table.to(q_idx.device)
        top = self.max_blocks - 1
        m = torch.div(seqlen - g + b - 1, b, rounding_mode="floor").clamp(1, self.max_blocks)
        qb = torch.div(q_idx - g, b, rounding_mode="floor").clamp(0, top)
        kb = torch.div(kv_idx - g, b, rounding_mode="floor").clamp(0, top)
        return (q_idx < g) | (kv_idx < g) | table[m - 1, qb, kb]

    def dense_mask(self, seqlen: int, device: torch.device | str | None = None) -> Tensor:
        self._check([seqlen])
        return super().dense_mask(seqlen, device)

    def padded_mask(self, lengths: Tensor, width: int) -> Tensor:
        self._check([width])
        return super().padded_mask(lengths, width)

    # ------------------------------------------------------------------------------------------ kernel
    def plan(self, seqlens: Sequence[int], device: torch.device) -> list[GatherGroup]:
        """Index tables of the gathered kernel for videos of these lengths (cached per layout)."""
        seqlens = tuple(int(n) for n in seqlens)
        key = (seqlens, torch.device(device))
        if key not in self._plans:
            self._check(seqlens)
            self._plans.clear()  # one layout per call in practice; keep the newest only
            self._plans[key] = kept_across_calls(self._build_plan)(seqlens, torch.device(device))
        return self._plans[key]

    def _build_plan(self, seqlens: tuple[int, ...], device: torch.device) -> list[GatherGroup]:
        g, b = self.num_global, self.block
        lens = torch.tensor(seqlens, dtype=torch.int64, device=device)
        starts = torch.cumsum(lens, 0) - lens
        blocks = [self.blocks(n) for n in seqlens]
        groups: list[GatherGroup] = []
        num_rows = sum(blocks)
        if num_rows:
            counts = torch.tensor(blocks, dtype=torch.int64, device=device)
            video = torch.repeat_interleave(torch.arange(len(seqlens), device=device), counts)
            first = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
            row_block = torch.arange(num_rows, device=device) - first
            chosen = self.table.to(device)[counts[video] - 1, row_block]  # [R, M] key blocks of each row
            width = int(chosen.sum(-1).max())
            key_blocks = torch.argsort(chosen.to(torch.int8), dim=-1, descending=True, stable=True)[:, :width]
            real_block = torch.arange(width, device=device)[None, :] < chosen.sum(-1, keepdim=True)
            offs = torch.arange(b, device=device)
            slot = g + key_blocks[:, :, None] * b + offs  # [R, width, b] index inside the video
            length = lens[video][:, None, None]
            real = real_block[:, :, None] & (slot < length)
            pad = ZERO_KEY if not self.mask_padding else -1
            body = torch.where(real, starts[video][:, None, None] + slot, torch.where(real_block[:, :, None], pad, -1))
            head = (starts[video][:, None] + torch.arange(g, device=device)).expand(num_rows, g)
            kv_index = torch.cat((head, body.reshape(num_rows, width * b)), dim=1)
            q_slot = g + row_block[:, None] * b + offs  # [R, b]
            q_index = torch.where(q_slot < lens[video][:, None], starts[video][:, None] + q_slot, -1)
            identity = g == 0 and all(n % b == 0 for n in seqlens)
            groups.append(GatherGroup.build(q_index, kv_index, identity=identity))
        if g:
            widest = max(seqlens)
            q_slot = torch.arange(g, device=device)[None, :]
            q_index = torch.where(q_slot < lens[:, None], starts[:, None] + q_slot, -1)
            k_slot = torch.arange(widest, device=device)[None, :]
            kv_index = torch.where(k_slot < lens[:, None], starts[:, None] + k_slot, -1)
            keep = lens > 0
            groups.append(GatherGroup.build(q_index[keep], kv_index[keep]))
        return groups

    def sparse_attend(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        seqlens: Sequence[int],
        key_bias: Tensor | None = None,
        scale: float | None = None,
    ) -> Tensor:
        """Attention under this pattern with the gathered block-sparse kernel: [total, H, d] -> [total, H, dv]."""
        return gathered_attend(q, k, v, self.plan(seqlens, q.device), key_bias, scale)

    def density(self, seqlens: Sequence[int]) -> float:
        """Fraction of the (query, key) pairs inside each video that this pattern computes."""
        pairs = sum(group.pairs() for group in self.plan(seqlens, self.table.device))
        full = sum(int(n) * int(n) for n in seqlens)
        return pairs / full if full else 1.0


def attention_density(pattern: AttentionPattern | None, seqlens: Sequence[int]) -> float:
    """Fraction of the (query, key) pairs inside each video that `pattern` allows (1.0 for dense attention).

    SViTT patterns count from their kernel's index tables; other patterns from their dense mask.
    """
    seqlens = [int(n) for n in seqlens]
    if pattern is None:
        return 1.0
    if isinstance(pattern, SViTTPattern):
        return pattern.density(seqlens)
    full = sum(n * n for n in seqlens)
    allowed = {n: int(pattern.dense_mask(n).sum()) for n in set(seqlens)}
    return sum(allowed[n] for n in seqlens) / full if full else 1.0
