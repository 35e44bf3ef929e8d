"""Packed attention equals per-video dense attention: every backend path, with and without key_bias, and
through backward; the equal-length path is exactly SDPA; proportional attention behaves as ToMe's."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vidslim.attention import attend, plan_buckets, size_bias, use_backend
from vidslim.attention.varlen import varlen_plan
from vidslim.errors import AttentionBackendError, TokenLayoutError

LENGTHS = [1, 7, 196, 1568]


def reference(q, k, v, seqlens, key_bias=None, scale=None):
    """Per-video softmax(q k^T * scale + bias) v, written out, in float64."""
    outs = []
    bias = key_bias.split(seqlens) if key_bias is not None else [None] * len(seqlens)
    for qs, ks, vs, bs in zip(q.split(seqlens), k.split(seqlens), v.split(seqlens), bias, strict=True):
        qs, ks, vs = (t.double().transpose(0, 1) for t in (qs, ks, vs))  # [H, n, d]
        logits = qs @ ks.transpose(-1, -2) * (scale if scale is not None else 1 / math.sqrt(qs.shape[-1]))
        if bs is not None:
            logits = logits + bs.double()
        outs.append((logits.softmax(-1) @ vs).transpose(0, 1))
    return torch.cat(outs)


def packed(seqlens, heads=2, dim=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    total = sum(seqlens)
    q, k, v = (torch.randn(total, heads, dim, generator=gen) for _ in range(3))
    return q, k, v, torch.randn(total, generator=gen)


@pytest.mark.parametrize("backend", ["auto", "padded"])
@pytest.mark.parametrize("with_bias", [False, True])
def test_packed_equals_per_video_attention(backend: str, with_bias: bool) -> None:
    q, k, v, bias = packed(LENGTHS)
    bias = bias if with_bias else None
    out = attend(q, k, v, LENGTHS, key_bias=bias, backend=backend)
    assert out.shape == q.shape and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), reference(q, k, v, LENGTHS, bias), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "seqlens",
    [
        [5, 9, 5, 9, 5],  # equal lengths that are not adjacent: gathered buckets
        [3, 3, 3, 2, 2, 40],  # short videos padded into one bucket
        [0, 6, 0, 4],  # empty videos
        [4, 4, 0],  # an equal-length run next to an empty video
    ],
)
def test_bucket_layouts_match_reference(seqlens: list[int]) -> None:
    q, k, v, bias = packed(seqlens, seed=1)
    out = attend(q, k, v, seqlens, key_bias=bias, scale=0.3)
    torch.testing.assert_close(out.double(), reference(q, k, v, seqlens, bias, scale=0.3), atol=1e-5, rtol=1e-5)


def test_equal_lengths_are_exactly_sdpa() -> None:
    q, k, v, bias = packed([50, 50, 50])
    dense = [t.view(3, 50, 2, 8).transpose(1, 2) for t in (q, k, v)]
    expected = F.scaled_dot_product_attention(*dense).transpose(1, 2).reshape(150, 2, 8)
    assert torch.equal(attend(q, k, v, [50, 50, 50]), expected)
    expected_bias = F.scaled_dot_product_attention(*dense, attn_mask=bias.view(3, 1, 1, 50))
    assert torch.equal(attend(q, k, v, [50, 50, 50], key_bias=bias), expected_bias.transpose(1, 2).reshape(150, 2, 8))


def test_fused_qkv_views_are_accepted() -> None:
    """Models pass q, k, v as strided views of one fused projection [total, 3, H, d]."""
    seqlens = [3, 10, 6]
    qkv = torch.randn(19, 3, 2, 8)
    q, k, v = qkv.unbind(1)
    torch.testing.assert_close(attend(q, k, v, seqlens).double(), reference(q, k, v, seqlens), atol=1e-5, rtol=1e-5)


def test_gradients_flow_through_the_varlen_path() -> None:
    seqlens = [1, 7, 30, 12]
    q, k, v, bias = (t.double().requires_grad_() for t in packed(seqlens))
    out = attend(q, k, v, seqlens, key_bias=bias)
    weight = torch.randn_like(out)
    grads = torch.autograd.grad((out * weight).sum(), (q, k, v, bias))
    expected = torch.autograd.grad((reference(q, k, v, seqlens, bias) * weight).sum(), (q, k, v, bias))
    for got, want in zip(grads, expected, strict=True):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, want, atol=1e-8, rtol=1e-6)


def test_bf16_with_float32_bias() -> None:
    q, k, v, bias = packed([5, 20, 9])
    out = attend(q.bfloat16(), k.bfloat16(), v.bfloat16(), [5, 20, 9], key_bias=bias)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.double(), reference(q, k, v, [5, 20, 9], bias), atol=3e-2, rtol=3e-2)


def test_size_bias_is_log_size_and_none_passes_through() -> None:
    assert size_bias(None) is None
    torch.testing.assert_close(size_bias(torch.tensor([1.0, 2.0, 4.0])), torch.tensor([0.0, math.log(2), math.log(4)]))
    assert size_bias(torch.tensor([3], dtype=torch.bfloat16)).dtype == torch.float32


def test_proportional_attention_equals_duplicated_keys() -> None:
    """A key of size 2 weighs as much as two identical keys of size 1 (the point of ToMe's log-size bias)."""
    gen = torch.Generator().manual_seed(3)
    a, b, query = torch.randn(3, 1, 1, 4, generator=gen).unbind(0)  # [1 token, 1 head, 4]
    # video 1: query + keys [a, b, b] (sizes 1); video 2: query + keys [a, b] with b of size 2
    k1 = torch.cat([query, a, b, b])
    k2 = torch.cat([query, a, b])
    k = torch.cat([k1, k2])
    v = k * 2 + 1
    out = attend(k, k, v, [4, 3], key_bias=size_bias(torch.tensor([1.0, 1, 1, 1, 1, 1, 2])))
    torch.testing.assert_close(out[0], out[4], atol=1e-6, rtol=1e-6)  # the two queries agree


def test_plan_buckets() -> None:
    assert plan_buckets([1568, 1568, 1568]) == [[0, 1, 2]]
    assert plan_buckets([1, 7, 196, 1568]) == [[0, 1], [2], [3]]  # tiny videos share a call, long ones don't
    assert plan_buckets([20] * 10 + [21] * 10) == [list(range(10)), list(range(10, 20))]  # two views
    assert plan_buckets([2, 3] * 10) == [[0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19]]
    lens = [258, 1531, 848, 387, 344, 264, 780, 338]
    buckets = plan_buckets(lens)
    assert sorted(i for bucket in buckets for i in bucket) == list(range(8))
    assert plan_buckets([0, 3, 0]) == [[1]]


def test_plan_is_cached_and_in_packed_order() -> None:
    plan = varlen_plan((1, 7, 196, 1568), 16, torch.device("cpu"))
    assert varlen_plan((1, 7, 196, 1568), 16, torch.device("cpu")) is plan
    assert plan.buckets[-1].start == 204 and plan.buckets[-1].gather is None  # the long video is a view
    assert varlen_plan((50, 60, 70), 768, torch.device("cpu")).out_index is None  # no reordering needed


def test_use_backend_switches_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    import vidslim.attention.api as api

    calls = []
    monkeypatch.setattr(api, "padded_attend", lambda *a: calls.append("padded") or a[0])
    q, k, v, _ = packed([2, 3])
    with use_backend("padded"):
        attend(q, k, v, [2, 3])
    attend(q, k, v, [2, 3])
    assert calls == ["padded"]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda q: attend(q, q, q, [2, 2]), TokenLayoutError),  # seqlens sum 4 != 5 tokens
        (lambda q: attend(q[:, 0], q[:, 0], q[:, 0], [5]), TokenLayoutError),  # not [total, H, d]
        (lambda q: attend(q, q[:4], q, [5]), TokenLayoutError),  # k shorter than q
        (lambda q: attend(q, q, q, [5], key_bias=torch.zeros(5, 2)), TokenLayoutError),
        (lambda q: attend(q, q, q, [5], backend="xformers"), AttentionBackendError),
    ],
)
def test_bad_inputs_raise(call, error) -> None:
    with pytest.raises(error):
        call(torch.zeros(5, 2, 4))


def test_empty_batch() -> None:
    q = torch.zeros(0, 2, 4)
    assert attend(q, q, q, []).shape == (0, 2, 4)
    assert attend(q, q, q, [0, 0]).shape == (0, 2, 4)
