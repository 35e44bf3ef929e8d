"""In and out of Hugging Face `transformers` in memory, through the same `hf_formats` row a folder goes through.

    model = vs.from_transformers(hf_model, reduction=[vs.TempMe.paper("clip-b16")])  # a model the user has
    hf = vs.to_transformers(model)                    # back: LoRA merged, reducers off, same outputs
    vs.save_model(model, "out", format="transformers")   # a folder `from_pretrained` loads

Going in, `hf_model.config.to_dict()` is read as config.json and `hf_model.state_dict()` as the weights, and the
model's class name picks the row (`hf_formats.hf_format_for`), so any family with a row comes in with no code
here. Going out, the row of the model's family (`hf_formats.hf_format_of`), chosen by its `model_type` and by
whether the model has a classifier head, names the converters and the `transformers` class. Loading into that class
is strict, except for the tensors under the row's `absent_prefixes`, which vidslim never had: V-JEPA 2's
pretraining predictor is left as transformers initialises it (random; encoding and classifying never use it).
`transformers` is imported only by `to_transformers`; nothing is downloaded either way.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vidslim.errors import CheckpointError, ConfigError
from vidslim.models.base import ReducibleModel
from vidslim.models.checkpoint_read import Checkpoint, checkpoint_from_hf
from vidslim.models.hf_formats import HfFormat, hf_format_of, supported

_REDUCERS = "reduction_modules."


def checkpoint_of(hf_model: nn.Module) -> Checkpoint:
    """A `Checkpoint` of an in-memory `transformers` model (its config dict and state dict, by its class name)."""
    name = type(hf_model).__name__
    config = getattr(hf_model, "config", None)
    if not callable(getattr(config, "to_dict", None)):
        raise ConfigError(f"{name} is not a transformers model (no .config.to_dict()); vidslim takes transformers "
                          f"models of {supported()}")
    # the class, not config.architectures, says what the object is: a fresh model has none, and
    # VJEPA2Model.from_pretrained of a classifier folder keeps the folder's classifier name
    cfg = {**config.to_dict(), "architectures": [name]}
    return checkpoint_from_hf(cfg, hf_model.state_dict, name, None, architecture=name)


def _input_stats(processor: Any) -> dict[str, Any]:
    """image_mean / image_std of a transformers processor or image processor (or {} when it has none)."""
    if processor is None:
        return {}
    inner = getattr(processor, "image_processor", None) or getattr(processor, "video_processor", None) or processor
    out = {}
    for key in ("image_mean", "image_std"):
        value = getattr(inner, key, None)
        if value is not None:
            out[key] = tuple(float(v) for v in (value if isinstance(value, (list, tuple)) else [value] * 3))
    return out


def from_transformers(
    hf_model: nn.Module,
    reduction: Sequence[object] | object | None = None,
    *,
    processor: Any = None,
    **options: Any,
) -> ReducibleModel:
    """The vidslim model of an in-memory `transformers` model, with `reduction` attached, in eval mode.

    Weights are copied: the vidslim model owns its parameters (fused q/k/v and the like are rebuilt), so training
    one leaves the other as it was. It is put on the device and dtype of `hf_model`'s first parameter.
    processor: the model's processor or image processor, whose mean and std the input spec takes (without one,
    the family's defaults, as for a folder with no preprocessor_config.json). options: as for `load_model`
    (num_frames=, image_size=, num_classes=, tokenizer=, config fields).
    """
    from vidslim.models.loading import model_from_checkpoint

    ckpt = checkpoint_of(hf_model)
    options = {**_input_stats(processor), **options}
    model = model_from_checkpoint(ckpt, type(hf_model).__name__, reduction, **options)
    first = next(hf_model.parameters(), None)
    if first is not None and "device" not in options:
        model.to(device=first.device, dtype=first.dtype if first.is_floating_point() else None)
    return model


def dense_state(model: ReducibleModel) -> dict[str, Tensor]:
    """The model's backbone tensors with LoRA adapters merged into their projections and no reducer parameters:
    the dense model `to_transformers` writes (the model itself is left unchanged)."""
    from vidslim.models.lora import attention_layers

    names = {id(p): k for k, p in model.named_parameters()}
    state = {k: v.detach() for k, v in model.state_dict().items()
             if not k.startswith(_REDUCERS) and ".lora." not in k}
    with torch.no_grad():
        for _, attn in attention_layers(model):
            if attn.lora is None:
                continue
            weight, _ = attn.qkv_weight_bias()
            key = names[id(weight)]
            state[key] = weight + attn.lora.delta_weight().to(weight.dtype)
    return {k: v.to("cpu").contiguous() for k, v in state.items()}


def _row(model: ReducibleModel) -> HfFormat:
    if not isinstance(model, ReducibleModel) or not model.family:
        raise ConfigError(f"to_transformers takes a vidslim model, got {type(model).__name__}")
    classes = getattr(model.config, "num_classes", None)
    has_head = None if classes is None else classes > 0
    row = hf_format_of(model.family, getattr(model.config, "hf_model_type", None), has_head)
    if row is None:
        raise ConfigError(f"vidslim cannot write a {model.family} model as a transformers model (no class for it); "
                          "save it with save_model(model, DIR)")
    return row


def hf_config_dict(model: ReducibleModel) -> dict[str, Any]:
    """The config.json dict `to_transformers` builds its model from."""
    return dict(_row(model).converter("config_to_hf")(model.config))


def to_transformers(model: ReducibleModel) -> nn.Module:
    """The `transformers` model equal to `model`'s dense form (LoRA merged, reducers off), in eval mode, on CPU
    in float32 as vidslim stores it. Its weights are copies. Tensors the class has and vidslim never had (the
    row's `absent_prefixes`: V-JEPA 2's predictor) keep the class's fresh initialisation; all others load
    strictly."""
    row = _row(model)
    try:
        import transformers
    except ImportError as error:
        raise ConfigError(f"to_transformers needs the transformers package ({error}): pip install transformers") \
            from error
    hf_cls = getattr(transformers, row.transformers_class)
    cfg = hf_config_dict(model)
    with _without_default_token_warnings():
        hf = hf_cls(hf_cls.config_class.from_dict(cfg))
    state = row.converter("state_to_hf")(dense_state(model))
    wanted = hf.state_dict()
    missing = sorted(k for k in set(wanted) - set(state) if not k.startswith(row.absent_prefixes))
    unexpected = sorted(set(state) - set(wanted))
    shapes = sorted(k for k in set(wanted) & set(state) if wanted[k].shape != state[k].shape)
    if missing or unexpected or shapes:
        raise CheckpointError(f"to_transformers: the {row.transformers_class} built from {model.family}'s config does "
                              f"not take its tensors (missing {missing[:5]}, unexpected {unexpected[:5]}, other "
                              f"shape {shapes[:5]}); this is a vidslim bug, please report it")
    hf.load_state_dict(state, strict=not row.absent_prefixes)  # the check above already made it strict elsewhere
    return hf.eval()


class _DefaultTokenIds(logging.Filter):
    """Drops transformers' complaint that a config's special token id lies outside its vocabulary."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "must be `None` or an integer within the vocabulary" not in record.getMessage()


