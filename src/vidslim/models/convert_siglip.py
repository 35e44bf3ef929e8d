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
import re
from typing import Any

from torch import Tensor

from vidslim.errors import CheckpointError
from vidslim.models.convert_hf import _float, _fuse, _int, _rename, _section, _square
from vidslim.models.convert_hf_out import split_qkv
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


_IN: list[tuple[str, str]] = [
    (r"^text_model\.embeddings\.token_embedding\.", "token_embedding."),
    (r"^text_model\.embeddings\.position_embedding\.weight$", "positional_embedding"),
    (r"^text_model\.encoder\.layers\.", "transformer.resblocks."),
    (r"^text_model\.final_layer_norm\.", "ln_final."),
    (r"^text_model\.head\.", "text_head."),
    (r"^vision_model\.embeddings\.patch_embedding\.", "visual.conv1."),
    (r"^vision_model\.embeddings\.position_embedding\.weight$", "visual.positional_embedding"),
    (r"^vision_model\.encoder\.layers\.", "visual.transformer.resblocks."),
    (r"^vision_model\.post_layernorm\.", "visual.ln_post."),
    (r"^vision_model\.head\.attention\.", "visual.head."),
    (r"^vision_model\.head\.layernorm\.", "visual.head.ln."),
    (r"^vision_model\.head\.", "visual.head."),
    (r"\.self_attn\.out_proj\.", ".attn.out_proj."),
    (r"\.layer_norm1\.", ".ln_1."),
    (r"\.layer_norm2\.", ".ln_2."),
    (r"\.mlp\.fc1\.", ".mlp.c_fc."),
    (r"\.mlp\.fc2\.", ".mlp.c_proj."),
]


def siglip_state_dict_from_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """SiglipModel / Siglip2Model names -> vidslim SigLIP names (q/k/v fused, probe flattened, a Linear patch
    embedding reshaped to the Conv2d it equals)."""
    out: dict[str, Tensor] = {}
    weights: dict[str, dict[str, tuple[str, Tensor]]] = {}
    biases: dict[str, dict[str, tuple[str, Tensor]]] = {}
    for key, value in state.items():
        if key.endswith("position_ids"):
            continue
        name = _rename(key, _IN)
        m = re.match(r"^(.*\.)self_attn\.([qkv])_proj\.(weight|bias)$", name)
        if m:
            (weights if m.group(3) == "weight" else biases).setdefault(m.group(1) + "attn.", {})[m.group(2)] = (
                key, value)
            continue
        if name == "visual.head.probe":
            value = value.reshape(-1)
        elif name == "visual.conv1.weight" and value.dim() == 2:  # SigLIP 2: Linear over (row, col, channel)
            channels = 3 if value.shape[1] % 3 == 0 else 1  # RGB, as every published SigLIP 2
            p = math.isqrt(value.shape[1] // channels)
            value = value.reshape(value.shape[0], p, p, channels).permute(0, 3, 1, 2).contiguous()
        out[name] = value
    _fuse(weights, ("q", "k", "v"), "in_proj_weight", out)
    _fuse(biases, ("q", "k", "v"), "in_proj_bias", out)
    return out


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
    if c.hf_model_type == "siglip2":
        vision["num_patches"] = c.grid[0] * c.grid[1]
        return {"model_type": "siglip2", "architectures": ["Siglip2Model"], "text_config": text,
                "vision_config": vision}
    vision["image_size"] = c.image_size
    return {"model_type": "siglip", "architectures": ["SiglipModel"], "text_config": text, "vision_config": vision}


_OUT: list[tuple[str, str]] = [
    (r"^token_embedding\.", "text_model.embeddings.token_embedding."),
    (r"^positional_embedding$", "text_model.embeddings.position_embedding.weight"),
    (r"^transformer\.resblocks\.", "text_model.encoder.layers."),
    (r"^ln_final\.", "text_model.final_layer_norm."),
    (r"^text_head\.", "text_model.head."),
    (r"^visual\.conv1\.", "vision_model.embeddings.patch_embedding."),
    (r"^visual\.positional_embedding$", "vision_model.embeddings.position_embedding.weight"),
    (r"^visual\.transformer\.resblocks\.", "vision_model.encoder.layers."),
    (r"^visual\.ln_post\.", "vision_model.post_layernorm."),
    (r"^visual\.head\.(in_proj_weight|in_proj_bias|out_proj\.)", r"vision_model.head.attention.\1"),
    (r"^visual\.head\.ln\.", "vision_model.head.layernorm."),
    (r"^visual\.head\.mlp\.c_fc\.", "vision_model.head.mlp.fc1."),
    (r"^visual\.head\.mlp\.c_proj\.", "vision_model.head.mlp.fc2."),
    (r"^visual\.head\.probe$", "vision_model.head.probe"),
    (r"\.attn\.out_proj\.", ".self_attn.out_proj."),
    (r"\.ln_1\.", ".layer_norm1."),
    (r"\.ln_2\.", ".layer_norm2."),
    (r"\.mlp\.c_fc\.", ".mlp.fc1."),
    (r"\.mlp\.c_proj\.", ".mlp.fc2."),
]


def _state_to_hf(state: dict[str, Tensor], siglip2: bool) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        name = _rename(key, _OUT)
        if name == "vision_model.head.probe":
            value = value.reshape(1, 1, -1)
        elif siglip2 and name == "vision_model.embeddings.patch_embedding.weight":
            value = value.permute(0, 2, 3, 1).reshape(value.shape[0], -1).contiguous()
        if name.startswith("vision_model.head."):  # nn.MultiheadAttention keeps its fused names
            out[name] = value
            continue
        if split_qkv(name, value, ".attn.in_proj_weight", ("q", "k", "v"), "{}.self_attn.{}_proj.weight", out):
            continue
        if split_qkv(name, value, ".attn.in_proj_bias", ("q", "k", "v"), "{}.self_attn.{}_proj.bias", out):
            continue
        out[name] = value
    return out


def siglip_state_dict_to_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """vidslim SigLIP names -> SiglipModel names."""
    return _state_to_hf(state, siglip2=False)


def siglip2_state_dict_to_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """vidslim SigLIP names -> Siglip2Model names (the patch Conv2d as the Linear it equals)."""
    return _state_to_hf(state, siglip2=True)


__all__ = ["siglip2_state_dict_to_hf", "siglip_config_from_hf", "siglip_config_to_hf", "siglip_state_dict_from_hf",
           "siglip_state_dict_to_hf"]
