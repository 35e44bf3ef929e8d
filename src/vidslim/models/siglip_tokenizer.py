"""The SigLIP and SigLIP 2 text tokenizers, read from local files only, with the ids transformers gives.

SigLIP's text tower pools the last position of a fixed-length sequence, so the ids must be laid out exactly as in
training: every text padded to the model's context length (64 for the released models; the processor's
`padding="max_length", max_length=64`). Two vocabularies exist, told apart by their special tokens:

- SigLIP (T5-style sentencepiece, "</s>"): the text is canonicalised first (transformers' `SiglipTokenizer`,
  after big_vision: lowercase, ASCII punctuation removed, runs of whitespace -> one space, ends stripped), then
  split by the Unigram model; "</s>" is appended (kept when the text is cut to fit), and "</s>" also pads, on the
  right. Hub folders ship `spiece.model`, read here without the sentencepiece package
  (`vidslim.models.siglip_spiece`); a `tokenizer.json` holding the same vocabulary works too.
- SigLIP 2 (Gemma's `tokenizer.json`, "<eos>" / "<pad>"): the file's own pipeline (normaliser, BPE, the special
  tokens its post-processor adds) with lowercasing in front, as transformers' `Siglip2Tokenizer` does (the model
  was trained on lowercased text); cut to the context length, padded with "<pad>".

The padding side comes from `tokenizer_config.json` when the folder has one (`padding_side`), else transformers'
default for the vocabulary: right for SigLIP, left for SigLIP 2 (Gemma). Nothing is downloaded.

One known difference from transformers: a special token typed inside a caption ("a </s> dog") is matched whole
by both, but the word after it starts with "▁" here and without it in transformers' SiglipTokenizer.
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tokenizers import Regex, Tokenizer, normalizers

from vidslim.errors import CheckpointError, ConfigError

TOKENIZER_JSON = "tokenizer.json"
SPIECE_MODEL = "spiece.model"
TOKENIZER_CONFIG = "tokenizer_config.json"
FILES = (TOKENIZER_JSON, SPIECE_MODEL, TOKENIZER_CONFIG)
CONTEXT_LENGTH = 64

SIGLIP, GEMMA = "siglip", "gemma"
_SPECIALS = {SIGLIP: ("</s>", "</s>"), GEMMA: ("<eos>", "<pad>")}  # (end, pad)
_DEFAULT_SIDE = {SIGLIP: "right", GEMMA: "left"}


def _how_to_get(folder: Path) -> str:
    return (f"copy {TOKENIZER_JSON} (SigLIP 2) or {SPIECE_MODEL} (SigLIP) from the model's Hugging Face folder into "
            f"{folder}; vidslim never downloads")


def vocabulary_style(tokenizer: Tokenizer, source: str) -> str:
    """"gemma" (SigLIP 2) when the vocabulary has <eos> and <pad>, "siglip" when it has </s>; else an error."""
    if tokenizer.token_to_id("<eos>") is not None and tokenizer.token_to_id("<pad>") is not None:
        return GEMMA
    if tokenizer.token_to_id("</s>") is not None:
        return SIGLIP
    raise CheckpointError(f"{source}: the vocabulary has neither </s> (SigLIP) nor <eos> and <pad> (SigLIP 2); "
                          "this is not a SigLIP tokenizer")


def _canonical(lowercase: bool) -> list[normalizers.Normalizer]:
    """SigLIP's canonicalisation as normalisers: lowercase, drop ASCII punctuation, collapse whitespace, strip."""
    punctuation = "[" + "".join("\\" + c for c in string.punctuation) + "]"
    steps: list[normalizers.Normalizer] = [normalizers.Lowercase()] if lowercase else []
    return [*steps, normalizers.Replace(Regex(punctuation), ""), normalizers.Replace(Regex(r"\s+"), " "),
            normalizers.Strip()]


