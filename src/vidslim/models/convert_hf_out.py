"""vidslim configs and parameter names -> Hugging Face transformers: the way back of `convert_hf`.

- CLIP -> `CLIPModel`: OpenAI's fused `in_proj_weight/bias` split into q/k/v projections, the [W, E] projection
  matrices transposed into Linear weights. A CLIP with a classifier head has no `CLIPModel` counterpart.
- video ViT -> `VideoMAEForVideoClassification`: `qkv.weight` split into query/key/value, `q_bias`/`v_bias` become
  the query/value biases (the key has none), class names become `id2label`. A learned position table has no
  VideoMAE counterpart (it uses the fixed sinusoid).

Each `*_state_dict_to_hf` is the exact inverse of its `*_from_hf` on the names a model has, so reading the result
back gives the same tensors.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from torch import Tensor

from vidslim.errors import ConfigError
from vidslim.models.clip import ClipConfig
from vidslim.models.video_vit import VideoViTConfig

logger = logging.getLogger(__name__)


def _rename(key: str, rules: list[tuple[str, str]]) -> str:
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    return key


def split_qkv(key: str, value: Tensor, fused: str, names: tuple[str, str, str], template: str,
              out: dict[str, Tensor]) -> bool:
    """Split `value` (3 equal row blocks) into `template.format(prefix, name)` keys when `key` ends with `fused`."""
    if not key.endswith(fused):
        return False
    prefix = key[: -len(fused)]
    for name, part in zip(names, value.chunk(3, dim=0), strict=True):
        out[template.format(prefix, name)] = part.contiguous()
    return True


def id2label(class_names: tuple[str, ...] | None, num_classes: int) -> dict[str, Any]:
    """config.json's `id2label` / `label2id` / `num_labels` for a head of `num_classes` named `class_names`."""
    names = list(class_names) if class_names else [f"LABEL_{i}" for i in range(num_classes)]
    return {"id2label": {str(i): n for i, n in enumerate(names)}, "label2id": {n: i for i, n in enumerate(names)},
            "num_labels": num_classes}


# -------------------------------------------------------------------------------------------------- CLIP
def clip_config_to_hf(c: ClipConfig) -> dict[str, Any]:
    """A CLIPModel config.json dict for `c` (a CLIP with a classifier head is refused: CLIPModel has none)."""
    if c.num_classes:
        raise ConfigError(f"this CLIP has a {c.num_classes}-class head, which transformers' CLIPModel cannot hold: "
                          "save it with save_model(model, DIR) (vidslim's format), or build it with num_classes=0")
    common = dict(hidden_act=c.act, layer_norm_eps=c.norm_eps)
    text = dict(vocab_size=c.vocab_size, hidden_size=c.text_width, intermediate_size=c.text_mlp_dim,
                num_hidden_layers=c.text_layers, num_attention_heads=c.text_heads,
                max_position_embeddings=c.context_length, projection_dim=c.embed_dim,
                eos_token_id=2 if c.eot_token_id is None else c.eot_token_id, **common)  # 2: pool at argmax(ids)
    vision = dict(hidden_size=c.vision_width, intermediate_size=c.vision_mlp_dim, num_hidden_layers=c.vision_layers,
                  num_attention_heads=c.vision_heads, num_channels=c.in_chans, image_size=c.image_size,
                  patch_size=c.patch_size, projection_dim=c.embed_dim, **common)
    return {"model_type": "clip", "architectures": ["CLIPModel"], "projection_dim": c.embed_dim,
            "logit_scale_init_value": c.logit_scale_init, "text_config": text, "vision_config": vision}


