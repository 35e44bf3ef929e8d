"""The cross-modal encoder and text-guided pruning: hand-built attention, cached video tokens, re-ranking and
multiple-choice scoring, and invariants (no pruning = keep 1.0, padding never matters)."""

from __future__ import annotations

import pytest
import torch

from vidslim.errors import ConfigError
from vidslim.models.cross_modal import CrossModalConfig, CrossModalEncoder
from vidslim.reduce.svitt_prune import TextGuidedPrune
from vidslim.tokens import NO_POSITION, Tokens

CONFIG = dict(width=32, heads=2, text_layers=1, fusion_layers=3, mlp_dim=64, vocab_size=100, context_length=16,
              video_width=48)


def test_text_guided_prune_keeps_what_a_hand_built_attention_points_at() -> None:
    # 2 pairs, 2 heads, 2 text queries (row 0 = text CLS), 6 visual tokens; token 0 is a visual CLS
    probs = torch.zeros(2, 2, 2, 6)
    probs[0, 0, 0] = torch.tensor([0.0, 0.1, 0.5, 0.0, 0.4, 0.0])
    probs[0, 1, 0] = torch.tensor([0.0, 0.1, 0.1, 0.0, 0.6, 0.2])  # head mean: 4 (0.5), 2 (0.3), 5 (0.1), 1 (0.1)
    probs[0, :, 1] = torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0, 0.0])  # a non-CLS text query looks elsewhere
    probs[1, :, 0] = torch.tensor([0.0, 0.2, 0.0, 0.3, 0.5, 0.0])  # pair 1 has only 5 real tokens (0..4)
    valid = torch.tensor([[True] * 6, [True] * 5 + [False]])
    is_cls = torch.tensor([[True] + [False] * 5] * 2)
    prune = TextGuidedPrune(keep=0.4)  # ceil(0.4 * 5) = 2 and ceil(0.4 * 4) = 2, plus the CLS
    index, real = prune.select(prune.text_scores(probs), valid, is_cls)
    assert index.tolist() == [[0, 2, 4], [0, 3, 4]]
    assert real.all()
    mean = TextGuidedPrune(keep=0.2, score="mean")  # the mean over text queries now favours token 3 in pair 0
    index, real = mean.select(mean.text_scores(probs), valid, is_cls)
    assert index[0].tolist() == [0, 3] and index[1].tolist() == [0, 4] and real.all()


def test_select_pads_pairs_that_keep_fewer() -> None:
    prune = TextGuidedPrune(keep=0.5)
    scores = torch.tensor([[0.1, 0.4, 0.3, 0.2], [0.9, 0.1, 0.0, 0.0]])
    valid = torch.tensor([[True] * 4, [True, True, False, False]])
    index, real = prune.select(scores, valid, torch.zeros(2, 4, dtype=torch.bool))
    assert real.tolist() == [[True, True], [True, False]]
    assert index[0].tolist() == [1, 2] and index[1, 0] == 0


def encoder(prune: TextGuidedPrune | None = None) -> CrossModalEncoder:
    torch.manual_seed(0)
    return CrossModalEncoder(CrossModalConfig(**CONFIG), prune=prune).eval()


def videos() -> Tokens:
    gen = torch.Generator().manual_seed(1)
    xs = [torch.randn(n, 48, generator=gen) for n in (10, 7, 12)]
    pos = [torch.cat((torch.full((1, 3), NO_POSITION), torch.zeros(n - 1, 3, dtype=torch.long))) for n in (10, 7, 12)]
    return Tokens.from_list(xs, pos=pos)


def texts() -> torch.Tensor:
    ids = torch.randint(1, 100, (2, 9), generator=torch.Generator().manual_seed(2))
    ids[1, 5:] = 0  # padding
    return ids


