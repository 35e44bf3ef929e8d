"""V-JEPA 2: parity with transformers (folder, in memory, and back), RLT's kept tubelets rotating by their own
positions, packed batches, reducers switched off equal dense, and the methods that do not apply refused."""

from __future__ import annotations

import pytest
import torch
from transformers import VJEPA2Config as HFConfig
from transformers import VJEPA2ForVideoClassification, VJEPA2Model

import vidslim as vs
from hub_files import load_through_cache
from model_checks import TOL, decoded_frames, reduced, switched_off_gap, through_folder, video, write_hf_folder
from vidslim.attention.svitt import SparseAttention
from vidslim.errors import ConfigError
from vidslim.models.convert_vjepa2 import (
    vjepa2_config_from_hf,
    vjepa2_config_to_hf,
    vjepa2_state_dict_from_hf,
    vjepa2_state_dict_to_hf,
)
from vidslim.models.registry import build_model
from vidslim.models.vit_block import RotaryTables
from vidslim.reduce import ToMe
from vidslim.reduce.svitt_prune import TokenPrune
from vidslim.tokenize.rlt import RandomMask
from vidslim.tokens import grid_positions


def hf_config(**extra: object) -> HFConfig:
    # head width 48: three rotary parts of 16 dims, nothing left over; mlp_ratio 2 (the pooler stays 4x)
    return HFConfig(hidden_size=96, num_hidden_layers=2, num_attention_heads=2, crop_size=32, frames_per_clip=4,
                    mlp_ratio=2.0, num_pooler_layers=1, pred_hidden_size=32, pred_num_hidden_layers=1,
                    pred_num_attention_heads=2, **extra)


@pytest.fixture(scope="module")
def encoder_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[VJEPA2Model, vs.models.base.ReducibleModel]:
    torch.manual_seed(0)
    hf = VJEPA2Model(hf_config()).eval()
    return hf, through_folder(hf, tmp_path_factory.mktemp("vjepa2"))


@pytest.fixture(scope="module")
def classifier_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[VJEPA2ForVideoClassification, object]:
    torch.manual_seed(1)
    labels = {i: f"class{i}" for i in range(5)}
    hf = VJEPA2ForVideoClassification(hf_config(id2label=labels, label2id={v: k for k, v in labels.items()})).eval()
    return hf, through_folder(hf, tmp_path_factory.mktemp("vjepa2cls"))


@torch.no_grad()
def test_encoder_tokens_match_transformers_from_a_folder(encoder_pair) -> None:
    hf, model = encoder_pair
    x = video()
    ref = hf(pixel_values_videos=x, skip_predictor=True).last_hidden_state
    assert (model.forward_tokens(x).dense() - ref).abs().max() <= TOL


@torch.no_grad()
def test_classifier_logits_and_class_names_match_transformers(classifier_pair) -> None:
    hf, model = classifier_pair
    x = video(3, seed=1)
    assert (model(x) - hf(pixel_values_videos=x).logits).abs().max() <= TOL
    assert model.input_spec.class_names == tuple(f"class{i}" for i in range(5))


@torch.no_grad()
def test_in_memory_conversion_matches(classifier_pair) -> None:
    hf, _ = classifier_pair
    config = vjepa2_config_from_hf(hf.config.to_dict())
    model = build_model(config).eval()
    model.load_state_dict(vjepa2_state_dict_from_hf(hf.state_dict()))
    x = video(seed=2)
    assert (model(x) - hf(pixel_values_videos=x).logits).abs().max() <= TOL


@torch.no_grad()
def test_way_back_loads_in_transformers_with_the_same_outputs(classifier_pair, tmp_path) -> None:
    _, model = classifier_pair
    state = vjepa2_state_dict_to_hf({k: v.contiguous() for k, v in model.state_dict().items()})
    back = VJEPA2ForVideoClassification.from_pretrained(write_hf_folder(tmp_path, vjepa2_config_to_hf(model.config),
                                                                        state)).eval()
    x = video(seed=3)
    assert (back(pixel_values_videos=x).logits - model(x)).abs().max() <= 1e-5
    assert back.config.id2label[4] == "class4"


