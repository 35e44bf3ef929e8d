"""Checks on what a checkpoint folder says before vidslim acts on it: JSON files, shard indexes, model sizes.

A folder from elsewhere can hold anything: a config.json that is a list or not JSON at all, a shard index whose
`weight_map` points outside the folder (`../../.ssh/id_rsa`, `/etc/passwd`), or sizes that would allocate
terabytes (`hidden_size: 1e7`). Each is refused here in one line that names the file and the field, before any
tensor is read or allocated.

The size check estimates the parameter count of the model a config describes from closed formulas of its
fields (no model is built) and refuses it above `MAX_PARAMETERS` (20 billion, about 80 GB in fp32, past any
video model vidslim reads) or with more than `MAX_LAYERS` blocks (building a million empty blocks takes hours
before any tensor is allocated). Raise the module constants for a bigger model.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from vidslim.errors import CheckpointError

#: the largest model, in parameters, a config may describe
MAX_PARAMETERS = 20_000_000_000
#: the most transformer blocks one tower may have
MAX_LAYERS = 1024

#: int fields that may be 0 (no head, no blocks); every other int size must be at least 1
_MAY_BE_ZERO = frozenset({"num_classes", "vision_layers", "text_layers", "depth", "eot_token_id", "pooler_dim"})
_LAYER_FIELDS = frozenset({"vision_layers", "text_layers", "depth"})


def read_json_object(path: Path, objects: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON object in `path`; `objects` names keys that, when present, must hold objects too."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = " ".join(str(error).split())[:200]
        raise CheckpointError(f"{path}: not a readable JSON file ({reason}); fix or replace it") from error
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: holds a JSON {_json_kind(value)}, not an object {{...}}; fix or replace it")
    for key in objects:
        if key in value and not isinstance(value[key], dict):
            raise CheckpointError(f"{path}: {key!r} holds a JSON {_json_kind(value[key])}, not an object {{...}}")
    return value


def _json_kind(value: Any) -> str:
    kinds = {list: "list", str: "string", bool: "boolean", int: "number", float: "number", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


def shard_files(folder: Path, index: Path) -> list[Path]:
    """The shard files a `*.index.json` names in its weight_map: relative paths inside `folder`, all present.

    Paths are checked by name, not by resolving links: the Hugging Face cache links each file to a blob
    outside the snapshot folder, which is fine; a name with `..`, an absolute path or a drive is not."""
    weight_map = read_json_object(index).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{index}: no 'weight_map' object (tensor name -> shard file); fix or replace the index")
    names = set()
    for tensor, name in weight_map.items():
        if not isinstance(name, str) or not name:
            raise CheckpointError(f"{index}: weight_map[{tensor!r}] is {name!r}, not a file name")
        names.add(name)
    files = []
    for name in sorted(names):
        posix, windows = PurePosixPath(name), PureWindowsPath(name)
        if posix.is_absolute() or windows.is_absolute() or windows.drive or ".." in posix.parts + windows.parts:
            raise CheckpointError(
                f"{index}: refusing shard path {name!r}: shards must be files inside {folder} "
                "(no '..', no absolute path)"
            )
        path = folder / posix
        if not path.is_file():
            raise CheckpointError(f"{index}: names shard {name!r}, which is not in {folder}")
        files.append(path)
    return files


# ---------------------------------------------------------------------------------------------- config sizes
def _block(width: int, mlp: int) -> int:
    """Parameters of one pre-LN transformer block: q/k/v/out projections with biases, two LayerNorms, the MLP."""
    return 4 * width * width + 2 * width * mlp + 9 * width + mlp


def _clip_parameters(c: Mapping[str, Any]) -> int:
    """Parameters of vidslim's CLIP (vision tower, text tower, projections, optional head)."""
    w, t, e = c["vision_width"], c["text_width"], c["embed_dim"]
    grid = (c["image_size"] // c["patch_size"]) ** 2
    vision = w * c["in_chans"] * c["patch_size"] ** 2 + w + (1 + grid) * w + 4 * w + w * e
    vision += c["vision_layers"] * _block(w, c["vision_mlp_dim"])
    text = (c["vocab_size"] + c["context_length"]) * t + 2 * t + t * e + 1
    text += c["text_layers"] * _block(t, c["text_mlp_dim"])
    head = e * c["num_classes"] + c["num_classes"]
    return vision + text + head


def _video_vit_parameters(c: Mapping[str, Any]) -> int:
    """Parameters of vidslim's VideoMAE-layout video ViT (q/v biases only, no qkv bias vector of its own)."""
    d = c["embed_dim"]
    tokens = (c["num_frames"] // c["tubelet_size"]) * (c["image_size"] // c["patch_size"]) ** 2
    embed = d * c["in_chans"] * c["tubelet_size"] * c["patch_size"] ** 2 + d
    block = _block(d, c["mlp_dim"]) - 3 * d + (2 * d if c["qkv_bias"] else 0)
    positions = tokens * d if c["learned_pos"] else 0
    return embed + positions + c["depth"] * block + 2 * d + d * c["num_classes"] + c["num_classes"]


def _siglip_parameters(c: Mapping[str, Any]) -> int:
    """Parameters of vidslim's SigLIP (patches with a bias and no CLS, the pooling head: a block less its second
    LayerNorm's bias plus the probe; the text head with a bias, logit scale and bias)."""
    w, t, e = c["vision_width"], c["text_width"], c["embed_dim"]
    grid = (c["image_size"] // c["patch_size"]) ** 2
    block = _block(w, c["vision_mlp_dim"])
    vision = w * c["in_chans"] * c["patch_size"] ** 2 + w + grid * w + c["vision_layers"] * block + 2 * w + block - w
    text = (c["vocab_size"] + c["context_length"]) * t + c["text_layers"] * _block(t, c["text_mlp_dim"]) + 2 * t
    return vision + text + t * e + e + 2 + e * c["num_classes"] + c["num_classes"]




def _tubelet_vit(c: Mapping[str, Any]) -> int:
    """Tubelet embedding + blocks with a fused, fully biased q/k/v + final LayerNorm (V-JEPA 2, ViViT)."""
    d = c["embed_dim"]
    embed = d * c["in_chans"] * c["tubelet_size"] * c["patch_size"] ** 2 + d
    block = _block(d, c["mlp_dim"]) - (0 if c["qkv_bias"] else 3 * d)
    return embed + c["depth"] * block + 2 * d


def _vjepa2_parameters(c: Mapping[str, Any]) -> int:
    """V-JEPA 2: no position table; a classifier adds the attentive pooler (MLPs 4x wide) and the head."""
    d, n = c["embed_dim"], c["num_classes"]
    pooler = d + c["pooler_layers"] * _block(d, 4 * d) + 11 * d * d + 12 * d if n > 0 else 0
    return _tubelet_vit(c) + pooler + (d * n + n if n > 0 else 0)


def _vivit_parameters(c: Mapping[str, Any]) -> int:
    """ViViT: CLS token and a learned position table over CLS + every tubelet, plus the head or the base model's
    pooler."""
    d, n, p = c["embed_dim"], c["num_classes"], c.get("pooler_dim", 0)
    tokens = (c["num_frames"] // c["tubelet_size"]) * (c["image_size"] // c["patch_size"]) ** 2
    return _tubelet_vit(c) + d + (1 + tokens) * d + d * n + n + d * p + p


def _xclip_parameters(c: Mapping[str, Any]) -> int:
    """X-CLIP: CLIP plus message parts per vision block (fc, LayerNorm, attention), the prompt-context LayerNorm and
    projection, the MIT (frame positions + blocks) and the prompt generator (LayerNorm, alpha, cross-attention
    layers with q/k/v unbiased and MLPs 4x wide)."""
    w, e, m = c["vision_width"], c["embed_dim"], c["mit_width"]
    messages = c["vision_layers"] * (5 * w * w + 7 * w)
    mit = c["num_frames"] * m + c["mit_layers"] * _block(m, c["mit_mlp_dim"])
    prompts = 3 * e + c["prompt_layers"] * (12 * e * e + 10 * e)
    return _clip_parameters(c) + messages + 2 * w + w * e + mit + prompts


_ESTIMATORS = {"ClipConfig": _clip_parameters, "XClipConfig": _xclip_parameters, "SiglipConfig": _siglip_parameters,
               "VideoViTConfig": _video_vit_parameters,
               "VJEPA2Config": _vjepa2_parameters, "ViViTConfig": _vivit_parameters}


def estimate_parameters(config: Any) -> int | None:
    """The parameter count of the model `config` describes (None for a config class with no formula here)."""
    estimator = _ESTIMATORS.get(type(config).__name__)
    return None if estimator is None else estimator(dataclasses.asdict(config))


DAMAGED = "the file is damaged or not a model vidslim reads"


def _check_field(name: str, label: str, kind: str, value: Any, where: str, advice: str = DAMAGED) -> None:
    """Raise when `value` does not have the type the config field's annotation `kind` names, or is out of range."""
    if kind in ("int", "int | None"):
        if value is None and kind == "int | None":
            return
        if type(value) is not int:
            raise CheckpointError(f"{where}: {label}={value!r} must be an integer")
        if value < (0 if name in _MAY_BE_ZERO else 1):
            raise CheckpointError(f"{where}: {label}={value} must be {'>= 0' if name in _MAY_BE_ZERO else '>= 1'}")
        if name in _LAYER_FIELDS and value > MAX_LAYERS:
            raise CheckpointError(
                f"{where}: {label}={value} blocks, above vidslim's limit of {MAX_LAYERS} "
                f"(vidslim.models.guards.MAX_LAYERS); {advice}"
            )
    elif kind == "float":
        if type(value) not in (int, float) or not math.isfinite(value):
            raise CheckpointError(f"{where}: {label}={value!r} must be a finite number")
        if (name.endswith("eps") and value <= 0) or (name == "drop_path" and not 0 <= value < 1):
            raise CheckpointError(f"{where}: {label}={value} is out of range")
    elif kind == "bool" and type(value) is not bool:
        raise CheckpointError(f"{where}: {label}={value!r} must be true or false")
    elif kind == "str" and not isinstance(value, str):
        raise CheckpointError(f"{where}: {label}={value!r} must be a string")


def check_config(config: Any, where: str, names: Mapping[str, str] | None = None, limit: int | None = None,
                 advice: str = DAMAGED) -> None:
    """Refuse a config whose fields have the wrong type or range, or that would build an absurdly large model.

    where: the file the config came from (named in the error); names: the file's own name for a field
    (`vision_width` -> `vision_config.hidden_size`); limit: parameters allowed (default `MAX_PARAMETERS`);
    advice: what the error suggests (a damaged file, by default)."""
    names = names or {}
    for field in dataclasses.fields(config):
        _check_field(field.name, names.get(field.name, field.name), str(field.type), getattr(config, field.name), where,
                     advice)
    limit = MAX_PARAMETERS if limit is None else limit
    count = estimate_parameters(config)
    if count is None or count <= limit:
        return
    # the culprit: the field whose default value shrinks the estimate the most
    defaults = type(config)()
    sizes = [f.name for f in dataclasses.fields(config) if str(f.type) == "int"]
    culprit = min(sizes, key=lambda n: estimate_parameters(dataclasses.replace(config, **{n: getattr(defaults, n)})))
    raise CheckpointError(
        f"{where}: {names.get(culprit, culprit)}={getattr(config, culprit)} makes a model of about {count:.3g} "
        f"parameters ({count * 4 / 1e9:.3g} GB in fp32), above vidslim's limit of {limit:.3g} "
        f"(vidslim.models.guards.MAX_PARAMETERS); {advice}"
    )


__all__ = ["MAX_LAYERS", "MAX_PARAMETERS", "check_config", "estimate_parameters", "read_json_object", "shard_files"]
