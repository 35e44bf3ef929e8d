"""vidslim: make video transformers fast by not spending compute on what a video repeats.

The public names are loaded lazily, so `import vidslim` stays light (torch and nothing heavier).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Clip": "vidslim.io.video",
    "VideoInfo": "vidslim.io.probe",
    "probe": "vidslim.io.probe",
    "read_video": "vidslim.io.video",
    "Tokens": "vidslim.tokens.packed",
    "create_model": "vidslim.models.registry",
    "load_model": "vidslim.models.loading",
    "list_models": "vidslim.models.registry",
    "save_model": "vidslim.models.loading",
    "RLT": "vidslim.tokenize.rlt",
    "RandomMask": "vidslim.tokenize.rlt",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vidslim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
