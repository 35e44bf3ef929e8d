"""Reducer hooks: call order and context, zero reduction is the identity, what `AttentionInfo` exposes, packed
batches of unequal lengths, proportional attention, attention patterns, and CLIP's CLS readout after frames
are regrouped."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import vidslim as vs
from vidslim.attention import MaskPattern
from vidslim.errors import ConfigError
from vidslim.models.blocks import ClipAttention, VideoMAEBlock
from vidslim.tokens import NO_POSITION, Tokens
from vidslim.tokens.protocol import AttentionInfo, HookContext, ReducerHooks, cls_attention_row


class Recorder:
    """Identity reducer that records every hook call (hook name, layer, tokens per sequence)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, tuple[int, ...]]] = []
        self.attached_to: nn.Module | None = None

    def attach(self, model: nn.Module) -> None:
        self.attached_to = model

    def before_attention(self, tokens: Tokens, ctx: HookContext) -> Tokens:
        self.calls.append(("before_attention", ctx.layer, tokens.seqlens))
        return tokens

    def after_attention(self, tokens: Tokens, info: AttentionInfo, ctx: HookContext) -> Tokens:
        self.calls.append(("after_attention", ctx.layer, tokens.seqlens))
        return tokens

    def after_mlp(self, tokens: Tokens, ctx: HookContext) -> Tokens:
        self.calls.append(("after_mlp", ctx.layer, tokens.seqlens))
        return tokens


def test_identity_reducer_is_exactly_dense_and_hooks_run_in_order() -> None:
    torch.manual_seed(0)
    dense = vs.create_model("videomae-tiny").eval()
    recorder = Recorder()
    hooked = vs.create_model("videomae-tiny", reduction=[recorder]).eval()
    hooked.load_state_dict(dense.state_dict())
    video = torch.randn(2, 3, 4, 32, 32)
    with torch.inference_mode():
        assert torch.equal(hooked(video), dense(video))
    assert recorder.attached_to is hooked
    names = ["before_attention", "after_attention", "after_mlp"]
    assert recorder.calls == [(name, layer, (8, 8)) for layer in range(2) for name in names]


def test_clip_context_describes_frames() -> None:
    seen: list[HookContext] = []

    class Spy:
        def before_attention(self, tokens: Tokens, ctx: HookContext) -> Tokens:
            seen.append(ctx)
            return tokens

    model = vs.create_model("clip-tiny", reduction=[Spy()]).eval()
    with torch.inference_mode():
        model.encode_video(torch.randn(2, 4, 3, 32, 32))
    ctx = seen[0]
    assert (ctx.batch_size, ctx.num_frames, ctx.cls_tokens, ctx.grid, ctx.num_layers) == (2, 4, 1, (4, 4, 4), 2)
    assert ctx.model is model.visual


def test_attention_info_keys_mean_and_cls_attention() -> None:
    torch.manual_seed(0)
    attn = ClipAttention(16, 4).eval()
    x = torch.randn(2 * 5, 16)
    _, info = attn(x, (5, 5), want_info=True)
    q, k, _ = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).view(10, 3, 4, 4).unbind(1)
    torch.testing.assert_close(info.keys_mean, k.mean(1))
    # reference: the full attention matrix of each sequence, row 0, averaged over heads
    qd, kd = q.view(2, 5, 4, 4).transpose(1, 2), k.view(2, 5, 4, 4).transpose(1, 2)
    probs = (qd @ kd.transpose(-1, -2) * 4**-0.5).softmax(-1)  # [B, H, N, N]
    torch.testing.assert_close(info.cls_attention, probs[:, :, 0].mean(1).reshape(10))
    # no info is built unless a hook asks for it
    assert attn(x, (5, 5))[1] is None


