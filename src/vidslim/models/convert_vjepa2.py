"""transformers' V-JEPA 2 (`VJEPA2Model`, `VJEPA2ForVideoClassification`) <-> vidslim's `VJEPA2`, both ways.

Config: hidden_size, num_hidden_layers, num_attention_heads, mlp_ratio (-> mlp_dim), crop_size, patch_size,
tubelet_size, in_chans, qkv_bias, layer_norm_eps, hidden_act, num_pooler_layers; a classifier's num_labels.
`frames_per_clip` (the pretraining length; it does not change the computation) is kept apart from the clip length
vidslim samples (`num_frames`, 16 unless given).

Weights: query/key/value are fused into `attn.qkv`, the pooler's key/value into `cross.kv`; the predictor's tensors
(`predictor.*`) are left out (see `vidslim.models.vjepa2`). Names with no counterpart pass through unchanged, so
strict loading reports them by their transformers name.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from torch import Tensor

from vidslim.errors import CheckpointError
from vidslim.models.convert_hf import _act, _float, _fuse, _int, _rename, _square
from vidslim.models.guards import check_config
from vidslim.models.vjepa2 import VJEPA2Config

logger = logging.getLogger(__name__)

_DEFAULTS: dict[str, Any] = dict(
    patch_size=16, crop_size=256, frames_per_clip=64, tubelet_size=2, hidden_size=1024, in_chans=3,
    num_attention_heads=16, num_hidden_layers=24, mlp_ratio=4.0, layer_norm_eps=1e-6, qkv_bias=True,
    hidden_act="gelu", num_pooler_layers=3,
)
_FIELDS = {"embed_dim": "hidden_size", "depth": "num_hidden_layers", "num_heads": "num_attention_heads",
           "mlp_dim": "mlp_ratio", "image_size": "crop_size", "in_chans": "in_chans", "num_classes": "num_labels",
           "pooler_layers": "num_pooler_layers", "norm_eps": "layer_norm_eps"}
_CLASSIFIER = "VJEPA2ForVideoClassification"


def vjepa2_config_from_hf(cfg: dict[str, Any], where: str = "config.json") -> VJEPA2Config:
    """VJEPA2Config from a V-JEPA 2 config.json dict; a classifier when `architectures` names one."""
    c = {**_DEFAULTS, **cfg}
    classifier = _CLASSIFIER in (cfg.get("architectures") or [])
    labels = cfg.get("id2label")
    num_classes = 0
    if classifier:
        num_classes = _int(cfg.get("num_labels", len(labels) if isinstance(labels, dict) else 2), "num_labels", where)
    width = _int(c["hidden_size"], "hidden_size", where)
    config = VJEPA2Config(
        embed_dim=width,
        depth=_int(c["num_hidden_layers"], "num_hidden_layers", where),
        num_heads=_int(c["num_attention_heads"], "num_attention_heads", where),
        mlp_dim=int(width * _float(c["mlp_ratio"], "mlp_ratio", where)),
        image_size=_int(c["crop_size"], "crop_size", where),
        patch_size=_square(c["patch_size"], "patch_size", where),
        tubelet_size=_int(c["tubelet_size"], "tubelet_size", where),
        in_chans=_int(c["in_chans"], "in_chans", where),
        qkv_bias=bool(c["qkv_bias"]),
        norm_eps=_float(c["layer_norm_eps"], "layer_norm_eps", where),
        act=_act(c["hidden_act"], where),
        num_classes=num_classes,
        pooler_layers=_int(c["num_pooler_layers"], "num_pooler_layers", where),
    )
    check_config(config, where, _FIELDS)
    return config


def vjepa2_config_to_hf(config: VJEPA2Config) -> dict[str, Any]:
    """A config.json dict transformers reads as the matching V-JEPA 2 class."""
    out: dict[str, Any] = dict(
        model_type="vjepa2",
        architectures=[_CLASSIFIER if config.num_classes > 0 else "VJEPA2Model"],
        hidden_size=config.embed_dim, num_hidden_layers=config.depth, num_attention_heads=config.num_heads,
        mlp_ratio=config.mlp_dim / config.embed_dim, crop_size=config.image_size, patch_size=config.patch_size,
        tubelet_size=config.tubelet_size, in_chans=config.in_chans, qkv_bias=config.qkv_bias,
        layer_norm_eps=config.norm_eps, hidden_act=config.act, num_pooler_layers=config.pooler_layers,
        frames_per_clip=config.num_frames,
    )
    if config.num_classes > 0:
        names = config.class_names or tuple(f"LABEL_{i}" for i in range(config.num_classes))
        out["id2label"] = {str(i): n for i, n in enumerate(names)}
        out["label2id"] = {n: i for i, n in enumerate(names)}
    return out


_RENAMES: list[tuple[str, str]] = [
    (r"^vjepa2\.", ""),
    (r"^encoder\.embeddings\.patch_embeddings\.proj\.", "patch_embed.proj."),
    (r"^encoder\.layer\.", "blocks."),
    (r"^encoder\.layernorm\.", "norm."),
    (r"\.attention\.proj\.", ".attn.proj."),
    (r"^pooler\.self_attention_layers\.(\d+)\.layer_norm1\.", r"pooler.blocks.\1.norm1."),
    (r"^pooler\.self_attention_layers\.(\d+)\.layer_norm2\.", r"pooler.blocks.\1.norm2."),
    (r"^pooler\.self_attention_layers\.(\d+)\.self_attn\.out_proj\.", r"pooler.blocks.\1.attn.proj."),
    (r"^pooler\.self_attention_layers\.", "pooler.blocks."),
    (r"^pooler\.cross_attention_layer\.layer_norm1\.", "pooler.cross.norm1."),
    (r"^pooler\.cross_attention_layer\.layer_norm2\.", "pooler.cross.norm2."),
    (r"^pooler\.cross_attention_layer\.cross_attn\.q_proj\.", "pooler.cross.q."),
    (r"^pooler\.cross_attention_layer\.", "pooler.cross."),
    (r"^pooler\.query_tokens$", "pooler.query_tokens"),
    (r"^classifier\.", "head."),
]


def vjepa2_state_dict_from_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a V-JEPA 2 state dict to vidslim names (fusing q/k/v and the pooler's k/v; predictor left out)."""
    out: dict[str, Tensor] = {}
    qkv: dict[str, dict[str, tuple[str, Tensor]]] = {}
    kv: dict[str, dict[str, tuple[str, Tensor]]] = {}
    dropped = 0
    for key, value in state.items():
        name = _rename(key, _RENAMES)
        if name.startswith("predictor."):
            dropped += 1
            continue
        if name == "pooler.query_tokens":
            out[name] = value.reshape(1, -1)
            continue
        m = re.match(r"^(.*\.)attention\.(query|key|value)\.(weight|bias)$", name) or re.match(
            r"^(pooler\.blocks\.\d+\.)self_attn\.([qkv])_proj\.(weight|bias)$", name)
        if m:
            qkv.setdefault(f"{m.group(1)}attn.qkv.{m.group(3)}", {})[m.group(2)[0]] = (key, value)
            continue
        m = re.match(r"^pooler\.cross\.cross_attn\.([kv])_proj\.(weight|bias)$", name)
        if m:
            kv.setdefault(f"pooler.cross.kv.{m.group(2)}", {})[m.group(1)] = (key, value)
            continue
        out[name] = value
    _fuse(qkv, ("q", "k", "v"), "", out)
    _fuse(kv, ("k", "v"), "", out)
    if dropped:
        logger.info("V-JEPA 2: %d predictor tensors left out (vidslim runs the encoder only)", dropped)
    return out


