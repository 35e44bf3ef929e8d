"""The parts X-CLIP adds to CLIP: cross-frame message tokens in every vision block, the multi-frame integration
transformer (MIT) and the video-specific prompt generator. `vidslim.models.xclip` puts them together.

Message tokens (X-CLIP's cross-frame communication). At the start of every vision block each frame's CLS token is
projected (`message_fc`), the T messages of a video attend to each other (`message_ln`, `message_attn`, residual),
and each frame's message joins its frame's attention as one more token; its own output is dropped right after the
attention, before the MLP. A message therefore only ever contributes a key and a value: `MessageAttention` appends
the messages of a sequence to it for the one attention call and returns the outputs of the real tokens only.

Reducers never see a message token: the hooks run before the messages are added (before_attention) or after they
are gone (after_attention gets the attention info of the real tokens only, after_mlp), so a message is protected
more strongly than CLS, and ToMe, TempMe and per-frame RLT need no change for it. Where TempMe has joined k frames
into one sequence, that sequence takes the k messages of its frames (the messages of frames 0..T-1 follow the
frame order of the sequences, as the CLS tokens do). A message has size 1: under proportional attention its key
gets log 1 = 0. With a CLS-only last block (`Block.forward(cls_readout=)`) the CLS tokens query every real token
and every message of their sequence, as in the full block.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidslim.attention import AttentionPattern
from vidslim.models.blocks import ClipAttention, ClipBlock, ClipMLP
from vidslim.models.clip import Transformer
from vidslim.tokens import Tokens
from vidslim.tokens.protocol import AttentionInfo, HookContext, ReducerHooks


def with_messages(x: Tensor, seqlens: Sequence[int], messages: Tensor) -> tuple[Tensor, tuple[int, ...], Tensor | None]:
    """Append c = len(messages) / S message rows to each of the S packed sequences of `x`.

    Returns (extended rows, extended seqlens, the row of every original token in them; None when every sequence
    has the same length, where the original rows are the first n of each [n + c] block)."""
    s, d = len(seqlens), x.shape[-1]
    c = messages.shape[0] // s
    if len(set(seqlens)) <= 1:
        n = seqlens[0]
        ext = torch.cat((x.view(s, n, d), messages.view(s, c, d)), dim=1)
        return ext.reshape(-1, d), (n + c,) * s, None
    lengths = torch.tensor(list(seqlens), device=x.device)
    seq = torch.repeat_interleave(torch.arange(s, device=x.device), lengths, output_size=x.shape[0])
    rows = torch.arange(x.shape[0], device=x.device) + c * seq  # each earlier sequence adds c rows
    ends = torch.cumsum(lengths, 0) + c * torch.arange(s, device=x.device)  # where a sequence's messages start
    message_rows = (ends[:, None] + torch.arange(c, device=x.device)).reshape(-1)
    ext = x.new_empty(x.shape[0] + messages.shape[0], d)
    ext[rows] = x
    ext[message_rows] = messages
    return ext, tuple(n + c for n in seqlens), rows


def real_rows(t: Tensor, seqlens: Sequence[int], c: int, rows: Tensor | None) -> Tensor:
    """The rows of the original tokens from a tensor laid out as `with_messages` returned it."""
    if rows is not None:
        return t.index_select(0, rows)
    s, n = len(seqlens), seqlens[0]
    return t.view(s, n + c, *t.shape[1:])[:, :n].reshape(s * n, *t.shape[1:])


class MessageAttention(ClipAttention):
    """CLIP attention that, while `messages` is set (by `XClipBlock`), lets every sequence also attend to its
    frames' message tokens (already normalised by ln_1), and returns the real tokens' outputs only."""

    messages: Tensor | None = None

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
        m = self.messages
        if m is None:
            return super().forward(x, seqlens, key_bias, want_info, pattern, queries, positions)
        if pattern is not None:
            raise ValueError("X-CLIP's message tokens do not combine with attention patterns")
        c = m.shape[0] // len(seqlens)
        ext, ext_lens, rows = with_messages(x, seqlens, m.to(x.dtype))
        ext_bias = None
        if key_bias is not None:  # a message has size 1: log(1) = 0
            ext_bias, _, _ = with_messages(key_bias[:, None], seqlens, key_bias.new_zeros(m.shape[0], 1))
            ext_bias = ext_bias[:, 0]
        if queries:  # the first tokens of each sequence ask; the messages, appended last, only answer
            return super().forward(ext, ext_lens, ext_bias, queries=queries)
        out, info = super().forward(ext, ext_lens, ext_bias, want_info)
        out = real_rows(out, seqlens, c, rows)
        if info is not None:
            q, k = (real_rows(t, seqlens, c, rows) for t in (info.q, info.k))
            info = AttentionInfo(q, k, seqlens, info.scale, key_bias)
        return out, info


class XClipBlock(ClipBlock):
    """X-CLIP's vision block (CrossFramelAttentionBlock): a CLIP block whose attention also sees each frame's
    message token, plus the message parts (`message_fc`, `message_ln`, `message_attn`)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, eps: float, act: str, drop_path_rate: float) -> None:
        super().__init__(dim, heads, mlp_dim, eps, act)
        self.attn = MessageAttention(dim, heads)
        self.message_fc = nn.Linear(dim, dim)
        self.message_ln = nn.LayerNorm(dim, eps=eps)
        self.message_attn = ClipAttention(dim, heads)
        self.message_drop_path = drop_path_rate  # stochastic depth on the message attention only, per video

    def messages(self, cls: Tensor) -> Tensor:
        """Per-frame CLS tokens [B, T, W] -> their message tokens [B·T, W] (frames of a video attend to each other)."""
        b, t, w = cls.shape
        m = self.message_fc(cls).reshape(b * t, w)
        a, _ = self.message_attn(self.message_ln(m), (t,) * b)
        if self.training and self.message_drop_path > 0:
            keep = (torch.rand(b, device=m.device) >= self.message_drop_path).to(a.dtype) / (1 - self.message_drop_path)
            a = a * keep.repeat_interleave(t)[:, None]
        return m + a

    def forward(
        self,
        tokens: Tokens,
        ctx: HookContext | None = None,
        hooks: ReducerHooks | None = None,
        cls_readout: int | None = None,
        messages: Tensor | None = None,
    ) -> Tokens:
        """The CLIP block with `messages` [B·T, W] (from `messages`) joining the attention of their frames."""
        self.attn.messages = None if messages is None else self.ln_1(messages)
        try:
            return super().forward(tokens, ctx, hooks, cls_readout)
        finally:
            self.attn.messages = None


