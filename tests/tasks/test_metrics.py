"""Retrieval and classification metrics on hand-built matrices with hand-derived ranks."""

from __future__ import annotations

import math

import pytest
import torch

from vidslim.tasks.metrics import (
    average_views,
    classification_metrics,
    dual_softmax,
    rank_metrics,
    retrieval_metrics,
    t2v_ranks,
    topk_accuracy,
    v2t_ranks,
)


def test_identity_gives_perfect_scores() -> None:
    out = retrieval_metrics(torch.eye(7))
    for direction in ("t2v", "v2t"):
        assert out[direction]["R@1"] == 100.0
        assert out[direction]["MdR"] == 1.0 and out[direction]["MnR"] == 1.0
        assert out[direction]["R-Sum"] == 300.0


def test_staircase_gives_rank_i_for_row_i() -> None:
    # row i: videos j < i score 1 (above), its own video 0.5, videos j > i score 0 -> t2v rank i
    n = 4
    j = torch.arange(n)
    sim = (j[None, :] < j[:, None]).float()
    sim.fill_diagonal_(0.5)
    assert t2v_ranks(sim, torch.arange(n)).tolist() == [0, 1, 2, 3]
    # column j: texts i > j score 1 -> v2t rank n - 1 - j
    assert v2t_ranks(sim, torch.arange(n)).tolist() == [3, 2, 1, 0]
    m = retrieval_metrics(sim)["t2v"]
    assert m["R@1"] == 25.0 and m["R@5"] == 100.0
    assert m["MdR"] == 2.5  # median of ranks 1..4, the mean of the middle two as np.median
    assert m["MnR"] == 2.5


def test_reversed_ranking_puts_every_truth_last() -> None:
    n = 5
    out = retrieval_metrics(1.0 - torch.eye(n))
    for direction in ("t2v", "v2t"):
        assert out[direction]["R@1"] == 0.0 and out[direction]["R@5"] == 100.0
        assert out[direction]["MdR"] == n and out[direction]["MnR"] == n


def test_ties_pessimistic_and_optimistic() -> None:
    flat = torch.zeros(3, 3)
    assert t2v_ranks(flat, torch.arange(3)).tolist() == [2, 2, 2]
    assert t2v_ranks(flat, torch.arange(3), ties="optimistic").tolist() == [0, 0, 0]
    assert retrieval_metrics(flat)["v2t"]["MnR"] == 3.0
    assert retrieval_metrics(flat, ties="optimistic")["v2t"]["R@1"] == 100.0
    # one competitor tied with the truth, one below it
    sim = torch.tensor([[0.5, 0.5, 0.1]])
    assert t2v_ranks(sim, torch.tensor([0])).item() == 1
    assert t2v_ranks(sim, torch.tensor([0]), ties="optimistic").item() == 0


def test_multi_caption_mapping_by_hand() -> None:
    sim = torch.tensor([
        [0.9, 0.1, 0.2],  # t0 -> v0: nothing above                     rank 0
        [0.3, 0.6, 0.2],  # t1 -> v0: v1 above                          rank 1
        [0.5, 0.4, 0.8],  # t2 -> v1: v2 and v0 above                   rank 2
        [0.1, 0.2, 0.7],  # t3 -> v2: nothing above                     rank 0
        [0.6, 0.9, 0.5],  # t4 -> v2: v1 and v0 above                   rank 2
    ])
    t2v = torch.tensor([0, 0, 1, 2, 2])
    assert t2v_ranks(sim, t2v).tolist() == [0, 1, 2, 0, 2]
    # v0: best own caption 0.9, no other caption above -> 0; v1: own 0.4, t1 (0.6) and t4 (0.9) above -> 2;
    # v2: best own 0.7, t2 (0.8) above -> 1
    assert v2t_ranks(sim, t2v).tolist() == [0, 2, 1]
    out = retrieval_metrics(sim, t2v)
    assert out["t2v"]["R@1"] == 40.0 and out["t2v"]["MdR"] == 2.0 and out["t2v"]["MnR"] == 2.0
    assert out["v2t"]["R@1"] == pytest.approx(100 / 3) and out["v2t"]["MdR"] == 2.0 and out["v2t"]["MnR"] == 2.0


