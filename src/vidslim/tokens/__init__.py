"""Packed tokens and the geometry around them: patchify, unpatchify, footprints."""

from vidslim.tokens.packed import NO_POSITION, Tokens

__all__ = ["NO_POSITION", "Tokens"]
