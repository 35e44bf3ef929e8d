"""Models over packed tokens: ViT blocks with reducer hooks, a VideoMAE-layout video ViT, CLIP (vision + text),
a registry of named configs, and checkpoint loading (Hugging Face, OpenAI, VideoMAE v2, vidslim's own).

    model = create_model("videomae-b16", num_classes=400)      # random weights
    model = load_model("path/to/checkpoint", reduction=[...])   # local weights, never downloaded
    save_model(model, "out/my-model")
"""

from vidslim.models.base import ReducibleModel
from vidslim.models.clip import CLIP, ClipConfig
from vidslim.models.loading import load_model, read_checkpoint, save_model
from vidslim.models.registry import create_model, describe_models, list_models
from vidslim.models.video_vit import VideoViT, VideoViTConfig
from vidslim.tokens.protocol import AttentionInfo, HookContext, Reducer

__all__ = [
    "CLIP",
    "AttentionInfo",
    "ClipConfig",
    "HookContext",
    "Reducer",
    "ReducibleModel",
    "VideoViT",
    "VideoViTConfig",
    "create_model",
    "describe_models",
    "list_models",
    "load_model",
    "read_checkpoint",
    "save_model",
]
