"""RLT on the video ViT: packing, positions, pooling, identity when all is kept, and the loader-side uint8 mask."""

from __future__ import annotations

import pytest
import torch

import vidslim as vs
from vidslim.errors import ConfigError
from vidslim.io.transforms import IMAGENET_MEAN, IMAGENET_STD
from vidslim.tokenize.rlt_mask import keep_mask, keep_mask_uint8
from vidslim.tokenize.run_length import run_lengths


def tiny(reduction: list | None = None, **overrides: object) -> vs.models.VideoViT:  # type: ignore[name-defined]
    torch.manual_seed(0)
    model = vs.create_model("videomae-tiny", num_classes=5, reduction=reduction, **overrides)
    return model.eval()


def normalise(frames_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [B, T, H, W, C] -> ImageNet-normalised [B, C, T, H, W]."""
    x = frames_u8.float().div(255).permute(0, 4, 1, 2, 3)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1)
    return (x - mean) / std


def moving_square_clips(model: torch.nn.Module, batch: int = 3) -> torch.Tensor:
    """uint8 clips of the model's input size: a static background, one square moving right by clip-dependent steps."""
    c = model.config
    t, size = c.num_frames, c.image_size
    torch.manual_seed(1)
    frames = torch.randint(0, 256, (batch, 1, size, size, 3), dtype=torch.uint8).expand(-1, t, -1, -1, -1).clone()
    for b in range(batch):
        for f in range(t):
            x = (f * (b + 1) * 3) % (size - 8)
            frames[b, f, 4:12, x : x + 8] = 255
    return frames


def test_rlt_that_keeps_every_tubelet_equals_dense_model() -> None:
    dense, rlt = tiny(), tiny([vs.RLT(tau=0.0)])
    rlt.load_state_dict(dense.state_dict())
    c = dense.config
    torch.manual_seed(1)  # noise: every tubelet differs from the one before it, so tau 0 keeps them all
    video = normalise(torch.randint(0, 256, (2, c.num_frames, c.image_size, c.image_size, 3), dtype=torch.uint8))
    assert keep_mask(video, 0.0, c.tubelet_size, c.patch_size).all()
    with torch.no_grad():
        torch.testing.assert_close(rlt(video), dense(video), rtol=1e-5, atol=1e-5)


def test_kept_tokens_get_their_own_position_rows_in_token_order() -> None:
    model = tiny([vs.RLT(tau=0.1)])
    video = normalise(moving_square_clips(model))
    mask = keep_mask(video, 0.1, model.config.tubelet_size, model.config.patch_size)
    tokens = model.embed_input(video)
    assert tokens.seqlens == tuple(mask.flatten(1).sum(1).tolist())
    grid = model.grid_of(video)
    flat = tokens.pos[:, 0] * grid[1] * grid[2] + tokens.pos[:, 1] * grid[2] + tokens.pos[:, 2]
    # positions are increasing inside each clip: (t, h, w) order
    for clip_pos in torch.split(flat, list(tokens.seqlens)):
        assert torch.all(clip_pos[1:] > clip_pos[:-1])
    table = model.position_table(grid, video.device, video.dtype)
    dense = model.project(model.tubelets(video))  # [B, N, D] without positions
    b_idx = tokens.batch_index
    torch.testing.assert_close(tokens.x, dense[b_idx, flat] + table[flat])
    assert torch.equal(tokens.size, run_lengths(mask).float())


def test_each_clip_is_isolated_in_the_packed_batch() -> None:
    model = tiny([vs.RLT(tau=0.1)])
    video = normalise(moving_square_clips(model))
    with torch.no_grad():
        together = model(video)
        alone = torch.cat([model(video[i : i + 1]) for i in range(video.shape[0])])
    assert len(set(model.embed_input(video).seqlens)) > 1  # really unequal lengths
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)


def test_mean_pool_is_over_each_clips_own_rows() -> None:
    model = tiny([vs.RLT(tau=0.1)])
    video = normalise(moving_square_clips(model))
    with torch.no_grad():
        tokens = model.forward_tokens(video)
        pooled = model.pool(tokens, video.shape[0])
        weighted = model.pool(tokens, video.shape[0], weighted=True)
    for i, rows in enumerate(tokens.split()):
        torch.testing.assert_close(pooled[i], rows.mean(0))
        sizes = torch.split(tokens.size, list(tokens.seqlens))[i]
        torch.testing.assert_close(weighted[i], (rows * sizes[:, None]).sum(0) / sizes.sum())


def test_length_weighted_pooling_is_selected_by_the_reducer() -> None:
    plain, weighted = tiny([vs.RLT(tau=0.1)]), tiny([vs.RLT(tau=0.1, pool="length")])
    weighted.load_state_dict(plain.state_dict())
    video = normalise(moving_square_clips(plain))
    with torch.no_grad():
        assert not torch.allclose(plain(video), weighted(video))


