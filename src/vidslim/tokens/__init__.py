"""Packed tokens and the geometry around them: patchify, unpatchify, footprints."""

from __future__ import annotations

from vidslim._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "NO_POSITION": "vidslim.tokens.packed",
    "Tokens": "vidslim.tokens.packed",
    "flat_index": "vidslim.tokens.patchify",
    "grid_positions": "vidslim.tokens.patchify",
    "patchify": "vidslim.tokens.patchify",
    "unpatchify": "vidslim.tokens.patchify",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