def test_v2t_does_not_count_the_videos_own_captions_as_competitors() -> None:
    # both captions of v0 tie at its best score: pessimistic ties must not rank one above the other
    sim = torch.tensor([[0.8, 0.1], [0.8, 0.2], [0.3, 0.9]])
    t2v = torch.tensor([0, 0, 1])
    assert v2t_ranks(sim, t2v).tolist() == [0, 0]
    # a caption of another video tied with v0's best counts pessimistically only
    sim[2, 0] = 0.8
    assert v2t_ranks(sim, t2v).tolist() == [1, 0]
    assert v2t_ranks(sim, t2v, ties="optimistic").tolist() == [0, 0]


def test_videos_without_captions_are_left_out_of_v2t() -> None:
    sim = torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.1, 0.8]])
    ranks = v2t_ranks(sim, torch.tensor([0, 2]))  # video 1 has no caption
    assert ranks.tolist() == [0, 0]


def _official_square(sim: torch.Tensor) -> torch.Tensor:
    """Spec tempme §7.4: 0-based position of sim[i, i] in row i sorted descending (no ties)."""
    order = torch.argsort(sim, dim=1, descending=True)
    return (order == torch.arange(sim.shape[0])[:, None]).float().argmax(1)


def test_matches_the_official_square_protocol_without_ties() -> None:
    g = torch.Generator().manual_seed(0)
    sim = torch.randn(40, 40, generator=g) + 2.0 * torch.eye(40)
    eye = torch.arange(40)
    assert torch.equal(t2v_ranks(sim, eye), _official_square(sim))
    assert torch.equal(v2t_ranks(sim, eye), _official_square(sim.T))
    ranks = _official_square(sim).double()
    m = retrieval_metrics(sim)["t2v"]
    assert m["R@1"] == pytest.approx(100 * float((ranks < 1).double().mean()))
    assert m["MdR"] == pytest.approx(float(ranks.median()) + 1 if len(ranks) % 2 else
                                     float(ranks.sort().values[19:21].mean()) + 1)
    assert m["MnR"] == pytest.approx(float(ranks.mean()) + 1)


def test_multi_caption_matches_a_brute_force_loop() -> None:
    g = torch.Generator().manual_seed(1)
    sim = torch.randn(30, 8, generator=g)
    t2v = torch.randint(0, 8, (30,), generator=g)
    t2v[:8] = torch.arange(8)  # every video has a caption
    expected_t2v = [int((sim[i] > sim[i, t2v[i]]).sum()) for i in range(30)]
    expected_v2t = []
    for v in range(8):
        own = t2v == v
        best = sim[own, v].max()
        expected_v2t.append(int((sim[~own, v] > best).sum()))
    assert t2v_ranks(sim, t2v).tolist() == expected_t2v
    assert v2t_ranks(sim, t2v).tolist() == expected_v2t


def test_chunking_gives_the_same_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    import vidslim.tasks.metrics as metrics

    g = torch.Generator().manual_seed(2)
    sim = torch.randn(25, 6, generator=g)
    t2v = torch.arange(25) % 6
    full = (t2v_ranks(sim, t2v), v2t_ranks(sim, t2v))
    monkeypatch.setattr(metrics, "_CHUNK_ELEMENTS", 7)  # one row per chunk
    assert torch.equal(t2v_ranks(sim, t2v), full[0]) and torch.equal(v2t_ranks(sim, t2v), full[1])


def test_rank_metrics_values() -> None:
    m = rank_metrics(torch.tensor([0, 4, 9, 49, 60]))
    assert m["R@1"] == 20.0 and m["R@5"] == 40.0 and m["R@10"] == 60.0 and m["R@50"] == 80.0
    assert m["MdR"] == 10.0 and m["MnR"] == pytest.approx((0 + 4 + 9 + 49 + 60) / 5 + 1)
    assert m["R-Sum"] == 120.0