def test_loader_side_uint8_mask_gives_the_same_logits() -> None:
    model = tiny([vs.RLT(tau=0.1)])
    frames = moving_square_clips(model)
    c = model.config
    mask = keep_mask_uint8(frames, 0.1, c.tubelet_size, c.patch_size)
    video = normalise(frames)
    assert torch.equal(mask, keep_mask(video, 0.1, c.tubelet_size, c.patch_size))
    with torch.no_grad():
        torch.testing.assert_close(model(video, token_mask=mask), model(video))


def test_length_embedding_is_indexed_by_each_tokens_own_run_length() -> None:
    model = tiny([vs.RLT(tau=0.1, length_embed=True)])
    rlt = model.selector
    assert rlt.length_embed.shape == (model.config.grid[0], model.config.embed_dim)
    assert any(name.endswith("length_embed") for name, _ in model.named_parameters())
    video = normalise(moving_square_clips(model))
    with torch.no_grad():
        with_len = model.embed_input(video)
        rlt.length_embed.zero_()
        without = model.embed_input(video)
        rlt.length_embed.copy_(torch.arange(rlt.length_embed.shape[0]).float()[:, None].expand_as(rlt.length_embed))
        indexed = model.embed_input(video)
    assert not torch.equal(with_len.x, without.x)
    # with row j of the table filled with j, the added value is exactly length - 1 for every token
    torch.testing.assert_close(indexed.x - without.x, (with_len.size - 1)[:, None].expand_as(without.x))


def test_random_keep_samples_within_rlt_tokens() -> None:
    model = tiny([vs.RLT(tau=0.1, random_keep=0.5, seed=0)])
    video = normalise(moving_square_clips(model))
    c = model.config
    rlt_counts = keep_mask(video, 0.1, c.tubelet_size, c.patch_size).flatten(1).sum(1)
    tokens = model.embed_input(video)
    assert list(tokens.seqlens) == torch.round(rlt_counts.double() * 0.5).long().tolist()
    # every kept token still reports its RLT run length, so lengths no longer sum to the grid
    assert tokens.size.min() >= 1


def test_random_mask_keeps_the_fraction_asked() -> None:
    model = tiny([vs.RandomMask(keep=0.25, seed=0)])
    video = normalise(moving_square_clips(model))
    n = model.config.grid[0] * model.config.grid[1] * model.config.grid[2]
    tokens = model.embed_input(video)
    assert tokens.seqlens == (round(0.25 * n),) * video.shape[0]
    with torch.no_grad():
        assert model(video).shape == (video.shape[0], 5)


def test_predict_views_averages_softmax_over_views() -> None:
    model = tiny([vs.RLT(tau=0.1)])
    clips = normalise(moving_square_clips(model, batch=4))
    views = clips.view(2, 2, *clips.shape[1:])
    with torch.no_grad():
        probs = model.predict_views(views)
        expected = model(clips).softmax(-1).view(2, 2, -1).mean(1)
    torch.testing.assert_close(probs, expected)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2))


def test_training_step_runs_backward_through_packed_tokens() -> None:
    model = tiny([vs.RLT(tau=0.1, length_embed=True)]).train()
    video = normalise(moving_square_clips(model))
    loss = model(video).logsumexp(-1).mean()
    loss.backward()
    assert model.selector.length_embed.grad is not None
    assert model.patch_embed.proj.weight.grad.abs().sum() > 0


def test_bad_uses_say_what_to_do() -> None:
    with pytest.raises(ConfigError, match="tubelet"):
        vs.create_model("clip-tiny", reduction=[vs.RandomMask(keep=0.5)])  # RLT fits CLIP frame by frame, this not
    with pytest.raises(ConfigError, match="no length embedding"):
        vs.create_model("clip-tiny", reduction=[vs.RLT(length_embed=True)])
    model = tiny([vs.RLT(tau=0.1)])
    video = normalise(moving_square_clips(model))
    with pytest.raises(ConfigError, match="token mask has shape"):
        model(video, token_mask=torch.ones(1, 2, 2, 2, dtype=torch.bool))
    with pytest.raises(ConfigError, match="tokenizing reducer"):
        tiny()(video, token_mask=torch.ones(3, 2, 2, 2, dtype=torch.bool))
    with pytest.raises(ConfigError, match="fraction"):
        vs.RLT(random_keep=0.0)
    with pytest.raises(ConfigError, match="pool"):
        vs.RLT(pool="max")  # type: ignore[arg-type]


@pytest.mark.parametrize("tau", [float("nan"), -1.0, -1e-9, float("inf"), "nan"])
def test_a_threshold_nobody_means_is_refused(tau: object) -> None:
    """NaN would keep an arbitrary half of the tubelets, a negative tau all of them, inf none after frame 0."""
    with pytest.raises(ConfigError, match=r"RLT\(tau=.*\): tau must be a finite number >= 0"):
        vs.RLT(tau=tau)  # type: ignore[arg-type]
    assert vs.RLT(tau=0.0).tau == 0.0
