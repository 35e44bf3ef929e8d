"""Bipartite soft matching on hand-built cases and against a slow, obvious reference (spec tempme §5, §1.12)."""

from __future__ import annotations

import pytest
import torch

from vidslim.reduce.matching import bipartite_soft_matching, max_merges


def as_seq(*rows: tuple[float, ...]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)[None]


def test_one_cls_merges_the_closest_a_token_into_its_b_partner() -> None:
    # full indices 0..4 = [cls, p1, p2, p3, p4]: A = {p2, p4} (even), B = {p1, p3} (odd)
    metric = as_seq((5, 5), (1, 0), (0.9, 0.1), (0, 1), (0.5, 0.5))
    merge = bipartite_soft_matching(metric, r=1, protected=1)
    x = torch.tensor([[10.0, 1.0, 2.0, 3.0, 4.0]])[..., None]
    out, size = merge.weighted_average(x, torch.ones_like(x))
    # p2 (score 0.994 with p1) merges into p1; p4 stays: [cls | p4 | p1+p2, p3]
    assert out.flatten().tolist() == [10.0, 4.0, 1.5, 3.0]
    assert size.flatten().tolist() == [1.0, 1.0, 2.0, 1.0]


def test_even_cls_count_flips_the_patch_parity() -> None:
    # [c0, c1, p0, p1, p2, p3]: p0 has full index 2 (even) so A = {p0, p2}, B = {p1, p3}
    metric = as_seq((9, 1), (1, 9), (0, 1), (1, 0), (0.2, 1), (0.7, 0.7))
    merge = bipartite_soft_matching(metric, r=1, protected=2)
    # p0 matches p3 (0.707) ; p2 matches p3 (0.93): p2 merges into p3
    assert merge.src_idx.flatten().tolist() == [1] and merge.dst_idx.flatten().tolist() == [1]
    x = torch.arange(6.0)[None, :, None]
    out = merge(x, "sum")
    assert out.flatten().tolist() == [0.0, 1.0, 2.0, 3.0, 4.0 + 5.0]


def test_sizes_weight_the_average_and_sum() -> None:
    metric = as_seq((1, 0), (1, 0.01), (0, 1))
    merge = bipartite_soft_matching(metric, r=1, protected=0)  # A = {t0, t2}, B = {t1}; t0 merges into t1
    x = torch.tensor([[[2.0], [8.0], [5.0]]])
    size = torch.tensor([[[3.0], [1.0], [1.0]]])
    out, new_size = merge.weighted_average(x, size)
    assert out.flatten().tolist() == [5.0, pytest.approx((3 * 2 + 8) / 4)]
    assert new_size.flatten().tolist() == [1.0, 4.0]


def test_without_protected_tokens_unmerged_stay_in_score_order() -> None:
    # A = {t0, t2, t4}, B = {t1, t3}; best scores: t0 0.8, t2 1.0, t4 0.95 -> order t2, t4, t0; r=1 merges t2
    metric = as_seq((0.6, 0.8), (1, 0), (1, 0), (0, 1), (0.95, 0.312))
    merge = bipartite_soft_matching(metric, r=1, protected=0)
    assert merge.unmerged_idx.flatten().tolist() == [2, 0]  # t4 then t0, as ToMe leaves them
    with_cls = bipartite_soft_matching(torch.cat([torch.ones(1, 1, 2), metric], 1), r=1, protected=1)
    assert with_cls.unmerged_idx.flatten().tolist() == sorted(with_cls.unmerged_idx.flatten().tolist())


def test_r_is_clamped_and_zero_is_identity() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 9, 4)
    assert max_merges(9, 1) == 4
    assert bipartite_soft_matching(x, r=100, protected=1)(x).shape == (3, 5, 4)
    same = bipartite_soft_matching(x, r=0, protected=1)
    assert torch.equal(same(x), torch.cat([x[:, :1], x[:, 2::2], x[:, 1::2]], 1))


def test_sources_track_original_tokens() -> None:
    torch.manual_seed(1)
    metric = torch.randn(2, 11, 8)
    source = torch.eye(11).expand(2, 11, 11)
    merge1 = bipartite_soft_matching(metric, r=3, protected=1)
    source = merge1.sources(source)
    metric = merge1(metric)
    merge2 = bipartite_soft_matching(metric, r=2, protected=1)
    source = merge2.sources(source)
    # every original token is covered exactly once, and the CLS covers only itself
    assert torch.equal(source.sum(1), torch.ones(2, 11))
    assert source[:, 0, 0].eq(1).all() and source[:, 0].sum(-1).eq(1).all()
    assert source.shape == (2, 6, 11)


def test_fp16_sizes_do_not_overflow() -> None:
    x = torch.full((1, 5, 2), 100.0, dtype=torch.float16)
    size = torch.full((1, 5, 1), 1000.0, dtype=torch.float16)  # size * x = 1e5 > fp16 max
    merge = bipartite_soft_matching(torch.randn(1, 5, 4), r=2, protected=1)
    out, _ = merge.weighted_average(x, size)
    assert torch.isfinite(out).all() and out.eq(100).all()
    assert out.dtype == torch.float16


def reference_matching(metric: torch.Tensor, x: torch.Tensor, r: int, protected: int) -> torch.Tensor:
    """ToMe/TempMe merge of ONE sequence [N, C], written out step by step with Python lists."""
    n = metric.shape[0]
    unit = metric / metric.norm(dim=-1, keepdim=True)
    a = [i for i in range(protected, n) if i % 2 == 0]
    b = [i for i in range(protected, n) if i % 2 == 1]
    best = []
    for i in a:
        sims = [float(unit[i] @ unit[j]) for j in b]
        j = max(range(len(b)), key=lambda k: sims[k])
        best.append((sims[j], i, b[j]))
    order = sorted(range(len(a)), key=lambda k: -best[k][0])
    merged = {k for k in order[:r]}
    groups = {j: [j] for j in b}
    for k in merged:
        groups[best[k][2]].append(best[k][1])
    unmerged = sorted(a[k] for k in range(len(a)) if k not in merged)
    rows = [x[i] for i in range(protected)] + [x[i] for i in unmerged]
    rows += [torch.stack([x[i] for i in groups[j]]).mean(0) for j in b]
    return torch.stack(rows)


@pytest.mark.parametrize(("n", "protected", "r"), [(50, 1, 2), (48, 2, 10), (62, 4, 20), (118, 12, 50), (17, 3, 7)])
def test_matches_reference_token_for_token(n: int, protected: int, r: int) -> None:
    torch.manual_seed(n)
    metric = torch.randn(4, n, 16, dtype=torch.float64)
    x = torch.randn(4, n, 3, dtype=torch.float64)
    merge = bipartite_soft_matching(metric, r, protected)
    out, _ = merge.weighted_average(x.float(), torch.ones(4, n, 1))
    for s in range(4):
        expected = reference_matching(metric[s], x[s], r, protected).float()
        torch.testing.assert_close(out[s], expected)
