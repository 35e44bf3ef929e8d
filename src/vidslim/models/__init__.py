"""Models over packed tokens: ViT blocks with reducer hooks, a VideoMAE-layout video ViT, CLIP (vision + text),
a registry of named configs, and checkpoint loading (Hugging Face, OpenAI, VideoMAE v2, vidslim's own).

    model = create_model("videomae-b16", num_classes=400)      # random weights
    model = load_model("path/to/checkpoint", reduction=[...])   # local weights, never downloaded
    save_model(model, "out/my-model")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidslim._lazy import lazy_exports

if TYPE_CHECKING:  # the public names: what IDEs read; at run time each module is imported on first use
    from vidslim.models.base import ReducibleModel as ReducibleModel
    from vidslim.models.base import VideoTextModel as VideoTextModel
    from vidslim.models.checkpoint_read import read_checkpoint as read_checkpoint
    from vidslim.models.clip import CLIP as CLIP
    from vidslim.models.clip import ClipConfig as ClipConfig
    from vidslim.models.loading import load_model as load_model
    from vidslim.models.loading import save_model as save_model
    from vidslim.models.registry import create_model as create_model
    from vidslim.models.registry import describe_models as describe_models
    from vidslim.models.registry import list_models as list_models
    from vidslim.models.siglip import SigLIP as SigLIP
    from vidslim.models.siglip import SiglipConfig as SiglipConfig
    from vidslim.models.transformers_io import from_transformers as from_transformers
    from vidslim.models.transformers_io import to_transformers as to_transformers
    from vidslim.models.video_vit import VideoViT as VideoViT
    from vidslim.models.video_vit import VideoViTConfig as VideoViTConfig
    from vidslim.models.xclip import XCLIP as XCLIP
    from vidslim.models.xclip import XClipConfig as XClipConfig
    from vidslim.tokens.protocol import AttentionInfo as AttentionInfo
    from vidslim.tokens.protocol import HookContext as HookContext
    from vidslim.tokens.protocol import Reducer as Reducer

__getattr__, __dir__, __all__ = lazy_exports(__name__)
