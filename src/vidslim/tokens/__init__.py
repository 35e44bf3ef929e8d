"""Packed tokens and the geometry around them: patchify, unpatchify, footprints."""

from vidslim.tokens.packed import NO_POSITION, Tokens
from vidslim.tokens.patchify import flat_index, grid_positions, patchify, unpatchify

__all__ = ["NO_POSITION", "Tokens", "flat_index", "grid_positions", "patchify", "unpatchify"]
