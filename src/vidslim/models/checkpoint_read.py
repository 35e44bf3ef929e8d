"""Read a local checkpoint into vidslim names without building a model: what a file or folder holds, its config
and its tensors.

Formats: Hugging Face folders (config.json + model.safetensors, sharded safetensors or pytorch_model.bin read
with `torch.load(weights_only=True)`; the architectures `hf_formats` lists), hub ids in the local Hugging Face cache
(`vidslim.models.hub_cache`), open_clip folders (`vidslim.models.convert_open_clip`), OpenAI CLIP TorchScript
archives (tensors read as data by `vidslim.models.safe_unpickle`), bare OpenAI CLIP / VideoMAE v2 state dicts, and
vidslim folders (vidslim.json + model.safetensors). From a Hugging Face folder, `preprocessor_config.json` gives
the mean and std and `config.json`'s `id2label` the class names of a classification head.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import Tensor

from vidslim.errors import CheckpointError, printable
from vidslim.models.base import config_from_dict
from vidslim.models.convert_openai import (
    clip_config_from_openai,
    clip_state_dict_from_openai,
    is_openai_clip,
    is_torchscript,
    read_torchscript,
)
from vidslim.models.convert_videomae2 import is_videomae2, strip_prefixes, videomae2_config, videomae2_state_dict
from vidslim.models.guards import check_config, read_json_object, shard_files
from vidslim.models.hf_formats import hf_format_for, supported
from vidslim.models.registry import FAMILIES

logger = logging.getLogger(__name__)

CONFIG_NAME = "vidslim.json"
OPEN_CLIP_CONFIG = "open_clip_config.json"
WEIGHTS_NAME = "model.safetensors"
_WHAT_TO_PASS = (
    f"pass a local Hugging Face folder of {supported()} (config.json + model.safetensors), a hub id in the local "
    "Hugging Face cache (org/name), an open_clip folder (open_clip_config.json + open_clip_model.safetensors), an "
    "OpenAI CLIP .pt file, a VideoMAE v2 .pth file, or a folder written by vidslim.models.save_model. vidslim never "
    "downloads weights: fetch them first (for example `hf download openai/clip-vit-base-patch16`)"
)


@dataclasses.dataclass
class Checkpoint:
    """What `read_checkpoint` found: the config, the state dict in vidslim names, and where it came from."""

    config: Any
    state: dict[str, Tensor]
    source: str  # "vidslim", "hf-clip", "hf-videomae", "hf-siglip", "open-clip", "openai-clip", "videomae2", ...
    folder: Path  # the folder holding the weights (where a tokenizer vocabulary may be)
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)  # vidslim.json (vidslim checkpoints only)
    #: the tensor names as the source spells them (less those vidslim ignores), and the converter from vidslim
    #: names back to those (when the format has one): a loading error then names what is missing in the user's
    #: own naming
    source_keys: frozenset[str] = frozenset()
    to_source: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None
    #: source name -> the vidslim names it converts to on its own (absent when it needs its siblings, such as a
    #: q_proj fused with k_proj and v_proj): tells a renamed tensor (VideoMAE's `q_bias`, read back as
    #: `query.bias`) from an unexpected one
    source_names: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- reading
def refuse_special(path: Path) -> None:
    """A CheckpointError naming `path` when it is a FIFO, socket or device: vidslim reads checkpoints only from
    regular files and folders (opening a FIFO would wait forever for a writer). Missing paths pass: the caller
    says what it looked for."""
    from vidslim.io.paths import special_kind

    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as error:  # a name too long, no permission to look
        raise CheckpointError(f"{printable(path)}: cannot be opened ({error.strerror}); check the path") from None
    kind = special_kind(mode)
    if kind is not None:
        raise CheckpointError(f"{printable(path)}: is {kind}, not a checkpoint file or folder; pass a regular "
                              "weights file or a checkpoint folder")


def _torch_load(path: Path) -> dict[str, Any]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle errors come in many types
        raise CheckpointError(
            f"{path}: cannot be read as weights only ({type(error).__name__}: {str(error)[:200]}). vidslim never "
            "unpickles arbitrary objects: re-save it with torch.save(model.state_dict(), path) or as safetensors"
        ) from error
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    return obj


def _unwrap(obj: dict[str, Any]) -> dict[str, Tensor]:
    """The tensor dict inside common wrappers ({'module': ...}, {'model': ...}, {'state_dict': ...})."""
    for key in ("module", "model", "state_dict"):
        inner = obj.get(key)
        if isinstance(inner, dict) and any(isinstance(v, Tensor) for v in inner.values()):
            obj = inner
            break
    return {k: v for k, v in obj.items() if isinstance(v, Tensor)}


def _read_weights_file(path: Path) -> dict[str, Tensor]:
    """Tensors of one weights file (safetensors, TorchScript archive or weights-only torch pickle)."""
    refuse_special(path)
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except Exception as error:
            raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from error
    if is_torchscript(path):
        return read_torchscript(path)
    return _unwrap(_torch_load(path))


def _read_sharded(folder: Path, index: Path) -> dict[str, Tensor]:
    state: dict[str, Tensor] = {}
    for path in shard_files(folder, index):
        state.update(_read_weights_file(path))
    return state


def _read_hf_weights(folder: Path) -> dict[str, Tensor]:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return _read_weights_file(folder / name)
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (folder / index).is_file():
            return _read_sharded(folder, folder / index)
    raise CheckpointError(f"{folder}: config.json but no model.safetensors or pytorch_model.bin beside it")


def _from_state(state: dict[str, Tensor], where: str, folder: Path) -> Checkpoint:
    """Recognise a bare state dict by its names (OpenAI CLIP, VideoMAE v2 / vidslim video ViT)."""
    state = strip_prefixes(state)
    if is_openai_clip(state):
        return Checkpoint(
            clip_config_from_openai(state, where), clip_state_dict_from_openai(state), "openai-clip", folder
        )
    if is_videomae2(state):
        state = videomae2_state_dict(state)
        return Checkpoint(videomae2_config(state, where), state, "videomae2", folder)
    if any(k.startswith(("vision_model.", "text_model.", "videomae.")) for k in state):
        raise CheckpointError(
            f"{where}: a Hugging Face state dict without its config: pass the folder with config.json"
        )
    sample = ", ".join(list(state)[:5])
    raise CheckpointError(f"{where}: unrecognised checkpoint (first tensors: {sample}); {_WHAT_TO_PASS}")


def _read_hf(folder: Path) -> Checkpoint:
    where = str(folder / "config.json")
    cfg = read_json_object(folder / "config.json")
    return checkpoint_from_hf(cfg, lambda: _read_hf_weights(folder), where, folder)


def checkpoint_from_hf(cfg: dict[str, Any], weights: Callable[[], dict[str, Tensor]], where: str,
                       folder: Path | None, architecture: str | None = None) -> Checkpoint:
    """A Checkpoint from a config.json dict and (a function returning) the transformers state dict, through the
    `hf_formats` row of its model_type: a folder and an in-memory model (`architecture`: its class name) alike.
    The config is checked before any weight is read."""
    kind, arch = cfg.get("model_type"), cfg.get("architectures") or []
    if not isinstance(arch, list):
        raise CheckpointError(f"{where}: architectures must be a list of class names, got {arch!r}")
    fmt = hf_format_for(kind, [architecture] if architecture else arch)
    if fmt is None:
        what = architecture or f"architectures={arch}"
        raise CheckpointError(f"{where}: model_type={kind!r}, {what}: vidslim reads Hugging Face models of "
                              f"{supported()}")
    config = _hf_input(fmt.converter("config_from_hf")(cfg, where), cfg, folder)
    state = weights()
    convert = fmt.converter("state_from_hf")
    to_source = fmt.converter("state_to_hf") if fmt.state_to_hf else None
    alone = {k: _alone(convert, k, v) for k, v in state.items()}
    return Checkpoint(config, convert(state), fmt.source, folder or Path("."),
                      source_keys=frozenset(k for k, names in alone.items() if names is None or names),
                      to_source=to_source, source_names={k: names for k, names in alone.items() if names})


def _alone(convert: Callable[[dict[str, Tensor]], dict[str, Tensor]], key: str, value: Tensor) -> frozenset[str] | None:
    """The vidslim names `convert` turns tensor `key` into on its own (empty for names it drops, such as
    position_ids buffers; None when it needs its siblings)."""
    try:
        return frozenset(convert({key: value}))
    except Exception:  # a converter that needs its siblings keeps the name
        return None


def class_names_from_id2label(id2label: Any, num_classes: int, where: str) -> tuple[str, ...] | None:
    """Class names in index order from a Hugging Face `id2label` ({"0": "abseiling", ...}); None when there is no
    head or the map does not cover every class (a warning says so)."""
    if not isinstance(id2label, dict) or num_classes <= 0:
        return None
    try:
        names = {int(k): str(v) for k, v in id2label.items()}
    except (TypeError, ValueError):
        logger.warning("%s: id2label keys are not class indices; class names left out", where)
        return None
    if sorted(names) != list(range(num_classes)):
        logger.warning("%s: id2label names %d classes for a head of %d; class names left out", where, len(names),
                       num_classes)
        return None
    return tuple(names[i] for i in range(num_classes))


def _hf_input(config: Any, cfg: dict[str, Any], folder: Path | None) -> Any:
    """`config` with the input settings of a Hugging Face folder: mean and std from preprocessor_config.json,
    class names from config.json's id2label (the frame size stays the model config's)."""
    from vidslim.io.input_spec import preprocessor_overrides

    changes: dict[str, Any] = {}
    processor = folder / "preprocessor_config.json" if folder is not None else None
    if processor is not None and processor.is_file():
        try:
            values = json.loads(processor.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CheckpointError(f"{processor}: not valid JSON ({error})") from error
        if not isinstance(values, dict):
            raise CheckpointError(f"{processor}: expected a JSON object, got a {type(values).__name__}")
        found = preprocessor_overrides(values, str(processor))
        changes.update({k: v for k, v in found.items() if k in ("image_mean", "image_std")})
    names = class_names_from_id2label(cfg.get("id2label"), int(getattr(config, "num_classes", 0)),
                                      str(folder / "config.json") if folder else "config.id2label")
    if names is not None and not all(n == f"LABEL_{i}" for i, n in enumerate(names)):  # transformers' placeholders
        changes["class_names"] = names
    return dataclasses.replace(config, **changes) if changes else config


def _read_open_clip(folder: Path) -> Checkpoint:
    """An open_clip folder: config checked first, then the weights (`vidslim.models.convert_open_clip`)."""
    from vidslim.models.convert_open_clip import open_clip_state, open_clip_weights, read_open_clip_config

    config = read_open_clip_config(folder)
    return Checkpoint(config, open_clip_state(_read_weights_file(open_clip_weights(folder))), "open-clip", folder)


def _read_vidslim(folder: Path) -> Checkpoint:
    where = folder / CONFIG_NAME
    meta = read_json_object(where, objects=("config",))
    family = meta.get("family")
    if not isinstance(family, str) or family not in FAMILIES:
        raise CheckpointError(f"{where}: unknown model family {family!r} (known: {sorted(FAMILIES)})")
    config = config_from_dict(FAMILIES[family][1], meta.get("config", {}), where=str(where))
    check_config(config, str(where))
    if not (folder / WEIGHTS_NAME).is_file():
        raise CheckpointError(f"{folder}: {CONFIG_NAME} but no {WEIGHTS_NAME} beside it")
    return Checkpoint(config, _read_weights_file(folder / WEIGHTS_NAME), "vidslim", folder, meta)


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Find out what `path` holds and read it into vidslim names (no model is built)."""
    from vidslim.models.hub_cache import looks_like_hub_id, snapshot_folder

    if isinstance(path, str) and looks_like_hub_id(path):
        path = snapshot_folder(path)
    path = Path(path).expanduser()
    refuse_special(path)
    if not path.exists():
        from vidslim.models.registry import list_models

        hint = (
            f" To build a randomly initialised {path} use vs.create_model({str(path)!r})."
            if str(path) in list_models()
            else ""
        )
        raise CheckpointError(f"{path}: no such file or folder.{hint} {_WHAT_TO_PASS}")
    if path.is_dir():
        if (path / CONFIG_NAME).is_file():
            return _read_vidslim(path)
        hf_weights = any((path / n).exists() for n in ("model.safetensors", "pytorch_model.bin",
                                                        "model.safetensors.index.json",
                                                        "pytorch_model.bin.index.json"))
        if (path / "config.json").is_file() and (hf_weights or not (path / OPEN_CLIP_CONFIG).is_file()):
            return _read_hf(path)
        if (path / OPEN_CLIP_CONFIG).is_file():
            return _read_open_clip(path)
        for name in (WEIGHTS_NAME, "pytorch_model.bin"):
            if (path / name).is_file():
                return _from_state(_read_weights_file(path / name), str(path / name), path)
        raise CheckpointError(f"{path}: a folder without {CONFIG_NAME}, config.json or {WEIGHTS_NAME}; {_WHAT_TO_PASS}")
    return _from_state(_read_weights_file(path), str(path), path.parent)


__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "Checkpoint", "checkpoint_from_hf", "class_names_from_id2label",
           "read_checkpoint", "refuse_special"]