@contextlib.contextmanager
def _without_default_token_warnings() -> Iterator[None]:
    """While a config is built or saved: transformers builds the class's default config to print or diff against,
    and SiglipTextConfig's defaults (CLIP's ids 49406/49407 over a vocabulary of 32000) fail its own check. The
    ids vidslim writes lie inside the vocabulary (`convert_siglip`), so only the defaults' warning is dropped."""
    target = logging.getLogger("transformers.configuration_utils")
    quiet = _DefaultTokenIds()
    target.addFilter(quiet)
    try:
        yield
    finally:
        target.removeFilter(quiet)


def save_transformers(model: ReducibleModel, folder: Path) -> Path:
    """Write `to_transformers(model)` with `save_pretrained`, plus a preprocessor_config.json with the input
    spec's mean, std and frame size, so `transformers` and `vs.load_model` both read the folder back."""
    hf = to_transformers(model)
    with _without_default_token_warnings():
        hf.save_pretrained(str(folder))
    spec = model.input_spec
    processor = {"image_mean": list(spec.mean), "image_std": list(spec.std), "do_normalize": True,
                 "do_resize": True, "size": {"height": spec.image_size, "width": spec.image_size},
                 "do_center_crop": False, "do_rescale": True, "rescale_factor": 1 / 255}
    (folder / "preprocessor_config.json").write_text(json.dumps(processor, indent=2) + "\n")
    return folder


__all__ = ["checkpoint_of", "dense_state", "from_transformers", "hf_config_dict", "save_transformers",
           "to_transformers"]