class XClipEncoder(nn.Module):
    """The vision blocks under CLIP's name `resblocks`."""

    def __init__(self, width: int, layers: int, heads: int, mlp_dim: int, eps: float, act: str, drop: float) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(XClipBlock(width, heads, mlp_dim, eps, act, drop) for _ in range(layers))


class MultiFrameIntegration(nn.Module):
    """X-CLIP's MIT: per-frame embeddings [B, T, E] + a learned frame position -> CLIP blocks -> + input -> mean."""

    def __init__(self, frames: int, width: int, layers: int, heads: int, mlp_dim: int, eps: float, act: str) -> None:
        super().__init__()
        self.position_embedding = nn.Parameter(torch.randn(1, frames, width))
        self.transformer = Transformer(width, layers, heads, mlp_dim, eps, act, False, 0.0)

    def forward(self, frames: Tensor) -> Tensor:
        """[B, T, E] -> the video embedding [B, E]."""
        x = self.transformer(Tokens.from_dense(frames + self.position_embedding.to(frames.dtype))).dense()
        return (x + frames).mean(dim=1)


class PromptCrossAttention(nn.Module):
    """Text queries attend to a video's context rows: q/k/v projections without bias, `proj` with one."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(width, width, bias=False)
        self.k_proj = nn.Linear(width, width, bias=False)
        self.v_proj = nn.Linear(width, width, bias=False)
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor, context: Tensor, valid: Tensor | None) -> Tensor:
        """x [M, N, E] (N texts for each of M videos), context [M, P, E], valid [M, P] -> [M, N, E]."""
        m, n, e = x.shape
        h = self.heads
        q = self.q_proj(x).view(m, n, h, -1).transpose(1, 2)
        k = self.k_proj(context).view(m, -1, h, e // h).transpose(1, 2)
        v = self.v_proj(context).view(m, -1, h, e // h).transpose(1, 2)
        mask = valid[:, None, None, :] if valid is not None else None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(m, n, e))


class PromptLayer(nn.Module):
    """x + cross_attn(norm1(x), video); x + mlp(norm3(x))."""

    def __init__(self, width: int, heads: int, eps: float, act: str) -> None:
        super().__init__()
        self.cross_attn = PromptCrossAttention(width, heads)
        self.norm1 = nn.LayerNorm(width, eps=eps)
        self.norm3 = nn.LayerNorm(width, eps=eps)
        self.mlp = ClipMLP(width, 4 * width, act)

    def forward(self, x: Tensor, context: Tensor, valid: Tensor | None) -> Tensor:
        x = x + self.cross_attn(self.norm1(x), context, valid)
        return x + self.mlp(self.norm3(x))


class PromptGenerator(nn.Module):
    """The video-specific prompt: alpha · decoder(text, layernorm(video context)), added to the text embedding."""

    def __init__(self, width: int, layers: int, heads: int, eps: float, text_eps: float, act: str,
                 alpha: float) -> None:
        super().__init__()
        self.layernorm = nn.LayerNorm(width, eps=eps)
        self.decoder = nn.ModuleList(PromptLayer(width, heads, text_eps, act) for _ in range(layers))
        self.alpha = nn.Parameter(torch.full((width,), float(alpha)))

    def forward(self, text: Tensor, context: Tensor, valid: Tensor | None = None) -> Tensor:
        """text [M, N, E], context [M, P, E] (valid [M, P]: rows that hold tokens) -> the prompts [M, N, E]."""
        context = self.layernorm(context)
        for layer in self.decoder:
            text = layer(text, context, valid)
        return self.alpha * text


__all__ = ["MessageAttention", "MultiFrameIntegration", "PromptGenerator", "XClipBlock", "XClipEncoder",
           "real_rows", "with_messages"]