_CLIP_BACK: list[tuple[str, str]] = [
    (r"^token_embedding\.", "text_model.embeddings.token_embedding."),
    (r"^positional_embedding$", "text_model.embeddings.position_embedding.weight"),
    (r"^transformer\.resblocks\.", "text_model.encoder.layers."),
    (r"^ln_final\.", "text_model.final_layer_norm."),
    (r"^visual\.class_embedding$", "vision_model.embeddings.class_embedding"),
    (r"^visual\.conv1\.", "vision_model.embeddings.patch_embedding."),
    (r"^visual\.positional_embedding$", "vision_model.embeddings.position_embedding.weight"),
    (r"^visual\.ln_pre\.", "vision_model.pre_layrnorm."),
    (r"^visual\.transformer\.resblocks\.", "vision_model.encoder.layers."),
    (r"^visual\.ln_post\.", "vision_model.post_layernorm."),
    (r"\.attn\.out_proj\.", ".self_attn.out_proj."),
    (r"\.ln_1\.", ".layer_norm1."),
    (r"\.ln_2\.", ".layer_norm2."),
    (r"\.mlp\.c_fc\.", ".mlp.fc1."),
    (r"\.mlp\.c_proj\.", ".mlp.fc2."),
]


def clip_state_dict_to_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """OpenAI CLIP names -> CLIPModel names (q/k/v split, projections transposed)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key in ("visual.proj", "text_projection"):
            name = "visual_projection.weight" if key == "visual.proj" else "text_projection.weight"
            out[name] = value.t().contiguous()
            continue
        name = _rename(key, _CLIP_BACK)
        if split_qkv(name, value, ".attn.in_proj_weight", ("q", "k", "v"), "{}.self_attn.{}_proj.weight", out):
            continue
        if split_qkv(name, value, ".attn.in_proj_bias", ("q", "k", "v"), "{}.self_attn.{}_proj.bias", out):
            continue
        out[name] = value
    return out


# -------------------------------------------------------------------------------------------------- VideoMAE
def videomae_config_to_hf(c: VideoViTConfig) -> dict[str, Any]:
    """A VideoMAEForVideoClassification config.json dict for `c` (a learned position table is refused)."""
    if c.learned_pos:
        raise ConfigError("this video ViT has a learned position table; transformers' VideoMAE uses the fixed "
                          "sinusoid: save it with save_model(model, DIR) (vidslim's format)")
    if abs(c.fc_norm_eps - 1e-5) > 1e-12:
        logger.warning("VideoMAE's fc_norm has eps 1e-5 in transformers, %g here: outputs differ slightly",
                       c.fc_norm_eps)
    return {"model_type": "videomae", "architectures": ["VideoMAEForVideoClassification"],
            "image_size": c.image_size, "patch_size": c.patch_size, "num_channels": c.in_chans,
            "num_frames": c.num_frames, "tubelet_size": c.tubelet_size, "hidden_size": c.embed_dim,
            "num_hidden_layers": c.depth, "num_attention_heads": c.num_heads, "intermediate_size": c.mlp_dim,
            "hidden_act": c.act, "layer_norm_eps": c.norm_eps, "qkv_bias": c.qkv_bias, "use_mean_pooling": True,
            **id2label(c.class_names, c.num_classes)}


_VIDEOMAE_BACK: list[tuple[str, str]] = [
    (r"^patch_embed\.proj\.", "videomae.embeddings.patch_embeddings.projection."),
    (r"^blocks\.", "videomae.encoder.layer."),
    (r"\.attn\.q_bias$", ".attention.attention.query.bias"),
    (r"\.attn\.v_bias$", ".attention.attention.value.bias"),
    (r"\.attn\.proj\.", ".attention.output.dense."),
    (r"\.mlp\.fc1\.", ".intermediate.dense."),
    (r"\.mlp\.fc2\.", ".output.dense."),
    (r"\.norm1\.", ".layernorm_before."),
    (r"\.norm2\.", ".layernorm_after."),
    (r"^head\.", "classifier."),
]


def videomae_state_dict_to_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """VideoMAE v2 names -> VideoMAEForVideoClassification names (qkv split)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        name = _rename(key, _VIDEOMAE_BACK)
        if split_qkv(name, value, ".attn.qkv.weight", ("query", "key", "value"), "{}.attention.attention.{}.weight",
                     out):
            continue
        out[name] = value
    return out


__all__ = ["clip_config_to_hf", "clip_state_dict_to_hf", "id2label", "split_qkv", "videomae_config_to_hf",
           "videomae_state_dict_to_hf"]