@torch.no_grad()
def test_rlt_tokens_rotate_by_their_own_positions(encoder_pair) -> None:
    """Packed RLT tokens equal transformers' encoder layers run on the kept tubelets with their position ids."""
    hf, model = encoder_pair
    x = video(2, seed=4)
    x[0, 1:] = x[0, :1]  # clip 0 is a still frame: RLT drops the second time step
    x[1, 1:, :, :16] = x[1, :1, :, :16]  # clip 1 is still in its top half only
    with reduced(model, [vs.RLT(tau=0.01)]):
        tokens = model.forward_tokens(x)
    assert tokens.seqlens == (4, 6)
    embedded = hf.encoder.embeddings(x)  # [B, 8, D]
    for b, (start, n) in enumerate(zip((0, 4), tokens.seqlens, strict=True)):
        kept = (tokens.pos[start:start + n] * torch.tensor([4, 2, 1])).sum(1)  # flat (t, h, w) index on a 2x2x2 grid
        h = embedded[b:b + 1, kept]
        for layer in hf.encoder.layer:
            h = layer(h, position_mask=kept[None])[0]
        ref = hf.encoder.layernorm(h)[0]
        assert (tokens.x[start:start + n] - ref).abs().max() <= TOL


@torch.no_grad()
def test_a_packed_batch_equals_each_clip_alone(classifier_pair) -> None:
    _, model = classifier_pair
    x = video(2, seed=5)
    x[0, 1:] = x[0, :1]
    with reduced(model, [vs.RLT(tau=0.01)]):
        both = model(x)
        alone = torch.cat([model(x[i:i + 1]) for i in range(2)])
    assert (both - alone).abs().max() <= TOL


@pytest.mark.parametrize("reducer", [
    vs.RLT(tau=0.0), RandomMask(keep=1.0), ToMe(r=0), TokenPrune(layers=(0,), keep=1.0),
    SparseAttention(block=64, local=1, random=0),
], ids=["rlt", "random", "tome", "tokenprune", "svitt"])
@torch.no_grad()
def test_every_reducer_switched_off_equals_dense(classifier_pair, reducer: object) -> None:
    assert switched_off_gap(classifier_pair[1], video(seed=6), reducer) <= TOL


@pytest.mark.parametrize("reduction", [[vs.RLT(tau=0.05)], [RandomMask(keep=0.5, seed=0)], [ToMe(r=2)],
                                       [TokenPrune(layers=(0,), keep=0.5)], [SparseAttention(block=2, random=1)]],
                         ids=["rlt", "random", "tome", "tokenprune", "svitt"])
@torch.no_grad()
def test_each_method_runs_on_decoded_frames(reduction: list[object]) -> None:
    model = vs.create_model("vjepa2-tiny", num_classes=3, reduction=reduction).eval()
    out = model(decoded_frames())
    assert out.shape == (2, 3) and torch.isfinite(out).all()


def test_methods_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ConfigError, match="V-JEPA 2"):
        vs.create_model("vjepa2-tiny", reduction=[vs.TempMe.paper("clip-b16")])


def test_named_published_sizes_build_without_weights() -> None:
    for name, width in (("vjepa2-vitl-256", 1024), ("vjepa2-vith-256", 1280), ("vjepa2-vitg-256", 1408)):
        config = vs.models.registry.get_config(name)
        assert (config.embed_dim, config.image_size, config.grid) == (width, 256, (8, 16, 16))
    model = vs.create_model("vjepa2-vitl-256", depth=1)
    assert model.input_spec.layout == "TCHW" and model.input_spec.tubelet_size == 2


@torch.no_grad()
def test_from_transformers_in_memory(encoder_pair, classifier_pair) -> None:
    x = video(seed=7)
    hf, _ = encoder_pair
    ref = hf(pixel_values_videos=x, skip_predictor=True).last_hidden_state
    assert (vs.from_transformers(hf).forward_tokens(x).dense() - ref).abs().max() <= TOL
    hf, _ = classifier_pair
    assert (vs.from_transformers(hf)(x) - hf(pixel_values_videos=x).logits).abs().max() <= TOL


@pytest.mark.parametrize("num_classes", [0, 3], ids=["encoder", "classifier"])
@torch.no_grad()
def test_to_transformers_round_trip_in_memory(num_classes: int) -> None:
    """vidslim -> transformers (the class matching the head) -> vidslim equal to 1e-5; transformers' encoder
    gives vidslim's tokens although its predictor (which vidslim does not have) is freshly initialised."""
    torch.manual_seed(2)
    model = vs.create_model("vjepa2-tiny", num_classes=num_classes).eval()
    gen = torch.Generator().manual_seed(3)
    for p in model.parameters():  # biases and norms away from their init, so a mapping error shows
        p.add_(0.05 * torch.randn(p.shape, generator=gen))
    hf = vs.to_transformers(model)
    assert type(hf).__name__ == ("VJEPA2ForVideoClassification" if num_classes else "VJEPA2Model")
    encoder = hf.vjepa2 if num_classes else hf
    assert any(k.startswith("predictor.") for k in encoder.state_dict())
    x = video(seed=8)
    tokens = encoder(pixel_values_videos=x, skip_predictor=True).last_hidden_state
    assert (model.forward_tokens(x).dense() - tokens).abs().max() <= 1e-5
    want = model(x)
    if num_classes:
        assert (hf(pixel_values_videos=x).logits - want).abs().max() <= 1e-5
    back = vs.from_transformers(hf)
    assert (back(x) - want).abs().max() <= 1e-5
    assert (back.forward_tokens(x).x - model.forward_tokens(x).x).abs().max() <= 1e-5


