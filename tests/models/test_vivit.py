"""ViViT: parity with transformers (folder, in memory, and back; the classifier and the base model with its tanh
pooler), the CLS token kept under RLT, reducers switched off equal dense, and the methods that do not apply refused."""

from __future__ import annotations

import pytest
import torch
from transformers import VivitConfig, VivitForVideoClassification, VivitModel

import vidslim as vs
from hub_files import load_through_cache
from model_checks import TOL, decoded_frames, reduced, switched_off_gap, through_folder, video, write_hf_folder
from vidslim.attention.svitt import SparseAttention
from vidslim.errors import CheckpointError, ConfigError
from vidslim.models.convert_vivit import (
    vivit_config_from_hf,
    vivit_config_to_hf,
    vivit_state_dict_from_hf,
    vivit_state_dict_to_hf,
)
from vidslim.models.guards import estimate_parameters
from vidslim.models.registry import build_model
from vidslim.reduce import ToMe
from vidslim.reduce.svitt_prune import TokenPrune
from vidslim.tokens import NO_POSITION


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[VivitForVideoClassification, object]:
    torch.manual_seed(0)
    labels = {i: f"action{i}" for i in range(5)}
    config = VivitConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                         image_size=32, num_frames=4, id2label=labels, label2id={v: k for k, v in labels.items()})
    hf = VivitForVideoClassification(config).eval()
    return hf, through_folder(hf, tmp_path_factory.mktemp("vivit"))


@torch.no_grad()
def test_logits_match_transformers_from_a_folder(pair) -> None:
    hf, model = pair
    x = video()
    assert (model(x) - hf(pixel_values=x).logits).abs().max() <= TOL
    assert model.input_spec.class_names == tuple(f"action{i}" for i in range(5))


@torch.no_grad()
def test_in_memory_names_convert_too(pair) -> None:
    hf, _ = pair
    model = build_model(vivit_config_from_hf(hf.config.to_dict())).eval()
    model.load_state_dict(vivit_state_dict_from_hf(hf.state_dict()))  # vivit.layers.N.attention.q_proj, ...
    x = video(seed=1)
    assert (model(x) - hf(pixel_values=x).logits).abs().max() <= TOL


@torch.no_grad()
def test_way_back_loads_in_transformers_with_the_same_outputs(pair, tmp_path) -> None:
    _, model = pair
    state = vivit_state_dict_to_hf({k: v.contiguous() for k, v in model.state_dict().items()})
    back = VivitForVideoClassification.from_pretrained(write_hf_folder(tmp_path, vivit_config_to_hf(model.config),
                                                                       state)).eval()
    x = video(seed=2)
    assert (back(pixel_values=x).logits - model(x)).abs().max() <= 1e-5
    assert back.config.id2label[3] == "action3"


@torch.no_grad()
def test_rlt_keeps_the_cls_token_and_each_tubelets_own_position(pair) -> None:
    """A still clip keeps CLS + the first time step; its tokens equal transformers' embedding rows of those slots."""
    hf, model = pair
    x = video(2, seed=3)
    x[0, 1:] = x[0, :1]  # clip 0 is still: RLT keeps its first of two time steps
    with reduced(model, [vs.RLT(tau=0.01)]):
        tokens = model.embed_input(x)
        logits = model(x)
    assert tokens.seqlens == (1 + 4, 1 + 8)
    assert (tokens.pos[0] == NO_POSITION).all() and (tokens.pos[5] == NO_POSITION).all()
    ref = hf.vivit.embeddings(x)  # [B, 1 + 8, D]: CLS then tubelets, positions added
    assert (tokens.x[:5] - ref[0, :5]).abs().max() <= TOL
    assert (tokens.x[5:] - ref[1]).abs().max() <= TOL
    assert logits.shape == (2, 5)


@pytest.mark.parametrize("reducer", [vs.RLT(tau=0.0), ToMe(r=0), TokenPrune(layers=(0,), keep=1.0),
                                     SparseAttention(block=64, local=1, random=0)],
                         ids=["rlt", "tome", "tokenprune", "svitt"])
@torch.no_grad()
def test_every_reducer_switched_off_equals_dense(pair, reducer: object) -> None:
    assert switched_off_gap(pair[1], video(seed=4), reducer) <= TOL


@pytest.mark.parametrize("reduction", [[vs.RLT(tau=0.05)], [ToMe(r=2)], [TokenPrune(layers=(0,), keep=0.5)],
                                       [SparseAttention(block=2, random=1)], [vs.RLT(tau=0.05), ToMe(r=1)]],
                         ids=["rlt", "tome", "tokenprune", "svitt", "rlt+tome"])
@torch.no_grad()
def test_each_method_runs_on_decoded_frames(reduction: list[object]) -> None:
    model = vs.create_model("vivit-tiny", reduction=reduction).eval()
    out = model(decoded_frames())
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_methods_that_do_not_fit_are_refused() -> None:
    from vidslim.tokenize.rlt import RandomMask

    for reducer in (vs.TempMe.paper("clip-b16"), RandomMask(keep=0.5)):
        with pytest.raises(ConfigError, match="ViViT"):
            vs.create_model("vivit-tiny", reduction=[reducer])


def test_wrong_clip_length_is_a_clear_error() -> None:
    model = vs.create_model("vivit-tiny").eval()
    with pytest.raises(ConfigError, match="sample 4 frames"):
        model(torch.randn(1, 6, 3, 32, 32))


def test_vivit_b_is_the_published_size() -> None:
    config = vs.models.registry.get_config("vivit-b")
    assert (config.embed_dim, config.depth, config.num_frames, config.grid) == (768, 12, 32, (16, 14, 14))


