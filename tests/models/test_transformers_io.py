"""In and out of transformers in memory: `from_transformers`, `to_transformers`, `save_model(format="transformers")`.

Parity with the reference on the same random weights (<= 1e-4, fp32), a round trip vidslim -> transformers ->
vidslim to 1e-5 with LoRA merged and reducers off, class names both ways, and a missing tensor named in the
checkpoint's own naming.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import vidslim as vs
from vidslim.errors import CheckpointError, ConfigError

transformers = pytest.importorskip("transformers")

ATOL = 1e-4


def perturb_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Small noise on every parameter so biases and norms differ from their init (a mapping error shows)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model


def tiny_hf_clip() -> torch.nn.Module:
    torch.manual_seed(0)
    config = transformers.CLIPConfig(
        text_config=dict(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, eos_token_id=999),
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=32)
    return perturb_(transformers.CLIPModel(config).eval())


def tiny_hf_videomae(**extra: object) -> torch.nn.Module:
    torch.manual_seed(0)
    config = transformers.VideoMAEConfig(image_size=32, num_frames=4, hidden_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, intermediate_size=128, num_labels=3, **extra)
    return perturb_(transformers.VideoMAEForVideoClassification(config).eval())


def image_features(hf: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    out = hf.get_image_features(pixel_values=pixels)
    return out.pooler_output if hasattr(out, "pooler_output") else out


def test_from_transformers_clip_matches_and_copies() -> None:
    hf = tiny_hf_clip()
    ours = vs.from_transformers(hf, reduction=[vs.ToMe(r=2)])
    assert [type(r).__name__ for r in ours.reduction] == ["ToMe"]
    video = torch.randn(2, 3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = image_features(hf, video.flatten(0, 1)).view(2, 3, -1)
        dense = ours.set_reduction([]).encode_frames(video)
    torch.testing.assert_close(dense, ref, atol=ATOL, rtol=ATOL)
    # copied, not shared: changing the vidslim weights leaves the transformers model as it was
    with torch.no_grad():
        ours.visual.conv1.weight.add_(1.0)
    assert not torch.equal(ours.visual.conv1.weight, hf.vision_model.embeddings.patch_embedding.weight)


def test_from_transformers_videomae_keeps_class_names_and_processor_stats() -> None:
    hf = tiny_hf_videomae(id2label={0: "run", 1: "jump", 2: "swim"}, label2id={"run": 0, "jump": 1, "swim": 2})

    class Processor:  # what matters of a transformers image processor
        image_mean = (0.5, 0.5, 0.5)
        image_std = (0.25, 0.25, 0.25)

    ours = vs.from_transformers(hf, processor=Processor())
    assert ours.input_spec.class_names == ("run", "jump", "swim")
    assert ours.input_spec.mean == (0.5, 0.5, 0.5) and ours.input_spec.std == (0.25, 0.25, 0.25)
    video = torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        torch.testing.assert_close(ours(video.permute(0, 2, 1, 3, 4)), hf(pixel_values=video).logits, atol=ATOL,
                                   rtol=ATOL)


def test_load_model_takes_a_model_object_and_refuses_others() -> None:
    assert isinstance(vs.load_model(tiny_hf_videomae()), vs.models.VideoViT)
    with pytest.raises(ConfigError, match="not a transformers model"):
        vs.from_transformers(torch.nn.Linear(2, 2))
    torch.manual_seed(0)
    pretraining = transformers.VideoMAEForPreTraining(transformers.VideoMAEConfig(
        image_size=32, num_frames=4, hidden_size=64, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=128))
    with pytest.raises(CheckpointError, match=r"VideoMAEForPreTraining.*VideoMAEForVideoClassification"):
        vs.from_transformers(pretraining)


def test_clip_round_trip_with_lora_merged_and_reducers_off(tmp_path: Path) -> None:
    model = vs.create_model("clip-tiny", reduction=[vs.TempMe(r=2, merge_layers=(0, 1), groups=(2, 2))]).eval()
    vs.add_lora(model, rank=2)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("lora.B"):
                p.normal_(std=0.05)  # a non-zero delta, so forgetting to merge it shows
    video = torch.randn(1, 4, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    ids = torch.randint(0, 49000, (2, 12), generator=torch.Generator().manual_seed(4))
    ids[:, 7] = 49407
    with torch.inference_mode():
        reduced = model.encode_frames(video)
        model.set_reduction([])
        want_frames, want_text = model.encode_frames(video), model.encode_text(ids)
        model.set_reduction([vs.TempMe(r=2, merge_layers=(0, 1), groups=(2, 2))])
    assert not torch.allclose(reduced, want_frames, atol=1e-3)  # the reducers were really on
    hf = vs.to_transformers(model)
    assert type(hf).__name__ == "CLIPModel"
    with torch.inference_mode():
        torch.testing.assert_close(image_features(hf, video.flatten(0, 1)).view(1, 4, -1), want_frames,
                                   atol=ATOL, rtol=ATOL)
    back = vs.from_transformers(hf)
    vs.save_model(model, tmp_path, format="transformers")
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= {p.name for p in tmp_path.iterdir()}
    again = vs.load_model(tmp_path)
    loaded = transformers.CLIPModel.from_pretrained(tmp_path).eval()
    with torch.inference_mode():
        for other in (back, again):
            torch.testing.assert_close(other.encode_frames(video), want_frames, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(other.encode_text(ids), want_text, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(image_features(loaded, video.flatten(0, 1)).view(1, 4, -1), want_frames,
                                   atol=ATOL, rtol=ATOL)
    assert again.input_spec.mean == model.input_spec.mean and again.input_spec.std == model.input_spec.std


def test_videomae_round_trip_keeps_class_names(tmp_path: Path) -> None:
    names = tuple(f"class {i}" for i in range(10))
    model = vs.create_model("videomae-tiny", class_names=names, fc_norm_eps=1e-5).eval()
    vs.save_model(model, tmp_path, format="transformers")
    hf = transformers.VideoMAEForVideoClassification.from_pretrained(tmp_path).eval()
    assert [hf.config.id2label[i] for i in range(10)] == list(names)
    video = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        want = model(video)
        torch.testing.assert_close(hf(pixel_values=video.permute(0, 2, 1, 3, 4)).logits, want, atol=ATOL, rtol=ATOL)
        back = vs.load_model(tmp_path)
        torch.testing.assert_close(back(video), want, atol=1e-5, rtol=1e-5)
    assert back.input_spec.class_names == names
    assert back.input_spec.mean == model.input_spec.mean


def test_writing_back_refuses_what_transformers_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CLIPModel cannot hold"):
        vs.to_transformers(vs.create_model("clip-tiny", num_classes=3))
    with pytest.raises(ConfigError, match="learned position table"):
        vs.to_transformers(vs.create_model("videomae-tiny", learned_pos=True))
    with pytest.raises(ConfigError, match="format='onnx'"):
        vs.save_model(vs.create_model("videomae-tiny"), tmp_path, format="onnx")


def tiny_hf_siglip(version: int) -> torch.nn.Module:
    torch.manual_seed(0)
    text = dict(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                max_position_embeddings=16)
    vision = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, patch_size=8)
    if version == 1:
        return transformers.SiglipModel(transformers.SiglipConfig(text_config=text,
                                                                  vision_config={**vision, "image_size": 32}))
    return transformers.Siglip2Model(transformers.Siglip2Config(text_config=text,
                                                                vision_config={**vision, "num_patches": 16}))


#: a tensor to remove from each family's save_pretrained folder: fused q/k/v parts, VideoMAE's q_bias (which
#: transformers writes under that name and vidslim's way back spells `query.bias`), a head and a projection
_GONE = [
    ("clip", "vision_model.encoder.layers.1.self_attn.q_proj.weight"),
    ("clip", "visual_projection.weight"),
    ("siglip", "vision_model.encoder.layers.0.self_attn.k_proj.bias"),
    ("siglip", "vision_model.head.probe"),
    ("siglip2", "vision_model.encoder.layers.1.self_attn.v_proj.weight"),
    ("videomae", "videomae.encoder.layer.0.attention.attention.query.weight"),
    ("videomae", "videomae.encoder.layer.1.attention.attention.q_bias"),
    ("videomae", "classifier.weight"),
]


@pytest.mark.parametrize(("family", "gone"), _GONE, ids=[f"{f}-{'.'.join(g.split('.')[-2:])}" for f, g in _GONE])
def test_missing_tensor_is_named_in_the_checkpoints_own_naming(tmp_path: Path, family: str, gone: str) -> None:
    make = {"clip": tiny_hf_clip, "videomae": tiny_hf_videomae, "siglip": lambda: tiny_hf_siglip(1),
            "siglip2": lambda: tiny_hf_siglip(2)}[family]
    make().save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    assert gone in state, sorted(state)[:8]  # the name as transformers writes it
    del state[gone]
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError) as error:
        vs.load_model(tmp_path)
    message = str(error.value)
    assert f"1 missing: {gone}." in message
    assert "in_proj" not in message and "unexpected" not in message and "\n" not in message


def test_writing_back_is_strict_outside_the_rows_absent_prefixes(monkeypatch: pytest.MonkeyPatch) -> None:
    """V-JEPA 2's row lets transformers initialise the predictor, and nothing else: an encoder tensor the
    converter fails to write is still an error."""
    from vidslim.models import convert_vjepa2

    model = vs.create_model("vjepa2-tiny").eval()
    to_hf = convert_vjepa2.vjepa2_state_dict_to_hf
    monkeypatch.setattr(convert_vjepa2, "vjepa2_state_dict_to_hf",
                        lambda state: {k: v for k, v in to_hf(state).items() if k != "encoder.layernorm.weight"})
    with pytest.raises(CheckpointError, match=r"VJEPA2Model.*missing \['encoder\.layernorm\.weight'\]"):
        vs.to_transformers(model)
