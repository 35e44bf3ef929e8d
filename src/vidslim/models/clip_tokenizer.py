"""The CLIP text tokenizer: byte-level BPE with CLIP's normalisation, read from local files only.

CLIP's rules (OpenAI `simple_tokenizer`, Hugging Face `CLIPTokenizer`):
- normalise: Unicode NFC, every run of whitespace -> one space, lowercase;
- split into words with the CLIP pattern (the two special tokens, the English contractions 's 't 're
  've 'm 'll 'd, runs of letters, single digits, runs of other non-space characters);
- map each word's UTF-8 bytes to printable characters (GPT-2's byte-to-unicode table), mark the last
  one with the end-of-word suffix "</w>", and apply the BPE merges by rank;
- wrap in <|startoftext|> ... <|endoftext|> and pad to the context length (77).

The BPE itself runs in the `tokenizers` library (Rust, batched), configured with those rules, so ids
equal Hugging Face's `CLIPTokenizer` / `CLIPTokenizerFast` on the same vocabulary. OpenAI's original also
runs `ftfy.fix_text` and `html.unescape` on the text first; we do not (no ftfy dependency), which only
matters for mojibake and HTML entities such as "&amp;".

Padding: OpenAI CLIP pads with id 0 (our default); Hugging Face pads with <|endoftext|> for the OpenAI
checkpoints (pass `pad_id=tokenizer.eot_id`). CLIP's text tower uses a causal mask and pools at the
first <|endoftext|> (the largest id, so `argmax` finds it), so the pad value does not change its output.

Nothing is downloaded: a missing file is a `CheckpointError` that says which files to put where.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import BPE

from vidslim.errors import CheckpointError, ConfigError

SOT = "<|startoftext|>"
EOT = "<|endoftext|>"
END_OF_WORD = "</w>"
CONTEXT_LENGTH = 77
# the words of CLIP's pre-tokenizer (letters and numbers in the Unicode sense)
CLIP_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
OPENAI_NUM_MERGES = 49152 - 256 - 2  # merges OpenAI's tokenizer uses from bpe_simple_vocab_16e6.txt.gz

TOKENIZER_JSON = "tokenizer.json"
VOCAB_JSON = "vocab.json"
MERGES_TXT = "merges.txt"
OPENAI_BPE = ("bpe_simple_vocab_16e6.txt.gz", "bpe_simple_vocab_16e6.txt")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table from the 256 byte values to printable characters (printable bytes map to themselves).

    Order matters: it is the order of the first 256 entries of CLIP's vocabulary.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    table = {b: chr(b) for b in printable}
    table.update({b: chr(256 + i) for i, b in enumerate(others)})
    return table


def _how_to_get(folder: Path) -> str:
    return (
        f"copy {TOKENIZER_JSON} (or {VOCAB_JSON} and {MERGES_TXT}) from the model's Hugging Face folder into "
        f"{folder}, or write them there with transformers' CLIPTokenizer.save_pretrained from a local copy of the "
        "model; vidslim never downloads"
    )


class ClipTokenizer:
    """Turns captions into CLIP token ids: `tokenizer(["a dog runs"])` -> LongTensor [1, 77].

    Build it with `from_folder` (a Hugging Face model folder), `from_files(vocab.json, merges.txt)`,
    `from_tokenizer_json` or `from_openai_bpe`. `pad_id` (default 0, OpenAI's convention) fills the
    positions after <|endoftext|>.
    """

    def __init__(self, tokenizer: Tokenizer, *, pad_id: int = 0, source: str = "<memory>") -> None:
        self.source = source
        sot, eot = tokenizer.token_to_id(SOT), tokenizer.token_to_id(EOT)
        if sot is None or eot is None:
            raise CheckpointError(f"{source}: the vocabulary has no {SOT} / {EOT} token; this is not a CLIP tokenizer")
        tokenizer.add_special_tokens([SOT, EOT])  # match them in text as whole tokens, as CLIP does
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self._tokenizer = tokenizer
        self.sot_id, self.eot_id, self.pad_id = int(sot), int(eot), int(pad_id)

    # ---------------------------------------------------------------------------------------- loading

    @classmethod
    def from_vocab_merges(
        cls, vocab: dict[str, int], merges: Sequence[tuple[str, str]], *, pad_id: int = 0, source: str = "<memory>"
    ) -> ClipTokenizer:
        """Build the CLIP pipeline around a byte-level BPE vocabulary and its ranked merges."""
        try:
            model = BPE(vocab=dict(vocab), merges=list(merges), unk_token=EOT, end_of_word_suffix=END_OF_WORD,
                        continuing_subword_prefix="", fuse_unk=False, dropout=None)
        except Exception as e:  # tokenizers raises plain Exceptions for merges outside the vocabulary
            raise CheckpointError(f"{source}: vocabulary and merges do not fit together ({e})") from e
        tokenizer = Tokenizer(model)
        tokenizer.normalizer = normalizers.Sequence(
            [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
        )
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(CLIP_PATTERN), behavior="removed", invert=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False),
            ]
        )
        return cls(tokenizer, pad_id=pad_id, source=source)

    @classmethod
    def from_files(cls, vocab: str | Path, merges: str | Path, *, pad_id: int = 0) -> ClipTokenizer:
        """Read a Hugging Face `vocab.json` (token -> id) and `merges.txt` (one "a b" pair per line)."""
        vocab, merges = Path(vocab), Path(merges)
        for path in (vocab, merges):
            if not path.is_file():
                raise CheckpointError(f"{path}: file not found; {_how_to_get(path.parent)}")
        try:
            table = json.loads(vocab.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{vocab}: not a JSON vocabulary ({e})") from e
        pairs = _read_merges(merges.read_text(encoding="utf-8").splitlines(), merges)
        return cls.from_vocab_merges(table, pairs, pad_id=pad_id, source=str(vocab.parent))

    @classmethod
    def from_tokenizer_json(cls, path: str | Path, *, pad_id: int = 0) -> ClipTokenizer:
        """Load a `tokenizers` file (Hugging Face `tokenizer.json`) that holds the whole CLIP pipeline."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: file not found; {_how_to_get(path.parent)}")
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises plain Exceptions on malformed files
            raise CheckpointError(f"{path}: not a readable tokenizer.json ({e})") from e
        return cls(tokenizer, pad_id=pad_id, source=str(path))

    @classmethod
    def from_openai_bpe(
        cls, path: str | Path, *, pad_id: int = 0, num_merges: int | None = OPENAI_NUM_MERGES
    ) -> ClipTokenizer:
        """Read OpenAI's `bpe_simple_vocab_16e6.txt(.gz)`: ranked merges only, the vocabulary derived from them.

        The vocabulary is, in order: the 256 byte characters, the same with "</w>", every merge joined,
        then <|startoftext|> and <|endoftext|> (49408 entries for OpenAI's file).
        """
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: file not found; {_how_to_get(path.parent)}")
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        lines = raw.decode("utf-8").splitlines()[1:]  # the first line is a version header
        pairs = _read_merges(lines[:num_merges] if num_merges is not None else lines, path)
        chars = list(bytes_to_unicode().values())
        tokens = chars + [c + END_OF_WORD for c in chars] + ["".join(p) for p in pairs] + [SOT, EOT]
        return cls.from_vocab_merges({t: i for i, t in enumerate(tokens)}, pairs, pad_id=pad_id, source=str(path))

    @classmethod
    def from_folder(cls, path: str | Path, *, pad_id: int = 0) -> ClipTokenizer:
        """Load from a local model folder: tokenizer.json if present, else vocab.json + merges.txt, else
        OpenAI's bpe_simple_vocab_16e6.txt(.gz). A path to one of those files works too."""
        path = Path(path)
        if path.is_file():
            if path.name.endswith(".json") and path.name != VOCAB_JSON:
                return cls.from_tokenizer_json(path, pad_id=pad_id)
            if path.name in OPENAI_BPE:
                return cls.from_openai_bpe(path, pad_id=pad_id)
            path = path.parent
        if not path.is_dir():
            raise CheckpointError(f"{path}: no such folder; {_how_to_get(path)}")
        if (path / TOKENIZER_JSON).is_file():
            return cls.from_tokenizer_json(path / TOKENIZER_JSON, pad_id=pad_id)
        vocab, merges = path / VOCAB_JSON, path / MERGES_TXT
        if vocab.is_file() and merges.is_file():
            return cls.from_files(vocab, merges, pad_id=pad_id)
        for name in OPENAI_BPE:
            if (path / name).is_file():
                return cls.from_openai_bpe(path / name, pad_id=pad_id)
        found = [p.name for p in (vocab, merges) if p.is_file()]
        have = f" (found only {', '.join(found)})" if found else ""
        raise CheckpointError(
            f"{path}: no CLIP tokenizer files{have}; looked for {TOKENIZER_JSON}, or {VOCAB_JSON} + {MERGES_TXT}, "
            f"or {OPENAI_BPE[0]}. Fix: {_how_to_get(path)}"
        )

    # ------------------------------------------------------------------------------------- encoding

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of one text, without <|startoftext|> / <|endoftext|>."""
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """`encode` for many texts at once (parallel in the tokenizers library)."""
        return [e.ids for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def __call__(
        self,
        texts: str | Sequence[str],
        context_length: int = CONTEXT_LENGTH,
        truncate: bool = True,
        pad_id: int | None = None,
    ) -> torch.Tensor:
        """Ids [N, context_length]: <|startoftext|> ids <|endoftext|> then `pad_id` (default: the tokenizer's).

        A text too long keeps its first context_length - 2 ids and ends with <|endoftext|> if `truncate`;
        else it raises a ConfigError.
        """
        if context_length < 2:
            raise ConfigError(f"context_length must be at least 2 (start and end token), got {context_length}")
        texts = [texts] if isinstance(texts, str) else list(texts)
        encoded = self.encode_batch(texts)
        room = context_length - 2
        lengths = np.array([len(ids) for ids in encoded], dtype=np.int64)
        too_long = np.flatnonzero(lengths > room)
        if too_long.size and not truncate:
            i = int(too_long[0])
            raise ConfigError(
                f"text {i} ({texts[i][:40]!r}...) has {lengths[i] + 2} tokens, more than context_length="
                f"{context_length}; pass truncate=True or a larger context_length"
            )
        kept = np.minimum(lengths, room)
        out = np.full((len(texts), context_length), self.pad_id if pad_id is None else pad_id, dtype=np.int64)
        if not texts:
            return torch.from_numpy(out)
        flat = np.concatenate([np.asarray(ids[:k], dtype=np.int64) for ids, k in zip(encoded, kept, strict=True)])
        rows = np.repeat(np.arange(len(texts)), kept)
        cols = np.arange(flat.size) - np.repeat(np.cumsum(kept) - kept, kept) + 1
        out[rows, cols] = flat
        out[:, 0] = self.sot_id
        out[np.arange(len(texts)), kept + 1] = self.eot_id
        return torch.from_numpy(out)

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Text of ids (special tokens and padding dropped; words joined by single spaces)."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        if self.eot_id in ids:
            ids = ids[: ids.index(self.eot_id)]
        ids = [i for i in ids if i != self.sot_id]
        tokens = [self._tokenizer.id_to_token(i) or "" for i in ids]
        byte_of = {c: b for b, c in bytes_to_unicode().items()}
        words = "".join(tokens).replace(END_OF_WORD, " ")
        data = bytes(byte_of[c] if c in byte_of else ord(" ") for c in words)
        return data.decode("utf-8", errors="replace").strip()

    def __repr__(self) -> str:
        return f"ClipTokenizer(vocab_size={self.vocab_size}, pad_id={self.pad_id}, source={self.source!r})"


def _read_merges(lines: Sequence[str], path: Path) -> list[tuple[str, str]]:
    """Ranked merge pairs from merges.txt lines (a "#version" header and blank lines are skipped)."""
    pairs: list[tuple[str, str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or (number == 1 and line.startswith("#version")):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise CheckpointError(f"{path}: line {number} {line!r} is not a merge pair 'a b'")
        pairs.append((parts[0], parts[1]))
    return pairs
