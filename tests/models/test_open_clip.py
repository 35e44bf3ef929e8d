"""open_clip folders (open_clip_config.json + weights) load without open_clip, matching the equal HF CLIP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import vidslim as vs
from vidslim.errors import CheckpointError

transformers = pytest.importorskip("transformers")

#: CLIPModel name -> open_clip name (open_clip keeps OpenAI CLIP's names), written out here as the reference
_TOP = {"text_model.embeddings.token_embedding.weight": "token_embedding.weight",
        "text_model.embeddings.position_embedding.weight": "positional_embedding",
        "text_model.final_layer_norm.weight": "ln_final.weight", "text_model.final_layer_norm.bias": "ln_final.bias",
        "vision_model.embeddings.class_embedding": "visual.class_embedding",
        "vision_model.embeddings.patch_embedding.weight": "visual.conv1.weight",
        "vision_model.embeddings.position_embedding.weight": "visual.positional_embedding",
        "vision_model.pre_layrnorm.weight": "visual.ln_pre.weight",
        "vision_model.pre_layrnorm.bias": "visual.ln_pre.bias",
        "vision_model.post_layernorm.weight": "visual.ln_post.weight",
        "vision_model.post_layernorm.bias": "visual.ln_post.bias", "logit_scale": "logit_scale"}
_BLOCK = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
          "self_attn.out_proj": "attn.out_proj"}


def open_clip_state(hf_state: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    out = {new: hf_state[old] for old, new in _TOP.items()}
    out["visual.proj"] = hf_state["visual_projection.weight"].t().contiguous()
    out["text_projection"] = hf_state["text_projection.weight"].t().contiguous()
    for tower, ours in (("vision_model", "visual.transformer"), ("text_model", "transformer")):
        for i in range(layers):
            src, dst = f"{tower}.encoder.layers.{i}.", f"{ours}.resblocks.{i}."
            for old, new in _BLOCK.items():
                for kind in ("weight", "bias"):
                    out[f"{dst}{new}.{kind}"] = hf_state[f"{src}{old}.{kind}"]
            for kind in ("weight", "bias"):
                out[f"{dst}attn.in_proj_{kind}"] = torch.cat([hf_state[f"{src}self_attn.{x}_proj.{kind}"]
                                                              for x in "qkv"])
    out["attn_mask"] = torch.full((16, 16), float("-inf")).triu(1)  # a buffer older open_clip versions saved
    return out


def write_open_clip(folder: Path, act: str, weights: str = "open_clip_model.safetensors") -> torch.nn.Module:
    torch.manual_seed(0)
    config = transformers.CLIPConfig(
        text_config=dict(vocab_size=1000, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=16, hidden_act=act, eos_token_id=2),
        vision_config=dict(hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8, hidden_act=act),
        projection_dim=32)
    hf = transformers.CLIPModel(config).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(0.05 * torch.randn_like(p))
    folder.mkdir(exist_ok=True)
    state = open_clip_state(hf.state_dict(), 2)
    if weights.endswith(".safetensors"):
        save_file(state, folder / weights)
    else:
        torch.save(state, folder / weights)
    meta = {"model_cfg": {"embed_dim": 32, "quick_gelu": act == "quick_gelu",
                          "vision_cfg": {"image_size": 32, "layers": 2, "width": 128, "patch_size": 8},
                          "text_cfg": {"context_length": 16, "vocab_size": 1000, "width": 64, "heads": 4,
                                       "layers": 2}},
            "preprocess_cfg": {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.2]}}
    (folder / "open_clip_config.json").write_text(json.dumps(meta))
    return hf


@pytest.mark.parametrize(("act", "weights"), [("gelu", "open_clip_model.safetensors"),
                                              ("quick_gelu", "open_clip_pytorch_model.bin")])
def test_open_clip_folder_matches_the_equal_hf_clip(tmp_path: Path, act: str, weights: str) -> None:
    hf = write_open_clip(tmp_path, act, weights)
    ours = vs.load_model(tmp_path)
    assert ours.config.vision_heads == 2 and ours.config.act == act  # 128 / head_width 64
    assert ours.input_spec.mean == (0.5, 0.4, 0.3)
    gen = torch.Generator().manual_seed(1)
    video = torch.randn(2, 3, 3, 32, 32, generator=gen)
    ids = torch.randint(3, 900, (3, 16), generator=gen)
    ids[:, 9] = 999  # the highest id ends each text: argmax pooling
    with torch.inference_mode():
        ref = hf.get_image_features(pixel_values=video.flatten(0, 1)).pooler_output.view(2, 3, -1)
        torch.testing.assert_close(ours.encode_frames(video), ref, atol=1e-4, rtol=1e-4)
        ref_text = hf.get_text_features(input_ids=ids).pooler_output
        torch.testing.assert_close(ours.encode_text(ids), ref_text, atol=1e-4, rtol=1e-4)


def test_open_clip_architectures_vidslim_does_not_read_are_refused(tmp_path: Path) -> None:
    write_open_clip(tmp_path, "gelu")
    meta = json.loads((tmp_path / "open_clip_config.json").read_text())
    meta["model_cfg"]["vision_cfg"]["ls_init_value"] = 1e-5
    (tmp_path / "open_clip_config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"vision_cfg\.ls_init_value=1e-05"):
        vs.load_model(tmp_path)
    (tmp_path / "open_clip_model.safetensors").unlink()
    del meta["model_cfg"]["vision_cfg"]["ls_init_value"]
    (tmp_path / "open_clip_config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"neither open_clip_model\.safetensors nor"):
        vs.load_model(tmp_path)


@pytest.mark.parametrize(("section", "key", "value"), [
    ("vision_cfg", "global_average_pool", True),  # the same weights, pooled otherwise: a silent difference
    ("vision_cfg", "input_patchnorm", True),
    ("vision_cfg", "pool_type", "avg"),
    ("vision_cfg", "norm_kwargs", {"eps": 1e-6}),
    ("text_cfg", "act_kwargs", {"approximate": "tanh"}),
    ("text_cfg", "embed_cls", True),
    (None, "multimodal_cfg", {"width": 64}),
])
def test_each_option_off_openais_architecture_is_named(tmp_path: Path, section: str | None, key: str,
                                                       value: object) -> None:
    write_open_clip(tmp_path, "gelu")
    meta = json.loads((tmp_path / "open_clip_config.json").read_text())
    (meta["model_cfg"] if section is None else meta["model_cfg"][section])[key] = value
    (tmp_path / "open_clip_config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=key):
        vs.load_model(tmp_path)


def test_options_left_at_openais_values_load(tmp_path: Path) -> None:
    write_open_clip(tmp_path, "gelu")
    meta = json.loads((tmp_path / "open_clip_config.json").read_text())
    meta["model_cfg"]["vision_cfg"].update(global_average_pool=False, act_kwargs={}, patch_dropout=0.0,
                                          pool_type="tok")
    meta["model_cfg"]["text_cfg"].update(norm_kwargs=None, pool_type="argmax")
    (tmp_path / "open_clip_config.json").write_text(json.dumps(meta))
    assert vs.load_model(tmp_path).config.vision_layers == 2