class SiglipTokenizer:
    """Turns captions into SigLIP token ids: `tokenizer(["a dog runs"])` -> LongTensor [1, context_length].

    Build it with `from_folder` (a Hugging Face model folder), `from_tokenizer_json` or `from_spiece`.
    context_length: the padded length (the model's text positions; `load_model` sets it from the model);
    padding_side: "left" or "right" (default: see the module docstring); do_lower_case: SigLIP's option (as in
    transformers' SiglipTokenizer); SigLIP 2 always lowercases, as Siglip2Tokenizer does.
    """

    def __init__(self, tokenizer: Tokenizer, *, context_length: int = CONTEXT_LENGTH, padding_side: str | None = None,
                 do_lower_case: bool = True, source: str = "<memory>") -> None:
        self.source = source
        self.style = vocabulary_style(tokenizer, source)
        end, pad = _SPECIALS[self.style]
        self.eos_id, self.pad_id = int(tokenizer.token_to_id(end)), int(tokenizer.token_to_id(pad))
        side = padding_side or _DEFAULT_SIDE[self.style]
        if side not in ("left", "right"):
            raise ConfigError(f"{source}: padding_side={side!r}; use 'left' or 'right'")
        self.padding_side = side
        self.context_length = int(context_length)
        if self.style == SIGLIP:
            own = [tokenizer.normalizer] if tokenizer.normalizer is not None else []
            tokenizer.normalizer = normalizers.Sequence([*_canonical(do_lower_case), *own])
        else:
            own = [tokenizer.normalizer] if tokenizer.normalizer is not None else []
            tokenizer.normalizer = normalizers.Sequence([normalizers.Lowercase(), *own])
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self._tokenizer = tokenizer

    # ---------------------------------------------------------------------------------------- loading

    @classmethod
    def from_tokenizer_json(cls, path: str | Path, **kwargs: object) -> SiglipTokenizer:
        """Load a Hugging Face `tokenizer.json` (SigLIP 2's Gemma vocabulary, or a converted SigLIP one)."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: file not found; {_how_to_get(path.parent)}")
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises plain Exceptions on malformed files
            raise CheckpointError(f"{path}: not a readable tokenizer.json ({e})") from e
        return cls(tokenizer, source=str(path), **{**_folder_settings(path.parent), **kwargs})  # type: ignore[arg-type]

    @classmethod
    def from_spiece(cls, path: str | Path, **kwargs: object) -> SiglipTokenizer:
        """Load SigLIP's sentencepiece `spiece.model` (Unigram), without the sentencepiece package."""
        from vidslim.models.siglip_spiece import read_spiece, spiece_tokenizer

        path = Path(path)
        tokenizer = spiece_tokenizer(read_spiece(path))
        return cls(tokenizer, source=str(path), **{**_folder_settings(path.parent), **kwargs})  # type: ignore[arg-type]

    @classmethod
    def from_folder(cls, path: str | Path, **kwargs: object) -> SiglipTokenizer:
        """Load from a local model folder: tokenizer.json if present, else spiece.model (a path to either works)."""
        path = Path(path)
        if path.is_file():
            if path.suffix == ".model":
                return cls.from_spiece(path, **kwargs)
            return cls.from_tokenizer_json(path, **kwargs)
        if not path.is_dir():
            raise CheckpointError(f"{path}: no such folder; {_how_to_get(path)}")
        if (path / TOKENIZER_JSON).is_file():
            return cls.from_tokenizer_json(path / TOKENIZER_JSON, **kwargs)
        if (path / SPIECE_MODEL).is_file():
            return cls.from_spiece(path / SPIECE_MODEL, **kwargs)
        raise CheckpointError(f"{path}: no SigLIP tokenizer files; looked for {TOKENIZER_JSON} and {SPIECE_MODEL}. "
                              f"Fix: {_how_to_get(path)}")

    # ------------------------------------------------------------------------------------- encoding

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of one text as the file's pipeline gives them (its special tokens included), unpadded."""
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """`encode` for many texts at once (parallel in the tokenizers library)."""
        return [e.ids for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=True)]

    def __call__(self, texts: str | Sequence[str], context_length: int | None = None) -> torch.Tensor:
        """Ids [N, context_length], cut to fit and padded (see the module docstring for each vocabulary)."""
        length = self.context_length if context_length is None else int(context_length)
        if length < 1:
            raise ConfigError(f"context_length must be at least 1, got {length}")
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = np.full((len(texts), length), self.pad_id, dtype=np.int64)
        for i, ids in enumerate(self._encode_fitted(texts, length)):
            if ids:
                if self.padding_side == "right":
                    out[i, : len(ids)] = ids
                else:
                    out[i, length - len(ids) :] = ids
        return torch.from_numpy(out)

    def _encode_fitted(self, texts: list[str], length: int) -> list[list[int]]:
        """Each text's ids cut to `length`: SigLIP keeps (or appends) </s> last, as transformers' SiglipTokenizer;
        SigLIP 2 keeps the special tokens the file's post-processor adds and cuts the words (tokenizers' own
        truncation, as transformers' truncation=True)."""
        if self.style == SIGLIP:
            fitted = []
            for ids in self.encode_batch(texts):
                words = ids[:-1] if ids and ids[-1] == self.eos_id else ids
                fitted.append([*words[: length - 1], self.eos_id])
            return fitted
        self._tokenizer.enable_truncation(max_length=length)
        try:
            return self.encode_batch(texts)
        finally:
            self._tokenizer.no_truncation()

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Text of ids, special tokens and padding dropped."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return self._tokenizer.decode(ids, skip_special_tokens=True)

    def __repr__(self) -> str:
        return (f"SiglipTokenizer({self.style}, vocab_size={self.vocab_size}, context_length={self.context_length}, "
                f"padding_side={self.padding_side!r}, source={self.source!r})")


def _folder_settings(folder: Path) -> dict[str, object]:
    """padding_side and do_lower_case from the folder's tokenizer_config.json, where it says."""
    path = folder / TOKENIZER_CONFIG
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e}); fix or delete it") from e
    settings: dict[str, object] = {}
    if isinstance(config.get("padding_side"), str):
        settings["padding_side"] = config["padding_side"]
    if isinstance(config.get("do_lower_case"), bool):
        settings["do_lower_case"] = config["do_lower_case"]
    return settings


__all__ = ["CONTEXT_LENGTH", "FILES", "SiglipTokenizer", "vocabulary_style"]
