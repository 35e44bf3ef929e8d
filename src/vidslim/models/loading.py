"""Load pretrained weights from local files, never from the network; save vidslim's own checkpoints.

`load_model(path)` accepts:
- a Hugging Face folder of `CLIPModel` or `VideoMAEForVideoClassification` (config.json + model.safetensors,
  sharded safetensors, or pytorch_model.bin read with `torch.load(weights_only=True)`);
- an OpenAI CLIP checkpoint file (`ViT-B-16.pt`, a TorchScript archive whose tensors are read as data by
  `vidslim.models.safe_unpickle`: its code is never run), or any state-dict file with OpenAI CLIP or VideoMAE v2 names
  (`.pt`/`.pth`/`.bin` via `torch.load(weights_only=True)`, or `.safetensors`);
- a folder written by `save_model` (model.safetensors + vidslim.json).

A vidslim folder describes the whole model, not only the backbone: vidslim.json holds the reduction card (which
reducers, with which settings; `vidslim.reduce.cards`) and the LoRA adapters' rank and scale, so
`load_model(folder)` with no `reduction=` rebuilds the reducers that were saved, puts the adapters back, and
loads their parameters (RLT's length embedding, TempMe's temporal embeddings, the LoRA matrices) by name.
Pass `reduction=[...]` to use other reducers (`reduction=[]`: the dense model).

Loading is strict: a tensor the model lacks, a tensor the checkpoint lacks, or a shape that differs is a
`CheckpointError` that lists them. Position tables follow the requested input: CLIP's learned table is resized
bicubically (CLS row kept) for another `image_size`; a video ViT's fixed sinusoid table is rebuilt for another
`num_frames` / `image_size` (a learned one is resized in 3-D). Each resize logs a warning.

The input spec travels too (`model.input_spec`): vidslim.json stores the config with the mean/std and class names;
from a Hugging Face folder, `preprocessor_config.json` gives the mean and std and `config.json`'s `id2label` the
class names of a classification head.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor

from vidslim import __version__
from vidslim.errors import CheckpointError, ConfigError
from vidslim.models.base import ReducibleModel, config_from_dict
from vidslim.models.checkpoint_read import CONFIG_NAME, WEIGHTS_NAME, Checkpoint, read_checkpoint
from vidslim.models.clip import ClipConfig
from vidslim.models.guards import check_config
from vidslim.models.positions import interpolate_2d, interpolate_3d
from vidslim.models.registry import build_model
from vidslim.models.skip_init import SkipRandomInit
from vidslim.models.video_vit import VideoViTConfig
from vidslim.reduce.cards import reduction_card
from vidslim.reduce.registry import build_reduction, entry_for

logger = logging.getLogger(__name__)

_REDUCERS = "reduction_modules."  # state-dict prefix of the reducers' own parameters

# ---------------------------------------------------------------------------------------------- adapting
def _apply_overrides(config: Any, overrides: dict[str, Any], where: str) -> Any:
    given = {k: v for k, v in overrides.items() if v is not None or k == "class_names"}
    values = {**dataclasses.asdict(config), **given}
    return config_from_dict(type(config), values, where=f"load_model({where})")


def _resize_positions(old: Any, new: Any, state: dict[str, Tensor], where: str) -> None:
    """Fit position tables to the new input size, in place, logging what changed."""
    if isinstance(new, ClipConfig) and old.grid != new.grid and "visual.positional_embedding" in state:
        state["visual.positional_embedding"] = interpolate_2d(state["visual.positional_embedding"], new.grid)
        logger.warning(
            "%s: resized CLIP's position table from a %dx%d to a %dx%d grid (bicubic, CLS row kept) for %d px input",
            where,
            *old.grid,
            *new.grid,
            new.image_size,
        )
    if isinstance(new, VideoViTConfig) and old.grid != new.grid:
        if "pos_embed" in state:
            table = interpolate_3d(state["pos_embed"][0], old.grid, new.grid)
            state["pos_embed"] = table[None]
            logger.warning(
                "%s: resized the learned position table from grid %s to %s (trilinear)", where, old.grid, new.grid
            )
        else:
            logger.warning(
                "%s: the checkpoint was trained on a %s token grid; the fixed sinusoid position table is rebuilt "
                "for %s "
                "(%d frames of %d px)",
                where,
                old.grid,
                new.grid,
                new.num_frames,
                new.image_size,
            )


def _source_names(own: dict[str, Tensor], state: dict[str, Tensor], may_miss: set[str],
                  source: Checkpoint | None) -> tuple[list[str], list[str]] | None:
    """(missing, unexpected) in the checkpoint's own naming (its `to_source` applied to what the model expects),
    so a missing `q_proj.weight` is named as such rather than as a fused tensor; None when it cannot say. A name
    the way back spells otherwise than the file (VideoMAE's `q_bias` is written back as `query.bias`) is neither:
    the tensor it stands for loaded."""
    if source is None or source.to_source is None or not source.source_keys:
        return None
    try:
        expected = set(source.to_source({k: v for k, v in own.items() if k not in may_miss}))
        loaded = set(source.to_source({k: v for k, v in own.items() if k in state}))
    except Exception:  # a converter that needs every tensor: fall back to vidslim's names
        return None
    fitting = set(own) & set(state)
    renamed = {k for k in source.source_keys - expected if source.source_names.get(k, frozenset({""})) <= fitting}
    missing = [_file_spelling(name, renamed, source, own) for name in expected - source.source_keys - loaded]
    return sorted(missing), sorted(source.source_keys - expected - renamed)


def _file_spelling(name: str, renamed: set[str], source: Checkpoint, own: dict[str, Tensor]) -> str:
    """`name` as the file spells its siblings: when a loaded tensor's file name ends otherwise than the way back
    writes it (`...q_bias` for `...query.bias`), a missing name with the same ending is given the file's."""
    for key in sorted(renamed):
        try:
            back = next(iter(source.to_source({v: own[v] for v in source.source_names[key]})))  # type: ignore[misc]
        except Exception:  # a converter that needs every tensor: keep the way back's spelling
            continue
        written, spelled = back.split("."), key.split(".")
        while written and spelled and written[0] == spelled[0]:
            written, spelled = written[1:], spelled[1:]
        written, spelled = ".".join(written), ".".join(spelled)
        if name.endswith("." + written):
            return name[: len(name) - len(written)] + spelled
    return name


def _check_fit(
    model: ReducibleModel, state: dict[str, Tensor], where: str, may_miss: set[str], prefix: str = "",
    source: Checkpoint | None = None,
) -> None:
    """Raise CheckpointError listing missing, unexpected and mis-shaped tensors (restricted to `prefix`), the
    missing and unexpected ones in the checkpoint's own naming where its format can say it."""
    own = {
        k: v for k, v in model.state_dict().items() if k.startswith(prefix) and (prefix or not k.startswith(_REDUCERS))
    }
    missing = sorted(set(own) - set(state) - may_miss)
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        named = _source_names(own, state, may_miss, source)
        if named is not None and (named[0] or named[1]):
            missing, unexpected = named
    shapes = sorted(
        f"{k} (checkpoint {tuple(state[k].shape)}, model {tuple(own[k].shape)})"
        for k in set(own) & set(state)
        if tuple(own[k].shape) != tuple(state[k].shape)
    )
    if not (missing or unexpected or shapes):
        return

    def listed(names: Sequence[str]) -> str:
        more = f" ... and {len(names) - 12} more" if len(names) > 12 else ""
        return ", ".join(names[:12]) + more

    parts = [
        f"{len(missing)} missing: {listed(missing)}" if missing else "",
        f"{len(unexpected)} unexpected: {listed(unexpected)}" if unexpected else "",
        f"{len(shapes)} of another shape: {listed(shapes)}" if shapes else "",
    ]
    raise CheckpointError(
        f"{where} does not fit the {type(model).__name__} it describes: "
        + "; ".join(p for p in parts if p)
        + ". Check that the file is the model you mean; num_classes= replaces a classifier head, image_size= and "
        "num_frames= resize position tables"
    )


#: model family -> (the module and class of its tokenizer, what that family calls it in messages)
TOKENIZERS: dict[str, tuple[str, str, str]] = {
    "clip": ("vidslim.models.clip_tokenizer", "ClipTokenizer", "CLIP"),
    "xclip": ("vidslim.models.clip_tokenizer", "ClipTokenizer", "X-CLIP"),  # X-CLIP folders carry CLIP's vocabulary
    "siglip": ("vidslim.models.siglip_tokenizer", "SiglipTokenizer", "SigLIP"),
}


def _attach_tokenizer(model: ReducibleModel, tokenizer: Any, folder: Path) -> None:
    """Attach the family's tokenizer: an object, a folder path, or (None) the checkpoint's folder if it has one.

    The reader is picked by `model.family` (`TOKENIZERS`); a family without one takes no tokenizer. A tokenizer
    with a `context_length` gets the model's, so strings are padded to the text tower's positions."""
    if tokenizer is False or model.family not in TOKENIZERS:
        return
    if tokenizer is not None and not isinstance(tokenizer, (str, Path)):
        model.tokenizer = tokenizer
        return
    module, name, label = TOKENIZERS[model.family]
    try:
        reader = getattr(importlib.import_module(module), name)
    except ImportError as error:
        if tokenizer is not None:
            raise ConfigError(f"tokenizer={tokenizer!s}: the {label} tokenizer is unavailable ({error})") from error
        return
    if tokenizer is not None:
        model.tokenizer = reader.from_folder(tokenizer)
    else:
        try:  # best effort: the checkpoint's folder may hold the vocabulary
            model.tokenizer = reader.from_folder(folder)
        except Exception as error:
            logger.debug("no %s tokenizer in %s (%s); encode_text takes token ids", label, folder, error)
            return
    context = getattr(model.config, "context_length", None)
    if context is not None and hasattr(model.tokenizer, "context_length"):
        model.tokenizer.context_length = int(context)


# ---------------------------------------------------------------------------------------------- reducers and LoRA
def _card(reducers: Sequence[object]) -> list[dict[str, Any]]:
    """The reduction card to save; an unregistered reducer type is named, with a warning, and not rebuilt."""
    card: list[dict[str, Any]] = []
    for reducer in reducers:
        if entry_for(reducer) is None:
            name = f"{type(reducer).__module__}.{type(reducer).__qualname__}"
            logger.warning("save_model: %s is not a registered reducer: load the checkpoint with reduction=[...]", name)
            card.append({"unregistered": name})
        else:
            card.extend(reduction_card([reducer]))
    return card


def _saved_reduction(ckpt: Checkpoint, where: str) -> list[object] | None:
    """The reducers a vidslim checkpoint's card describes (None when there is no card vidslim can build)."""
    card = ckpt.meta.get("reduction") or []
    if ckpt.source != "vidslim" or not card:
        return None
    if any(not isinstance(e, dict) or "unregistered" in e for e in card):  # an older file (names only) or own types
        logger.warning("%s was saved with reducers vidslim cannot rebuild (%s); pass the same reduction=[...]", where,
                       card)
        return None
    try:
        return build_reduction(card, where=f"{where}/{CONFIG_NAME} reduction")
    except ConfigError as error:
        raise CheckpointError(f"{error}; pass reduction=[...] to load it with other reducers") from error


def _lora_meta(model: ReducibleModel) -> dict[str, Any] | None:
    """{"rank", "scale"} of the model's LoRA adapters (None without adapters)."""
    from vidslim.models.lora import attention_layers

    for _, attn in attention_layers(model):
        lora = getattr(attn, "lora", None)
        if lora is not None:
            return {"rank": int(lora.rank), "scale": float(lora.scale)}
    return None


def _restore_lora(model: ReducibleModel, state: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Put LoRA adapters on the model when the checkpoint holds some (their rank read from the tensors).

    The model comes back as `add_lora` leaves one: the adapters (and the reducers' parameters) trainable, the
    rest frozen, ready to go on fine-tuning; set requires_grad yourself for full fine-tuning."""
    from vidslim.models.lora import add_lora, lora_rank

    rank = lora_rank(state)
    if rank is None:
        return
    scale = float((meta.get("lora") or {}).get("scale", 1.0))
    add_lora(model, rank, alpha=None if scale == 1.0 else scale * rank, freeze=True)


# ---------------------------------------------------------------------------------------------- public
def load_model(
    path: str | Path | Any,
    reduction: Sequence[object] | object | None = None,
    *,
    num_classes: int | None = None,
    num_frames: int | None = None,
    image_size: int | None = None,
    tokenizer: Any = None,
    device: torch.device | str | None = None,
    **overrides: Any,
) -> ReducibleModel:
    """Load a model from a local checkpoint or a hub id in the local cache (see the module docstring), in eval mode.

    path: a file or folder, "org/name" (found in the local Hugging Face cache, `vidslim.models.hub_cache`), or a
        `transformers` model object (then the same as `from_transformers`).
    reduction: reducer objects whose hooks run inside the model. None: the reducers a vidslim checkpoint was
        saved with (its reduction card), else the dense model; [] the dense model.
    num_classes: replace the classifier head with a new, randomly initialised one of this size (0: no head).
    num_frames / image_size: run on another input size (position tables are resized or rebuilt, with a warning).
    tokenizer: CLIP and SigLIP: a tokenizer object or a folder with the vocabulary (CLIP's BPE files; SigLIP's
        spiece.model or SigLIP 2's tokenizer.json); by default the checkpoint's folder is tried; False attaches none.
    overrides: other config fields (e.g. drop_path=0.1).
    """
    if isinstance(path, torch.nn.Module):
        from vidslim.models.transformers_io import checkpoint_of

        ckpt, where = checkpoint_of(path), type(path).__name__
    else:
        ckpt, where = read_checkpoint(path), str(path)
    return model_from_checkpoint(ckpt, where, reduction, num_classes=num_classes, num_frames=num_frames,
                                 image_size=image_size, tokenizer=tokenizer, device=device, **overrides)


def model_from_checkpoint(
    ckpt: Checkpoint,
    where: str,
    reduction: Sequence[object] | object | None = None,
    *,
    num_classes: int | None = None,
    num_frames: int | None = None,
    image_size: int | None = None,
    tokenizer: Any = None,
    device: torch.device | str | None = None,
    **overrides: Any,
) -> ReducibleModel:
    """Build the model a `Checkpoint` describes and load its weights (the arguments as for `load_model`)."""
    state = dict(ckpt.state)
    old = ckpt.config
    if num_classes is not None and num_classes != old.num_classes and "class_names" not in overrides:
        overrides["class_names"] = None  # a new head: the old names no longer apply
    config = _apply_overrides(
        old, {"num_frames": num_frames, "image_size": image_size, "num_classes": num_classes, **overrides}, where
    )
    check_config(config, where)  # before position tables are resized or a model is built
    may_miss: set[str] = set()
    if num_classes is not None and num_classes != old.num_classes:
        dropped = [k for k in state if k.startswith("head.")]
        for k in dropped:
            del state[k]
        may_miss = {"head.weight", "head.bias"}
        if num_classes > 0:
            logger.warning(
                "%s: new classifier head with %d outputs, randomly initialised: fine-tune it", where, num_classes
            )
    _resize_positions(old, config, state, where)
    backbone = {k: v for k, v in state.items() if not k.startswith(_REDUCERS)}
    with SkipRandomInit():  # the checkpoint overwrites the weights: drawing them first is wasted time
        model = build_model(config)
    _restore_lora(model, state, ckpt.meta)
    if not set(model.state_dict()) <= set(backbone):  # a new head, or weights the file lacks: init them for real
        model = build_model(config)
        _restore_lora(model, state, ckpt.meta)
    _check_fit(model, backbone, where, may_miss, source=ckpt)
    model.load_state_dict(backbone, strict=False)
    _attach_tokenizer(model, tokenizer, ckpt.folder)
    asked_dense = isinstance(reduction, (list, tuple)) and not reduction
    if reduction is None:
        reduction = _saved_reduction(ckpt, where)
    model.set_reduction(reduction)
    reducer_state = {k: v for k, v in state.items() if k.startswith(_REDUCERS)}
    if reducer_state and asked_dense:
        logger.warning("%s: reduction=[] asked for the dense model; the saved reducer parameters (%s ...) are not used",
                       where, ", ".join(sorted(reducer_state)[:3]))
        reducer_state = {}
    if reducer_state:
        if not model.reduction_modules:
            raise CheckpointError(
                f"{where} holds parameters of reducers ({', '.join(sorted(reducer_state)[:3])} ...): pass the same "
                "reduction=[...] the model was saved with"
            )
        _check_fit(model, reducer_state, where, set(), prefix=_REDUCERS)
        model.load_state_dict({**model.state_dict(), **reducer_state})
    if device is not None:
        model.to(device)
    return model.eval()


def save_model(model: ReducibleModel, directory: str | Path, format: str = "vidslim") -> Path:
    """Write `model` as a vidslim checkpoint folder: model.safetensors + vidslim.json (config). Returns the folder.

    format="transformers" writes instead the folder `transformers`' `from_pretrained` loads (config.json with
    id2label from the class names, model.safetensors, preprocessor_config.json with the mean and std): the dense
    model, LoRA merged and reducers left out (`vidslim.models.transformers_io`).

    vidslim.json also holds the reduction card and the LoRA settings, so `load_model(folder)` rebuilds the same
    model; parameters of reducers that are nn.Modules and LoRA adapters are saved with the weights. A reducer
    type that is not registered (`vidslim.reduce.registry.register_reducer`) is named but cannot be rebuilt:
    load such a checkpoint with the same `reduction=`. The vocabulary files of an attached CLIP or SigLIP tokenizer are
    copied beside the weights.
    """
    if not isinstance(model, ReducibleModel) or not model.family:
        raise ConfigError(
            f"save_model takes a vidslim model (from create_model or load_model), got {type(model).__name__}"
        )
    if format not in ("vidslim", "transformers"):
        raise ConfigError(f"save_model: format={format!r}; use 'vidslim' (the whole model, reducers included) or "
                          "'transformers' (the dense model, for transformers' from_pretrained)")
    folder = Path(directory).expanduser()
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"{folder}: exists and is not a folder; pass a folder path to save_model")
    folder.mkdir(parents=True, exist_ok=True)
    if format == "transformers":
        from vidslim.models.transformers_io import save_transformers

        save_transformers(model, folder)
        _copy_tokenizer_files(getattr(model, "tokenizer", None), folder)
        return folder
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
    meta = {
        "format": "vidslim",
        "format_version": 1,
        "vidslim_version": __version__,
        "family": model.family,
        "config": dataclasses.asdict(model.config),
        "reduction": _card(model.reduction),
    }
    lora = _lora_meta(model)
    if lora is not None:
        meta["lora"] = lora
    (folder / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    _copy_tokenizer_files(getattr(model, "tokenizer", None), folder)
    return folder


def _copy_tokenizer_files(tokenizer: Any, folder: Path) -> None:
    """Copy the vocabulary files an attached tokenizer was read from, so `load_model` finds them again."""
    source = getattr(tokenizer, "source", None)
    if not source:
        return
    from vidslim.models.clip_tokenizer import MERGES_TXT, OPENAI_BPE, TOKENIZER_JSON, VOCAB_JSON
    from vidslim.models.siglip_tokenizer import FILES as SIGLIP_FILES

    origin = Path(source)
    origin = origin if origin.is_dir() else origin.parent
    if origin.resolve() == folder.resolve():
        return
    for name in dict.fromkeys((TOKENIZER_JSON, VOCAB_JSON, MERGES_TXT, *OPENAI_BPE, *SIGLIP_FILES)):
        if (origin / name).is_file():
            shutil.copyfile(origin / name, folder / name)


__all__ = ["Checkpoint", "load_model", "model_from_checkpoint", "read_checkpoint", "save_model"]
