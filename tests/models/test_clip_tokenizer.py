"""CLIP tokenizer: ids equal Hugging Face's CLIPTokenizer and an independent pure-Python BPE reference.

The real CLIP vocabulary is not available offline, so a tiny byte-level one is built here: the 256 byte
characters, the same with "</w>", a few hand-picked merges and the two special tokens.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import unicodedata
from pathlib import Path

import pytest
import torch

from vidslim.errors import CheckpointError, ConfigError
from vidslim.models.clip_tokenizer import CLIP_PATTERN, EOT, SOT, ClipTokenizer, bytes_to_unicode

regex = pytest.importorskip("regex")

BYTE = bytes_to_unicode()
# merges as text pieces; "|" marks the end of a word (written "</w>" in the files)
MERGE_TEXT = [
    ("t", "h"),
    ("th", "e|"),
    ("a", "n"),
    ("an", "d|"),
    ("i", "n"),
    ("in", "g|"),
    ("o", "n|"),
    ("e", "r"),
    ("d", "o"),
    ("do", "g|"),
    ("p", "h"),
    ("ph", "o"),
    ("pho", "t"),
    ("phot", "o|"),
    ("'", "s|"),
    ("r", "e"),
    ("c", "a"),
    ("ca", "f"),
    ("caf", "é|"),
    ("!", "!|"),
    ("o", "f|"),
    ("u", "n"),
    ("th", "e"),
    ("the", "y|"),
    ("日", "本"),
    ("r", "u"),
    ("ru", "n"),
    ("run", "s|"),
]
SENTENCES = [
    "A photo of a dog.",
    "The DOG's ball isn't red!!",
    "  extra   whitespace\t\nand\u00a0no-break space  ",
    "numbers 12345 and 3.14, 2024-01-01",
    "they're we've I'm you'll she'd it's",
    "café naïve cafe\u0301 ÜNÏCÖDÉ",
    "emoji 🐶🎉 and 日本語テキスト",
    "punctuation: (a) [b] {c} <d> @e #f $g %h ^i &j *k",
    "a dog runs <|endoftext|> then the dog runs",
    "",
    "the dog runs and the dog runs " * 30,
]


def _to_units(piece: str) -> str:
    """A merge piece in byte characters, with "|" -> "</w>"."""
    end = piece.endswith("|")
    chars = "".join(BYTE[b] for b in piece.rstrip("|").encode("utf-8"))
    return chars + ("</w>" if end else "")


def _char_merges(char: str, end: bool = False) -> list[tuple[str, str]]:
    """Merges that join the UTF-8 byte units of one multi-byte character into one token."""
    units = [BYTE[b] for b in char.encode("utf-8")]
    if end:
        units[-1] += "</w>"
    merges, joined = [], units[0]
    for unit in units[1:]:
        merges.append((joined, unit))
        joined += unit
    return merges


MERGES = [
    *_char_merges("é"),
    *_char_merges("é", end=True),
    *_char_merges("日"),
    *_char_merges("本"),
    *[(_to_units(a), _to_units(b)) for a, b in MERGE_TEXT],
]


def _vocab() -> dict[str, int]:
    chars = list(BYTE.values())
    tokens = chars + [c + "</w>" for c in chars] + [a + b for a, b in MERGES] + [SOT, EOT]
    assert len(set(tokens)) == len(tokens)
    return {t: i for i, t in enumerate(tokens)}


def _write_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(_vocab(), ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in MERGES), encoding="utf-8")
    return folder


def reference_encode(text: str, vocab: dict[str, int]) -> list[int]:
    """OpenAI CLIP's algorithm written out: normalise, split with the CLIP pattern, BPE by merge rank."""
    ranks = {pair: i for i, pair in enumerate(MERGES)}
    text = regex.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).lower()
    ids: list[int] = []
    for word in regex.findall(CLIP_PATTERN, text, regex.IGNORECASE):
        if word in (SOT, EOT):
            ids.append(vocab[word])
            continue
        units = [BYTE[b] for b in word.encode("utf-8")]
        units[-1] += "</w>"
        while len(units) > 1:
            best = min(itertools.pairwise(units), key=lambda p: ranks.get(p, math.inf))
            if best not in ranks:
                break
            merged, i = [], 0
            while i < len(units):
                if i + 1 < len(units) and (units[i], units[i + 1]) == best:
                    merged.append(units[i] + units[i + 1])
                    i += 2
                else:
                    merged.append(units[i])
                    i += 1
            units = merged
        ids.extend(vocab[u] for u in units)
    return ids


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_folder(tmp_path_factory.mktemp("clip_tok") / "files")


@pytest.fixture(scope="module")
def hf_tokenizer(folder: Path):
    transformers = pytest.importorskip("transformers")
    return transformers.CLIPTokenizer.from_pretrained(str(folder))


