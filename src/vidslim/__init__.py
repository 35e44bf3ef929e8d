"""vidslim: make video transformers fast by not spending compute on what a video repeats.

The public names are loaded lazily, so `import vidslim` stays light (torch and nothing heavier).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidslim._lazy import lazy_exports

__version__ = "0.1.0"

if TYPE_CHECKING:  # the public names: what IDEs read; at run time each module is imported on first use
    from vidslim._jobs_api import embed_videos as embed_videos
    from vidslim.attention.svitt import SparseAttention as SparseAttention
    from vidslim.attention.svitt_pattern import attention_density as attention_density
    from vidslim.bench.tune import tune as tune
    from vidslim.export.api import export_model as export_model
    from vidslim.io.input_spec import InputSpec as InputSpec
    from vidslim.io.probe import VideoInfo as VideoInfo
    from vidslim.io.probe import probe as probe
    from vidslim.io.video import Clip as Clip
    from vidslim.io.video import read_video as read_video
    from vidslim.jobs.classify import classify_videos as classify_videos
    from vidslim.jobs.search import VideoIndex as VideoIndex
    from vidslim.models.base import ReducibleModel as ReducibleModel
    from vidslim.models.cross_modal import CrossModalConfig as CrossModalConfig
    from vidslim.models.cross_modal import CrossModalEncoder as CrossModalEncoder
    from vidslim.models.loading import load_model as load_model
    from vidslim.models.loading import save_model as save_model
    from vidslim.models.lora import add_lora as add_lora
    from vidslim.models.lora import merge_lora as merge_lora
    from vidslim.models.registry import create_model as create_model
    from vidslim.models.registry import list_models as list_models
    from vidslim.models.transformers_io import from_transformers as from_transformers
    from vidslim.models.transformers_io import to_transformers as to_transformers
    from vidslim.reduce.curriculum import Curriculum as Curriculum
    from vidslim.reduce.curriculum import CurriculumStage as CurriculumStage
    from vidslim.reduce.curriculum import apply_stage as apply_stage
    from vidslim.reduce.curriculum import load_curriculum as load_curriculum
    from vidslim.reduce.registry import build_reduction as build_reduction
    from vidslim.reduce.registry import register_reducer as register_reducer
    from vidslim.reduce.svitt_prune import TextGuidedPrune as TextGuidedPrune
    from vidslim.reduce.svitt_prune import TokenPrune as TokenPrune
    from vidslim.reduce.tempme import TempMe as TempMe
    from vidslim.reduce.tome import ToMe as ToMe
    from vidslim.tokenize.rlt import RLT as RLT
    from vidslim.tokenize.rlt import RandomMask as RandomMask
    from vidslim.tokenize.rlt_budget import RLTBudget as RLTBudget
    from vidslim.tokens.packed import Tokens as Tokens
    from vidslim.tokens.selection import Selection as Selection

__getattr__, __dir__, _public = lazy_exports(__name__)
__all__ = ["__version__", *_public]
