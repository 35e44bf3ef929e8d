"""transformers' `VivitForVideoClassification` and `VivitModel` <-> vidslim's `ViViT`, both ways.

Config: hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, image_size, num_frames,
tubelet_size ([t, h, w] with h == w), num_channels, qkv_bias, layer_norm_eps, hidden_act (gelu_fast, gelu_new and
gelu_pytorch_tanh are the tanh-approximated GELU, gelu the exact one), num_labels / id2label for the classifier;
pooler_output_size (hidden_size when unset) and pooler_act (tanh only) for the base model, whose `architectures`
name VivitModel (a folder naming neither class is read as the classifier, as before).
Weights: q/k/v projections are fused into `attn.qkv`. Both namings are read: the one on disk (published checkpoints
and `save_pretrained`: `vivit.encoder.layer.N.attention.attention.query`, `intermediate.dense`, ...) and the one
of the model in memory (`vivit.layers.N.attention.q_proj`, `mlp.fc1`, ...); the way back writes the one in memory
(`load_state_dict`; `save_pretrained` turns it into the one on disk).
Names with no counterpart pass through unchanged, so strict
loading reports them by their transformers name.
"""

from __future__ import annotations

import re
from typing import Any

from torch import Tensor

from vidslim.errors import CheckpointError
from vidslim.models.convert_hf import _float, _int, _square
from vidslim.models.convert_rules import Fuser, rename, split_fused
from vidslim.models.guards import check_config
from vidslim.models.vivit import ViViTConfig

_DEFAULTS: dict[str, Any] = dict(
    image_size=224, num_frames=32, tubelet_size=[2, 16, 16], num_channels=3, hidden_size=768, num_hidden_layers=12,
    num_attention_heads=12, intermediate_size=3072, hidden_act="gelu_fast", layer_norm_eps=1e-6, qkv_bias=True,
)
_FIELDS = {"embed_dim": "hidden_size", "depth": "num_hidden_layers", "num_heads": "num_attention_heads",
           "mlp_dim": "intermediate_size", "in_chans": "num_channels", "num_classes": "num_labels",
           "norm_eps": "layer_norm_eps", "patch_size": "tubelet_size[1]", "tubelet_size": "tubelet_size[0]"}
