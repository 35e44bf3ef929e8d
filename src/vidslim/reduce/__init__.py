"""Inside-the-model reducers: ToMe, TempMe (ImgMe / ClipMe), SViTT node pruning, their schedules, and the one
registry of every reducer (`registry`: names, classes, where each acts, families, presets, settable parameters).

    from vidslim.reduce import ToMe, TempMe, build_reduction
    reducers = build_reduction("rlt+tempme", "clip-b16")

Names load lazily.
"""

from __future__ import annotations

from vidslim._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "ToMe": "vidslim.reduce.tome",
    "TempMe": "vidslim.reduce.tempme",
    "TokenPrune": "vidslim.reduce.svitt_prune",
    "TextGuidedPrune": "vidslim.reduce.svitt_prune",
    "Curriculum": "vidslim.reduce.curriculum",
    "CurriculumStage": "vidslim.reduce.curriculum",
    "apply_stage": "vidslim.reduce.curriculum",
    "SourceMap": "vidslim.reduce.sources",
    "REDUCERS": "vidslim.reduce.registry",
    "ReducerEntry": "vidslim.reduce.registry",
    "build_reduction": "vidslim.reduce.registry",
    "register_reducer": "vidslim.reduce.registry",
    "reduction_card": "vidslim.reduce.cards",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
