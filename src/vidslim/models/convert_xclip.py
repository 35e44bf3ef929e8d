"""Hugging Face `XCLIPModel` <-> vidslim's X-CLIP (both ways), for `hf_formats`.

Names follow vidslim's CLIP (OpenAI's) where the parts are CLIP's: q/k/v of the towers, of the message attention
and of the MIT blocks are fused into `in_proj_weight/bias`; `visual_projection` / `text_projection` (Linear,
[E, W]) become [W, E] matrices. X-CLIP's own parts keep transformers' names, moved under the module that owns
them: `prompts_visual_layernorm` / `prompts_visual_projection` -> `visual.prompts_visual_ln` / `_proj` (same
[W, E] orientation), `mit.encoder.layers` -> `mit.transformer.resblocks`, the prompt generator's MLP
`mlp.0` / `mlp.3` -> `mlp.c_fc` / `mlp.c_proj`; its cross-attention keeps separate q/k/v (no bias).

The text tower pools at argmax(ids) whatever `eos_token_id` says: transformers' XCLIPTextModel forces that legacy
rule, so `eot_token_id` is None.
"""

from __future__ import annotations

import re
from typing import Any

from torch import Tensor

from vidslim.errors import CheckpointError
from vidslim.models.convert_hf import _act, _float, _fuse, _int, _rename, _section, _square
from vidslim.models.convert_hf_out import split_qkv
from vidslim.models.guards import check_config
from vidslim.models.xclip import XClipConfig

_TEXT = dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8,
             max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5)
_VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
               mit_hidden_size=512, mit_intermediate_size=2048, mit_num_hidden_layers=1, mit_num_attention_heads=8,
               num_channels=3, image_size=224, patch_size=32, num_frames=8, hidden_act="quick_gelu",
               layer_norm_eps=1e-5, drop_path_rate=0.0)
_TOP = dict(projection_dim=512, prompt_layers=2, prompt_alpha=0.1, prompt_hidden_act="quick_gelu",
            prompt_num_attention_heads=8, logit_scale_init_value=2.6592)
#: XClipConfig field -> its config.json name, for error messages
_FIELDS = {"embed_dim": "projection_dim", "image_size": "vision_config.image_size",
           "patch_size": "vision_config.patch_size", "vision_width": "vision_config.hidden_size",
           "vision_layers": "vision_config.num_hidden_layers", "vision_heads": "vision_config.num_attention_heads",
           "vision_mlp_dim": "vision_config.intermediate_size", "context_length": "text_config.max_position_embeddings",
           "vocab_size": "text_config.vocab_size", "text_width": "text_config.hidden_size",
           "text_heads": "text_config.num_attention_heads", "text_layers": "text_config.num_hidden_layers",
           "text_mlp_dim": "text_config.intermediate_size", "mit_width": "vision_config.mit_hidden_size",
           "mit_layers": "vision_config.mit_num_hidden_layers", "mit_heads": "vision_config.mit_num_attention_heads",
           "mit_mlp_dim": "vision_config.mit_intermediate_size", "prompt_layers": "prompt_layers",
           "prompt_heads": "prompt_num_attention_heads", "in_chans": "vision_config.num_channels",
           "num_frames": "vision_config.num_frames", "norm_eps": "vision_config.layer_norm_eps",
           "drop_path": "vision_config.drop_path_rate", "logit_scale_init": "logit_scale_init_value",
           "prompt_alpha": "prompt_alpha"}


