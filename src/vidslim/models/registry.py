"""Named model configs and `create_model` (randomly initialised; use `load_model` for pretrained weights).

vs.list_models()                          -> ['clip-b16', 'clip-b32', ..., 'videomae-tiny']
vs.create_model("videomae-b16", num_classes=400, reduction=[...], drop_path=0.1)
vs.create_model("clip-b16", vision_layers=2)     # any config field can be overridden by keyword
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Sequence
from typing import Any

from vidslim.errors import ConfigError
from vidslim.models.base import ReducibleModel, config_from_dict
from vidslim.models.clip import CLIP, ClipConfig
from vidslim.models.siglip import SigLIP, SiglipConfig
from vidslim.models.video_vit import VideoViT, VideoViTConfig
from vidslim.models.vivit import ViViT, ViViTConfig
from vidslim.models.vjepa2 import VJEPA2, VJEPA2Config
from vidslim.models.xclip import XCLIP, XClipConfig

#: name -> (model class, config class, config fields, one-line description)
_REGISTRY: dict[str, tuple[type[ReducibleModel], type, dict[str, Any], str]] = {
    "clip-b32": (CLIP, ClipConfig, dict(patch_size=32), "OpenAI CLIP ViT-B/32, 224 px, per-frame video encoder"),
    "clip-b16": (CLIP, ClipConfig, dict(patch_size=16), "OpenAI CLIP ViT-B/16, 224 px, per-frame video encoder"),
    "clip-l14": (
        CLIP,
        ClipConfig,
        dict(
            embed_dim=768,
            patch_size=14,
            vision_width=1024,
            vision_layers=24,
            vision_heads=16,
            vision_mlp_dim=4096,
            text_width=768,
            text_heads=12,
            text_mlp_dim=3072,
        ),
        "OpenAI CLIP ViT-L/14, 224 px, per-frame video encoder",
    ),
    "clip-tiny": (
        CLIP,
        ClipConfig,
        dict(
            embed_dim=32,
            image_size=32,
            patch_size=8,
            vision_width=64,
            vision_layers=2,
            vision_heads=2,
            vision_mlp_dim=256,
            text_width=64,
            text_heads=2,
            text_layers=2,
            text_mlp_dim=256,
            num_frames=4,
        ),
        "tiny random CLIP for tests: 32 px frames, 8 px patches, width 64, 2 layers (real 49408 vocabulary)",
    ),
    "videomae-s16": (
        VideoViT,
        VideoViTConfig,
        dict(embed_dim=384, depth=12, num_heads=6, mlp_dim=1536),
        "VideoMAE v2 ViT-S/16, 16x224x224, tubelet 2",
    ),
    "videomae-b16": (
        VideoViT,
        VideoViTConfig,
        dict(embed_dim=768, depth=12, num_heads=12, mlp_dim=3072),
        "VideoMAE v2 ViT-B/16, 16x224x224, tubelet 2",
    ),
    "videomae-l16": (
        VideoViT,
        VideoViTConfig,
        dict(embed_dim=1024, depth=24, num_heads=16, mlp_dim=4096),
        "VideoMAE v2 ViT-L/16, 16x224x224, tubelet 2",
    ),
    "videomae-h16": (
        VideoViT,
        VideoViTConfig,
        dict(embed_dim=1280, depth=32, num_heads=16, mlp_dim=5120),
        "VideoMAE v2 ViT-H/16, 16x224x224, tubelet 2",
    ),
    "videomae-tiny": (
        VideoViT,
        VideoViTConfig,
        dict(embed_dim=64, depth=2, num_heads=2, mlp_dim=256, image_size=32, num_frames=4, num_classes=10),
        "tiny random video ViT for tests: 4x32x32 input, width 64, 2 layers, 10 classes",
    ),
    "siglip-b16-224": (SigLIP, SiglipConfig, dict(), "SigLIP ViT-B/16, 224 px, per-frame video encoder (no CLS)"),
    "siglip2-b16-224": (
        SigLIP,
        SiglipConfig,
        dict(vocab_size=256000),
        "SigLIP 2 ViT-B/16, 224 px (fixed resolution, a SiglipModel), per-frame video encoder (no CLS)",
    ),
    "siglip-tiny": (
        SigLIP,
        SiglipConfig,
        dict(embed_dim=64, image_size=32, patch_size=8, vision_width=64, vision_layers=2, vision_heads=2,
             vision_mlp_dim=256, context_length=16, vocab_size=1000, text_width=64, text_heads=2, text_layers=2,
             text_mlp_dim=256, num_frames=4),
        "tiny random SigLIP for tests: 32 px frames, 8 px patches, width 64, 2 layers, 1000-token vocabulary",
    ),
    "vjepa2-vitl-256": (
        VJEPA2, VJEPA2Config, dict(embed_dim=1024, depth=24, num_heads=16, mlp_dim=4096),
        "V-JEPA 2 ViT-L, 16x256x256, tubelets 2x16x16, 3-D rotary positions (encoder; num_classes= adds the "
        "attentive classifier)",
    ),
    "vjepa2-vith-256": (
        VJEPA2, VJEPA2Config, dict(embed_dim=1280, depth=32, num_heads=16, mlp_dim=5120),
        "V-JEPA 2 ViT-H, 16x256x256, tubelets 2x16x16, 3-D rotary positions",
    ),
    "vjepa2-vitg-256": (
        VJEPA2, VJEPA2Config, dict(embed_dim=1408, depth=40, num_heads=22, mlp_dim=6144),
        "V-JEPA 2 ViT-g, 16x256x256, tubelets 2x16x16, 3-D rotary positions",
    ),
    "vjepa2-tiny": (
        VJEPA2, VJEPA2Config,
        dict(embed_dim=96, depth=2, num_heads=2, mlp_dim=192, image_size=32, num_frames=4, pooler_layers=1),
        "tiny random V-JEPA 2 for tests: 4x32x32 input, width 96, 2 layers",
    ),
    "vivit-b": (
        ViViT, ViViTConfig, dict(),
        "ViViT-B/16x2 (spatio-temporal attention), 32x224x224, tubelets 2x16x16, CLS token, Kinetics-400 head",
    ),
    "vivit-tiny": (
        ViViT, ViViTConfig,
        dict(embed_dim=64, depth=2, num_heads=2, mlp_dim=128, image_size=32, num_frames=4, num_classes=10),
        "tiny random ViViT for tests: 4x32x32 input, width 64, 2 layers, 10 classes",
    ),
    "xclip-b32": (
        XCLIP, XClipConfig, dict(patch_size=32),
        "X-CLIP B/32, 8x224x224: per-frame CLIP with message tokens, MIT, video-specific text prompts",
    ),
    "xclip-b16": (
        XCLIP, XClipConfig, dict(patch_size=16),
        "X-CLIP B/16, 8x224x224: per-frame CLIP with message tokens, MIT, video-specific text prompts",
    ),
    "xclip-tiny": (
        XCLIP, XClipConfig,
        dict(embed_dim=32, image_size=32, patch_size=8, vision_width=64, vision_layers=2, vision_heads=2,
             vision_mlp_dim=256, text_width=64, text_heads=2, text_layers=2, text_mlp_dim=256, mit_width=32,
             mit_heads=2, mit_mlp_dim=64, prompt_heads=2, num_frames=4),
        "tiny random X-CLIP for tests: 4x32x32 input, width 64, 2 layers (real 49408 vocabulary)",
    ),
}

#: model family (ReducibleModel.family) -> (model class, config class)
FAMILIES: dict[str, tuple[Callable[..., ReducibleModel], type]] = {
    "clip": (CLIP, ClipConfig),
    "siglip": (SigLIP, SiglipConfig),
    "video_vit": (VideoViT, VideoViTConfig),
    "vjepa2": (VJEPA2, VJEPA2Config),
    "vivit": (ViViT, ViViTConfig),
    "xclip": (XCLIP, XClipConfig),
}


def family_of(name: str) -> str | None:
    """The family ("clip", "video_vit") of a named model, or None when the name is not registered."""
    entry = _REGISTRY.get(name)
    if entry is None:
        return None
    return next(family for family, (model_cls, _) in FAMILIES.items() if model_cls is entry[0])


def list_models() -> list[str]:
    """Names `create_model` accepts, sorted."""
    return sorted(_REGISTRY)


def describe_models() -> dict[str, str]:
    """name -> one-line description, for `--help` texts and docs."""
    return {name: entry[3] for name, entry in sorted(_REGISTRY.items())}


def get_config(name: str, **overrides: Any) -> Any:
    """The config dataclass of a named model with `overrides` applied (unknown fields are a ConfigError)."""
    entry = _REGISTRY.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ConfigError(f"unknown model {name!r}{hint} Known models: {', '.join(list_models())}")
    _, config_cls, fields, _ = entry
    return config_from_dict(config_cls, {**fields, **overrides}, where=f"create_model({name!r})")


def spec_of_name(name: str, **overrides: Any) -> Any:
    """The `InputSpec` of a named model with config `overrides`, without building it."""
    config = get_config(name, **overrides)
    model_cls = next(m for m, c in FAMILIES.values() if isinstance(config, c))
    return model_cls.spec_of(config)  # type: ignore[attr-defined]


def build_model(config: Any, reduction: Sequence[object] | object | None = None) -> ReducibleModel:
    """Instantiate the model class that goes with a config dataclass."""
    for model_cls, config_cls in FAMILIES.values():
        if isinstance(config, config_cls):
            model = model_cls(config)
            model.set_reduction(reduction)
            return model
    raise ConfigError(f"no model family for config {type(config).__name__}")


def create_model(
    name: str,
    num_classes: int | None = None,
    reduction: Sequence[object] | object | None = None,
    **overrides: Any,
) -> ReducibleModel:
    """A randomly initialised model by name (see `list_models()`), in training mode.

    num_classes: classifier outputs (video ViT: default 400; CLIP: default none, it returns embeddings, and a
    value adds a linear head on the video embedding). reduction: reducer objects whose hooks run inside the
    model (None: the plain dense model). overrides: any config field, e.g. `vision_layers=2`, `num_frames=8`.
    """
    if num_classes is not None:
        overrides["num_classes"] = int(num_classes)
    config = get_config(name, **overrides)
    return build_model(config, reduction)


#: config fields that set how a model is run, not its architecture (a preset chosen for one size fits any of them)
RUN_FIELDS = frozenset({"num_frames", "image_size", "num_classes", "class_names", "drop_path", "dropout", "name"})


def registered_name_of(config: Any, family: str) -> str | None:
    """The registered model whose architecture `config` has (its fields equal outside `RUN_FIELDS`), or None: what a
    loaded checkpoint's reducer presets (TempMe's paper settings, ToMe's r) are looked up by."""

    def architecture(c: Any) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(c).items() if k not in RUN_FIELDS}

    want = architecture(config)
    for name in list_models():
        candidate = get_config(name)
        if family_of(name) == family and type(candidate) is type(config) and architecture(candidate) == want:
            return name
    return None


def config_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass."""
    return dataclasses.asdict(config)