def vjepa2_state_dict_to_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """vidslim names -> the state dict of the transformers class `vjepa2_config_to_hf` names (a classifier when
    the state has a head; no predictor)."""
    prefix = "vjepa2." if "head.weight" in state else ""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith("reduction_modules."):
            continue
        if m := re.match(r"^blocks\.(\d+)\.(.*)$", key):
            i, rest = m.groups()
            base = f"{prefix}encoder.layer.{i}."
            if rest.startswith("attn.qkv."):
                for part, chunk in zip(("query", "key", "value"), value.chunk(3), strict=True):
                    out[f"{base}attention.{part}.{rest.rsplit('.', 1)[1]}"] = chunk.clone()
            else:
                out[base + rest.replace("attn.proj.", "attention.proj.")] = value
        elif key.startswith("patch_embed.proj."):
            out[f"{prefix}encoder.embeddings.patch_embeddings.proj.{key.rsplit('.', 1)[1]}"] = value
        elif key.startswith("norm."):
            out[f"{prefix}encoder.layernorm.{key.rsplit('.', 1)[1]}"] = value
        elif key == "pooler.query_tokens":
            out[key] = value.reshape(1, 1, -1)
        elif m := re.match(r"^pooler\.blocks\.(\d+)\.(.*)$", key):
            i, rest = m.groups()
            base = f"pooler.self_attention_layers.{i}."
            if rest.startswith("attn.qkv."):
                for part, chunk in zip("qkv", value.chunk(3), strict=True):
                    out[f"{base}self_attn.{part}_proj.{rest.rsplit('.', 1)[1]}"] = chunk.clone()
            else:
                rest = rest.replace("norm1.", "layer_norm1.").replace("norm2.", "layer_norm2.")
                out[base + rest.replace("attn.proj.", "self_attn.out_proj.")] = value
        elif m := re.match(r"^pooler\.cross\.(.*)$", key):
            rest, base = m.group(1), "pooler.cross_attention_layer."
            if rest.startswith("kv."):
                for part, chunk in zip("kv", value.chunk(2), strict=True):
                    out[f"{base}cross_attn.{part}_proj.{rest[3:]}"] = chunk.clone()
            elif rest.startswith("q."):
                out[f"{base}cross_attn.q_proj.{rest[2:]}"] = value
            else:
                out[base + rest.replace("norm1.", "layer_norm1.").replace("norm2.", "layer_norm2.")] = value
        elif key.startswith("head."):
            out["classifier." + key[5:]] = value
        else:
            raise CheckpointError(f"V-JEPA 2 export: tensor {key!r} has no transformers name")
    return out


__all__ = ["vjepa2_config_from_hf", "vjepa2_config_to_hf", "vjepa2_state_dict_from_hf", "vjepa2_state_dict_to_hf"]
