"""Pre-LN transformer blocks over packed tokens, with the reducer hooks of `vidslim.tokens.protocol`.

    x = x + attn(ln1(x))        (hooks: before_attention, after_attention)
    x = x + mlp(ln2(x))         (hook: after_mlp)

Every reducer call runs inside `vidslim.tokens.protocol.reduce_range` (a profiler label, free when not profiling).

LayerNorms, Linears and MLPs run on the packed [total, D] tensor with no padding. The attention computes q, k, v
with one fused projection, reshapes to [total, H, d] and calls `vidslim.attention.attend`, which takes the plain
dense path when every sequence has the same length. A LoRA adapter (`vidslim.models.lora`) on the fused projection
sits in `Attention.lora` (None without one) and adds its low-rank delta to q, k and v before q is scaled.

CLS readout (`cls_readout=`, spec tempme §6.3-6): when the caller reads only the CLS tokens of the last block
(CLIP's per-frame embeddings), that block computes the queries, the attention rows and the MLP of the CLS tokens
only; keys and values still come from every token of the sequence, so the CLS outputs are exactly those of the
full block. Sequences of unequal lengths are handled too: the CLS rows are gathered at each sequence's offset and
the keys padded to the longest sequence for that one attention.

Two families share the code and keep their checkpoints' parameter names, so weights load with no renaming:
- CLIP (OpenAI names): `ln_1`, `attn.in_proj_weight`, `attn.in_proj_bias`, `attn.out_proj`, `ln_2`,
  `mlp.c_fc`, `mlp.c_proj`; QuickGELU; LayerNorm eps 1e-5.
- VideoMAE v2: `norm1`, `attn.qkv.weight` (no bias) + `attn.q_bias` + `attn.v_bias` (the key bias is zero),
  `attn.proj`, `norm2`, `mlp.fc1`, `mlp.fc2`; GELU; LayerNorm eps 1e-6.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidslim.attention import AttentionPattern, additive_mask, attend, size_bias
from vidslim.tokens import Tokens
from vidslim.tokens.protocol import AttentionInfo, HookContext, ReducerHooks, check_tokens, reduce_range


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x), the activation OpenAI CLIP was trained with."""

    def forward(self, x: Tensor) -> Tensor:
        if x.requires_grad and torch.is_grad_enabled():
            return x * torch.sigmoid(1.702 * x)
        return (x * 1.702).sigmoid_().mul_(x)  # one buffer instead of three when no graph is recorded


def activation(name: str) -> nn.Module:
    """The MLP activation by name: 'quick_gelu' (CLIP), 'gelu' (exact, VideoMAE) or 'gelu_tanh' (the tanh
    approximation, SigLIP)."""
    if name == "quick_gelu":
        return QuickGELU()
    if name == "gelu":
        return nn.GELU()
    if name == "gelu_tanh":  # transformers' gelu_fast / gelu_new / gelu_pytorch_tanh (ViViT)
        return nn.GELU(approximate="tanh")
    raise ValueError(f"unknown activation {name!r}; use 'quick_gelu', 'gelu' or 'gelu_tanh'")


