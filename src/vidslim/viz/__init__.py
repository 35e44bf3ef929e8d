"""Pictures of what a reducer dropped or merged, drawn over the frames, saved as PNG, GIF or MP4.

    from vidslim.viz import draw_token_mask, save_frames
    drawn = draw_token_mask(clip.frames, mask, lengths, tubelet=2, patch=16)   # uint8 [T, H, W, 3]
    save_frames(drawn, "rlt.png", title="RLT, tau 0.1")                       # or .gif / .mp4

`draw.py` holds the exact pixel operations (greying, outlines, number labels, palette, blending), `save.py` the
writers, and one file per method draws its figure: `rlt.py` (RLT, random masking and dense, which all give a keep
mask), `merge.py` (ToMe / TempMe merge groups as colour regions, from a traced `SourceMap`), `prune.py` (the
tokens SViTT's `TokenPrune` kept after each pruning layer); `plot.py` plots speedup against kept tokens.

    drawn = draw_model_merges(model, frames)            # a CLIP with TempMe / ToMe: merge groups in colour
    drawn = draw_model_pruning(model, frames)[3]        # a model with TokenPrune: pruned patches greyed
    plot_speedup([("RLT", 0.6, 1.5), ("TempMe", 0.35, 2.1)], "speedup.png")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidslim._lazy import lazy_exports

if TYPE_CHECKING:  # the public names: what IDEs read; at run time each module is imported on first use
    from vidslim.viz.draw import grey_out as grey_out
    from vidslim.viz.draw import palette as palette
    from vidslim.viz.merge import covered_map as covered_map
    from vidslim.viz.merge import draw_merge_groups as draw_merge_groups
    from vidslim.viz.merge import draw_model_merges as draw_model_merges
    from vidslim.viz.merge import group_map as group_map
    from vidslim.viz.plot import plot_speedup as plot_speedup
    from vidslim.viz.plot import render_speedup as render_speedup
    from vidslim.viz.prune import draw_kept_tokens as draw_kept_tokens
    from vidslim.viz.prune import draw_model_pruning as draw_model_pruning
    from vidslim.viz.prune import model_kept_tokens as model_kept_tokens
    from vidslim.viz.rlt import draw_token_mask as draw_token_mask
    from vidslim.viz.save import FORMATS as FORMATS
    from vidslim.viz.save import contact_sheet as contact_sheet
    from vidslim.viz.save import save_frames as save_frames

__getattr__, __dir__, __all__ = lazy_exports(__name__)
