"""Reduction cards: reducers written as data and rebuilt; save_model / load_model round trips give the same model."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

import vidslim as vs
from vidslim.errors import ConfigError
from vidslim.models.lora import add_lora, lora_parameters
from vidslim.reduce.cards import reduction_card
from vidslim.reduce.registry import build_reduction, register_reducer, unregister_reducer
from vidslim.reduce.svitt_prune import TokenPrune
from vidslim.reduce.tempme import PAPER, TempMe
from vidslim.reduce.tome import ToMe


def half_static_video(batch: int = 2, frames: int = 4, size: int = 32) -> torch.Tensor:
    """[B, C, T, H, W] random, but the left half repeats frame 0 in every frame, so RLT drops tubelets there."""
    g = torch.Generator().manual_seed(0)
    video = torch.randn(batch, 3, frames, size, size, generator=g)
    video[:, :, 1:, :, : size // 2] = video[:, :, :1, :, : size // 2]
    return video


def test_card_reads_constructor_arguments_back() -> None:
    card = reduction_card([vs.RLT(tau=0.2, length_embed=True, pool="length", seed=3), TokenPrune(layers=[6, 3],
                           keep=0.5), ToMe(r=4, schedule="decreasing")])
    assert card == [
        {"rlt": {"tau": 0.2, "length_embed": True, "random_keep": None, "pool": "length", "seed": 3}},
        {"token_prune": {"layers": [3, 6], "keep": 0.5, "score": "auto", "seed": 0}},
        {"tome": {"r": 4, "schedule": "decreasing", "proportional_attention": True, "trace_source": False}},
    ]
    json.dumps(card)  # plain data
    assert reduction_card([vs.RandomMask(keep=0.25)]) == [{"random_mask": {"keep": 0.25, "seed": None,
                                                                          "pool": "mean"}}]


def test_build_reads_short_forms_and_presets() -> None:
    rlt, tome, tempme, tempme16 = build_reduction(
        ["rlt", {"tome": {"r": 3}}, {"tempme": "paper"}, {"tempme": "clip-b16"}], "clip-b32")
    assert isinstance(rlt, vs.RLT) and rlt.tau == 0.1 and not rlt.use_length_embed
    assert isinstance(tome, ToMe) and tome.r == 3
    assert isinstance(tempme, TempMe) and (tempme.r, tempme.rc, tempme.ri) == (2, 0.3, 0.1)
    assert tempme16.r == PAPER["clip-b16"]["r"] == 10 and tempme16.rc == 0.4
    assert build_reduction(None) == [] and len(build_reduction({"rlt": None})) == 1


def test_card_rebuilds_equal_reducers() -> None:
    reducers = [vs.RLT(tau=0.05, random_keep=0.5, seed=7), TempMe(r=1, merge_layers=(1,), groups=(2,), rc=0.2),
                TokenPrune(layers=(1,), keep=0.6, score="mean")]
    rebuilt = build_reduction(reduction_card(reducers))
    assert [type(r) for r in rebuilt] == [type(r) for r in reducers]
    assert reduction_card(rebuilt) == reduction_card(reducers)


def test_bad_cards_are_explained() -> None:
    with pytest.raises(ConfigError, match=r"unknown reducer 'os\.system'.*known reducers: random_mask, rlt"):
        build_reduction([{"os.system": "rm -rf /"}])
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['taux'\] for RLT; valid settings: \['tau'"):
        build_reduction([{"rlt": {"taux": 0.1}}])
    with pytest.raises(ConfigError, match="one-key mapping"):
        build_reduction([{"rlt": {}, "tome": {}}])
    with pytest.raises(ConfigError, match="needs the model's name"):
        build_reduction([{"tempme": "paper"}])
    with pytest.raises(ConfigError, match="RLT has no presets"):
        build_reduction([{"rlt": "paper"}], "videomae-b16")
    with pytest.raises(ConfigError, match="not a registered reducer"):
        reduction_card([object()])


def test_rlt_with_length_embedding_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = vs.create_model("videomae-tiny", reduction=[vs.RLT(tau=0.1, length_embed=True, pool="length")]).eval()
    video = half_static_video()
    assert model.reduction[0].token_mask(video, model.input_spec).sum() < 2 * 8  # RLT drops tubelets of this video
    with torch.no_grad():
        model.reduction[0].length_embed.normal_()  # a trained table, not the init
        expected = model(video)
    vs.save_model(model, tmp_path)
    loaded = vs.load_model(tmp_path)
    assert isinstance(loaded.reduction[0], vs.RLT) and loaded.reduction[0].pool == "length"
    assert torch.equal(loaded.reduction[0].length_embed, model.reduction[0].length_embed)
    with torch.no_grad():
        assert torch.equal(loaded(video), expected)
        dense = vs.load_model(tmp_path, reduction=[])(video)
    assert not torch.allclose(dense, expected)  # the reducer mattered


def test_token_prune_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = vs.create_model("videomae-tiny", reduction=[TokenPrune(layers=(0,), keep=0.5)]).eval()
    video = half_static_video()
    with torch.no_grad():
        expected = model(video)
        dense = vs.create_model("videomae-tiny").eval()
        dense.load_state_dict(model.state_dict())
        assert not torch.allclose(dense(video), expected)
    vs.save_model(model, tmp_path)
    loaded = vs.load_model(tmp_path)
    assert reduction_card(loaded.reduction) == [{"token_prune": {"layers": [0], "keep": 0.5, "score": "auto",
                                                                 "seed": 0}}]
    with torch.no_grad():
        assert torch.equal(loaded(video), expected)


def test_tempme_with_lora_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = vs.create_model("clip-tiny", reduction=[TempMe(r=1, merge_layers=(1,), groups=(2,))])
    add_lora(model, rank=2)
    with torch.no_grad():  # trained adapters and temporal embeddings, not their (zero) init
        for p in [*lora_parameters(model), *model.reduction_modules.parameters()]:
            p.normal_(0, 0.05)
    model.eval()
    video = torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    text = torch.tensor([[5, 9, 49407], [7, 49407, 0]])
    with torch.no_grad():
        expected = model.encode_video(video), model.encode_text(text)
    folder = vs.save_model(model, tmp_path)
    assert json.loads((folder / "vidslim.json").read_text())["lora"] == {"rank": 2, "scale": 1.0}
    loaded = vs.load_model(folder)
    assert isinstance(loaded.reduction[0], TempMe) and loaded.reduction[0].num_frames == 4
    # back as add_lora leaves a model: adapters and reducer parameters train, the backbone is frozen
    assert all(p.requires_grad for p in [*lora_parameters(loaded), *loaded.reduction_modules.parameters()])
    assert not loaded.visual.conv1.weight.requires_grad
    with torch.no_grad():
        assert torch.equal(loaded.encode_video(video), expected[0])
        assert torch.equal(loaded.encode_text(text), expected[1])


def test_dense_on_request_and_unregistered_types(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class Shift:
        def __init__(self, amount: float = 1.0) -> None:
            self.amount = amount

    model = vs.create_model("videomae-tiny", reduction=[vs.RLT(length_embed=True)])
    vs.save_model(model, tmp_path / "a")
    with caplog.at_level(logging.WARNING):
        dense = vs.load_model(tmp_path / "a", reduction=[])
    assert dense.reduction == () and "are not used" in caplog.text
    register_reducer("test_shift", Shift)
    try:
        (rebuilt,) = build_reduction(reduction_card([Shift(2.5)]))
        assert isinstance(rebuilt, Shift) and rebuilt.amount == 2.5
    finally:
        unregister_reducer("test_shift")
