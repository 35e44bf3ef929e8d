"""The batching contenders of the embedding benchmark: token-budget batches of a ragged RLT collection, and the
padded fixed batch (`PadToLongest`), which must give the packed model's embeddings while doing padded work."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import vidslim as vs
import vidslim.jobs.padded as padded_module
from vidslim.errors import ConfigError
from vidslim.jobs.budget import TokenBudget
from vidslim.jobs.padded import PadToLongest, pad_to_longest
from vidslim.tokens import NO_POSITION, Tokens

#: RLT token counts of CLIP B/32 windows (12 frames of 7 x 7 patches, 588 slots): still (the first frame),
#: digit (a moving glyph) and pan (every patch) windows, in collection order
STILL, DIGIT, PAN = 49, 177, 588
RAGGED = [STILL, PAN, STILL, STILL, DIGIT, STILL, PAN, STILL, STILL, STILL, DIGIT, STILL]


def batches_of(batcher: TokenBudget[int], counts: list[int]) -> list[list[int]]:
    out = [b for i, n in enumerate(counts) for b in batcher.add(i, n)]
    rest = batcher.flush()
    return out + ([rest] if rest else [])


def test_budget_of_four_dense_windows_gathers_the_still_windows_that_fixed_batches_split() -> None:
    # by hand: 49+588+49+49+177+49 = 961, + 588 = 1549, + 49*3 = 1696, + 177 = 1873, + 49 = 1922 <= 2352: one batch
    assert batches_of(TokenBudget(4 * PAN), RAGGED) == [list(range(12))]
    assert batches_of(TokenBudget(None, 4), RAGGED) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    # a budget of two dense windows: 49+588+49+49+177+49 = 961, + 588 = 1549 > 1176 closes the first batch
    assert batches_of(TokenBudget(2 * PAN), RAGGED) == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]


def hand_tokens() -> Tokens:
    """Three sequences [CLS, patches] of 3, 1 and 2 tokens, features 1..6 in one column."""
    x = torch.arange(1.0, 7.0)[:, None].repeat(1, 2)
    pos = torch.tensor([[NO_POSITION] * 3, [0, 0, 1], [0, 1, 0], [NO_POSITION] * 3, [NO_POSITION] * 3, [1, 1, 1]])
    return Tokens(x, (3, 1, 2), pos)


def test_pad_to_longest_appends_size_zero_tokens_to_each_short_sequence() -> None:
    out = pad_to_longest(hand_tokens())
    assert out.seqlens == (3, 3, 3)
    assert out.x[:, 0].tolist() == [1, 2, 3, 4, 0, 0, 5, 6, 0]
    assert out.size is not None and out.size.tolist() == [1, 1, 1, 1, 0, 0, 1, 1, 0]
    assert out.pos is not None
    assert out.pos[:, 1].tolist() == [NO_POSITION, 0, 1, NO_POSITION, 0, 0, NO_POSITION, 1, 0]


def ragged_clips() -> torch.Tensor:
    """Prepared clips for a clip-tiny of 4 frames of 32 px: still, half still, moving (RLT keeps 1, 2, 4 frames)."""
    video = torch.randn(3, 4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    video[0, 1:] = video[0, :1]
    video[1, 2:] = video[1, 1:2]
    return video


def test_padded_batch_gives_the_packed_embeddings(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = vs.create_model("clip-tiny", num_frames=4, image_size=32, reduction=vs.RLT()).eval()
    video = ragged_clips()
    keep = model.selector.select(video, model.input_spec).keep
    assert keep.flatten(2).sum(-1).gt(0).sum(1).tolist() == [1, 2, 4]  # frames that keep patches: ragged
    seen: list[tuple[int, ...]] = []
    monkeypatch.setattr(padded_module, "pad_to_longest",
                        lambda t: (seen.append(t.seqlens), pad_to_longest(t))[1])
    with torch.inference_mode():
        packed = model.encode_video(video, token_mask=keep)
        model.set_reduction([vs.RLT(), PadToLongest()])
        padded = model.encode_video(video, token_mask=keep)
    assert len(seen) == 1 and len(set(seen[0])) > 1  # the model ran a padded batch of ragged frames
    torch.testing.assert_close(padded, packed, atol=1e-5, rtol=0)


def test_padded_job_writes_the_packed_rows(videos: Path, clip_model: Path, tmp_path: Path) -> None:
    packed_model = vs.load_model(clip_model, reduction=[vs.RLT()])
    padded_model = vs.load_model(clip_model, reduction=[vs.RLT(), PadToLongest()])
    vs.embed_videos(videos, packed_model, tmp_path / "a", workers=0, fixed_batch=True, batch_size=3, faiss="never")
    vs.embed_videos(videos, padded_model, tmp_path / "b", workers=0, fixed_batch=True, batch_size=3, faiss="never")
    a, b = vs.VideoIndex(tmp_path / "a"), vs.VideoIndex(tmp_path / "b")
    assert list(a.columns["path"]) == list(b.columns["path"]) and list(a.columns["tokens"]) == list(b.columns["tokens"])
    torch.testing.assert_close(torch.as_tensor(b.vectors), torch.as_tensor(a.vectors), atol=1e-5, rtol=0)
    assert sum(b.columns["gflops"]) > sum(a.columns["gflops"])  # the padding is paid for


def test_pad_to_longest_refuses_models_it_would_change() -> None:
    with pytest.raises(ConfigError, match="CLIP"):
        vs.create_model("videomae-tiny", reduction=[vs.RLT(), PadToLongest()])
    reducers = [vs.RLT(), PadToLongest(), vs.ToMe(r=2)]
    model = vs.create_model("clip-tiny", num_frames=4, image_size=32, reduction=reducers)
    video = ragged_clips()
    with pytest.raises(ConfigError, match="ToMe"), torch.inference_mode():
        model.encode_video(video)