def xclip_config_from_hf(cfg: dict[str, Any], where: str = "config.json") -> XClipConfig:
    """XClipConfig from an XCLIPModel config.json dict (sizes checked: whole, positive, not absurdly large)."""
    text = {**_TEXT, **_section(cfg, "text_config", where)}
    vision = {**_VISION, **_section(cfg, "vision_config", where)}
    top = {**_TOP, **cfg}
    if text["hidden_act"] != vision["hidden_act"] or text["layer_norm_eps"] != vision["layer_norm_eps"]:
        raise CheckpointError(f"{where}: text and vision towers with different activations or LayerNorm eps: "
                              "vidslim's X-CLIP needs one of each")

    def size(field: str) -> int:
        name = _FIELDS[field]
        section, _, key = name.rpartition(".")
        values = text if section == "text_config" else vision if section == "vision_config" else top
        return _int(values[key], name, where)

    config = XClipConfig(
        embed_dim=size("embed_dim"),
        image_size=_square(vision["image_size"], "vision_config.image_size", where),
        patch_size=_square(vision["patch_size"], "vision_config.patch_size", where),
        **{f: size(f) for f in ("vision_width", "vision_layers", "vision_heads", "vision_mlp_dim", "context_length",
                                "vocab_size", "text_width", "text_heads", "text_layers", "text_mlp_dim", "mit_width",
                                "mit_layers", "mit_heads", "mit_mlp_dim", "prompt_layers", "prompt_heads",
                                "in_chans", "num_frames")},
        norm_eps=_float(vision["layer_norm_eps"], "vision_config.layer_norm_eps", where),
        act=_act(vision["hidden_act"], where),
        prompt_alpha=_float(top["prompt_alpha"], "prompt_alpha", where),
        prompt_act=_act(top["prompt_hidden_act"], where),
        drop_path=_float(vision["drop_path_rate"], "vision_config.drop_path_rate", where),
        logit_scale_init=_float(top["logit_scale_init_value"], "logit_scale_init_value", where),
    )
    check_config(config, where, _FIELDS)
    if config.mit_width != config.embed_dim:
        raise CheckpointError(f"{where}: vision_config.mit_hidden_size={config.mit_width} differs from "
                              f"projection_dim={config.embed_dim}; X-CLIP's MIT runs on the projected frame embeddings")
    return config


_IN: list[tuple[str, str]] = [
    (r"^text_model\.embeddings\.token_embedding\.", "token_embedding."),
    (r"^text_model\.embeddings\.position_embedding\.weight$", "positional_embedding"),
    (r"^text_model\.encoder\.layers\.", "transformer.resblocks."),
    (r"^text_model\.final_layer_norm\.", "ln_final."),
    (r"^vision_model\.embeddings\.class_embedding$", "visual.class_embedding"),
    (r"^vision_model\.embeddings\.patch_embedding\.", "visual.conv1."),
    (r"^vision_model\.embeddings\.position_embedding\.weight$", "visual.positional_embedding"),
    (r"^vision_model\.pre_layernorm\.", "visual.ln_pre."),
    (r"^vision_model\.encoder\.layers\.", "visual.transformer.resblocks."),
    (r"^vision_model\.post_layernorm\.", "visual.ln_post."),
    (r"^prompts_visual_layernorm\.", "visual.prompts_visual_ln."),
    (r"^prompts_visual_projection$", "visual.prompts_visual_proj"),
    (r"^mit\.encoder\.layers\.", "mit.transformer.resblocks."),
    (r"^(prompts_generator\.decoder\.\d+\.mlp)\.0\.", r"\1.c_fc."),
    (r"^(prompts_generator\.decoder\.\d+\.mlp)\.3\.", r"\1.c_proj."),
    (r"\.self_attn\.out_proj\.", ".attn.out_proj."),
    (r"\.layer_norm1\.", ".ln_1."),
    (r"\.layer_norm2\.", ".ln_2."),
    (r"\.mlp\.fc1\.", ".mlp.c_fc."),
    (r"\.mlp\.fc2\.", ".mlp.c_proj."),
]
_PROJECTIONS = {"visual_projection.weight": "visual.proj", "text_projection.weight": "text_projection"}


def xclip_state_dict_from_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """XCLIPModel names -> vidslim X-CLIP names (q/k/v fused, the two projections transposed)."""
    out: dict[str, Tensor] = {}
    weights: dict[str, dict[str, tuple[str, Tensor]]] = {}
    biases: dict[str, dict[str, tuple[str, Tensor]]] = {}
    for key, value in state.items():
        if key.endswith("position_ids"):
            continue
        if key in _PROJECTIONS:
            out[_PROJECTIONS[key]] = value.t().contiguous()
            continue
        name = _rename(key, _IN)
        m = re.match(r"^(.*\.)(self_attn|message_attn)\.([qkv])_proj\.(weight|bias)$", name)
        if m:
            prefix = m.group(1) + ("attn." if m.group(2) == "self_attn" else "message_attn.")
            (weights if m.group(4) == "weight" else biases).setdefault(prefix, {})[m.group(3)] = (key, value)
            continue
        out[name] = value
    _fuse(weights, ("q", "k", "v"), "in_proj_weight", out)
    _fuse(biases, ("q", "k", "v"), "in_proj_bias", out)
    return out


