"""Packed tokens and the geometry around them: patchify, unpatchify, footprints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidslim._lazy import lazy_exports

if TYPE_CHECKING:  # the public names: what IDEs read; at run time each module is imported on first use
    from vidslim.tokens.packed import NO_POSITION as NO_POSITION
    from vidslim.tokens.packed import Tokens as Tokens
    from vidslim.tokens.patchify import flat_index as flat_index
    from vidslim.tokens.patchify import grid_positions as grid_positions
    from vidslim.tokens.patchify import patchify as patchify
    from vidslim.tokens.patchify import unpatchify as unpatchify

__getattr__, __dir__, __all__ = lazy_exports(__name__)
