"""The RLT figure: which tubelets of a clip became tokens, drawn over its frames.

`draw_token_mask` draws what the paper's Figure 1 shows. Tubelets a method dropped are greyed out
(`vidslim.viz.draw.grey_out`: desaturated and dimmed); kept tubelets keep their colours and get a one-pixel
`OUTLINE` on the inside edge of each patch, in every frame of the tubelet; a kept tubelet that stands for a run
of more than one tubelet carries its run length (in tubelets) as a number in its top-left corner. The drawing is
vectorised over the whole clip (pixel-level masks and one gather of label stamps), with no loop over tokens.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from vidslim.errors import TokenLayoutError
from vidslim.viz.draw import BOX, LABEL_BOX, LABEL_TEXT, OUTLINE, TEXT, grey_out, number_stamps, paint, patch_border


def _as_tensor(array: Tensor | np.ndarray) -> Tensor:
    return array if isinstance(array, Tensor) else torch.from_numpy(np.asarray(array))


def _check(frames: Tensor, mask: Tensor, lengths: Tensor | None, tubelet: int, patch: int) -> None:
    """Shapes must line up: frames [T, H, W, 3] uint8 = mask [T', H', W'] x (tubelet, patch, patch)."""
    if frames.dim() != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
        raise TokenLayoutError(f"draw_token_mask: frames must be uint8 [T, H, W, 3], got {frames.dtype} "
                               f"{tuple(frames.shape)}")
    if mask.dim() != 3 or mask.dtype != torch.bool:
        raise TokenLayoutError(f"draw_token_mask: mask must be bool [T', H', W'], got {mask.dtype} "
                               f"{tuple(mask.shape)}")
    expected = (mask.shape[0] * tubelet, mask.shape[1] * patch, mask.shape[2] * patch)
    if tuple(frames.shape[:3]) != expected:
        raise TokenLayoutError(
            f"draw_token_mask: a mask of {tuple(mask.shape)} tubelets of {tubelet}x{patch}x{patch} covers frames "
            f"[{expected[0]}, {expected[1]}, {expected[2]}, 3], got frames {tuple(frames.shape)}; pass the frames "
            f"the mask was computed on, and the same tubelet and patch"
        )
    if lengths is not None and tuple(lengths.shape) != tuple(mask.shape):
        raise TokenLayoutError(f"draw_token_mask: lengths must have the mask's shape {tuple(mask.shape)}, got "
                               f"{tuple(lengths.shape)}")


def to_pixels(grid: Tensor, tubelet: int, patch: int) -> Tensor:
    """Repeat a per-tubelet map [T', H', W'] to a per-pixel map [T'·tubelet, H'·patch, W'·patch]."""
    return grid.repeat_interleave(tubelet, 0).repeat_interleave(patch, 1).repeat_interleave(patch, 2)


def draw_token_mask(
    frames: Tensor | np.ndarray,
    mask: Tensor | np.ndarray,
    lengths: Tensor | np.ndarray | None = None,
    tubelet: int = 2,
    patch: int = 16,
) -> Tensor:
    """Draw a keep mask over its clip: uint8 [T, H, W, 3] -> a new uint8 [T, H, W, 3] tensor.

    frames: the clip the mask was computed on. mask: bool [T', H', W'], True = the tubelet is a token.
    lengths: run lengths [T', H', W'] (e.g. `vidslim.tokenize.run_length.run_length_map(mask[None])[0]`), or
    None for no labels. A window batch [B, T, ...] with masks [B, T', ...] can be drawn in one call by
    flattening both leading dimensions, since each clip's frames stay with its own slots.
    """
    frames = _as_tensor(frames)
    mask = _as_tensor(mask)
    lengths = None if lengths is None else _as_tensor(lengths)
    _check(frames, mask, lengths, tubelet, patch)
    kept = to_pixels(mask, tubelet, patch)  # [T, H, W]
    out = torch.where(kept[..., None], frames, grey_out(frames))
    border = patch_border(frames.shape[1], frames.shape[2], patch).to(frames.device)
    paint(out, kept & border, OUTLINE)
    if lengths is not None and mask.any():
        value = torch.where(mask, lengths.long(), torch.zeros_like(lengths, dtype=torch.long)).clamp(min=0)
        stamps = number_stamps(int(value.max()), patch).to(frames.device)
        cells = stamps[value]  # [T', H', W', p, p]
        t, h, w = mask.shape
        codes = cells.permute(0, 1, 3, 2, 4).reshape(t, h * patch, w * patch).repeat_interleave(tubelet, 0)
        paint(out, codes == BOX, LABEL_BOX)
        paint(out, codes == TEXT, LABEL_TEXT)
    return out
