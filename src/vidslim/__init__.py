"""vidslim: make video transformers fast by not spending compute on what a video repeats.

The public names are loaded lazily, so `import vidslim` stays light (torch and nothing heavier).
"""

from __future__ import annotations

from vidslim._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Clip": "vidslim.io.video",
    "VideoInfo": "vidslim.io.probe",
    "probe": "vidslim.io.probe",
    "read_video": "vidslim.io.video",
    "Tokens": "vidslim.tokens.packed",
    "InputSpec": "vidslim.io.input_spec",
    "Selection": "vidslim.tokens.selection",
    "ReducibleModel": "vidslim.models.base",
    "build_reduction": "vidslim.reduce.registry",
    "register_reducer": "vidslim.reduce.registry",
    "create_model": "vidslim.models.registry",
    "load_model": "vidslim.models.loading",
    "list_models": "vidslim.models.registry",
    "save_model": "vidslim.models.loading",
    "from_transformers": "vidslim.models.transformers_io",
    "to_transformers": "vidslim.models.transformers_io",
    "RLT": "vidslim.tokenize.rlt",
    "RandomMask": "vidslim.tokenize.rlt",
    "RLTBudget": "vidslim.tokenize.rlt_budget",
    "export_model": "vidslim.export.api",
    "ToMe": "vidslim.reduce.tome",
    "TempMe": "vidslim.reduce.tempme",
    "add_lora": "vidslim.models.lora",
    "merge_lora": "vidslim.models.lora",
    "SparseAttention": "vidslim.attention.svitt",
    "attention_density": "vidslim.attention.svitt_pattern",
    "TokenPrune": "vidslim.reduce.svitt_prune",
    "TextGuidedPrune": "vidslim.reduce.svitt_prune",
    "CrossModalEncoder": "vidslim.models.cross_modal",
    "CrossModalConfig": "vidslim.models.cross_modal",
    "Curriculum": "vidslim.reduce.curriculum",
    "CurriculumStage": "vidslim.reduce.curriculum",
    "apply_stage": "vidslim.reduce.curriculum",
    "load_curriculum": "vidslim.reduce.curriculum",
    "embed_videos": "vidslim.jobs.embed",
    "VideoIndex": "vidslim.jobs.search",
    "classify_videos": "vidslim.jobs.classify",
    "tune": "vidslim.bench.tune",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