@torch.no_grad()
def test_rotary_tables_are_computed_once_per_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every block of a forward rotates with the same cos/sin (one computation); the next forward's new
    positions get new tables, and a ToMe merge (new positions) gets its own."""
    seen: list[torch.Tensor] = []
    real = RotaryTables.__call__

    def spy(self: RotaryTables, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        out = real(self, positions, dtype)
        seen.append(out[0])
        return out

    monkeypatch.setattr(RotaryTables, "__call__", spy)
    model = vs.create_model("vjepa2-tiny", depth=3).eval()
    model(video())
    model(video(seed=1))
    assert len(seen) == 6 and all(c is seen[0] for c in seen[:3]) and all(c is seen[3] for c in seen[3:])
    assert seen[3] is not seen[0]
    seen.clear()
    model.set_reduction([ToMe(r=2)])
    model(video())
    assert seen[0] is not seen[1] and seen[1] is not seen[2]  # ToMe merges after each block's attention


def test_rotary_tables_keep_inference_and_autograd_apart() -> None:
    tables = RotaryTables(48)
    pos = grid_positions(2, 2, 2)
    with torch.inference_mode():
        frozen, _ = tables(pos, torch.float32)
    cos, _ = tables(pos, torch.float32)
    assert frozen.is_inference() and not cos.is_inference()
    assert tables(pos, torch.float32)[0] is cos and tables(pos, torch.float64)[0].dtype == torch.float64


@torch.no_grad()
def test_the_class_in_memory_decides_not_its_config_architectures(classifier_pair, tmp_path) -> None:
    """A classifier built in memory has no `architectures` yet, and VJEPA2Model.from_pretrained of a classifier
    folder keeps the classifier's: the object's class says which model it is."""
    torch.manual_seed(4)
    fresh = VJEPA2ForVideoClassification(hf_config(num_labels=3)).eval()
    assert not fresh.config.architectures
    x = video(seed=9)
    model = vs.from_transformers(fresh)
    assert model.config.num_classes == 3
    assert (model(x) - fresh(pixel_values_videos=x).logits).abs().max() <= TOL
    classifier, _ = classifier_pair
    classifier.save_pretrained(tmp_path)
    encoder = VJEPA2Model.from_pretrained(tmp_path).eval()
    assert encoder.config.architectures == ["VJEPA2ForVideoClassification"]
    tokens = vs.from_transformers(encoder).forward_tokens(x).dense()
    assert (tokens - encoder(pixel_values_videos=x, skip_predictor=True).last_hidden_state).abs().max() <= TOL


@pytest.mark.parametrize("which", ["encoder", "classifier"])
@torch.no_grad()
def test_loads_by_hub_id_from_the_local_cache(encoder_pair, classifier_pair, which: str, tmp_path,
                                              monkeypatch) -> None:
    hf = encoder_pair[0] if which == "encoder" else classifier_pair[0]
    model = load_through_cache(hf, f"facebook/vjepa2-{which}", tmp_path, monkeypatch)
    x = video(seed=10)
    if which == "encoder":
        ref = hf(pixel_values_videos=x, skip_predictor=True).last_hidden_state
        assert (model.forward_tokens(x).dense() - ref).abs().max() <= TOL
    else:
        assert (model(x) - hf(pixel_values_videos=x).logits).abs().max() <= TOL


@pytest.mark.parametrize("extra", [[], [ToMe(r=2)], [TokenPrune(layers=(0,), keep=0.5)],
                                   [SparseAttention(block=2, random=0)]], ids=["rlt", "tome", "tokenprune", "svitt"])
@torch.no_grad()
def test_the_encoder_on_a_ragged_packed_batch_equals_each_clip_alone(extra: list[object]) -> None:
    """RLT keeps 4 of 8 tubelets of a still clip and all 8 of the others; the pooled encoder features (size-weighted
    mean over each clip's own tokens) of the packed batch equal those of each clip run alone, with the reducers
    that act inside the blocks on the ragged sequences too."""
    model = vs.create_model("vjepa2-tiny", reduction=[vs.RLT(tau=0.01), *extra]).eval()
    x = video(3, seed=11)
    x[0, 1:] = x[0, :1]
    assert model.embed_input(model.prepare_input(x)).seqlens == (4, 8, 8)
    alone = torch.cat([model(x[i:i + 1]) for i in range(3)])
    assert (model(x) - alone).abs().max() <= TOL