_CLASSIFIER, _BASE = "VivitForVideoClassification", "VivitModel"
_ACTS = {"gelu_fast": "gelu_tanh", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu"}


def vivit_config_from_hf(cfg: dict[str, Any], where: str = "config.json") -> ViViTConfig:
    """ViViTConfig from a VivitForVideoClassification or VivitModel config.json dict (sizes checked)."""
    c = {**_DEFAULTS, **cfg}
    base = _BASE in (cfg.get("architectures") or [])
    if base and cfg.get("pooler_act", "tanh") != "tanh":
        raise CheckpointError(f"{where}: pooler_act={cfg.get('pooler_act')!r} is not supported (vidslim's ViViT "
                              "pooler is tanh, as VivitModel's default)")
    tubelet = c["tubelet_size"]
    if not isinstance(tubelet, (list, tuple)) or len(tubelet) != 3 or tubelet[1] != tubelet[2]:
        raise CheckpointError(f"{where}: tubelet_size={tubelet!r} must be [t, p, p] (square patches)")
    if c["hidden_act"] not in _ACTS:
        raise CheckpointError(f"{where}: hidden_act={c['hidden_act']!r} is not supported ({', '.join(_ACTS)})")
    labels = cfg.get("id2label")
    num_classes = 0 if base else _int(cfg.get("num_labels", len(labels) if isinstance(labels, dict) else 2),
                                      "num_labels", where)
    hidden = _int(c["hidden_size"], "hidden_size", where)
    config = ViViTConfig(
        embed_dim=hidden,
        depth=_int(c["num_hidden_layers"], "num_hidden_layers", where),
        num_heads=_int(c["num_attention_heads"], "num_attention_heads", where),
        mlp_dim=_int(c["intermediate_size"], "intermediate_size", where),
        image_size=_square(c["image_size"], "image_size", where),
        patch_size=_int(tubelet[1], "tubelet_size[1]", where),
        num_frames=_int(c["num_frames"], "num_frames", where),
        tubelet_size=_int(tubelet[0], "tubelet_size[0]", where),
        in_chans=_int(c["num_channels"], "num_channels", where),
        qkv_bias=bool(c["qkv_bias"]),
        norm_eps=_float(c["layer_norm_eps"], "layer_norm_eps", where),
        act=_ACTS[c["hidden_act"]],
        num_classes=num_classes,
        pooler_dim=_int(cfg.get("pooler_output_size") or hidden, "pooler_output_size", where) if base else 0,
    )
    check_config(config, where, _FIELDS)
    return config


def vivit_config_to_hf(config: ViViTConfig) -> dict[str, Any]:
    """A config.json dict `VivitForVideoClassification` reads, or `VivitModel` for a model without a head."""
    names = config.class_names or tuple(f"LABEL_{i}" for i in range(config.num_classes))
    head = config.num_classes > 0
    base = {} if head else dict(pooler_output_size=config.pooler_dim or config.embed_dim, pooler_act="tanh")
    return dict(
        model_type="vivit", architectures=[_CLASSIFIER if head else _BASE], **base, hidden_size=config.embed_dim,
        num_hidden_layers=config.depth, num_attention_heads=config.num_heads, intermediate_size=config.mlp_dim,
        image_size=config.image_size, num_frames=config.num_frames,
        tubelet_size=[config.tubelet_size, config.patch_size, config.patch_size], num_channels=config.in_chans,
        qkv_bias=config.qkv_bias, layer_norm_eps=config.norm_eps,
        hidden_act="gelu_fast" if config.act == "gelu_tanh" else config.act,
        id2label={str(i): n for i, n in enumerate(names)}, label2id={n: i for i, n in enumerate(names)},
    )


_RENAMES: list[tuple[str, str]] = [
    (r"^vivit\.", ""),
    (r"^embeddings\.cls_token$", "cls_token"),
    (r"^embeddings\.position_embeddings$", "pos_embed"),
    (r"^embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"^(layers|encoder\.layer)\.", "blocks."),
    (r"\.attention\.o_proj\.", ".attn.proj."),
    (r"\.attention\.output\.dense\.", ".attn.proj."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),
    (r"\.layernorm_before\.", ".norm1."),
    (r"\.layernorm_after\.", ".norm2."),
    (r"^layernorm\.", "norm."),
    (r"^classifier\.", "head."),
]
_BACK: list[tuple[str, str]] = [
    (r"^blocks\.(\d+)\.attn\.qkv\.(weight|bias)$", r"vivit.layers.\1.attention.qkv.\2"),  # split below
    (r"^cls_token$", "vivit.embeddings.cls_token"),
    (r"^pos_embed$", "vivit.embeddings.position_embeddings"),
    (r"^patch_embed\.proj\.", "vivit.embeddings.patch_embeddings.projection."),
    (r"^blocks\.(\d+)\.attn\.proj\.", r"vivit.layers.\1.attention.o_proj."),
    (r"^blocks\.(\d+)\.norm1\.", r"vivit.layers.\1.layernorm_before."),
    (r"^blocks\.(\d+)\.norm2\.", r"vivit.layers.\1.layernorm_after."),
    (r"^blocks\.(\d+)\.mlp\.", r"vivit.layers.\1.mlp."),
    (r"^norm\.", "vivit.layernorm."),
    (r"^head\.", "classifier."),
]


def vivit_state_dict_from_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a VivitForVideoClassification state dict to vidslim names (fusing q/k/v)."""
    out: dict[str, Tensor] = {}
    qkv = Fuser(("q", "k", "v"))
    for key, value in state.items():
        name = rename(key, _RENAMES)
        m = re.match(r"^(blocks\.\d+\.)attention\.(?:attention\.)?(q|k|v|query|key|value)(?:_proj)?\.(weight|bias)$",
                     name)
        if m:
            qkv.add(f"{m.group(1)}attn.qkv.{m.group(3)}", m.group(2)[0], key, value)
            continue
        out[name] = value
    return qkv.into(out)


def vivit_state_dict_to_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """vidslim names -> the state dict of a VivitForVideoClassification in memory (q/k/v split again), or of a
    VivitModel for a model without a head: its encoder is `vivit.*` renamed without the prefix, as that class
    names it. A classifier's leftover pooler (a base model given num_classes=) is dropped: the classifier never
    reads it and VivitForVideoClassification has none."""
    head = "head.weight" in state
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith("reduction_modules.") or (head and key.startswith("pooler.")):
            continue
        if key.startswith("pooler.dense."):  # the base model's pooler: the same name in VivitModel
            out[key] = value
            continue
        name = rename(key, _BACK)
        if not head:
            name = name.removeprefix("vivit.")
        if name == key:
            raise CheckpointError(f"ViViT export: tensor {key!r} has no transformers name")
        if any(split_fused(name, value, f".attention.qkv.{param}", ("q", "k", "v"), f"{{}}.attention.{{}}_proj.{param}",
                           out, copy=True) for param in ("weight", "bias")):
            continue
        out[name] = value
    return out


__all__ = ["vivit_config_from_hf", "vivit_config_to_hf", "vivit_state_dict_from_hf", "vivit_state_dict_to_hf"]
