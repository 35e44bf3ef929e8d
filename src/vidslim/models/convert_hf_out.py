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
from collections.abc import Callable
from typing import Any

from torch import Tensor

from vidslim.errors import ConfigError
from vidslim.models.clip import ClipConfig
from vidslim.models.convert_hf import CLIP_NAMES, CLIP_PROJECTIONS
from vidslim.models.convert_rules import Rule, rename, rules, split_fused
from vidslim.models.video_vit import VideoViTConfig

logger = logging.getLogger(__name__)


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


def clip_layout_to_hf(
    state: dict[str, Tensor],
    renames: list[Rule],
    attention: tuple[str, ...] = ("attn",),
    projections: dict[str, str] | None = None,
    reshape: Callable[[str, Tensor], Tensor] | None = None,
) -> dict[str, Tensor]:
    """OpenAI names -> transformers' for a model in CLIP's layout, the mirror of `convert_hf.clip_layout_from_hf`:
    `renames` applied, the `projections` (transformers name -> ours) transposed back, `reshape(name, value)` on the
    renamed tensors, and the fused `in_proj_weight/bias` of every module in `attention` split into q/k/v
    projections (`attn` becomes `self_attn`)."""
    back = {ours: theirs for theirs, ours in (projections or {}).items()}
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key in back:
            out[back[key]] = value.t().contiguous()
            continue
        name = rename(key, renames)
        if reshape is not None:
            value = reshape(name, value)
        if any(split_fused(name, value, f".{module}.in_proj_{param}", ("q", "k", "v"),
                           f"{{}}.{'self_attn' if module == 'attn' else module}.{{}}_proj.{param}", out)
               for module in attention for param in ("weight", "bias")):
            continue
        out[name] = value
    return out


def clip_state_dict_to_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """OpenAI CLIP names -> CLIPModel names (q/k/v split, projections transposed)."""
    return clip_layout_to_hf(state, rules(CLIP_NAMES, back=True), projections=CLIP_PROJECTIONS)


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
        name = rename(key, _VIDEOMAE_BACK)
        if split_fused(name, value, ".attn.qkv.weight", ("query", "key", "value"), "{}.attention.attention.{}.weight",
                       out):
            continue
        out[name] = value
    return out


__all__ = ["clip_config_to_hf", "clip_layout_to_hf", "clip_state_dict_to_hf", "id2label", "videomae_config_to_hf",
           "videomae_state_dict_to_hf"]
