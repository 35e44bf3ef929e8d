"""The temporal sparse expansion curriculum: stages as data, the temporal position table resized by nearest
interpolation, reducers set to each stage's sparsity, and the training loop's on_stage hook."""

from __future__ import annotations

import pytest
import torch

import vidslim as vs
from vidslim.attention.svitt import SparseAttention
from vidslim.errors import ConfigError
from vidslim.models.cross_modal import CrossModalConfig, CrossModalEncoder
from vidslim.reduce.curriculum import Curriculum, CurriculumStage, apply_stage, load_curriculum, resize_temporal
from vidslim.reduce.svitt_prune import TextGuidedPrune, TokenPrune
from vidslim.train.config import Stage


def test_stages_load_from_plain_dicts() -> None:
    stages = load_curriculum([{"frames": 4, "keep": 0.7}, {"frames": 8, "keep": 0.6, "name": "expand"}])
    assert stages == [CurriculumStage(frames=4, keep=0.7), CurriculumStage(frames=8, keep=0.6, name="expand")]
    with pytest.raises(ConfigError, match=r"unknown key.*'keep_rate'"):
        load_curriculum([{"frames": 4, "keep_rate": 0.7}])
    with pytest.raises(ConfigError, match="keep must be in"):
        CurriculumStage(keep=1.5)


def test_resize_temporal_nearest_repeats_frames() -> None:
    table = torch.arange(2 * 2 * 1, dtype=torch.float32)[:, None].repeat(1, 3)  # t=2, h=2, w=1, D=3
    grown = resize_temporal(table, (2, 2, 1), 4)
    assert grown[:, 0].tolist() == [0, 1, 0, 1, 2, 3, 2, 3]  # each frame's (h, w) table twice, in order
    linear = resize_temporal(table, (2, 2, 1), 4, mode="linear")
    assert linear[:, 0].tolist() == pytest.approx([0, 1, 0.5, 1.5, 1.5, 2.5, 2, 3])
    assert torch.equal(resize_temporal(table, (2, 2, 1), 2), table)


def test_apply_stage_resizes_the_learned_table_and_sets_the_reducers() -> None:
    prune, sparse = TokenPrune(layers=(0,), keep=0.7), SparseAttention(block=8)
    model = vs.create_model("videomae-tiny", learned_pos=True, num_frames=4, reduction=[sparse, prune]).eval()
    old = model.pos_embed.detach().clone()  # grid (2, 2, 2)
    apply_stage(model, {"frames": 8, "keep": 0.6, "random": 2})
    assert model.config.num_frames == 8 and model.config.grid == (4, 2, 2)
    assert model.pos_embed.shape == (1, 16, 64)
    table = model.pos_embed.detach()[0].view(4, 4, 64)
    old = old[0].view(2, 4, 64)
    for t, src in enumerate((0, 0, 1, 1)):
        assert torch.equal(table[t], old[src])
    assert prune.keep == 0.6 and sparse.random == 2 and sparse.block == 8
    with torch.inference_mode():
        assert model(torch.randn(1, 3, 8, 32, 32)).shape == (1, 10)


def test_curriculum_hook_reads_the_training_loops_stage() -> None:
    model = vs.create_model("videomae-tiny", num_frames=4, reduction=[TokenPrune(layers=(0,), keep=0.7)])
    curriculum = Curriculum(model, [{"frames": 4, "keep": 0.7}, {"frames": 8, "keep": 0.6}])
    curriculum.on_stage(Stage(name="expand", steps=10, overrides={"frames": 8, "keep": 0.6, "batch": 4}))
    assert model.config.num_frames == 8 and model.reduction[0].keep == 0.6
    assert curriculum.current == CurriculumStage(frames=8, keep=0.6, name="expand")
    curriculum.on_stage(0)
    assert model.config.num_frames == 4 and model.reduction[0].keep == 0.7


def test_text_keep_reaches_the_cross_modal_encoder() -> None:
    encoder = CrossModalEncoder(CrossModalConfig(width=16, heads=2, video_width=16), prune=TextGuidedPrune(keep=0.1))
    apply_stage(encoder, {"text_keep": 0.5})
    assert encoder.prune is not None and encoder.prune.keep == 0.5


def test_frames_must_fit_the_tubelet() -> None:
    model = vs.create_model("videomae-tiny", num_frames=4)
    with pytest.raises(ConfigError, match="tubelet_size"):
        apply_stage(model, CurriculumStage(frames=5))
