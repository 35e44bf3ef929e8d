"""Read a sentencepiece `spiece.model` (SigLIP's vocabulary) without the sentencepiece package.

A `.model` file is one protobuf `ModelProto`; vidslim needs only a few of its fields, read here straight from the
protobuf wire format (varints and length-prefixed records, no schema compiler):
- `pieces` (field 1): each piece's text (1), log-probability score (2) and type (3: normal, unknown, control,
  user-defined, unused, byte);
- `trainer_spec` (field 2): the model type (3; only Unigram, type 1, is read: SigLIP's is), `byte_fallback` (35)
  and the unknown piece's id (40);
- `normalizer_spec` (field 3): the precompiled character map (2; NFKC-style rules compiled into a trie, applied
  by `tokenizers.normalizers.Precompiled`), `add_dummy_prefix` (3), `remove_extra_whitespaces` (4).

From those, `spiece_tokenizer` builds the equivalent `tokenizers` pipeline: the character map, runs of spaces
collapsed and ends stripped (when `remove_extra_whitespaces`), spaces shown as "▁" with one in front of the text
(the dummy prefix), words split at each "▁", and the Unigram model (best segmentation by total score) over the
same pieces with the same ids. This is the conversion transformers uses for T5-style vocabularies.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import Unigram

from vidslim.errors import CheckpointError

UNIGRAM = 1
CONTROL, USER_DEFINED = 3, 4


@dataclass
class SpieceModel:
    """The fields of a sentencepiece model that the tokenizer needs (see the module docstring)."""

    pieces: list[tuple[str, float, int]] = field(default_factory=list)  # (text, score, type)
    model_type: int = UNIGRAM
    byte_fallback: bool = False
    unk_id: int = 0
    charsmap: bytes = b""
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True

    def id_of(self, piece: str) -> int | None:
        return next((i for i, (text, _, _) in enumerate(self.pieces) if text == piece), None)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of one protobuf message: ints for varints, bytes for the other wire types."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError("truncated record")
            yield number, buf[pos : pos + size]
            pos += size
        elif wire in (1, 5):  # fixed64 / fixed32
            width = 8 if wire == 1 else 4
            if pos + width > len(buf):
                raise ValueError("truncated fixed-width field")
            yield number, buf[pos : pos + width]
            pos += width
        else:
            raise ValueError(f"unsupported wire type {wire}")


def parse_spiece(data: bytes) -> SpieceModel:
    """The needed fields of a serialized `ModelProto` (ValueError when the bytes are not one)."""
    model = SpieceModel()
    for number, value in _fields(data):
        if number == 1 and isinstance(value, bytes):
            text, score, kind = "", 0.0, 1
            for n, v in _fields(value):
                if n == 1 and isinstance(v, bytes):
                    text = v.decode("utf-8")
                elif n == 2 and isinstance(v, bytes) and len(v) == 4:
                    score = struct.unpack("<f", v)[0]
                elif n == 3 and isinstance(v, int):
                    kind = v
            model.pieces.append((text, score, kind))
        elif number == 2 and isinstance(value, bytes):
            for n, v in _fields(value):
                if n == 3 and isinstance(v, int):
                    model.model_type = v
                elif n == 35 and isinstance(v, int):
                    model.byte_fallback = bool(v)
                elif n == 40 and isinstance(v, int):
                    model.unk_id = v
        elif number == 3 and isinstance(value, bytes):
            for n, v in _fields(value):
                if n == 2 and isinstance(v, bytes):
                    model.charsmap = v
                elif n == 3 and isinstance(v, int):
                    model.add_dummy_prefix = bool(v)
                elif n == 4 and isinstance(v, int):
                    model.remove_extra_whitespaces = bool(v)
    if not model.pieces:
        raise ValueError("no vocabulary pieces")
    return model


def read_spiece(path: str | Path) -> SpieceModel:
    """Parse a `spiece.model` file; a CheckpointError names the file when it is missing or not a Unigram model."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found; copy spiece.model from the SigLIP model's folder")
    try:
        model = parse_spiece(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: not a sentencepiece model ({error})") from error
    if model.model_type != UNIGRAM:
        raise CheckpointError(f"{path}: a sentencepiece model of type {model.model_type}, vidslim reads Unigram (1) "
                              "only; convert it once with transformers (save_pretrained writes tokenizer.json)")
    if not 0 <= model.unk_id < len(model.pieces):
        raise CheckpointError(f"{path}: unknown-piece id {model.unk_id} outside the {len(model.pieces)} pieces")
    return model


def spiece_tokenizer(model: SpieceModel) -> Tokenizer:
    """The `tokenizers` pipeline equal to sentencepiece's encoding with this model (see the module docstring)."""
    tokenizer = Tokenizer(Unigram([(text, score) for text, score, _ in model.pieces], unk_id=model.unk_id,
                                  byte_fallback=model.byte_fallback))
    steps: list[normalizers.Normalizer] = []
    if model.charsmap:
        steps.append(normalizers.Precompiled(model.charsmap))
    if model.remove_extra_whitespaces:
        steps += [normalizers.Replace(Regex(" {2,}"), " "), normalizers.Strip()]
    if steps:
        tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="always" if model.add_dummy_prefix else "never")
    # control pieces (</s>, <pad>) are matched whole in text with the spaces around them, as transformers does
    tokenizer.add_special_tokens([AddedToken(text, special=True, lstrip=True, rstrip=True, normalized=False)
                                  for text, _, kind in model.pieces if kind == CONTROL])
    return tokenizer


__all__ = ["SpieceModel", "parse_spiece", "read_spiece", "spiece_tokenizer"]
