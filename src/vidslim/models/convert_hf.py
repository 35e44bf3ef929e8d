"""Hugging Face transformers checkpoints -> vidslim configs and parameter names.

Two architectures are read, from a local folder written by `save_pretrained` (config.json + weights):
- `CLIPModel` (model_type "clip"): separate q/k/v projections are fused into OpenAI's `in_proj_weight/bias`,
  `visual_projection` / `text_projection` (Linear, [E, W]) become OpenAI's [W, E] matrices.
- `VideoMAEForVideoClassification` (model_type "videomae"): query/key/value weights are fused into `qkv.weight`;
  the q and v biases (stored as `q_bias`/`v_bias` in older checkpoints, `query.bias`/`value.bias` in newer)
  become `q_bias`/`v_bias`.

Names that have no counterpart are passed through unchanged, so strict loading reports them by their HF name.
Config fields missing from config.json take transformers' defaults (save_pretrained writes only the fields
that differ from them). A size that is not a whole number, is negative, or describes an absurdly large model is
refused naming its config.json field (`vidslim.models.guards`), before any weight is read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from torch import Tensor

from vidslim.errors import CheckpointError
from vidslim.models.clip import ClipConfig
from vidslim.models.convert_rules import Fuser, Rule, rename, rules
from vidslim.models.guards import check_config
from vidslim.models.video_vit import VideoViTConfig

_CLIP_TEXT_DEFAULTS: dict[str, Any] = dict(
    vocab_size=49408,
    hidden_size=512,
    intermediate_size=2048,
    num_hidden_layers=12,
    num_attention_heads=8,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    eos_token_id=49407,
)
_CLIP_VISION_DEFAULTS: dict[str, Any] = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    num_channels=3,
    image_size=224,
    patch_size=32,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
)
_VIDEOMAE_DEFAULTS: dict[str, Any] = dict(
    image_size=224,
    patch_size=16,
    num_channels=3,
    num_frames=16,
    tubelet_size=2,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act="gelu",
    layer_norm_eps=1e-12,
    qv_bias=True,
    use_mean_pooling=True,
)


def _int(value: Any, what: str, where: str) -> int:
    """A whole number from a JSON number (`768`, `768.0`, `1e3`); anything else is a CheckpointError naming `what`."""
    if type(value) is float and value.is_integer():
        return int(value)
    if type(value) is not int:
        raise CheckpointError(f"{where}: {what}={value!r} must be a whole number")
    return value


def _float(value: Any, what: str, where: str) -> float:
    if type(value) not in (int, float):
        raise CheckpointError(f"{where}: {what}={value!r} must be a number")
    return float(value)


def _square(value: Any, what: str, where: str) -> int:
    """An int size from an int or a [h, w] pair with h == w."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise CheckpointError(f"{where}: non-square {what} {value} is not supported")
        value = value[0]
    return _int(value, what, where)


