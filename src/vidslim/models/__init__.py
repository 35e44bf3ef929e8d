"""Models over packed tokens: ViT blocks with reducer hooks, a VideoMAE-layout video ViT, CLIP (vision + text),
a registry of named configs, and checkpoint loading (Hugging Face, OpenAI, VideoMAE v2, vidslim's own).

    model = create_model("videomae-b16", num_classes=400)      # random weights
    model = load_model("path/to/checkpoint", reduction=[...])   # local weights, never downloaded
    save_model(model, "out/my-model")
"""

from __future__ import annotations

from vidslim._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "ReducibleModel": "vidslim.models.base",
    "VideoTextModel": "vidslim.models.base",
    "CLIP": "vidslim.models.clip",
    "ClipConfig": "vidslim.models.clip",
    "load_model": "vidslim.models.loading",
    "read_checkpoint": "vidslim.models.checkpoint_read",
    "save_model": "vidslim.models.loading",
    "from_transformers": "vidslim.models.transformers_io",
    "to_transformers": "vidslim.models.transformers_io",
    "create_model": "vidslim.models.registry",
    "describe_models": "vidslim.models.registry",
    "list_models": "vidslim.models.registry",
    "SigLIP": "vidslim.models.siglip",
    "SiglipConfig": "vidslim.models.siglip",
    "VideoViT": "vidslim.models.video_vit",
    "VideoViTConfig": "vidslim.models.video_vit",
    "XCLIP": "vidslim.models.xclip",
    "XClipConfig": "vidslim.models.xclip",
    "AttentionInfo": "vidslim.tokens.protocol",
    "HookContext": "vidslim.tokens.protocol",
    "Reducer": "vidslim.tokens.protocol",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
