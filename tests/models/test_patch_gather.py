"""Reading kept patches straight out of a video (`gather_blocks`): the rows advanced indexing gives, for every layout
the models use, and no copy of the whole video on the way."""

from __future__ import annotations

import pytest
import torch

import vidslim as vs
from vidslim.models.patch_gather import gather_blocks
from vidslim.tokens.selection import Selection


def frame_view(video: torch.Tensor, p: int) -> torch.Tensor:
    """CLIP / SigLIP: [B, T, C, H, W] -> [B·T, H', W', C, p, p]."""
    b, t, c, h, w = video.shape
    return video.reshape(b * t, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)


def tubelet_view_tchw(video: torch.Tensor, ts: int, p: int) -> torch.Tensor:
    """V-JEPA 2 / ViViT: [B, T, C, H, W] -> [B, T', H', W', C, ts, p, p]."""
    b, t, c, h, w = video.shape
    return video.reshape(b, t // ts, ts, c, h // p, p, w // p, p).permute(0, 1, 4, 6, 3, 2, 5, 7)


def tubelet_view_cthw(video: torch.Tensor, ts: int, p: int) -> torch.Tensor:
    """VideoMAE: [B, C, T, H, W] -> [B, T', H', W', C, ts, p, p]."""
    b, c, t, h, w = video.shape
    return video.reshape(b, c, t // ts, ts, h // p, p, w // p, p).permute(0, 2, 4, 6, 1, 3, 5, 7)


def random_index(view: torch.Tensor, lead: int, k: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randint(0, view.shape[d], (k,), generator=g) for d in range(lead))


VIEWS = {
    "frames": (lambda: torch.randn(2, 3, 3, 24, 32), lambda v: frame_view(v, 8), 3),
    "tubelets_tchw": (lambda: torch.randn(2, 4, 3, 16, 24), lambda v: tubelet_view_tchw(v, 2, 8), 4),
    "tubelets_cthw": (lambda: torch.randn(2, 3, 4, 16, 24), lambda v: tubelet_view_cthw(v, 2, 8), 4),
}


@pytest.mark.parametrize("layout", list(VIEWS))
def test_rows_equal_advanced_indexing_of_the_view(layout: str) -> None:
    make, cut, lead = VIEWS[layout]
    torch.manual_seed(0)
    view = cut(make())
    index = random_index(view, lead, 50, seed=1)  # repeats included
    expected = view[index].reshape(50, -1)
    assert torch.equal(gather_blocks(view, index), expected)
    assert torch.equal(gather_blocks(view, tuple(i.int() for i in index)), expected)  # int32 indices too
    empty = tuple(i[:0] for i in index)
    assert gather_blocks(view, empty).shape == (0, expected.shape[1])


def test_views_of_sliced_or_strided_videos_give_the_same_rows() -> None:
    torch.manual_seed(0)
    batch = torch.randn(3, 2, 3, 16, 16)
    odd = torch.randn(2 * 3 * 16 * 16 + 3)[3:].view(1, 2, 3, 16, 16)  # storage offset not a multiple of a patch row
    cases = [
        batch[1:2],  # a clip of a batch: offset a multiple of a patch row
        odd,
        batch[:1].transpose(-1, -2),  # last dimension not contiguous
        batch[:1, :, :, :, :].expand(2, -1, -1, -1, -1),  # a zero batch stride
        batch[:1].to(torch.bfloat16),
    ]
    for video in cases:
        view = frame_view(video, 8)
        index = random_index(view, 3, 20, seed=2)
        assert torch.equal(gather_blocks(view, index), view[index].reshape(20, -1))


def test_gradient_reaches_the_video_as_with_advanced_indexing() -> None:
    torch.manual_seed(0)
    video = torch.randn(1, 2, 3, 16, 16, requires_grad=True)
    weight = torch.randn(20, 3 * 8 * 8)
    index = random_index(frame_view(video, 8), 3, 20, seed=3)
    (gather_blocks(frame_view(video, 8), index) * weight).sum().backward()
    ours, video.grad = video.grad, None
    (frame_view(video, 8)[index].reshape(20, -1) * weight).sum().backward()
    assert torch.equal(ours, video.grad)


def whole_video_copies(call: object, numel: int) -> list[str]:
    """Ops of one call that copy a tensor of at least `numel` elements (a copy of the whole video)."""
    with torch.profiler.profile(record_shapes=True) as prof:
        call()  # type: ignore[operator]
    copies = []
    for event in prof.events():
        if event.name in ("aten::copy_", "aten::clone", "aten::contiguous", "aten::index"):
            for shape in event.input_shapes:
                if shape and torch.Size(shape).numel() >= numel:
                    copies.append(f"{event.name} {shape}")
    return copies


def test_kept_path_embeds_without_copying_the_video() -> None:
    torch.manual_seed(0)
    clip = vs.create_model("clip-tiny").eval()
    video = torch.randn(2, 4, 3, 32, 32)
    keep = torch.rand(2, 4, 4, 4, generator=torch.Generator().manual_seed(1)) > 0.5
    vit = vs.create_model("videomae-tiny").eval()
    c = vit.config
    clips = torch.randn(2, 3, c.num_frames, c.image_size, c.image_size)
    grid = vit.grid_of(clips)
    vit_keep = torch.rand(2, *grid, generator=torch.Generator().manual_seed(2)) > 0.5
    with torch.no_grad():
        assert whole_video_copies(lambda: clip.embed(video, keep), video.numel()) == []
        assert whole_video_copies(lambda: vit.embed(clips, Selection(vit_keep)), clips.numel()) == []


def test_clip_kept_tokens_are_the_dense_tokens_of_the_kept_slots() -> None:
    """Each kept patch's token (and each CLS) equals the dense embedding's token of the same slot: the embedding is
    per patch and LayerNorm per token, so dropping other patches changes nothing."""
    torch.manual_seed(0)
    model = vs.create_model("clip-tiny").eval()
    video = torch.randn(2, 3, 3, 32, 32)
    keep = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(5)) > 0.6
    keep[0, 1] = False  # a frame with no patch kept: its CLS alone
    with torch.no_grad():
        tokens, dense = model.embed(video, keep), model.embed(video)
    slots = torch.cat((torch.ones(6, 1, dtype=torch.bool), keep.reshape(6, 16)), 1)  # CLS + patches per frame
    assert tokens.seqlens == tuple(slots.sum(1).tolist())
    torch.testing.assert_close(tokens.x, dense.dense()[slots], atol=1e-5, rtol=1e-5)
    assert torch.equal(tokens.pos, dense.pos.reshape(6, 17, 3)[slots])