def _section(cfg: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """`cfg[key]` (a sub-config such as text_config): an object, or {} when absent or null."""
    value = cfg.get(key) or {}
    if not isinstance(value, dict):
        raise CheckpointError(f"{where}: {key} is a {type(value).__name__}, not an object {{...}}")
    return value


def _act(name: Any, where: str) -> str:
    if name in ("quick_gelu", "gelu"):
        return name
    raise CheckpointError(f"{where}: activation {name!r} is not supported (quick_gelu or gelu)")


# -------------------------------------------------------------------------------------------------- CLIP
#: ClipConfig field -> its config.json name, for error messages
_CLIP_FIELDS = {
    "embed_dim": "projection_dim",
    "image_size": "vision_config.image_size",
    "patch_size": "vision_config.patch_size",
    "vision_width": "vision_config.hidden_size",
    "vision_layers": "vision_config.num_hidden_layers",
    "vision_heads": "vision_config.num_attention_heads",
    "vision_mlp_dim": "vision_config.intermediate_size",
    "context_length": "text_config.max_position_embeddings",
    "vocab_size": "text_config.vocab_size",
    "text_width": "text_config.hidden_size",
    "text_heads": "text_config.num_attention_heads",
    "text_layers": "text_config.num_hidden_layers",
    "text_mlp_dim": "text_config.intermediate_size",
    "norm_eps": "vision_config.layer_norm_eps",
    "eot_token_id": "text_config.eos_token_id",
    "in_chans": "vision_config.num_channels",
    "logit_scale_init": "logit_scale_init_value",
}


def clip_config_from_hf(cfg: dict[str, Any], where: str = "config.json") -> ClipConfig:
    """ClipConfig from a CLIPModel config.json dict (sizes checked: whole, positive, not absurdly large)."""
    text = {**_CLIP_TEXT_DEFAULTS, **_section(cfg, "text_config", where)}
    vision = {**_CLIP_VISION_DEFAULTS, **_section(cfg, "vision_config", where)}
    if text["hidden_act"] != vision["hidden_act"] or text["layer_norm_eps"] != vision["layer_norm_eps"]:
        raise CheckpointError(f"{where}: text and vision towers with different activations or LayerNorm eps")
    eos = text.get("eos_token_id")
    # transformers pools at argmax(ids) for the legacy eos_token_id == 2 (as OpenAI does), else at the first eos
    eot = None if eos in (None, 2) or isinstance(eos, list) else _int(eos, "text_config.eos_token_id", where)

    def size(field: str) -> int:
        section, key = _CLIP_FIELDS[field].split(".")
        return _int((text if section == "text_config" else vision)[key], _CLIP_FIELDS[field], where)

    config = ClipConfig(
        embed_dim=_int(cfg.get("projection_dim", 512), "projection_dim", where),
        image_size=_square(vision["image_size"], "vision_config.image_size", where),
        patch_size=_square(vision["patch_size"], "vision_config.patch_size", where),
        vision_width=size("vision_width"),
        vision_layers=size("vision_layers"),
        vision_heads=size("vision_heads"),
        vision_mlp_dim=size("vision_mlp_dim"),
        context_length=size("context_length"),
        vocab_size=size("vocab_size"),
        text_width=size("text_width"),
        text_heads=size("text_heads"),
        text_layers=size("text_layers"),
        text_mlp_dim=size("text_mlp_dim"),
        norm_eps=_float(vision["layer_norm_eps"], "vision_config.layer_norm_eps", where),
        act=_act(vision["hidden_act"], where),
        eot_token_id=eot,
        in_chans=size("in_chans"),
        logit_scale_init=_float(cfg.get("logit_scale_init_value", 2.6592), "logit_scale_init_value", where),
    )
    check_config(config, where, _CLIP_FIELDS)
    return config


#: transformers <-> OpenAI name pieces of the text tower CLIP, SigLIP and X-CLIP share
CLIP_TEXT_NAMES = [
    ("^text_model.embeddings.token_embedding.", "^token_embedding."),
    ("^text_model.embeddings.position_embedding.weight$", "^positional_embedding$"),
    ("^text_model.encoder.layers.", "^transformer.resblocks."),
    ("^text_model.final_layer_norm.", "^ln_final."),
]
#: ... of a block in any of their towers
CLIP_BLOCK_NAMES = [
    (".self_attn.out_proj.", ".attn.out_proj."),
    (".layer_norm1.", ".ln_1."),
    (".layer_norm2.", ".ln_2."),
    (".mlp.fc1.", ".mlp.c_fc."),
    (".mlp.fc2.", ".mlp.c_proj."),
]
#: the projections CLIPModel and XCLIPModel keep as Linear weights [E, W], OpenAI as matrices [W, E]
CLIP_PROJECTIONS = {"visual_projection.weight": "visual.proj", "text_projection.weight": "text_projection"}


def clip_vision_names(pre_layernorm: str = "pre_layrnorm") -> list[tuple[str, str]]:
    """transformers <-> OpenAI name pieces of CLIP's image tower (CLIPModel spells its pre-LayerNorm
    `pre_layrnorm`, XCLIPModel `pre_layernorm`)."""
    return [
        ("^vision_model.embeddings.class_embedding$", "^visual.class_embedding$"),
        ("^vision_model.embeddings.patch_embedding.", "^visual.conv1."),
        ("^vision_model.embeddings.position_embedding.weight$", "^visual.positional_embedding$"),
        (f"^vision_model.{pre_layernorm}.", "^visual.ln_pre."),
        ("^vision_model.encoder.layers.", "^visual.transformer.resblocks."),
        ("^vision_model.post_layernorm.", "^visual.ln_post."),
    ]


CLIP_NAMES = CLIP_TEXT_NAMES + clip_vision_names() + CLIP_BLOCK_NAMES


def clip_layout_from_hf(
    state: dict[str, Tensor],
    renames: list[Rule],
    attention: tuple[str, ...] = ("self_attn",),
    projections: dict[str, str] | None = None,
    reshape: Callable[[str, Tensor], Tensor] | None = None,
) -> dict[str, Tensor]:
    """transformers names -> OpenAI's for a model in CLIP's layout (CLIP, SigLIP, X-CLIP): `renames` applied, the
    `projections` transposed, the q/k/v of every module in `attention` fused into its `in_proj_weight/bias`
    (`self_attn` becomes `attn`; other modules keep their name), `reshape(name, value)` for the rest."""
    out: dict[str, Tensor] = {}
    in_proj = Fuser(("q", "k", "v"))
    projections = projections or {}
    qkv = re.compile(rf"^(.*\.)({'|'.join(attention)})\.([qkv])_proj\.(weight|bias)$")
    for key, value in state.items():
        if key.endswith("position_ids"):
            continue
        if key in projections:
            out[projections[key]] = value.t().contiguous()
            continue
        name = rename(key, renames)
        if m := qkv.match(name):
            module = "attn" if m.group(2) == "self_attn" else m.group(2)
            in_proj.add(f"{m.group(1)}{module}.in_proj_{m.group(4)}", m.group(3), key, value)
            continue
        out[name] = reshape(name, value) if reshape is not None else value
    return in_proj.into(out)


def clip_state_dict_from_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a CLIPModel state dict to OpenAI names (fusing q/k/v, transposing the projections)."""
    return clip_layout_from_hf(state, rules(CLIP_NAMES), projections=CLIP_PROJECTIONS)


# -------------------------------------------------------------------------------------------------- VideoMAE
#: VideoViTConfig field -> its config.json name, for error messages
_VIDEOMAE_FIELDS = {
    "embed_dim": "hidden_size",
    "depth": "num_hidden_layers",
    "num_heads": "num_attention_heads",
    "mlp_dim": "intermediate_size",
    "in_chans": "num_channels",
    "num_classes": "num_labels",
    "qkv_bias": "qv_bias",
    "norm_eps": "layer_norm_eps",
}


def videomae_config_from_hf(cfg: dict[str, Any], where: str = "config.json") -> VideoViTConfig:
    """VideoViTConfig from a VideoMAEForVideoClassification config.json dict (sizes checked as for CLIP)."""
    c = {**_VIDEOMAE_DEFAULTS, **cfg}
    if "qkv_bias" in cfg and "qv_bias" not in cfg:
        c["qv_bias"] = cfg["qkv_bias"]
    if not c["use_mean_pooling"]:
        raise CheckpointError(f"{where}: use_mean_pooling=false (no fc_norm) is not supported; vidslim pools by mean")
    labels = cfg.get("id2label")
    if labels is not None and not isinstance(labels, dict):
        raise CheckpointError(f"{where}: id2label is a {type(labels).__name__}, not an object {{...}}")
    num_classes = _int(cfg.get("num_labels", len(labels) if labels else 2), "num_labels", where)

    def size(key: str) -> int:
        return _int(c[key], key, where)

    config = VideoViTConfig(
        embed_dim=size("hidden_size"),
        depth=size("num_hidden_layers"),
        num_heads=size("num_attention_heads"),
        mlp_dim=size("intermediate_size"),
        image_size=_square(c["image_size"], "image_size", where),
        patch_size=_square(c["patch_size"], "patch_size", where),
        num_frames=size("num_frames"),
        tubelet_size=size("tubelet_size"),
        in_chans=size("num_channels"),
        num_classes=num_classes,
        qkv_bias=bool(c["qv_bias"]),
        norm_eps=_float(c["layer_norm_eps"], "layer_norm_eps", where),
        fc_norm_eps=1e-5,  # transformers builds fc_norm with nn.LayerNorm's default eps
        act=_act(c["hidden_act"], where),
    )
    check_config(config, where, _VIDEOMAE_FIELDS)
    return config


_VIDEOMAE_RENAMES: list[tuple[str, str]] = [
    (r"^videomae\.", ""),
    (r"^embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"^encoder\.layer\.", "blocks."),
    (r"\.attention\.attention\.q_bias$", ".attn.q_bias"),
    (r"\.attention\.attention\.v_bias$", ".attn.v_bias"),
    (r"\.attention\.attention\.query\.bias$", ".attn.q_bias"),
    (r"\.attention\.attention\.value\.bias$", ".attn.v_bias"),
    (r"\.attention\.output\.dense\.", ".attn.proj."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),
    (r"\.layernorm_before\.", ".norm1."),
    (r"\.layernorm_after\.", ".norm2."),
    (r"^classifier\.", "head."),
]


def videomae_state_dict_from_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a VideoMAEForVideoClassification state dict to VideoMAE v2 names (fusing q/k/v weights)."""
    out: dict[str, Tensor] = {}
    qkv = Fuser(("query", "key", "value"))
    for key, value in state.items():
        if key.endswith("position_embeddings"):
            continue  # the fixed sinusoid table, when a checkpoint carries it: rebuilt by the model
        name = rename(key, _VIDEOMAE_RENAMES)
        m = re.match(r"^(blocks\.\d+\.)attention\.attention\.(query|key|value)\.weight$", name)
        if m:
            qkv.add(m.group(1) + "attn.qkv.weight", m.group(2), key, value)
            continue
        out[name] = value
    return qkv.into(out)