def test_dual_softmax_formula_and_effect() -> None:
    sim = torch.tensor([[0.5, 0.6], [0.1, 0.7]])
    # column 0 prior over texts: e^5 / (e^5 + e^1); column 1: e^6 / (e^6 + e^7)
    p00 = math.exp(5) / (math.exp(5) + math.exp(1))
    p01 = math.exp(6) / (math.exp(6) + math.exp(7))
    reweighted = dual_softmax(sim, temperature=10.0, dim=0)
    assert reweighted[0, 0].item() == pytest.approx(0.5 * p00, rel=1e-6)
    assert reweighted[0, 1].item() == pytest.approx(0.6 * p01, rel=1e-6)
    # video 1 is a hub (scores high with every text): plain t2v misranks text 0, DSL fixes it
    assert retrieval_metrics(sim)["t2v"]["R@1"] == 50.0
    assert retrieval_metrics(sim, dsl=True, dsl_temperature=10.0)["t2v"]["R@1"] == 100.0
    assert torch.allclose(dual_softmax(sim, 10.0, dim=1), sim * torch.softmax(10.0 * sim, dim=1))


def test_bad_inputs_name_the_argument() -> None:
    with pytest.raises(ValueError, match="text_to_video"):
        t2v_ranks(torch.eye(3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="outside"):
        t2v_ranks(torch.eye(3), torch.tensor([0, 1, 3]))
    with pytest.raises(ValueError, match="square"):
        retrieval_metrics(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="ties"):
        t2v_ranks(torch.eye(2), torch.arange(2), ties="mean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN"):
        t2v_ranks(torch.full((2, 2), float("nan")), torch.arange(2))


def test_topk_on_hand_built_logits() -> None:
    logits = torch.tensor([
        [0.1, 0.5, 0.2, 0.9, 0.0, 0.3, 0.05],  # label 3: top-1 hit
        [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3],   # label 4: 5th highest -> top-5 hit only
        [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3],   # label 6: last -> miss
        [0.2, 0.1, 0.3, 0.0, 0.4, 0.5, 0.6],   # label 5: 2nd highest -> top-5 hit
    ])
    labels = torch.tensor([3, 4, 6, 5])
    assert topk_accuracy(logits, labels) == {"top1": 25.0, "top5": 75.0}
    assert topk_accuracy(logits[:, :3], torch.tensor([0, 1, 2, 2]), ks=(1, 5)) == {"top1": 25.0, "top5": 100.0}


def test_multi_view_averages_softmax_not_logits() -> None:
    # view probabilities [0.7, 0.2, 0.1] and [0.1, 0.5, 0.4]: mean [0.4, 0.35, 0.25] -> class 0;
    # the mean of the log-probabilities picks class 1 ((ln .2 + ln .5) / 2 is the largest)
    probs = torch.tensor([[[0.7, 0.2, 0.1], [0.1, 0.5, 0.4]]])
    logits = probs.log() + 3.0  # any shift per view leaves the softmax unchanged
    avg = average_views(logits)
    assert torch.allclose(avg, torch.tensor([[0.4, 0.35, 0.25]]), atol=1e-6)
    assert average_views(logits, mode="logits").argmax().item() == 1
    assert classification_metrics(logits, torch.tensor([0]))["top1"] == 100.0
    # flat [N * V, C] rows, views of one video adjacent
    flat = torch.cat([logits, logits.flip(0) * 0 + torch.tensor([0.0, 5.0, 0.0])]).reshape(4, 3)
    scores = average_views(flat, num_views=2)
    assert scores.shape == (2, 3) and torch.allclose(scores[0], avg[0], atol=1e-6)
    assert classification_metrics(flat, torch.tensor([0, 1]), num_views=2) == {"top1": 100.0, "top5": 100.0}
    with pytest.raises(ValueError, match="multiple"):
        average_views(torch.zeros(5, 3), num_views=2)
