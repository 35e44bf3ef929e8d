"""Pictures of what a reducer dropped or merged, drawn over the frames, saved as PNG, GIF or MP4.

    from vidslim.viz import draw_token_mask, save_frames
    drawn = draw_token_mask(clip.frames, mask, lengths, tubelet=2, patch=16)   # uint8 [T, H, W, 3]
    save_frames(drawn, "rlt.png", title="RLT, tau 0.1")                       # or .gif / .mp4

`draw.py` holds the exact pixel operations (greying, outlines, number labels), `save.py` the writers, and one
file per method draws its figure (`rlt.py`: RLT, random masking and dense, which all give a keep mask).
"""

from __future__ import annotations

from vidslim.viz.draw import grey_out
from vidslim.viz.rlt import draw_token_mask
from vidslim.viz.save import FORMATS, contact_sheet, save_frames

__all__ = ["FORMATS", "contact_sheet", "draw_token_mask", "grey_out", "save_frames"]