def test_cls_attention_unequal_lengths_matches_per_sequence() -> None:
    torch.manual_seed(1)
    q, k = torch.randn(9, 2, 8), torch.randn(9, 2, 8)
    bias = torch.randn(9)
    packed = cls_attention_row(q, k, (4, 2, 3), 0.3, bias)
    parts = [cls_attention_row(q[a:b], k[a:b], (b - a,), 0.3, bias[a:b]) for a, b in ((0, 4), (4, 6), (6, 9))]
    torch.testing.assert_close(packed, torch.cat(parts))
    sums = torch.zeros(3).index_add_(0, torch.tensor([0] * 4 + [1] * 2 + [2] * 3), packed)
    torch.testing.assert_close(sums, torch.ones(3))


class KeepFirst:
    """Pruning reducer: after layer 0's MLP keep the first `keep[i]` tokens of video i (unequal lengths)."""

    def __init__(self, keep: tuple[int, ...]) -> None:
        self.keep = keep

    def after_mlp(self, tokens: Tokens, ctx: HookContext) -> Tokens:
        if ctx.layer != 0:
            return tokens
        parts = [t[:n] for t, n in zip(tokens.split(), self.keep, strict=True)]
        return Tokens.from_list(parts)


def test_unequal_lengths_do_not_leak_between_videos() -> None:
    """After pruning to different lengths, each video's logits equal those of the video run alone."""
    torch.manual_seed(0)
    model = vs.create_model("videomae-tiny", reduction=[KeepFirst((3, 6))]).eval()
    video = torch.randn(2, 3, 4, 32, 32)
    with torch.inference_mode():
        both = model(video)
        model.set_reduction([KeepFirst((3,))])
        first = model(video[:1])
        model.set_reduction([KeepFirst((6,))])
        second = model(video[1:])
    torch.testing.assert_close(both, torch.cat((first, second)), atol=1e-5, rtol=1e-5)


def test_proportional_attention_counts_a_key_size_times() -> None:
    """A key of size 2 weighs exactly as the same key present twice (ToMe's log-size bias)."""
    torch.manual_seed(0)
    attn = ClipAttention(8, 2).eval()
    x = torch.randn(4, 8)
    dup = torch.cat((x, x[3:]))  # token 3 twice
    out_dup, _ = attn(dup, (5,))
    out_size, _ = attn(x, (4,), key_bias=torch.tensor([1.0, 1.0, 1.0, 2.0]).log())
    torch.testing.assert_close(out_size, out_dup[:4], atol=1e-6, rtol=1e-5)


def test_proportional_flag_uses_token_sizes() -> None:
    class Sized:
        proportional_attention = True

        def before_attention(self, tokens: Tokens, ctx: HookContext) -> Tokens:
            return tokens.replace(size=torch.full((tokens.total,), 3.0)) if ctx.layer == 0 else tokens

    torch.manual_seed(0)
    dense = vs.create_model("videomae-tiny").eval()
    sized = vs.create_model("videomae-tiny", reduction=[Sized()]).eval()
    sized.load_state_dict(dense.state_dict())
    video = torch.randn(1, 3, 4, 32, 32)
    with torch.inference_mode():  # equal sizes shift every logit by the same log 3: softmax unchanged
        torch.testing.assert_close(sized(video), dense(video), atol=1e-5, rtol=1e-5)
    assert sized.hooks is not None and sized.hooks.proportional_attention


