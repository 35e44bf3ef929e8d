"""SigLIP / SigLIP 2 tokenizers: ids equal to transformers' on vocabularies the tests build themselves (no
downloads), spiece.model read without sentencepiece, attached by load_model, and bad files refused by name."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE

import vidslim as vs
from vidslim.errors import CheckpointError, ConfigError
from vidslim.models.siglip_tokenizer import SiglipTokenizer

TEXTS = ["a dog", "A Cat. runs!", "  the   DOG  cat ", "dogs, cats & mice", "", "Ünï ＡＢ café", "tab\there\nnew",
         "dog cat " * 40]


def gemma_folder(folder: Path, config: dict[str, object] | None) -> Path:
    """A small Gemma-style tokenizer.json (byte-fallback BPE, "▁" for spaces, <bos> added) as SigLIP 2 ships."""
    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4}
    for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ▁.,!&":
        vocab.setdefault(c, len(vocab))
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    merges = [("▁", "a"), ("d", "o"), ("do", "g"), ("▁", "dog"), ("c", "a"), ("ca", "t"), ("▁", "cat")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    tok = Tokenizer(BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    tok.add_special_tokens(["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"])
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    if config is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("side", ["right", None], ids=["padding_side=right", "no-config"])
def test_siglip2_ids_equal_transformers(tmp_path: Path, side: str | None) -> None:
    transformers = pytest.importorskip("transformers")
    folder = gemma_folder(tmp_path, None if side is None else {"tokenizer_class": "GemmaTokenizer",
                                                                 "padding_side": side})
    ref = transformers.Siglip2Tokenizer.from_pretrained(folder)
    ours = SiglipTokenizer.from_folder(folder)
    assert ours.style == "gemma" and ours.padding_side == ref.padding_side and ours.context_length == 64
    expected = ref(TEXTS, padding="max_length", max_length=64, truncation=True)["input_ids"]
    assert ours(TEXTS).tolist() == expected
    expected = ref(TEXTS, padding="max_length", max_length=9, truncation=True)["input_ids"]
    assert ours(TEXTS, context_length=9).tolist() == expected


def test_siglip_spiece_ids_equal_transformers(tmp_path: Path) -> None:
    """A Unigram sentencepiece model trained here (sentencepiece needed only to make it and for the reference)."""
    spm = pytest.importorskip("sentencepiece")
    transformers = pytest.importorskip("transformers")
    corpus = ["a dog runs in the park", "a cat sleeps on the sofa", "two dogs play with a ball",
              "the quick brown fox jumps over the lazy dog", "a man is cooking pasta in the kitchen"] * 20
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus), model_prefix=str(tmp_path / "spiece"),
                                   vocab_size=40, model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                   pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>", minloglevel=2)
    ref = transformers.SiglipTokenizer(str(tmp_path / "spiece.model"))
    ours = SiglipTokenizer.from_folder(tmp_path)
    assert ours.style == "siglip" and (ours.eos_id, ours.pad_id) == (1, 1)
    for length in (64, 7):
        expected = [ref(t, padding="max_length", max_length=length, truncation=True)["input_ids"] for t in TEXTS]
        assert ours(TEXTS, context_length=length).tolist() == expected


# ---------------------------------------------------------------------------------------------- spiece by hand
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _record(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def spiece_bytes(pieces: list[tuple[str, float, int]], model_type: int = 1) -> bytes:
    """A ModelProto in protobuf wire format: pieces, trainer_spec (model type, unk id 2), no character map."""
    out = b""
    for text, score, kind in pieces:
        out += _record(1, _record(1, text.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", score)
                       + _varint(3 << 3) + _varint(kind))
    return out + _record(2, _varint(3 << 3) + _varint(model_type) + _varint(40 << 3) + _varint(2))


PIECES = [("<pad>", 0.0, 3), ("</s>", 0.0, 3), ("<unk>", 0.0, 2), ("▁a", -1.0, 1), ("▁dog", -2.0, 1),
          ("▁", -3.0, 1), ("d", -4.0, 1), ("o", -4.0, 1), ("g", -4.0, 1), ("▁do", -2.5, 1)]


def test_spiece_read_without_sentencepiece_gives_hand_derived_ids(tmp_path: Path) -> None:
    (tmp_path / "spiece.model").write_bytes(spiece_bytes(PIECES))
    tok = SiglipTokenizer.from_folder(tmp_path, context_length=6)
    # "A dog!" -> "a dog" -> ▁a ▁dog </s>, padded with </s> on the right
    assert tok(["A dog!"]).tolist() == [[3, 4, 1, 1, 1, 1]]
    # ▁dog + g (score -6) beats ▁do + g + g (-10.5); "x" is unknown; a cut text keeps </s> last
    assert tok(["doggx", "a a a a a a a"]).tolist() == [[4, 8, 2, 1, 1, 1], [3, 3, 3, 3, 3, 1]]
    assert tok(["a dog"], context_length=2).tolist() == [[3, 1]]


def test_spiece_bad_files_are_named(tmp_path: Path) -> None:
    bpe = tmp_path / "bpe" / "spiece.model"
    bpe.parent.mkdir()
    bpe.write_bytes(spiece_bytes(PIECES, model_type=2))
    with pytest.raises(CheckpointError, match=r"spiece.model: a sentencepiece model of type 2.*tokenizer.json"):
        SiglipTokenizer.from_folder(bpe.parent)
    cut = tmp_path / "cut.model"
    cut.write_bytes(spiece_bytes(PIECES)[:-3])
    with pytest.raises(CheckpointError, match=r"cut.model: not a sentencepiece model"):
        SiglipTokenizer.from_folder(cut)
    with pytest.raises(CheckpointError, match=r"no SigLIP tokenizer files; looked for tokenizer.json and spiece"):
        SiglipTokenizer.from_folder(tmp_path)
    clip_like = Tokenizer(BPE(vocab={"<|endoftext|>": 0, "a": 1}, merges=[]))
    clip_like.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(CheckpointError, match="not a SigLIP tokenizer"):
        SiglipTokenizer.from_folder(tmp_path)


# ---------------------------------------------------------------------------------------------- attached to models
def test_load_model_attaches_the_folders_tokenizer_and_save_copies_it(tmp_path: Path) -> None:
    model = vs.create_model("siglip-tiny").eval()
    with pytest.raises(ConfigError, match=r"no tokenizer attached.*spiece\.model or tokenizer\.json"):
        model.encode_text(["a dog"])
    folder = vs.save_model(model, tmp_path / "ckpt")
    (folder / "spiece.model").write_bytes(spiece_bytes(PIECES))
    loaded = vs.load_model(folder)
    assert isinstance(loaded.tokenizer, SiglipTokenizer) and loaded.tokenizer.context_length == 16  # the model's
    ids = torch.tensor([[3, 4] + [1] * 14])
    with torch.inference_mode():
        torch.testing.assert_close(loaded.encode_text(["A dog."]), loaded.encode_text(ids))
        torch.testing.assert_close(loaded.encode_text("a dog"), model.encode_text(ids))
    again = vs.load_model(vs.save_model(loaded, tmp_path / "again"))
    assert (tmp_path / "again" / "spiece.model").is_file() and isinstance(again.tokenizer, SiglipTokenizer)
    assert vs.load_model(folder, tokenizer=False).tokenizer is None
    given = vs.load_model(tmp_path / "again", tokenizer=gemma_folder(tmp_path / "gemma", {"padding_side": "right"}))
    assert given.tokenizer.style == "gemma" and given.tokenizer("a dog")[0, :3].tolist() == [2, 5, 321]