def test_merges_actually_fire(folder: Path) -> None:
    vocab = _vocab()
    ids = reference_encode("The photo of the dog", vocab)
    assert ids == [vocab[_to_units(w)] for w in ("the|", "photo|", "of|", "the|", "dog|")]
    assert ClipTokenizer.from_folder(folder).encode("The photo of the dog") == ids


def test_encode_equals_reference_and_hugging_face(folder: Path, hf_tokenizer) -> None:
    ours, vocab = ClipTokenizer.from_folder(folder), _vocab()
    for text in SENTENCES:
        expected = reference_encode(text, vocab)
        assert ours.encode(text) == expected, text
        assert hf_tokenizer(text, add_special_tokens=False)["input_ids"] == expected, text


def test_batch_ids_equal_hugging_face_padded_and_truncated(folder: Path, hf_tokenizer) -> None:
    ours = ClipTokenizer.from_folder(folder)
    ids = ours(SENTENCES, pad_id=ours.eot_id)  # HF pads with <|endoftext|>
    hf = hf_tokenizer(SENTENCES, padding="max_length", max_length=77, truncation=True)["input_ids"]
    assert ids.dtype == torch.long and ids.shape == (len(SENTENCES), 77)
    assert ids.tolist() == hf
    long_ids = reference_encode(SENTENCES[-1], _vocab())
    assert len(long_ids) > 75
    assert ids[-1].tolist() == [ours.sot_id, *long_ids[:75], ours.eot_id]  # truncation keeps eot last


def test_tokenizer_json_folder(folder: Path, hf_tokenizer, tmp_path: Path) -> None:
    hf_tokenizer.save_pretrained(str(tmp_path / "saved"))
    assert (tmp_path / "saved" / "tokenizer.json").is_file()
    from_json = ClipTokenizer.from_folder(tmp_path / "saved")
    assert from_json.source.endswith("tokenizer.json")
    from_files = ClipTokenizer.from_files(folder / "vocab.json", folder / "merges.txt")
    assert torch.equal(from_json(SENTENCES), from_files(SENTENCES))
    assert from_json.encode(SENTENCES[1]) == reference_encode(SENTENCES[1], _vocab())


def test_openai_bpe_file_gives_same_ids(folder: Path, tmp_path: Path) -> None:
    lines = ["#version: 0.2 - a header OpenAI's file has"] + [f"{a} {b}" for a, b in MERGES]
    path = tmp_path / "bpe_simple_vocab_16e6.txt.gz"
    path.write_bytes(gzip.compress("\n".join(lines).encode("utf-8")))
    openai = ClipTokenizer.from_folder(tmp_path)
    assert openai.vocab_size == len(_vocab())
    assert torch.equal(openai(SENTENCES), ClipTokenizer.from_folder(folder)(SENTENCES))


def test_layout_padding_and_options(folder: Path) -> None:
    tok = ClipTokenizer.from_folder(folder)
    vocab = _vocab()
    assert (tok.sot_id, tok.eot_id) == (vocab[SOT], vocab[EOT])
    row = tok("the dog")[0]  # OpenAI layout: sot, ids, eot, zeros
    assert row[:4].tolist() == [tok.sot_id, vocab[_to_units("the|")], vocab[_to_units("dog|")], tok.eot_id]
    assert row[4:].eq(0).all() and row.shape == (77,)
    assert tok(["", "a"], context_length=4).tolist() == [
        [tok.sot_id, tok.eot_id, 0, 0],
        [tok.sot_id, vocab[_to_units("a|")], tok.eot_id, 0],
    ]
    assert ClipTokenizer.from_folder(folder, pad_id=7)("a", context_length=5)[0, -1].item() == 7
    assert tok([]).shape == (0, 77)
    with pytest.raises(ConfigError, match="context_length=5"):
        tok("the dog runs and the dog runs", context_length=5, truncate=False)
    assert tok.decode(tok("The photo of the DOG!!")[0]) == "the photo of the dog !!"


def test_missing_files_name_folder_files_and_fix(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        ClipTokenizer.from_folder(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message
    assert all(name in message for name in ("tokenizer.json", "vocab.json", "merges.txt", "save_pretrained"))
    (tmp_path / "vocab.json").write_text(json.dumps(_vocab()), encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"found only vocab.json"):
        ClipTokenizer.from_folder(tmp_path)
    with pytest.raises(CheckpointError, match="no such folder"):
        ClipTokenizer.from_folder(tmp_path / "absent")
    (tmp_path / "merges.txt").write_text("#version: 0.2\nx y z\n", encoding="utf-8")
    with pytest.raises(CheckpointError, match="line 2"):
        ClipTokenizer.from_folder(tmp_path)
    (tmp_path / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0}), encoding="utf-8")
    with pytest.raises(CheckpointError, match="not a CLIP tokenizer"):
        ClipTokenizer.from_folder(tmp_path)