def test_clip_readout_finds_cls_after_frames_are_regrouped() -> None:
    """A reducer that joins frame pairs into one sequence [CLS, CLS, patches, patches] (as TempMe's ClipMe does)
    after the last block leaves the embeddings unchanged: the readout finds the CLS tokens by position."""

    class JoinPairs:
        joined_at: list[int] = []  # noqa: RUF012

        def after_mlp(self, tokens: Tokens, ctx: HookContext) -> Tokens:
            if ctx.layer != ctx.num_layers - 1:
                return tokens
            n = tokens.seqlens[0]
            x = tokens.dense().reshape(-1, 2, n, tokens.dim)
            pos = tokens.pos.view(-1, 2, n, 3)
            x = torch.cat((x[:, :, :1].flatten(1, 2), x[:, :, 1:].flatten(1, 2)), dim=1)
            pos = torch.cat((pos[:, :, :1].flatten(1, 2), pos[:, :, 1:].flatten(1, 2)), dim=1)
            self.joined_at.append(ctx.layer)
            return Tokens.from_dense(x, pos=pos)

    torch.manual_seed(0)
    dense = vs.create_model("clip-tiny").eval()
    joined = vs.create_model("clip-tiny", reduction=[JoinPairs()]).eval()
    joined.load_state_dict(dense.state_dict())
    joined.visual.cls_readout = False  # run the last block in full, so its after_mlp hook really regroups
    video = torch.randn(2, 4, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(joined.encode_frames(video), dense.encode_frames(video))
    assert JoinPairs.joined_at == [dense.config.vision_layers - 1]  # the hook really regrouped the last block
    tokens = dense.visual.embed(video)
    assert (tokens.pos.view(8, 17, 3)[:, 0] == NO_POSITION).all()
    assert tokens.pos.view(2, 4, 17, 3)[1, 3, 1:, 0].eq(3).all()  # patches carry their frame index


def test_hook_must_return_tokens() -> None:
    class Broken:
        def after_mlp(self, tokens: Tokens, ctx: HookContext) -> None:
            return None

    model = vs.create_model("videomae-tiny", reduction=[Broken()])
    with pytest.raises(TypeError, match=r"Broken\.after_mlp must return Tokens"):
        model(torch.randn(1, 3, 4, 32, 32))


def test_reduction_rejects_strings_and_registers_modules() -> None:
    with pytest.raises(ConfigError, match="reducer objects"):
        vs.create_model("videomae-tiny", reduction=["tome"])

    class Learned(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(3))

    model = vs.create_model("videomae-tiny", reduction=[Learned(), Recorder()])
    assert "reduction_modules.0.scale" in model.state_dict()
    assert len(model.reduction) == 2
    assert model.set_reduction(None).hooks is None and "reduction_modules.0.scale" not in model.state_dict()


@pytest.mark.parametrize("drop_path", [0.0, 0.1])
def test_gradients_flow_through_packed_unequal_batches(drop_path: float) -> None:
    torch.manual_seed(0)
    model = vs.create_model("videomae-tiny", reduction=[KeepFirst((2, 5))], drop_path=drop_path).train()
    video = torch.randn(2, 3, 4, 32, 32)
    model(video).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if drop_path == 0.0:  # the in-place residual adds give the gradients of the plain out-of-place sums
        reference = copy.deepcopy(model)
        reference.zero_grad()
        for block in reference.blocks:
            block.residual = lambda x, branch, tokens: x + branch
        reference(video).sum().backward()
        for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
            torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_attention_pattern_hook_reaches_attend() -> None:
    """A self-only pattern makes each token its own sequence; an all-true pattern is plain attention."""

    class Pattern:
        def __init__(self, mask: torch.Tensor) -> None:
            self.mask = mask

        def attention_pattern(self, tokens: Tokens, ctx: HookContext) -> MaskPattern:
            return MaskPattern(self.mask)

    torch.manual_seed(0)
    block = VideoMAEBlock(16, 2, 32).eval()
    tokens = Tokens.from_dense(torch.randn(2, 5, 16))
    ctx = HookContext(0, 1, 2, 1, 0, (1, 1, 5), block)
    with torch.inference_mode():
        alone = block(Tokens(tokens.x, (1,) * 10)).x
        self_only = block(tokens, ctx, ReducerHooks.gather([Pattern(torch.eye(5, dtype=torch.bool))])).x
        full = block(tokens, ctx, ReducerHooks.gather([Pattern(torch.ones(5, 5, dtype=torch.bool))])).x
        dense = block(tokens).x
    torch.testing.assert_close(self_only, alone)
    torch.testing.assert_close(full, dense)
    assert not torch.allclose(self_only, dense)
