"""Foreign checkpoint folders that are damaged or hostile fail in one line naming the file and the field, before
any model is built (and, where the config is read first, before any weight is read)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

import vidslim as vs
from vidslim.errors import CheckpointError
from vidslim.models import loading
from vidslim.models.clip import ClipConfig
from vidslim.models.guards import check_config, estimate_parameters, read_json_object, shard_files
from vidslim.models.registry import build_model, get_config, list_models
from vidslim.models.video_vit import VideoViTConfig

HF_CLIP = {
    "model_type": "clip",
    "architectures": ["CLIPModel"],
    "projection_dim": 32,
    "text_config": {"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 2},
    "vision_config": {
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
    },
}
HF_VIDEOMAE = {
    "model_type": "videomae",
    "architectures": ["VideoMAEForVideoClassification"],
    "hidden_size": 64,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 32,
    "num_frames": 4,
    "num_labels": 10,
}


def one_line(call: Callable[[], Any], *parts: str) -> str:
    """Run `call`, expecting a one-line CheckpointError that contains every one of `parts`."""
    with pytest.raises(CheckpointError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, message
    return message


@pytest.fixture
def no_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a model fails the test: a refused config must be refused before anything is allocated."""
    monkeypatch.setattr(loading, "build_model", lambda *a, **k: pytest.fail("a model was built"))


def write_json(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value) if not isinstance(value, str) else value)
    return path