@torch.no_grad()
def test_in_and_out_of_transformers_in_memory(pair) -> None:
    hf, _ = pair
    model = vs.from_transformers(hf)
    x = video(seed=5)
    assert (model(x) - hf(pixel_values=x).logits).abs().max() <= TOL
    back = vs.to_transformers(model)
    assert isinstance(back, VivitForVideoClassification)
    assert (back(pixel_values=x).logits - model(x)).abs().max() <= 1e-5
    assert back.config.id2label[2] == "action2"


@pytest.fixture(scope="module")
def base_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[VivitModel, object]:
    """transformers' base ViViT (tanh pooler, no classifier), with a pooler narrower than the width."""
    torch.manual_seed(2)
    config = VivitConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                         image_size=32, num_frames=4, pooler_output_size=48)
    hf = VivitModel(config).eval()
    return hf, through_folder(hf, tmp_path_factory.mktemp("vivitbase"))


@torch.no_grad()
def test_base_model_matches_transformers_from_a_folder_and_in_memory(base_pair) -> None:
    """forward is VivitModel's pooler_output, encode_video its normalised CLS (last_hidden_state[:, 0])."""
    hf, model = base_pair
    x = video(seed=6)
    ref = hf(pixel_values=x)
    assert estimate_parameters(model.config) == sum(p.numel() for p in model.parameters())
    for vid in (model, vs.from_transformers(hf)):
        assert vid.config.num_classes == 0 and vid.config.pooler_dim == 48
        assert (vid(x) - ref.pooler_output).abs().max() <= TOL
        assert (vid.encode_video(x) - ref.last_hidden_state[:, 0]).abs().max() <= TOL


@torch.no_grad()
def test_base_model_goes_back_to_vivit_model(base_pair, tmp_path) -> None:
    _, model = base_pair
    x = video(seed=7)
    back = vs.to_transformers(model)
    assert type(back) is VivitModel and back.config.pooler_output_size == 48
    assert (back(pixel_values=x).pooler_output - model(x)).abs().max() <= 1e-5
    vs.save_model(model, tmp_path / "out", format="transformers")
    again = VivitModel.from_pretrained(tmp_path / "out").eval()
    assert (again(pixel_values=x).pooler_output - model(x)).abs().max() <= 1e-5


@torch.no_grad()
def test_a_vivit_without_head_or_pooler_is_written_as_vivit_model() -> None:
    """Its CLS features come back as last_hidden_state[:, 0]; transformers gives the pooler it lacks a fresh one."""
    model = vs.create_model("vivit-tiny", num_classes=0).eval()
    x = video(seed=8)
    back = vs.to_transformers(model)
    assert type(back) is VivitModel
    assert (back(pixel_values=x).last_hidden_state[:, 0] - model(x)).abs().max() <= 1e-5


@torch.no_grad()
def test_base_model_given_a_head_is_written_as_the_classifier(base_pair, tmp_path) -> None:
    hf, _ = base_pair
    hf.save_pretrained(tmp_path)
    model = vs.load_model(tmp_path, num_classes=3)
    back = vs.to_transformers(model)
    assert type(back) is VivitForVideoClassification
    x = video(seed=9)
    assert (back(pixel_values=x).logits - model(x)).abs().max() <= 1e-5


def test_base_model_without_its_pooler_loads_with_pooler_dim_zero(base_pair) -> None:
    hf = VivitModel(base_pair[0].config, add_pooling_layer=False).eval()
    with pytest.raises(CheckpointError, match=r"pooler\.dense\.weight"):
        vs.from_transformers(hf)
    model = vs.from_transformers(hf, pooler_dim=0)
    x = video(seed=10)
    with torch.no_grad():
        assert (model(x) - hf(pixel_values=x).last_hidden_state[:, 0]).abs().max() <= TOL


def test_only_the_tanh_pooler_is_read() -> None:
    cfg = VivitConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                      image_size=32, num_frames=4, pooler_act="relu").to_dict()
    with pytest.raises(CheckpointError, match="pooler_act='relu'"):
        vivit_config_from_hf({**cfg, "architectures": ["VivitModel"]})


@pytest.mark.parametrize("which", ["classifier", "base"])
@torch.no_grad()
def test_loads_by_hub_id_from_the_local_cache(pair, base_pair, which: str, tmp_path, monkeypatch) -> None:
    hf = pair[0] if which == "classifier" else base_pair[0]
    model = load_through_cache(hf, f"google/vivit-{which}", tmp_path, monkeypatch)
    x = video(seed=11)
    ref = hf(pixel_values=x)
    assert (model(x) - (ref.logits if which == "classifier" else ref.pooler_output)).abs().max() <= TOL


@pytest.mark.parametrize("reduction", [[ToMe(r=4)], [TokenPrune(layers=(0,), keep=0.3)],
                                       [vs.RLT(tau=0.01), ToMe(r=3)]], ids=["tome", "tokenprune", "rlt+tome"])
@torch.no_grad()
def test_the_cls_token_reaches_the_last_block_first_in_every_sequence(reduction: list[object]) -> None:
    """The readout takes each sequence's first token: after merging and pruning it is still that clip's CLS (the
    one token without a grid position), never merged away."""
    model = vs.create_model("vivit-tiny", reduction=reduction).eval()
    seen: list[object] = []
    model.blocks[-1].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x = video(2, seed=12)
    x[0, 1:] = x[0, :1]
    model(x)
    tokens = seen[0]
    assert max(tokens.seqlens) < 9  # something was merged or pruned
    assert (tokens.pos[tokens.cu_seqlens[:-1].long()] == NO_POSITION).all()
    assert int((tokens.pos[:, 0] == NO_POSITION).sum()) == 2
