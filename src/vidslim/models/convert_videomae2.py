"""VideoMAE v2 checkpoints (the `.pth` files of the VideoMAE v2 and RLT releases) -> a VideoViTConfig.

These files already use vidslim's names (`patch_embed.proj`, `blocks.{i}.attn.qkv.weight`, `q_bias`, ...,
`fc_norm`, `head`), possibly wrapped in `{"module": ...}` / `{"model": ...}` / `{"state_dict": ...}` and prefixed
with `module.`, `model.`, `backbone.` or `encoder.`. The widths and depths come from tensor shapes; the head count
from the standard sizes (S 384/6, B 768/12, L 1024/16, H 1280/16, g 1408/16); the input size is not stored, so
224 px / 16 frames is assumed unless `image_size=` / `num_frames=` are given to `load_model`. A pre-training
encoder's final `norm` is read as `fc_norm`, as the RLT release does when it fine-tunes from one (spec rlt §4.5).
"""

from __future__ import annotations

import logging
import re

from torch import Tensor

from vidslim.errors import CheckpointError
from vidslim.models.video_vit import VideoViTConfig

logger = logging.getLogger(__name__)

#: embed_dim -> heads of the released VideoMAE v2 sizes (head dim 64, except ViT-H and ViT-g)
STANDARD_HEADS = {384: 6, 768: 12, 1024: 16, 1280: 16, 1408: 16}
_PREFIXES = ("module.", "model.", "backbone.", "encoder.")


def is_videomae2(state: dict[str, Tensor]) -> bool:
    """True for a state dict with VideoMAE v2 names (after `strip_prefixes`)."""
    return "patch_embed.proj.weight" in state and state["patch_embed.proj.weight"].dim() == 5


def strip_prefixes(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Remove wrapper prefixes (`module.`, `model.`, `backbone.`, `encoder.`) shared by every parameter key."""
    changed = True
    while changed and state:
        changed = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                changed = True
    return state


def videomae2_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Map a pre-training encoder's `norm` to `fc_norm` when there is no fc_norm; other names stay as they are."""
    if "fc_norm.weight" not in state and "norm.weight" in state:
        logger.warning(
            "checkpoint has no fc_norm: using its final encoder norm as fc_norm (as VideoMAE fine-tuning does)"
        )
        state = {("fc_" + k if k.startswith("norm.") else k): v for k, v in state.items()}
    return state


def videomae2_config(
    state: dict[str, Tensor], where: str = "checkpoint", image_size: int = 224, num_frames: int = 16
) -> VideoViTConfig:
    """Infer the VideoViTConfig of a VideoMAE v2 state dict from its tensor shapes."""
    if not is_videomae2(state):
        raise CheckpointError(f"{where}: not a VideoMAE v2 state dict (no 5-D patch_embed.proj.weight)")
    proj = state["patch_embed.proj.weight"]
    fc1 = state.get("blocks.0.mlp.fc1.weight")
    if 0 in proj.shape or fc1 is None or fc1.dim() != 2 or 0 in fc1.shape:
        shape = None if fc1 is None else tuple(fc1.shape)
        raise CheckpointError(
            f"{where}: patch_embed.proj.weight {tuple(proj.shape)} / blocks.0.mlp.fc1.weight {shape}: "
            "a VideoMAE v2 state dict has both, non-empty (fc1 2-D)"
        )
    dim, chans, tubelet, patch = proj.shape[0], proj.shape[1], proj.shape[2], proj.shape[3]
    depth = len({m.group(1) for k in state if (m := re.match(r"^blocks\.(\d+)\.attn\.qkv\.weight$", k))})
    if depth == 0:
        raise CheckpointError(f"{where}: no blocks.{{i}}.attn.qkv.weight tensors found")
    head = state.get("head.weight")
    learned = "pos_embed" in state
    for key, value in (("head.weight", head), ("pos_embed", state.get("pos_embed"))):
        if value is not None and value.dim() < 2:
            raise CheckpointError(f"{where}: {key} has shape {tuple(value.shape)}; a VideoMAE v2 one is at least 2-D")
    if learned:
        n = state["pos_embed"].shape[-2]
        side = image_size // patch
        if n % (side * side):
            raise CheckpointError(
                f"{where}: learned pos_embed of {n} rows does not fit {image_size}px input; pass image_size="
            )
        num_frames = (n // (side * side)) * tubelet
    return VideoViTConfig(
        embed_dim=dim,
        depth=depth,
        num_heads=STANDARD_HEADS.get(dim, max(dim // 64, 1)),
        mlp_dim=fc1.shape[0],
        image_size=image_size,
        patch_size=patch,
        num_frames=num_frames,
        tubelet_size=tubelet,
        in_chans=chans,
        num_classes=head.shape[0] if head is not None else 0,
        qkv_bias="blocks.0.attn.q_bias" in state,
        learned_pos=learned,
    )