def nested(base: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of `base` with the field at `dotted` (`vision_config.hidden_size`) set to `value`."""
    out = json.loads(json.dumps(base))
    *parents, leaf = dotted.split(".")
    node = out
    for key in parents:
        node = node[key]
    node[leaf] = value
    return out


# ---------------------------------------------------------------------------------------------- JSON files
@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[1, 2, 3]", "holds a JSON list"),
        ('"clip"', "holds a JSON string"),
        ("null", "holds a JSON null"),
        ('{"model_type": "clip",', "not a readable JSON file"),
        (b"\xff\xfe{}", "not a readable JSON file"),
    ],
)
def test_json_that_is_not_an_object_is_refused(tmp_path: Path, text: str | bytes, said: str) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    one_line(lambda: read_json_object(path), str(path), said)


def test_json_sections_must_be_objects(tmp_path: Path) -> None:
    path = write_json(tmp_path / "vidslim.json", {"family": "clip", "config": [1, 2]})
    one_line(lambda: read_json_object(path, objects=("config",)), str(path), "'config' holds a JSON list")


def test_invalid_config_json_fails_in_one_line_through_load_model(tmp_path: Path) -> None:
    write_json(tmp_path / "hf" / "config.json", '{"model_type": "clip", ')
    one_line(lambda: vs.load_model(tmp_path / "hf"), "config.json", "not")


# ---------------------------------------------------------------------------------------------- shard indexes
@pytest.mark.parametrize(
    ("index", "said"),
    [
        ({"metadata": {}}, "no 'weight_map' object"),
        ({"weight_map": ["a.safetensors"]}, "no 'weight_map' object"),
        ({"weight_map": {}}, "no 'weight_map' object"),
        ({"weight_map": {"w": 3}}, "weight_map['w'] is 3"),
        ({"weight_map": {"w": "../outside.safetensors"}}, "refusing shard path '../outside.safetensors'"),
        ({"weight_map": {"w": "sub/../../outside.safetensors"}}, "refusing shard path"),
        ({"weight_map": {"w": "/etc/passwd"}}, "refusing shard path '/etc/passwd'"),
        ({"weight_map": {"w": "..\\outside.safetensors"}}, "refusing shard path"),
        ({"weight_map": {"w": "C:\\Windows\\win.ini"}}, "refusing shard path"),
        ({"weight_map": {"w": "gone.safetensors"}}, "names shard 'gone.safetensors', which is not in"),
    ],
)
def test_bad_shard_index_is_refused(tmp_path: Path, index: dict[str, Any], said: str) -> None:
    (tmp_path / "outside.safetensors").write_bytes(b"secret")
    folder = tmp_path / "model"
    path = write_json(folder / "model.safetensors.index.json", index)
    one_line(lambda: shard_files(folder, path), str(path), said)


def test_shard_index_accepts_subfolders_and_cache_links(tmp_path: Path) -> None:
    """The Hugging Face cache links snapshot files to blobs outside the snapshot folder: that is fine."""
    blob = tmp_path / "blobs" / "abc123"
    blob.parent.mkdir()
    blob.write_bytes(b"x")
    folder = tmp_path / "snapshots" / "rev"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "b.safetensors").write_bytes(b"x")
    (folder / "a.safetensors").symlink_to(blob)
    weight_map = {"x": "a.safetensors", "y": "sub/b.safetensors", "z": "a.safetensors"}
    index = write_json(folder / "model.safetensors.index.json", {"weight_map": weight_map})
    assert shard_files(folder, index) == [folder / "a.safetensors", folder / "sub" / "b.safetensors"]


# ---------------------------------------------------------------------------------------------- config sizes
@pytest.mark.parametrize("name", list_models())
def test_parameter_estimate_is_exact(name: str) -> None:
    config = get_config(name, num_classes=7)
    with torch.device("meta"):  # counts without allocating
        model = build_model(config)
    assert estimate_parameters(config) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("config", "said"),
    [
        (ClipConfig(vision_width=10_000_000), "vision_width=10000000 makes a model of about"),
        (ClipConfig(vocab_size=10**12), "vocab_size=1000000000000 makes a model"),
        (ClipConfig(image_size=2**20, patch_size=1), "image_size=1048576 makes a model"),
        (VideoViTConfig(mlp_dim=10**10), "mlp_dim=10000000000 makes a model"),
        (VideoViTConfig(depth=10**6), "depth=1000000 blocks, above vidslim's limit of 1024"),
        (ClipConfig(vision_width=768.0), "vision_width=768.0 must be an integer"),  # type: ignore[arg-type]
        (ClipConfig(vision_width="768"), "vision_width='768' must be an integer"),  # type: ignore[arg-type]
        (ClipConfig(vision_width=True), "vision_width=True must be an integer"),
        (ClipConfig(vision_heads=0), "vision_heads=0 must be >= 1"),
        (VideoViTConfig(num_classes=-1), "num_classes=-1 must be >= 0"),
        (ClipConfig(norm_eps=0.0), "norm_eps=0.0 is out of range"),
        (ClipConfig(norm_eps=float("nan")), "norm_eps=nan must be a finite number"),
        (VideoViTConfig(drop_path=1.5), "drop_path=1.5 is out of range"),
        (VideoViTConfig(qkv_bias="yes"), "qkv_bias='yes' must be true or false"),  # type: ignore[arg-type]
    ],
)
def test_bad_config_is_refused_naming_the_field(config: Any, said: str) -> None:
    one_line(lambda: check_config(config, "somewhere/vidslim.json"), "somewhere/vidslim.json: ", said)


def test_size_limit_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    check_config(ClipConfig(), "x")  # ViT-B/16 is far below the default
    one_line(lambda: check_config(ClipConfig(), "x", limit=1000), "x: ", "above vidslim's limit of 1e+03")
    monkeypatch.setattr("vidslim.models.guards.MAX_PARAMETERS", 1000)
    one_line(lambda: check_config(ClipConfig(), "x"), "above vidslim's limit")


@pytest.mark.parametrize(
    ("base", "field", "value", "said"),
    [
        (HF_CLIP, "vision_config.hidden_size", 1e7, "vision_config.hidden_size=10000000 makes a model of about"),
        (HF_CLIP, "text_config.vocab_size", 10**11, "text_config.vocab_size=100000000000 makes a model"),
        (HF_CLIP, "vision_config.hidden_size", 768.5, "vision_config.hidden_size=768.5 must be a whole number"),
        (HF_CLIP, "vision_config.hidden_size", "768", "vision_config.hidden_size='768' must be a whole number"),
        (HF_CLIP, "vision_config.hidden_size", None, "vision_config.hidden_size=None must be a whole number"),
        (HF_CLIP, "vision_config.num_hidden_layers", -2, "vision_config.num_hidden_layers=-2 must be >= 0"),
        (HF_CLIP, "vision_config.num_attention_heads", 0, "vision_config.num_attention_heads=0 must be >= 1"),
        (HF_CLIP, "vision_config.patch_size", [8, 8, 8], "non-square vision_config.patch_size"),
        (HF_CLIP, "logit_scale_init_value", "tiny", "logit_scale_init_value='tiny' must be a number"),
        (HF_CLIP, "text_config", [1, 2], "text_config is a list"),
        (HF_CLIP, "projection_dim", 1e12, "projection_dim=1000000000000 makes a model"),
        (HF_VIDEOMAE, "hidden_size", 1e7, "hidden_size=10000000 makes a model of about"),
        (HF_VIDEOMAE, "num_hidden_layers", 10**7, "num_hidden_layers=10000000 blocks, above"),
        (HF_VIDEOMAE, "num_frames", -16, "num_frames=-16 must be >= 1"),
        (HF_VIDEOMAE, "num_labels", 10**12, "num_labels=1000000000000 makes a model"),
        (HF_VIDEOMAE, "id2label", ["cat", "dog"], "id2label is a list"),
    ],
)
def test_hf_config_with_absurd_sizes_is_refused_before_anything_is_read(
    tmp_path: Path, no_build: None, base: dict[str, Any], field: str, value: Any, said: str
) -> None:
    """The config is refused before any model is built (the weights file is a stand-in, never used)."""
    write_json(tmp_path / "hf" / "config.json", nested(base, field, value))
    save_file({"unused": torch.zeros(1)}, str(tmp_path / "hf" / "model.safetensors"))
    one_line(lambda: vs.load_model(tmp_path / "hf"), str(tmp_path / "hf" / "config.json"), said)


def test_hf_config_whole_floats_are_read_as_ints() -> None:
    from vidslim.models.convert_hf import clip_config_from_hf

    config = clip_config_from_hf(nested(HF_CLIP, "vision_config.hidden_size", 64.0))
    assert config.vision_width == 64 and type(config.vision_width) is int


# ---------------------------------------------------------------------------------------------- through load_model
def test_config_json_list_fails_in_one_line(tmp_path: Path) -> None:
    write_json(tmp_path / "hf" / "config.json", [HF_CLIP])
    one_line(lambda: vs.load_model(tmp_path / "hf"), str(tmp_path / "hf" / "config.json"), "holds a JSON list")


def test_shard_index_traversal_is_refused_by_load_model(tmp_path: Path) -> None:
    (tmp_path / "secret.safetensors").write_bytes(b"not yours")
    write_json(tmp_path / "hf" / "config.json", HF_CLIP)
    write_json(tmp_path / "hf" / "model.safetensors.index.json", {"weight_map": {"w": "../secret.safetensors"}})
    one_line(lambda: vs.load_model(tmp_path / "hf"), "refusing shard path '../secret.safetensors'")


@pytest.mark.parametrize(("field", "value"), [("vision_width", 10_000_000), ("text_layers", 10**8), ("patch_size", -8)])
def test_vidslim_json_with_absurd_sizes_is_refused(tmp_path: Path, no_build: None, field: str, value: Any) -> None:
    folder = vs.models.save_model(vs.create_model("clip-tiny"), tmp_path / "ckpt")
    meta = json.loads((folder / "vidslim.json").read_text())
    meta["config"][field] = value
    write_json(folder / "vidslim.json", meta)
    one_line(lambda: vs.load_model(folder), str(folder / "vidslim.json"), f"{field}={value}")


def test_absurd_override_is_refused(tmp_path: Path, no_build: None) -> None:
    folder = vs.models.save_model(vs.create_model("clip-tiny"), tmp_path / "ckpt")
    one_line(lambda: vs.load_model(folder, image_size=2**20, patch_size=1), "image_size=1048576")


# ---------------------------------------------------------------------------------------------- bare state dicts
def clip_tiny_state() -> dict[str, torch.Tensor]:
    return dict(vs.create_model("clip-tiny").state_dict())


def videomae_tiny_state() -> dict[str, torch.Tensor]:
    return dict(vs.create_model("videomae-tiny").state_dict())


@pytest.mark.parametrize(
    ("make", "key", "value", "said"),
    [
        (clip_tiny_state, "visual.conv1.weight", torch.zeros(64), "visual.conv1.weight has shape (64,)"),
        (clip_tiny_state, "text_projection", torch.zeros(64), "text_projection has shape (64,)"),
        (clip_tiny_state, "visual.positional_embedding", torch.zeros(0, 64), "has shape (0, 64)"),
        (videomae_tiny_state, "patch_embed.proj.weight", torch.zeros(64, 3, 2, 0, 0), "patch_embed.proj.weight"),
        (videomae_tiny_state, "blocks.0.mlp.fc1.weight", None, "blocks.0.mlp.fc1.weight None"),
        (videomae_tiny_state, "head.weight", torch.zeros(10), "head.weight has shape (10,)"),
    ],
)
def test_state_dict_with_impossible_shapes_fails_in_one_line(
    tmp_path: Path, no_build: None, make: Callable[[], dict[str, torch.Tensor]], key: str, value: Any, said: str
) -> None:
    state = make()
    if value is None:
        del state[key]
    else:
        state[key] = value
    save_file(state, str(tmp_path / "weights.safetensors"))
    one_line(lambda: vs.load_model(tmp_path / "weights.safetensors"), str(tmp_path / "weights.safetensors"), said)