def xclip_config_to_hf(c: XClipConfig) -> dict[str, Any]:
    """An XCLIPModel config.json dict for `c` (an X-CLIP with a classifier head is refused: XCLIPModel has none)."""
    if c.num_classes:
        raise CheckpointError(f"this X-CLIP has a {c.num_classes}-class head, which transformers' XCLIPModel cannot "
                              "hold: save it with save_model(model, DIR) (vidslim's format)")
    text = dict(vocab_size=c.vocab_size, hidden_size=c.text_width, intermediate_size=c.text_mlp_dim,
                num_hidden_layers=c.text_layers, num_attention_heads=c.text_heads,
                max_position_embeddings=c.context_length, hidden_act=c.act, layer_norm_eps=c.norm_eps)
    vision = dict(hidden_size=c.vision_width, intermediate_size=c.vision_mlp_dim, num_hidden_layers=c.vision_layers,
                  num_attention_heads=c.vision_heads, mit_hidden_size=c.mit_width,
                  mit_intermediate_size=c.mit_mlp_dim, mit_num_hidden_layers=c.mit_layers,
                  mit_num_attention_heads=c.mit_heads, num_channels=c.in_chans, image_size=c.image_size,
                  patch_size=c.patch_size, num_frames=c.num_frames, hidden_act=c.act, layer_norm_eps=c.norm_eps,
                  drop_path_rate=c.drop_path)
    return {"model_type": "xclip", "architectures": ["XCLIPModel"], "text_config": text, "vision_config": vision,
            "projection_dim": c.embed_dim, "prompt_layers": c.prompt_layers, "prompt_alpha": c.prompt_alpha,
            "prompt_hidden_act": c.prompt_act, "prompt_num_attention_heads": c.prompt_heads,
            "logit_scale_init_value": c.logit_scale_init}


_OUT: list[tuple[str, str]] = [
    (r"^token_embedding\.", "text_model.embeddings.token_embedding."),
    (r"^positional_embedding$", "text_model.embeddings.position_embedding.weight"),
    (r"^transformer\.resblocks\.", "text_model.encoder.layers."),
    (r"^ln_final\.", "text_model.final_layer_norm."),
    (r"^visual\.class_embedding$", "vision_model.embeddings.class_embedding"),
    (r"^visual\.conv1\.", "vision_model.embeddings.patch_embedding."),
    (r"^visual\.positional_embedding$", "vision_model.embeddings.position_embedding.weight"),
    (r"^visual\.ln_pre\.", "vision_model.pre_layernorm."),
    (r"^visual\.transformer\.resblocks\.", "vision_model.encoder.layers."),
    (r"^visual\.ln_post\.", "vision_model.post_layernorm."),
    (r"^visual\.prompts_visual_ln\.", "prompts_visual_layernorm."),
    (r"^visual\.prompts_visual_proj$", "prompts_visual_projection"),
    (r"^mit\.transformer\.resblocks\.", "mit.encoder.layers."),
    (r"^(prompts_generator\.decoder\.\d+\.mlp)\.c_fc\.", r"\1.0."),
    (r"^(prompts_generator\.decoder\.\d+\.mlp)\.c_proj\.", r"\1.3."),
    (r"\.attn\.out_proj\.", ".self_attn.out_proj."),
    (r"\.ln_1\.", ".layer_norm1."),
    (r"\.ln_2\.", ".layer_norm2."),
    (r"\.mlp\.c_fc\.", ".mlp.fc1."),
    (r"\.mlp\.c_proj\.", ".mlp.fc2."),
]


def xclip_state_dict_to_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """vidslim X-CLIP names -> XCLIPModel names: the exact inverse of `xclip_state_dict_from_hf`."""
    out: dict[str, Tensor] = {}
    back = {v: k for k, v in _PROJECTIONS.items()}
    for key, value in state.items():
        if key in back:
            out[back[key]] = value.t().contiguous()
            continue
        name = _rename(key, _OUT)
        if split_qkv(name, value, ".message_attn.in_proj_weight", ("q", "k", "v"), "{}.message_attn.{}_proj.weight",
                     out):
            continue
        if split_qkv(name, value, ".message_attn.in_proj_bias", ("q", "k", "v"), "{}.message_attn.{}_proj.bias", out):
            continue
        if split_qkv(name, value, ".attn.in_proj_weight", ("q", "k", "v"), "{}.self_attn.{}_proj.weight", out):
            continue
        if split_qkv(name, value, ".attn.in_proj_bias", ("q", "k", "v"), "{}.self_attn.{}_proj.bias", out):
            continue
        out[name] = value
    return out


__all__ = ["xclip_config_from_hf", "xclip_config_to_hf", "xclip_state_dict_from_hf", "xclip_state_dict_to_hf"]