# --------------------------------------------------------------------------------------------- attention
class Attention(nn.Module):
    """Multi-head self-attention over packed tokens. Subclasses hold the parameters under their names."""

    def __init__(self, dim: int, heads: int, causal: bool = False) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.scale = self.head_dim**-0.5
        self.causal = causal
        self.lora: nn.Module | None = None  # a LoRA adapter on the fused QKV projection (vidslim.models.lora)
        #: rotates q and k by each token's (t, h, w) position (V-JEPA 2's 3-D rotary embedding), or None
        self.rotary: nn.Module | None = None

    def qkv_weight_bias(self) -> tuple[Tensor, Tensor | None]:
        """The fused [3D, D] projection weight and its [3D] bias (or None)."""
        raise NotImplementedError

    def project_out(self, x: Tensor) -> Tensor:
        """The output projection [total, D] -> [total, D]."""
        raise NotImplementedError

    def project_qkv(self, x: Tensor, rows: slice | None = None) -> Tensor:
        """The fused projection (plus the LoRA delta) [.., D] -> [.., 3D], or only its output `rows` (a slice of
        the 3D outputs: q is 0:D, k D:2D, v 2D:3D)."""
        weight, bias = self.qkv_weight_bias()
        if rows is not None:
            weight, bias = weight[rows], (bias[rows] if bias is not None else None)
        out = F.linear(x, weight, bias)
        if self.lora is not None:
            out = out + self.lora(x, rows)
        return out

    def forward(
        self,
        x: Tensor,
        seqlens: Sequence[int],
        key_bias: Tensor | None = None,
        want_info: bool = False,
        pattern: AttentionPattern | None = None,
        queries: int = 0,
        positions: Tensor | None = None,
    ) -> tuple[Tensor, AttentionInfo | None]:
        """[total, D] -> ([total, D], info). `info` is built only when `want_info` (a hook will read it);
        `pattern` restricts which keys each query sees inside its sequence (block-sparse attention); `positions`
        ([total, 3], the tokens' (t, h, w)) feed `rotary` when the attention has one.

        queries > 0: only the first `queries` tokens of each sequence ask (sequences of any lengths, each at least
        `queries` long); the result is their outputs [S·queries, D] and no info. Keys and values are still every
        token's."""
        if queries:
            return self._first_queries(x, seqlens, key_bias, pattern, queries), None
        total = x.shape[0]
        q, k, v = self.project_qkv(x).view(total, 3, self.heads, self.head_dim).unbind(1)
        if self.rotary is not None and positions is not None:
            q, k = self.rotary(q, k, positions)
        if self.causal:  # the text tower: always an equal-length batch, never reduced
            b, n = len(seqlens), total // max(len(seqlens), 1)
            qd, kd, vd = (t.reshape(b, n, self.heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
            out = F.scaled_dot_product_attention(qd, kd, vd, is_causal=True, scale=self.scale)
            out = out.transpose(1, 2).reshape(total, self.dim)
        else:
            out = attend(q, k, v, seqlens, key_bias=key_bias, scale=self.scale, pattern=pattern)
            out = out.reshape(total, self.dim)
        info = AttentionInfo(q, k, seqlens, self.scale, key_bias) if want_info else None
        return self.project_out(out), info

    def _first_queries(
        self, x: Tensor, seqlens: Sequence[int], key_bias: Tensor | None, pattern: AttentionPattern | None, c: int
    ) -> Tensor:
        """Attention outputs [S·c, D] of the first c tokens of each of S sequences: plain views for equal lengths,
        keys and values padded to the longest sequence (padded keys masked out) otherwise."""
        s = len(seqlens)
        if self.causal or not 0 < c <= min(seqlens, default=0):
            raise ValueError(f"query subsets need non-causal sequences of at least {c} tokens, got {tuple(seqlens)}")
        if any(m != seqlens[0] for m in seqlens):
            return self._first_queries_packed(x, seqlens, key_bias, pattern, c)
        n = seqlens[0]
        d, h, hd = self.dim, self.heads, self.head_dim
        q = self.project_qkv(x.view(s, n, d)[:, :c], slice(0, d))  # [S, c, D]
        kv = self.project_qkv(x, slice(d, 3 * d)).view(s, n, 2, h, hd)
        q = q.view(s, c, h, hd).transpose(1, 2)
        k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)
        allowed = pattern.dense_mask(n, x.device)[:c][None, None] if pattern is not None else None
        bias = key_bias.view(s, 1, 1, n) if key_bias is not None else None
        mask = additive_mask(allowed, bias, q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        return self.project_out(out.transpose(1, 2).reshape(s * c, d))

    def _first_queries_packed(
        self, x: Tensor, seqlens: Sequence[int], key_bias: Tensor | None, pattern: AttentionPattern | None, c: int
    ) -> Tensor:
        """`_first_queries` on sequences of unequal lengths: the queries are the rows at each sequence's offset
        (cu_seqlens) + 0..c-1; keys and values are projected on the packed rows, then padded to [S, L] for one
        masked SDPA (the padding costs memory on the last block only, where c queries per sequence remain)."""
        s, width = len(seqlens), max(seqlens)
        d, h, hd = self.dim, self.heads, self.head_dim
        lengths = torch.tensor(list(seqlens), device=x.device)
        starts = torch.cumsum(lengths, 0) - lengths
        rows = (starts[:, None] + torch.arange(c, device=x.device)).reshape(-1)
        q = self.project_qkv(x.index_select(0, rows), slice(0, d)).view(s, c, h, hd).transpose(1, 2)
        real = torch.arange(width, device=x.device)[None] < lengths[:, None]  # [S, L] True on real keys
        seq = torch.repeat_interleave(torch.arange(s, device=x.device), lengths, output_size=x.shape[0])
        slots = seq * width + torch.arange(x.shape[0], device=x.device) - starts[seq]  # row of each token in [S·L]
        kv = self.project_qkv(x, slice(d, 3 * d))
        padded = kv.new_zeros(s * width, 2 * d).index_copy_(0, slots, kv)  # an index, not a bool mask: no sync
        padded = padded.view(s, width, 2, h, hd)
        k, v = padded[:, :, 0].transpose(1, 2), padded[:, :, 1].transpose(1, 2)
        allowed = pattern.padded_mask(lengths, width)[:, None, :c] if pattern is not None else real[:, None, None]
        bias = None
        if key_bias is not None:
            bias = key_bias.new_zeros(s * width).index_copy_(0, slots, key_bias).view(s, 1, 1, width)
        mask = additive_mask(allowed, bias, q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        return self.project_out(out.transpose(1, 2).reshape(s * c, d))


class ClipAttention(Attention):
    """CLIP's attention with nn.MultiheadAttention's parameter names: in_proj_weight/bias, out_proj."""

    def __init__(self, dim: int, heads: int, causal: bool = False) -> None:
        super().__init__(dim, heads, causal)
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.normal_(self.in_proj_weight, std=dim**-0.5)

    def qkv_weight_bias(self) -> tuple[Tensor, Tensor | None]:
        return self.in_proj_weight, self.in_proj_bias

    def project_out(self, x: Tensor) -> Tensor:
        return self.out_proj(x)


class VideoMAEAttention(Attention):
    """VideoMAE v2 / BEiT attention: qkv Linear without bias, learned q_bias and v_bias, zero key bias."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True) -> None:
        super().__init__(dim, heads)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.v_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.proj = nn.Linear(dim, dim)

    def qkv_weight_bias(self) -> tuple[Tensor, Tensor | None]:
        if self.q_bias is None or self.v_bias is None:
            return self.qkv.weight, None
        zeros = torch.zeros_like(self.v_bias, requires_grad=False)
        return self.qkv.weight, torch.cat((self.q_bias, zeros, self.v_bias))

    def project_out(self, x: Tensor) -> Tensor:
        return self.proj(x)


# --------------------------------------------------------------------------------------------- MLPs
class ClipMLP(nn.Module):
    """c_fc -> QuickGELU -> c_proj (OpenAI names)."""

    def __init__(self, dim: int, hidden: int, act: str = "quick_gelu") -> None:
        super().__init__()
        self.c_fc = nn.Linear(dim, hidden)
        self.gelu = activation(act)
        self.c_proj = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class VideoMAEMLP(nn.Module):
    """fc1 -> GELU -> fc2 (timm / VideoMAE v2 names)."""

    def __init__(self, dim: int, hidden: int, act: str = "gelu") -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = activation(act)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


# --------------------------------------------------------------------------------------------- blocks
def drop_path(x: Tensor, tokens: Tokens, rate: float, training: bool) -> Tensor:
    """Stochastic depth per sequence on packed tokens: zero a whole sequence's branch with probability `rate`."""
    if rate <= 0.0 or not training:
        return x
    keep = torch.rand(tokens.batch_size, device=x.device) >= rate
    scale = keep.to(x.dtype) / (1.0 - rate)
    if tokens.is_uniform:
        return (x.view(tokens.batch_size, -1, x.shape[-1]) * scale[:, None, None]).view_as(x)
    return x * scale[tokens.batch_index][:, None]


class Block(nn.Module):
    """A pre-LN block on `Tokens`. Subclasses create the parts under their checkpoint names and expose them
    through the four properties below."""

    drop_path_rate: float = 0.0

    @property
    def norm_a(self) -> nn.Module:
        raise NotImplementedError

    @property
    def attention(self) -> Attention:
        raise NotImplementedError

    @property
    def norm_b(self) -> nn.Module:
        raise NotImplementedError

    @property
    def feedforward(self) -> nn.Module:
        raise NotImplementedError

    def forward(
        self,
        tokens: Tokens,
        ctx: HookContext | None = None,
        hooks: ReducerHooks | None = None,
        cls_readout: int | None = None,
    ) -> Tokens:
        """Run the block; with `hooks` (and their `ctx`) call the reducers at the three hook points.

        cls_readout: the number of CLS tokens in the batch when only they are read after this block (see the
        module docstring). The block then returns just those tokens, c per sequence (c = cls_readout / number of
        sequences), and skips the after_attention and after_mlp hooks: reducers never change CLS tokens, so
        their work could not reach the output. Sequences may have any lengths (per-frame RLT, TempMe's joined
        clips of unequal lengths): the CLS rows are found from each sequence's offset.
        """
        if hooks is None or ctx is None:  # dense: no context, no info, no bias
            if cls_readout is not None and (readout := self._cls_only(tokens, None, None, cls_readout)) is not None:
                return readout
            a, _ = self.attention(self.norm_a(tokens.x), tokens.seqlens, positions=self.positions(tokens))
            x = self.residual(tokens.x, a, tokens)
            return tokens.replace(x=self.residual(x, self.feedforward(self.norm_b(x)), tokens))

        for hook in hooks.before_attention:
            with reduce_range(hook, "before_attention"):
                tokens = check_tokens(hook(tokens, ctx), hook)
        key_bias = None
        if ctx.proportional_attention:
            with reduce_range("ProportionalAttention", "size_bias"):
                key_bias = size_bias(tokens.size)
        pattern = None
        for hook in hooks.attention_pattern:
            with reduce_range(hook, "attention_pattern"):
                pattern = hook(tokens, ctx)
            if pattern is not None:
                break
        if cls_readout is not None and (readout := self._cls_only(tokens, key_bias, pattern, cls_readout)) is not None:
            return readout
        a, info = self.attention(
            self.norm_a(tokens.x), tokens.seqlens, key_bias, want_info=bool(hooks.after_attention), pattern=pattern,
            positions=self.positions(tokens),
        )
        tokens = tokens.replace(x=self.residual(tokens.x, a, tokens))
        for hook in hooks.after_attention:
            with reduce_range(hook, "after_attention"):
                tokens = check_tokens(hook(tokens, info, ctx), hook)
        tokens = tokens.replace(x=self.residual(tokens.x, self.feedforward(self.norm_b(tokens.x)), tokens))
        for hook in hooks.after_mlp:
            with reduce_range(hook, "after_mlp"):
                tokens = check_tokens(hook(tokens, ctx), hook)
        return tokens

    def positions(self, tokens: Tokens) -> Tensor | None:
        """The tokens' (t, h, w) when the attention rotates by position (read after the before_attention hooks,
        which may reorder or merge tokens), else None."""
        return tokens.pos if self.attention.rotary is not None else None

    def _cls_only(
        self, tokens: Tokens, key_bias: Tensor | None, pattern: AttentionPattern | None, cls_total: int
    ) -> Tokens | None:
        """The block's output for the first c = cls_total / S tokens of each sequence only (sequences of any
        lengths), or None when the layout does not allow it (CLS tokens that do not spread evenly, or a sequence
        shorter than c)."""
        s = tokens.batch_size
        if s == 0 or cls_total % s or cls_total // s > min(tokens.seqlens):
            return None
        c = cls_total // s
        a, _ = self.attention(self.norm_a(tokens.x), tokens.seqlens, key_bias, pattern=pattern, queries=c)
        n, rows = tokens.max_seqlen, None
        if not tokens.is_uniform:  # each sequence's first c rows, from its offset
            rows = (tokens.cu_seqlens[:-1].long()[:, None] + torch.arange(c, device=tokens.x.device)).reshape(-1)

        def head(t: Tensor | None) -> Tensor | None:
            if t is None:
                return None
            if rows is not None:
                return t.index_select(0, rows)
            return t.view(s, n, *t.shape[1:])[:, :c].reshape(s * c, *t.shape[1:])

        cls = Tokens(head(tokens.x), (c,) * s, head(tokens.pos), head(tokens.size))  # type: ignore[arg-type]
        x = self.residual(cls.x, a, cls)
        return cls.replace(x=self.residual(x, self.feedforward(self.norm_b(x)), cls))

    def residual(self, x: Tensor, branch: Tensor, tokens: Tokens) -> Tensor:
        """x + branch (with stochastic depth when training). `branch` is a fresh Linear output that nothing else
        holds (autograd does not keep a Linear's output), so the sum is written into it in place."""
        if self.training and self.drop_path_rate > 0:
            return x + drop_path(branch, tokens, self.drop_path_rate, True)
        return branch.add_(x)


class ClipBlock(Block):
    """OpenAI CLIP's ResidualAttentionBlock: ln_1, attn, ln_2, mlp (c_fc, c_proj); QuickGELU."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_dim: int,
        eps: float = 1e-5,
        act: str = "quick_gelu",
        causal: bool = False,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=eps)
        self.attn = ClipAttention(dim, heads, causal)
        self.ln_2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = ClipMLP(dim, mlp_dim, act)
        self.drop_path_rate = drop_path_rate

    @property
    def norm_a(self) -> nn.Module:
        return self.ln_1

    @property
    def attention(self) -> Attention:
        return self.attn

    @property
    def norm_b(self) -> nn.Module:
        return self.ln_2

    @property
    def feedforward(self) -> nn.Module:
        return self.mlp


class VideoMAEBlock(Block):
    """VideoMAE v2's Block: norm1, attn (qkv, q_bias, v_bias, proj), norm2, mlp (fc1, fc2); GELU."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_dim: int,
        eps: float = 1e-6,
        qkv_bias: bool = True,
        act: str = "gelu",
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = VideoMAEAttention(dim, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = VideoMAEMLP(dim, mlp_dim, act)
        self.drop_path_rate = drop_path_rate

    @property
    def norm_a(self) -> nn.Module:
        return self.norm1

    @property
    def attention(self) -> Attention:
        return self.attn

    @property
    def norm_b(self) -> nn.Module:
        return self.norm2

    @property
    def feedforward(self) -> nn.Module:
        return self.mlp


def drop_path_rates(rate: float, depth: int) -> list[float]:
    """Stochastic-depth rate of each block, rising linearly from 0 to `rate` (timm's schedule)."""
    if depth <= 1:
        return [0.0] * depth
    return [rate * i / (depth - 1) for i in range(depth)]


def run_blocks(
    blocks: Sequence[Block],
    tokens: Tokens,
    ctx: HookContext | None,
    hooks: ReducerHooks | None,
    cls_readout: int | None = None,
) -> Tokens:
    """Run `blocks` in order, setting `ctx.layer` before each one when hooks are active. `cls_readout` (the CLS
    count of the batch) makes the last block compute its CLS tokens only (see `Block.forward`)."""
    last = len(blocks) - 1
    if ctx is not None and hooks is not None:
        hooks.start(tokens, ctx)
    for i, block in enumerate(blocks):
        if ctx is not None:
            ctx.layer = i
        tokens = block(tokens, ctx, hooks, cls_readout) if i == last and cls_readout else block(tokens, ctx, hooks)
    return tokens


def init_linear_(module: nn.Module, std: float = 0.02) -> None:
    """Truncated-normal init of Linear weights and zero biases, LayerNorms to identity (timm's ViT init)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
