"""Hugging Face `SiglipModel` / `Siglip2Model` <-> vidslim's SigLIP (both ways), for `hf_formats`.

Names follow vidslim's CLIP where the parts are the same (`visual.transformer.resblocks.{i}.attn.in_proj_weight`,
`ln_1`, `mlp.c_fc`, ...): q/k/v projections are fused into `in_proj_weight/bias`. The MAP head keeps
nn.MultiheadAttention's fused names; its probe [1, 1, W] is stored as [W]. SigLIP 2's Linear patch embedding over
(row, column, channel)-ordered patch pixels is stored as the equal Conv2d weight [W, C, p, p].

SigLIP 2 (NaFlex) resizes its position table to each image's patch grid; vidslim runs it at the table's own square
grid (num_patches = g·g, image_size = g·patch_size), where that resize is the identity. A table that is not square
is refused.
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from vidslim.errors import CheckpointError
from vidslim.models.convert_hf import (
    CLIP_BLOCK_NAMES,
    CLIP_TEXT_NAMES,
    _float,
    _int,
    _section,
    _square,
    clip_layout_from_hf,
)
from vidslim.models.convert_hf_out import clip_layout_to_hf
from vidslim.models.convert_rules import Rule, rules
from vidslim.models.guards import check_config
from vidslim.models.siglip import SiglipConfig

_TEXT = dict(vocab_size=32000, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
             max_position_embeddings=64, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6)
_VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, num_channels=3,
               image_size=224, patch_size=16, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6,
               vision_use_head=True, num_patches=256)
_ACTS = {"gelu_pytorch_tanh": "gelu_tanh", "gelu_new": "gelu_tanh", "gelu": "gelu", "quick_gelu": "quick_gelu"}
_FIELDS = {"image_size": "vision_config.image_size", "patch_size": "vision_config.patch_size",
           "vision_width": "vision_config.hidden_size", "vision_layers": "vision_config.num_hidden_layers",
           "vision_heads": "vision_config.num_attention_heads", "vision_mlp_dim": "vision_config.intermediate_size",
           "context_length": "text_config.max_position_embeddings", "vocab_size": "text_config.vocab_size",
           "text_width": "text_config.hidden_size", "text_heads": "text_config.num_attention_heads",
           "text_layers": "text_config.num_hidden_layers", "text_mlp_dim": "text_config.intermediate_size",
           "embed_dim": "text_config.projection_size", "in_chans": "vision_config.num_channels"}


def siglip_config_from_hf(cfg: dict[str, Any], where: str = "config.json") -> SiglipConfig:
    """SiglipConfig from a SiglipModel or Siglip2Model config.json dict (sizes checked)."""
    siglip2 = cfg.get("model_type") == "siglip2"
    text = {**_TEXT, **_section(cfg, "text_config", where)}
    vision = {**_VISION, **_section(cfg, "vision_config", where)}
    if not vision["vision_use_head"]:
        raise CheckpointError(f"{where}: vision_use_head=false: vidslim's SigLIP pools with the attention head")
    acts = {text["hidden_act"], vision["hidden_act"]}
    if len(acts) != 1 or text["layer_norm_eps"] != vision["layer_norm_eps"] or next(iter(acts)) not in _ACTS:
        raise CheckpointError(f"{where}: towers with activations {sorted(acts)} and LayerNorm eps "
                              f"{text['layer_norm_eps']}/{vision['layer_norm_eps']}: vidslim needs one of "
                              f"{sorted(_ACTS)} and the same eps in both")
    patch = _square(vision["patch_size"], "vision_config.patch_size", where)
    if siglip2:
        patches = _int(vision["num_patches"], "vision_config.num_patches", where)
        side = math.isqrt(patches)
        if side * side != patches:
            raise CheckpointError(f"{where}: vision_config.num_patches={patches} is not a square grid; vidslim runs "
                                  "SigLIP 2 (NaFlex) at its position table's square grid only")
        image_size = side * patch
    else:
        image_size = _square(vision["image_size"], "vision_config.image_size", where)

    def size(field: str) -> int:
        section, key = _FIELDS[field].split(".")
        return _int((text if section == "text_config" else vision)[key], _FIELDS[field], where)

    width = size("text_width")
    config = SiglipConfig(
        embed_dim=_int(text.get("projection_size", width), "text_config.projection_size", where),
        image_size=image_size, patch_size=patch, vision_width=size("vision_width"),
        vision_layers=size("vision_layers"), vision_heads=size("vision_heads"), vision_mlp_dim=size("vision_mlp_dim"),
        context_length=size("context_length"), vocab_size=size("vocab_size"), text_width=width,
        text_heads=size("text_heads"), text_layers=size("text_layers"), text_mlp_dim=size("text_mlp_dim"),
        norm_eps=_float(vision["layer_norm_eps"], "vision_config.layer_norm_eps", where),
        act=_ACTS[vision["hidden_act"]], in_chans=size("in_chans"),
        hf_model_type="siglip2" if siglip2 else "siglip")
    check_config(config, where, _FIELDS)
    if config.embed_dim != config.vision_width:
        raise CheckpointError(f"{where}: text_config.projection_size={config.embed_dim} differs from "
                              f"vision_config.hidden_size={config.vision_width}; SigLIP compares them directly")
    return config


#: transformers <-> vidslim name pieces SigLIP adds to CLIP's text tower, and of its image tower
_NAMES = [
    *CLIP_TEXT_NAMES,
    ("^text_model.head.", "^text_head."),
    ("^vision_model.embeddings.patch_embedding.", "^visual.conv1."),
    ("^vision_model.embeddings.position_embedding.weight$", "^visual.positional_embedding$"),
    ("^vision_model.encoder.layers.", "^visual.transformer.resblocks."),
    ("^vision_model.post_layernorm.", "^visual.ln_post."),
]
#: the MAP head: nn.MultiheadAttention's names under `attention` there, right under `head` here
_HEAD_IN: list[Rule] = [
    (r"^vision_model\.head\.attention\.", "visual.head."),
    (r"^vision_model\.head\.layernorm\.", "visual.head.ln."),
    (r"^vision_model\.head\.", "visual.head."),
]
_IN = rules(_NAMES) + _HEAD_IN + rules(CLIP_BLOCK_NAMES)


def _tensor_from_hf(name: str, value: Tensor) -> Tensor:
    """The probe flattened; SigLIP 2's Linear patch embedding over (row, col, channel) as the Conv2d it equals."""
    if name == "visual.head.probe":
        return value.reshape(-1)
    if name == "visual.conv1.weight" and value.dim() == 2:
        channels = 3 if value.shape[1] % 3 == 0 else 1  # RGB, as every published SigLIP 2
        p = math.isqrt(value.shape[1] // channels)
        return value.reshape(value.shape[0], p, p, channels).permute(0, 3, 1, 2).contiguous()
    return value


def siglip_state_dict_from_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """SiglipModel / Siglip2Model names -> vidslim SigLIP names (q/k/v fused, probe flattened, a Linear patch
    embedding reshaped to the Conv2d it equals)."""
    return clip_layout_from_hf(state, _IN, reshape=_tensor_from_hf)


#: the special token ids of each family's vocabulary (SigLIP's sentencepiece: </s> = 1 ends and pads; SigLIP 2's
#: Gemma: <pad> 0, <eos> 1, <bos> 2), written into text_config so transformers does not fill in CLIP's 49406/49407
_SPECIAL_IDS: dict[str, dict[str, int | None]] = {
    "siglip": {"pad_token_id": 1, "bos_token_id": None, "eos_token_id": 1},
    "siglip2": {"pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 1},
}


def siglip_config_to_hf(c: SiglipConfig) -> dict[str, Any]:
    """A SiglipModel (or, for hf_model_type="siglip2", Siglip2Model) config.json dict for `c`."""
    if c.num_classes:
        raise CheckpointError(f"this SigLIP has a {c.num_classes}-class head, which transformers' SiglipModel cannot "
                              "hold: save it with save_model(model, DIR) (vidslim's format)")
    act = {"gelu_tanh": "gelu_pytorch_tanh"}.get(c.act, c.act)
    text = dict(vocab_size=c.vocab_size, hidden_size=c.text_width, intermediate_size=c.text_mlp_dim,
                num_hidden_layers=c.text_layers, num_attention_heads=c.text_heads,
                max_position_embeddings=c.context_length, hidden_act=act, layer_norm_eps=c.norm_eps,
                projection_size=c.embed_dim)
    vision = dict(hidden_size=c.vision_width, intermediate_size=c.vision_mlp_dim, num_hidden_layers=c.vision_layers,
                  num_attention_heads=c.vision_heads, num_channels=c.in_chans, patch_size=c.patch_size,
                  hidden_act=act, layer_norm_eps=c.norm_eps)
    text.update({k: v if v is None or v < c.vocab_size else None for k, v in _SPECIAL_IDS[c.hf_model_type].items()})
    if c.hf_model_type == "siglip2":
        vision["num_patches"] = c.grid[0] * c.grid[1]
        return {"model_type": "siglip2", "architectures": ["Siglip2Model"], "text_config": text,
                "vision_config": vision}
    vision["image_size"] = c.image_size
    return {"model_type": "siglip", "architectures": ["SiglipModel"], "text_config": text, "vision_config": vision}


_HEAD_OUT: list[Rule] = [
    (r"^visual\.head\.(in_proj_weight|in_proj_bias|out_proj\.)", r"vision_model.head.attention.\1"),
    (r"^visual\.head\.ln\.", "vision_model.head.layernorm."),
    (r"^visual\.head\.mlp\.c_fc\.", "vision_model.head.mlp.fc1."),
    (r"^visual\.head\.mlp\.c_proj\.", "vision_model.head.mlp.fc2."),
    (r"^visual\.head\.probe$", "vision_model.head.probe"),
]
_OUT = rules(_NAMES, back=True) + _HEAD_OUT + rules(CLIP_BLOCK_NAMES, back=True)


def _state_to_hf(state: dict[str, Tensor], siglip2: bool) -> dict[str, Tensor]:
    def reshape(name: str, value: Tensor) -> Tensor:
        if name == "vision_model.head.probe":
            return value.reshape(1, 1, -1)
        if siglip2 and name == "vision_model.embeddings.patch_embedding.weight":
            return value.permute(0, 2, 3, 1).reshape(value.shape[0], -1).contiguous()
        return value

    # the MAP head keeps nn.MultiheadAttention's fused names: only `attn` modules are split
    return clip_layout_to_hf(state, _OUT, reshape=reshape)


def siglip_state_dict_to_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """vidslim SigLIP names -> SiglipModel names."""
    return _state_to_hf(state, siglip2=False)


def siglip2_state_dict_to_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """vidslim SigLIP names -> Siglip2Model names (the patch Conv2d as the Linear it equals)."""
    return _state_to_hf(state, siglip2=True)


__all__ = ["siglip2_state_dict_to_hf", "siglip_config_from_hf", "siglip_config_to_hf", "siglip_state_dict_from_hf",
           "siglip_state_dict_to_hf"]
