"""Which Hugging Face architectures vidslim reads, and with which converters: one row per `model_type`.

A new family adds a row here (its converters live in its own `convert_*.py`); `checkpoint_read` finds the row
for a folder's config.json, so nothing else changes. Converters are named "module:function" and imported only
when a folder of that type is read.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class HfFormat:
    """How one Hugging Face `model_type` maps to a vidslim family.

    architectures: the `architectures` class names accepted (a folder with none listed is accepted too).
    config_from_hf / state_from_hf: "module:function" turning config.json (dict, where) into the family's config
        and the transformers state dict into vidslim names.
    source: the name `Checkpoint.source` reports ("hf-clip", ...).
    config_to_hf / state_to_hf: the way back ("module:function", "" while there is none): the family's config to a
        config.json dict, vidslim names to the transformers state dict.
    transformers_class: the `transformers` class that loads what `*_to_hf` write ("CLIPModel", ...).
    head: which models of the family this row writes back: True only those with a classifier head (the config's
        num_classes > 0), False only those without, None either (so a family may have one row per class).
    absent_prefixes: name prefixes of `transformers_class` tensors that vidslim never has (V-JEPA 2's pretraining
        predictor): writing back leaves them as that class initialises them; every other tensor must match.

    An in-memory `transformers` model goes through the same row: `model.config.to_dict()` is the config.json dict
    and `model.state_dict()` the weights.
    """

    model_type: str
    architectures: tuple[str, ...]
    family: str
    config_from_hf: str
    state_from_hf: str
    source: str
    config_to_hf: str = ""
    state_to_hf: str = ""
    transformers_class: str = ""
    head: bool | None = None
    absent_prefixes: tuple[str, ...] = ()

    def converter(self, which: str) -> Callable[..., Any]:
        """The function named by field `which` ("config_from_hf", "state_from_hf", ...)."""
        module, _, name = getattr(self, which).partition(":")
        return getattr(importlib.import_module(module), name)

    def accepts(self, architectures: list[str]) -> bool:
        return not architectures or any(a in self.architectures for a in architectures)


_HF = "vidslim.models.convert_hf"
_OUT = "vidslim.models.convert_hf_out"
_SIG = "vidslim.models.convert_siglip"
_VJ = "vidslim.models.convert_vjepa2"
_VV = "vidslim.models.convert_vivit"
_XC = "vidslim.models.convert_xclip"

HF_FORMATS: tuple[HfFormat, ...] = (
    HfFormat("clip", ("CLIPModel",), "clip", f"{_HF}:clip_config_from_hf", f"{_HF}:clip_state_dict_from_hf",
             "hf-clip", f"{_OUT}:clip_config_to_hf", f"{_OUT}:clip_state_dict_to_hf", "CLIPModel"),
    HfFormat("videomae", ("VideoMAEForVideoClassification",), "video_vit", f"{_HF}:videomae_config_from_hf",
             f"{_HF}:videomae_state_dict_from_hf", "hf-videomae", f"{_OUT}:videomae_config_to_hf",
             f"{_OUT}:videomae_state_dict_to_hf", "VideoMAEForVideoClassification"),
    HfFormat("siglip", ("SiglipModel",), "siglip", f"{_SIG}:siglip_config_from_hf", f"{_SIG}:siglip_state_dict_from_hf",
             "hf-siglip", f"{_SIG}:siglip_config_to_hf", f"{_SIG}:siglip_state_dict_to_hf", "SiglipModel"),
    HfFormat("siglip2", ("Siglip2Model",), "siglip", f"{_SIG}:siglip_config_from_hf",
             f"{_SIG}:siglip_state_dict_from_hf", "hf-siglip2", f"{_SIG}:siglip_config_to_hf",
             f"{_SIG}:siglip2_state_dict_to_hf", "Siglip2Model"),
    HfFormat("vjepa2", ("VJEPA2Model",), "vjepa2", f"{_VJ}:vjepa2_config_from_hf", f"{_VJ}:vjepa2_state_dict_from_hf",
             "hf-vjepa2", f"{_VJ}:vjepa2_config_to_hf", f"{_VJ}:vjepa2_state_dict_to_hf", "VJEPA2Model",
             head=False, absent_prefixes=("predictor.",)),
    HfFormat("vjepa2", ("VJEPA2ForVideoClassification",), "vjepa2", f"{_VJ}:vjepa2_config_from_hf",
             f"{_VJ}:vjepa2_state_dict_from_hf", "hf-vjepa2", f"{_VJ}:vjepa2_config_to_hf",
             f"{_VJ}:vjepa2_state_dict_to_hf", "VJEPA2ForVideoClassification", head=True,
             absent_prefixes=("vjepa2.predictor.",)),
    HfFormat("vivit", ("VivitForVideoClassification",), "vivit", f"{_VV}:vivit_config_from_hf",
             f"{_VV}:vivit_state_dict_from_hf", "hf-vivit", f"{_VV}:vivit_config_to_hf",
             f"{_VV}:vivit_state_dict_to_hf", "VivitForVideoClassification", head=True),
    HfFormat("vivit", ("VivitModel",), "vivit", f"{_VV}:vivit_config_from_hf", f"{_VV}:vivit_state_dict_from_hf",
             "hf-vivit", f"{_VV}:vivit_config_to_hf", f"{_VV}:vivit_state_dict_to_hf", "VivitModel", head=False,
             absent_prefixes=("pooler.",)),  # a ViViT built without the base model's pooler gets a fresh one
    HfFormat("xclip", ("XCLIPModel",), "xclip", f"{_XC}:xclip_config_from_hf", f"{_XC}:xclip_state_dict_from_hf",
             "hf-xclip", f"{_XC}:xclip_config_to_hf", f"{_XC}:xclip_state_dict_to_hf", "XCLIPModel"),
)


def hf_format_for(model_type: Any, architectures: list[str]) -> HfFormat | None:
    """The row that reads a config.json of this `model_type` and `architectures`, or None."""
    return next((f for f in HF_FORMATS if f.model_type == model_type and f.accepts(architectures)), None)


def hf_format_of(family: str, model_type: str | None = None, has_head: bool | None = None) -> HfFormat | None:
    """The row that writes a vidslim `family` back to transformers (`model_type`, and whether the model has a
    classifier head, pick one when several rows of the family can), or None when there is none."""
    rows = [f for f in HF_FORMATS if f.family == family and f.transformers_class
            and (has_head is None or f.head is None or f.head == has_head)]
    if model_type is not None:
        rows = [f for f in rows if f.model_type == model_type] or rows
    return rows[0] if rows else None


def supported() -> str:
    """'CLIPModel, VideoMAEForVideoClassification' for error messages."""
    return ", ".join(a for f in HF_FORMATS for a in f.architectures)


__all__ = ["HF_FORMATS", "HfFormat", "hf_format_for", "hf_format_of", "supported"]
