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

from vidslim._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "grey_out": "vidslim.viz.draw",
    "palette": "vidslim.viz.draw",
    "covered_map": "vidslim.viz.merge",
    "draw_merge_groups": "vidslim.viz.merge",
    "draw_model_merges": "vidslim.viz.merge",
    "group_map": "vidslim.viz.merge",
    "plot_speedup": "vidslim.viz.plot",
    "render_speedup": "vidslim.viz.plot",
    "draw_kept_tokens": "vidslim.viz.prune",
    "draw_model_pruning": "vidslim.viz.prune",
    "model_kept_tokens": "vidslim.viz.prune",
    "draw_token_mask": "vidslim.viz.rlt",
    "FORMATS": "vidslim.viz.save",
    "contact_sheet": "vidslim.viz.save",
    "save_frames": "vidslim.viz.save",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
