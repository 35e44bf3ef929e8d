"""The registry, the video ViT's tokenizer pieces, CLIP's video/text conventions, and input errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import vidslim as vs
from vidslim.errors import ConfigError
from vidslim.models.positions import grid_positions, interpolate_2d, interpolate_3d, sinusoid_table


def test_registry_names_and_errors() -> None:
    names = vs.list_models()
    for name in ("clip-b32", "clip-b16", "clip-tiny", "videomae-s16", "videomae-b16", "videomae-l16", "videomae-tiny"):
        assert name in names
    with pytest.raises(ConfigError, match="did you mean clip-b16"):
        vs.create_model("clip-b61")
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['depht'\]"):
        vs.create_model("videomae-tiny", depht=3)


def test_named_sizes() -> None:
    """Parameter counts of the standard sizes (ViT-B/16 video: 86.2M + 400-way head; CLIP B/32: 151.3M)."""
    with torch.device("meta"):  # shapes only: no memory, no init cost
        b16 = vs.create_model("videomae-b16", num_classes=400)
        large = vs.create_model("videomae-l16")
        clip = vs.create_model("clip-b32")
    assert sum(p.numel() for p in b16.parameters()) == 86_534_800
    assert (b16.config.embed_dim, b16.config.depth, b16.config.num_heads) == (768, 12, 12)
    assert large.config.grid == (8, 14, 14) and len(large.blocks) == 24
    assert sum(p.numel() for p in clip.parameters()) == 151_277_313  # OpenAI's ViT-B/32
    assert clip.visual.positional_embedding.shape == (50, 768)


def test_sinusoid_table_by_hand() -> None:
    table = sinusoid_table(5, 6)
    assert table[0].tolist() == pytest.approx([0, 1, 0, 1, 0, 1])
    p = 3
    expected = [math.sin(p), math.cos(p), math.sin(p / 10000 ** (2 / 6)), math.cos(p / 10000 ** (2 / 6))]
    assert table[p, :4].tolist() == pytest.approx(expected, abs=1e-6)


def test_grid_positions_and_interpolation_identity() -> None:
    pos = grid_positions(2, 3, 4)
    assert pos.shape == (24, 3) and pos[0].tolist() == [0, 0, 0] and pos[23].tolist() == [1, 2, 3]
    assert pos[5].tolist() == [0, 1, 1]  # row-major: index t·h·w + h·w + w
    table = torch.randn(1 + 9, 8)
    assert interpolate_2d(table, (3, 3)) is table
    torch.testing.assert_close(interpolate_3d(table[1:], (1, 3, 3), (1, 3, 3)), table[1:])
    assert interpolate_2d(table, (5, 5)).shape == (26, 8)


def test_tubelet_linear_equals_conv3d_embedding() -> None:
    """`project(tubelets(v))` (the Linear form RLT uses) equals the Conv3d patch embedding: (c, t, h, w) order."""
    model = vs.create_model("videomae-tiny").eval()
    video = torch.randn(2, 3, 4, 32, 32)
    conv = model.patch_embed(video).flatten(2).transpose(1, 2)
    torch.testing.assert_close(model.project(model.tubelets(video)), conv, atol=1e-5, rtol=1e-5)
    tokens = model.embed(video)
    assert tokens.seqlens == (8, 8)
    assert tokens.pos.view(2, 8, 3)[1, 5].tolist() == [1, 0, 1]
    torch.testing.assert_close(tokens.dense() - conv, sinusoid_table(8, 64).expand(2, 8, 64))


def test_video_vit_runs_on_other_frame_counts_with_a_rebuilt_table() -> None:
    model = vs.create_model("videomae-tiny").eval()
    table = model.position_table((4, 2, 2), torch.device("cpu"), torch.float32)
    torch.testing.assert_close(table, sinusoid_table(16, 64))
    with torch.inference_mode():
        assert model(torch.randn(1, 3, 8, 32, 32)).shape == (1, 10)


def test_video_vit_pooling_is_the_mean_then_fc_norm_and_head() -> None:
    model = vs.create_model("videomae-tiny").eval()
    video = torch.randn(2, 3, 4, 32, 32)
    with torch.inference_mode():
        tokens = model.forward_tokens(video)
        expected = model.head(model.fc_norm(tokens.dense().mean(1)))
        torch.testing.assert_close(model(video), expected)
    assert vs.create_model("videomae-tiny", num_classes=0).eval()(video).shape == (2, 64)


def test_input_layout_errors_name_the_fix() -> None:
    video_vit, clip = vs.create_model("videomae-tiny"), vs.create_model("clip-tiny")
    with pytest.raises(ConfigError, match=r"permute\(0, 2, 1, 3, 4\)"):
        video_vit(torch.randn(1, 4, 3, 32, 32))
    with pytest.raises(ConfigError, match="multiple of 2 frames"):
        video_vit(torch.randn(1, 3, 5, 32, 32))
    with pytest.raises(ConfigError, match=r"looks like \[B, C, T, H, W\]"):
        clip.encode_video(torch.randn(1, 3, 4, 32, 32))
    with pytest.raises(ConfigError, match="image_size=48"):
        clip.encode_video(torch.randn(1, 2, 3, 48, 48))
    with pytest.raises(ConfigError, match="float"):
        clip.encode_video(torch.zeros(1, 2, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ConfigError, match=r"one decoded clip \[T, H, W, C\] of torch.int64: pass it as uint8"):
        clip.encode_video(torch.zeros(4, 32, 32, 3, dtype=torch.int64))  # not "add the batch axis"


def test_encode_video_is_the_mean_of_normalised_frames() -> None:
    model = vs.create_model("clip-tiny").eval()
    video = torch.randn(2, 4, 3, 32, 32)
    with torch.inference_mode():
        frames = model.encode_frames(video)
        torch.testing.assert_close(model.encode_video(video), F.normalize(frames, dim=-1).mean(1))
        mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
        masked = model.encode_video(video, frame_mask=mask)
        torch.testing.assert_close(masked[0], F.normalize(frames[0, :2], dim=-1).mean(0))
        torch.testing.assert_close(model.encode_image(video[:, 0]), frames[:, 0])
        assert model(video).shape == (2, 32)
    assert vs.create_model("clip-tiny", num_classes=5).eval()(video).shape == (2, 5)


def test_encode_text_pools_at_end_of_text_and_ignores_what_follows() -> None:
    model = vs.create_model("clip-tiny").eval()
    ids = torch.tensor([[49406, 320, 1929, 49407, 0, 0, 0], [49406, 518, 7, 8, 9, 10, 49407]])
    other = ids.clone()
    other[0, 4:] = torch.tensor([5, 6, 7])  # junk after the end of text: causal attention never sees it
    with torch.inference_mode():
        a, b = model.encode_text(ids), model.encode_text(other)
        single = model.encode_text(ids[0, :4])
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a[:1], single)
    assert a.shape == (2, 32)
    with pytest.raises(ConfigError, match="no tokenizer attached"):
        model.encode_text(["a dog runs"])


def test_encode_text_strings_use_the_attached_tokenizer() -> None:
    class Stub:
        def __call__(self, texts: list[str]) -> torch.Tensor:
            ids = torch.zeros(len(texts), 77, dtype=torch.long)
            ids[:, 0], ids[:, 1] = 49406, 49407
            return ids

    model = vs.create_model("clip-tiny").eval()
    model.tokenizer = Stub()
    with torch.inference_mode():
        out = model.encode_text(["a", "b"])
        torch.testing.assert_close(out, model.encode_text(torch.tensor([[49406, 49407]] * 2)))
        assert model.encode_text("one string").shape == (1, 32)


def test_drop_path_only_in_training() -> None:
    torch.manual_seed(0)
    model = vs.create_model("videomae-tiny", drop_path=0.5)
    video = torch.randn(4, 3, 4, 32, 32)
    model.eval()
    with torch.inference_mode():
        assert torch.equal(model(video), model(video))
    model.train()
    with torch.no_grad():
        outs = {tuple(model(video).flatten().tolist()) for _ in range(3)}
    assert len(outs) > 1
