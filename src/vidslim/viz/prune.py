"""The SViTT node-sparsity figure: which tokens `TokenPrune` kept after each pruning layer, over the frames.

`draw_kept_tokens` greys out (`vidslim.viz.draw.grey_out`) every patch whose token was pruned and leaves kept
patches as they are (optionally with the RLT figure's `OUTLINE` on their inside edge). A video-ViT token is a
tubelet of `tubelet` frames, so its keep flag covers all of them; a CLIP token is one patch of one frame
(tubelet 1). The keep masks come from a traced TokenPrune (`prune.trace = True`; then `prune.kept[layer]` is
[B, t, h, w] per pruning layer); `draw_model_pruning` runs a model with its TokenPrune traced and draws them all.

    model = vs.create_model("videomae-b16", reduction=[vs.TokenPrune(layers=(3, 6, 9), keep=0.7)])
    drawn = draw_model_pruning(model, frames)     # {3: uint8 [T, H, W, 3], 6: ..., 9: ...}
    save_frames(torch.cat(list(drawn.values())), "svitt.png", columns=len(frames))
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vidslim.errors import ConfigError, TokenLayoutError
from vidslim.viz.draw import OUTLINE, grey_out, paint, patch_border
from vidslim.viz.merge import as_frames, frame_grid, model_layout, run_model
from vidslim.viz.rlt import to_pixels


def draw_kept_tokens(
    frames: Tensor | np.ndarray,
    keep: Tensor | np.ndarray,
    patch: int = 16,
    tubelet: int = 2,
    outline: bool = False,
) -> Tensor:
    """Grey out the pruned patches of a clip: uint8 [T, H, W, 3] -> a new uint8 [T, H, W, 3].

    keep: bool [t, h, w] over the token grid (True: the token survived), e.g. `prune.kept[layer][0]`.
    patch, tubelet: the model's cell size (video ViT: patch size and tubelet size; CLIP: patch size and 1).
    outline: draw `OUTLINE` on the inside edge of every kept patch.
    """
    frames = as_frames(frames, "draw_kept_tokens")
    keep = keep if isinstance(keep, Tensor) else torch.from_numpy(np.asarray(keep))
    grid = frame_grid(frames, patch, tubelet, "draw_kept_tokens")
    if keep.dtype != torch.bool or tuple(keep.shape) != grid:
        raise TokenLayoutError(
            f"draw_kept_tokens: keep must be bool {list(grid)} (the token grid of these frames with tubelet={tubelet}, "
            f"patch={patch}), got {keep.dtype} {list(keep.shape)}; pass one video's mask, e.g. prune.kept[layer][0]"
        )
    kept = to_pixels(keep.to(frames.device), tubelet, patch)  # [T, H, W]
    out = torch.where(kept[..., None], frames, grey_out(frames))
    if outline:
        border = patch_border(frames.shape[1], frames.shape[2], patch).to(frames.device)
        paint(out, kept & border, OUTLINE)
    return out


def pruning_reducer(model: nn.Module) -> Any:
    """The first reducer of `model.reduction` with a node-pruning trace (TokenPrune)."""
    found = next((r for r in getattr(model, "reduction", ()) if hasattr(r, "kept") and hasattr(r, "trace")), None)
    if found is None:
        raise ConfigError(
            "draw_model_pruning: the model has no TokenPrune; create it with reduction=[vs.TokenPrune(...)]"
        )
    return found


def model_kept_tokens(model: nn.Module, frames: Tensor | np.ndarray, reducer: Any = None) -> dict[int, Tensor]:
    """Run `model` on one uint8 clip [T, H, W, 3] with its TokenPrune traced: {layer: bool keep mask [t, h, w]}.

    reducer: which attached TokenPrune to trace (default: the first); its `trace` is switched on for this forward
    and restored after. Layers the forward never reached (CLIP's last block reads out CLS tokens only) are absent.
    """
    frames = as_frames(frames, "model_kept_tokens")
    reducer = pruning_reducer(model) if reducer is None else reducer
    before = reducer.trace
    reducer.trace, reducer.kept = True, {}
    try:
        run_model(model, frames)
    finally:
        reducer.trace = before
    return {layer: mask[0] for layer, mask in reducer.kept.items()}


def draw_model_pruning(
    model: nn.Module, frames: Tensor | np.ndarray, reducer: Any = None, outline: bool = False
) -> dict[int, Tensor]:
    """{pruning layer: the clip with that layer's pruned patches greyed out} for one uint8 clip [T, H, W, 3]."""
    frames = as_frames(frames, "draw_model_pruning")
    patch, tubelet, _ = model_layout(model)
    masks = model_kept_tokens(model, frames, reducer)
    return {layer: draw_kept_tokens(frames, mask, patch, tubelet, outline) for layer, mask in masks.items()}