def test_rerank_scores_every_shortlisted_pair_from_the_cache() -> None:
    enc = encoder(TextGuidedPrune(keep=0.3))
    cache = enc.cache_video(videos())
    assert cache.is_cls[:, 0].all() and int(cache.is_cls.sum()) == 3
    shortlist = torch.tensor([[2, 0], [1, 2]])
    scores = enc.rerank(cache, texts(), shortlist)
    with torch.no_grad():
        for q in range(2):
            for j in range(2):
                alone = enc(enc.cache_video(videos()).select(shortlist[q, j:j + 1]), texts()[q:q + 1])
                torch.testing.assert_close(scores[q, j:j + 1], alone, atol=1e-5, rtol=1e-5)


def test_no_pruning_equals_keep_one_and_pruning_changes_only_later_layers() -> None:
    ids, video = texts(), videos()
    with torch.no_grad():
        plain = encoder()(encoder().cache_video(video), ids)
        keep_all = encoder(TextGuidedPrune(keep=1.0))
        torch.testing.assert_close(keep_all(keep_all.cache_video(video), ids), plain)
        last = encoder(TextGuidedPrune(keep=0.1, layer=2))  # pruned after the last layer: nothing reads it
        torch.testing.assert_close(last(last.cache_video(video), ids), plain)
        early = encoder(TextGuidedPrune(keep=0.1, layer=0))
        assert not torch.allclose(early(early.cache_video(video), ids), plain)


def test_kept_tokens_follow_the_text_cls_cross_attention() -> None:
    enc = encoder(TextGuidedPrune(keep=0.3, layer=1))
    cache = enc.cache_video(videos())
    with torch.no_grad():
        text = enc.encode_text(texts())
        pairs = torch.tensor([0, 1]), torch.tensor([0, 2])
        _, (index, real) = enc.score_pairs(text, cache, *pairs, return_kept=True)
        # reference: run the fusion layers by hand up to layer 1 and read the text CLS row
        x, tv = text.hidden[pairs[0]], text.valid[pairs[0]]
        vv = cache.valid[pairs[1]]
        for layer in range(2):
            block = enc.fusion_blocks[layer]
            keys, values = cache.keys[layer][pairs[1]], cache.values[layer][pairs[1]]
            x, probs = block.fuse(x, tv, keys, values, vv, want_probs=True)
    score = probs[:, :, 0].mean(1).masked_fill(~vv, -1.0)
    for p, n in enumerate((10, 12)):
        k = -(-3 * (n - 1) // 10)  # ceil(0.3 * (n - 1))
        best = torch.topk(score[p, 1:n], k).indices + 1
        expected = torch.sort(torch.cat((torch.zeros(1, dtype=torch.long), best))).values
        assert index[p][real[p]].tolist() == expected.tolist()


def test_padding_of_other_videos_and_texts_does_not_matter() -> None:
    enc = encoder(TextGuidedPrune(keep=0.5))
    with torch.no_grad():
        together = enc.rerank(enc.cache_video(videos()), texts(), torch.tensor([[1], [1]]))
        alone = enc(enc.cache_video(Tokens.from_list([videos().split()[1]])), texts()[1:, :5])
    torch.testing.assert_close(together[1], alone, atol=1e-5, rtol=1e-5)


def test_score_choices_shapes_and_consistency() -> None:
    enc = encoder(TextGuidedPrune(keep=0.5))
    cache = enc.cache_video(videos())
    choices = torch.randint(1, 100, (3, 4, 6), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        scores = enc.score_choices(cache, choices)
        assert scores.shape == (3, 4)
        one = enc.score_choices(cache.select(torch.tensor([2])), choices[2])
    torch.testing.assert_close(one[0], scores[2], atol=1e-5, rtol=1e-5)


def test_cross_modal_errors() -> None:
    with pytest.raises(ConfigError, match="fusion layer"):
        CrossModalEncoder(CrossModalConfig(**CONFIG), prune=TextGuidedPrune(layer=3))
    enc = encoder()
    with pytest.raises(ConfigError, match="video_width"):
        enc.cache_video(torch.randn(1, 4, 16))
    with pytest.raises(ConfigError, match="shortlist"):
        enc.rerank(enc.cache_video(videos()), texts(), torch.tensor([0, 1]))
