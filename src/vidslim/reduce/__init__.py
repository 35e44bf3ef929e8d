"""Inside-the-model reducers: ToMe, TempMe (ImgMe / ClipMe), SViTT node pruning, their schedules, and the one
registry of every reducer (`registry`: names, classes, where each acts, families, presets, settable parameters).

    from vidslim.reduce import ToMe, TempMe, build_reduction
    reducers = build_reduction("rlt+tempme", "clip-b16")

Names load lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidslim._lazy import lazy_exports

if TYPE_CHECKING:  # the public names: what IDEs read; at run time each module is imported on first use
    from vidslim.reduce.cards import reduction_card as reduction_card
    from vidslim.reduce.curriculum import Curriculum as Curriculum
    from vidslim.reduce.curriculum import CurriculumStage as CurriculumStage
    from vidslim.reduce.curriculum import apply_stage as apply_stage
    from vidslim.reduce.registry import REDUCERS as REDUCERS
    from vidslim.reduce.registry import ReducerEntry as ReducerEntry
    from vidslim.reduce.registry import build_reduction as build_reduction
    from vidslim.reduce.registry import register_reducer as register_reducer
    from vidslim.reduce.sources import SourceMap as SourceMap
    from vidslim.reduce.svitt_prune import TextGuidedPrune as TextGuidedPrune
    from vidslim.reduce.svitt_prune import TokenPrune as TokenPrune
    from vidslim.reduce.tempme import TempMe as TempMe
    from vidslim.reduce.tome import ToMe as ToMe

__getattr__, __dir__, __all__ = lazy_exports(__name__)
