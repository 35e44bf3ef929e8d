"""open_clip checkpoints (a folder with open_clip_config.json + open_clip_model.safetensors or
open_clip_pytorch_model.bin, as open_clip models are published), read without importing open_clip.

open_clip's ViT CLIP keeps OpenAI's parameter names, so the weights load into vidslim's CLIP as they are (a stored
causal `attn_mask` buffer is dropped). The config comes from `model_cfg` (embed_dim, vision_cfg, text_cfg,
quick_gelu) and the mean/std from `preprocess_cfg`. Only the architecture that coincides with OpenAI's CLIP is
read: a ViT tower (`head_width` 64-style heads, CLS pooling), a causal text tower pooled at argmax(ids), pre-LN
blocks with no layer scale. timm or Hugging Face towers, CoCa, attentional or average pooling, layer scale, a patch
LayerNorm, another activation or eps and the other open_clip options are refused naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from vidslim.errors import CheckpointError
from vidslim.io.transforms import CLIP_MEAN, CLIP_STD
from vidslim.models.clip import ClipConfig
from vidslim.models.convert_hf import _float, _int, _section
from vidslim.models.guards import check_config, read_json_object

CONFIG_NAME = "open_clip_config.json"
WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")

#: option -> the value that keeps the architecture OpenAI's (anything else is refused)
#: (older open_clip names: `global_average_pool` for pool_type="avg", `input_patchnorm` for a LayerNorm on the
#: patch pixels; `act_kwargs` / `norm_kwargs` change the activation or the LayerNorm eps)
_VISION_PLAIN = {"ls_init_value": None, "attentional_pool": False, "no_ln_pre": False, "final_ln_after_pool": False,
                 "pool_type": "tok", "timm_model_name": None, "pos_embed_type": "learnable", "patch_dropout": 0.0,
                 "global_average_pool": False, "input_patchnorm": False, "act_kwargs": None, "norm_kwargs": None}
_TEXT_PLAIN = {"ls_init_value": None, "embed_cls": False, "no_causal_mask": False, "final_ln_after_pool": False,
               "pool_type": "argmax", "proj_bias": False, "hf_model_name": None, "proj_type": "linear",
               "act_kwargs": None, "norm_kwargs": None}


def _plain(section: dict[str, Any], plain: dict[str, Any], name: str, where: str) -> None:
    for key, value in plain.items():
        unset = not section.get(key) and key in ("patch_dropout", "act_kwargs", "norm_kwargs")  # 0, {}, None
        if key in section and section[key] != value and not unset:
            raise CheckpointError(f"{where}: {name}.{key}={section[key]!r}: vidslim reads open_clip models whose "
                                  f"architecture is OpenAI's CLIP ({key}={value!r}); convert this one yourself")


def open_clip_config(meta: dict[str, Any], where: str) -> ClipConfig:
    """ClipConfig from an open_clip_config.json object."""
    model = _section(meta, "model_cfg", where)
    vision = _section(model, "vision_cfg", where)
    text = _section(model, "text_cfg", where)
    if model.get("multimodal_cfg"):
        raise CheckpointError(f"{where}: model_cfg.multimodal_cfg: a CoCa model (a text decoder over the image "
                              "tokens); vidslim reads open_clip's ViT CLIP")
    if "init_logit_bias" in model or model.get("custom_text"):
        raise CheckpointError(f"{where}: a SigLIP-style or custom-text open_clip model; vidslim reads open_clip's "
                              "ViT CLIP (for SigLIP pass the Hugging Face folder)")
    if isinstance(vision.get("layers", 12), (list, tuple)):
        raise CheckpointError(f"{where}: model_cfg.vision_cfg.layers={vision['layers']}: a ResNet tower; vidslim "
                              "reads ViT towers")
    _plain(vision, _VISION_PLAIN, "model_cfg.vision_cfg", where)
    _plain(text, _TEXT_PLAIN, "model_cfg.text_cfg", where)
    v_width = _int(vision.get("width", 768), "model_cfg.vision_cfg.width", where)
    t_width = _int(text.get("width", 512), "model_cfg.text_cfg.width", where)
    head_width = _int(vision.get("head_width", 64), "model_cfg.vision_cfg.head_width", where)
    size = vision.get("image_size", 224)
    if isinstance(size, (list, tuple)):
        if len(size) != 2 or size[0] != size[1]:
            raise CheckpointError(f"{where}: non-square model_cfg.vision_cfg.image_size {size} is not supported")
        size = size[0]
    preprocess = _section(meta, "preprocess_cfg", where)
    config = ClipConfig(
        embed_dim=_int(model.get("embed_dim", 512), "model_cfg.embed_dim", where),
        image_size=_int(size, "model_cfg.vision_cfg.image_size", where),
        patch_size=_int(vision.get("patch_size", 16), "model_cfg.vision_cfg.patch_size", where),
        vision_width=v_width,
        vision_layers=_int(vision.get("layers", 12), "model_cfg.vision_cfg.layers", where),
        vision_heads=max(v_width // head_width, 1),
        vision_mlp_dim=int(v_width * _float(vision.get("mlp_ratio", 4.0), "model_cfg.vision_cfg.mlp_ratio", where)),
        context_length=_int(text.get("context_length", 77), "model_cfg.text_cfg.context_length", where),
        vocab_size=_int(text.get("vocab_size", 49408), "model_cfg.text_cfg.vocab_size", where),
        text_width=t_width,
        text_heads=_int(text.get("heads", 8), "model_cfg.text_cfg.heads", where),
        text_layers=_int(text.get("layers", 12), "model_cfg.text_cfg.layers", where),
        text_mlp_dim=int(t_width * _float(text.get("mlp_ratio", 4.0), "model_cfg.text_cfg.mlp_ratio", where)),
        act="quick_gelu" if model.get("quick_gelu") else "gelu",
        eot_token_id=None,  # open_clip pools at argmax(ids), OpenAI's rule
        image_mean=tuple(float(x) for x in preprocess.get("mean", CLIP_MEAN)),
        image_std=tuple(float(x) for x in preprocess.get("std", CLIP_STD)),
    )
    check_config(config, where)
    return config


def open_clip_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """open_clip's ViT CLIP tensors in vidslim names: OpenAI's, less the causal mask buffer."""
    return {k: v for k, v in state.items() if k != "attn_mask" and not k.endswith(".attn_mask")}


def read_open_clip_config(folder: Path) -> ClipConfig:
    where = str(folder / CONFIG_NAME)
    return open_clip_config(read_json_object(folder / CONFIG_NAME), where)


def open_clip_weights(folder: Path) -> Path:
    """The weights file of an open_clip folder (safetensors first)."""
    for name in WEIGHT_NAMES:
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(f"{folder}: {CONFIG_NAME} but neither {' nor '.join(WEIGHT_NAMES)} beside it")


__all__ = ["CONFIG_NAME", "WEIGHT_NAMES", "open_clip_config", "open_clip_state", "open_clip_weights",
           "read_open_clip_config"]
