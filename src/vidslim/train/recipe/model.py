"""The `model:` section of a run config: build or load the model, attach its reducers, choose what trains.

    model:
      name: clip-b32         # a create_model name: random weights (vidslim.list_models())
      checkpoint: null       # or a local checkpoint for load_model (HF folder, OpenAI .pt, VideoMAE v2 .pth,
                             # a vidslim folder such as RUN/model); give one of name / checkpoint
      config: {}             # config fields, e.g. {image_size: 64, vision_layers: 4, num_frames: 8}
      num_classes: null      # classifier outputs (classification; default: the data set's classes for `name`)
      reduction: null        # reducers, e.g. [{rlt: {tau: 0.1}}, {tempme: paper}] (vidslim.reduce.cards);
                             # null: none for `name`, the saved ones for a vidslim checkpoint; []: dense
      finetune: full         # full | lora (adapters + reducer parameters, the rest frozen) | head
      lora_rank: 8
      lora_alpha: null       # null: scale 1 (TempMe); else alpha / rank
      tokenizer: null        # CLIP text: a folder with the CLIP vocabulary; "words": a word-level vocabulary of
                             # the training captions (random-weight CLIPs on small data sets); null: the
                             # checkpoint's vocabulary, or "words" for a `name` model

"words" writes RUN/tokenizer/tokenizer.json once and reads it back on resume and in `vidslim eval`, so the
vocabulary (and the model's vocab_size / eot_token_id, set from it) never changes within a run.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from vidslim.errors import ConfigError
from vidslim.models.base import ReducibleModel, config_from_dict
from vidslim.train.distributed import DistInfo, barrier, broadcast_object

log = logging.getLogger(__name__)

FINETUNE = ("full", "lora", "head")
WORDS = "words"
TOKENIZER_DIR = "tokenizer"
UNK, SOT, EOT = "<unk>", "<|startoftext|>", "<|endoftext|>"


@dataclasses.dataclass
class ModelSection:
    """The `model:` section (see the module docstring)."""

    name: str | None = None
    checkpoint: str | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    num_classes: int | None = None
    reduction: Any = None
    finetune: str = "full"
    lora_rank: int = 8
    lora_alpha: float | None = None
    tokenizer: str | None = None

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> ModelSection:
        section = config_from_dict(cls, dict(values or {}), where="model")
        if (section.name is None) == (section.checkpoint is None):
            raise ConfigError("model: give either name (a create_model name, random weights) or checkpoint (a local "
                              "checkpoint for load_model), not both or neither")
        if section.finetune not in FINETUNE:
            raise ConfigError(f"model.finetune must be one of {FINETUNE}, got {section.finetune!r}")
        section.config = dict(section.config or {})
        return section

    def reducers(self) -> list[object] | None:
        """The configured reducers (None when the section names none)."""
        from vidslim.models.registry import family_of
        from vidslim.reduce.registry import build_reduction

        if self.reduction is None:
            return None
        family = family_of(self.name) if self.name else None
        return build_reduction(self.reduction, self.name, family=family, where="model.reduction")


# ------------------------------------------------------------------------------------------------ words
def caption_words(captions: Sequence[str]) -> list[str]:
    """The distinct words of `captions` (CLIP's normalisation and word split), sorted."""
    from tokenizers import Regex, normalizers, pre_tokenizers

    from vidslim.models.clip_tokenizer import CLIP_PATTERN

    normalize = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                      normalizers.Lowercase()])
    split = pre_tokenizers.Split(Regex(CLIP_PATTERN), behavior="removed", invert=True)
    words = {w for text in captions for w, _ in split.pre_tokenize_str(normalize.normalize_str(text))}
    return sorted(words - {SOT, EOT, UNK})


def word_tokenizer(captions: Sequence[str], path: Path) -> Any:
    """A CLIP-pipeline tokenizer with one id per caption word: <unk> 0, the words, SOT, then EOT (the largest id,
    so CLIP's argmax pooling finds it). Written to `path` (tokenizer.json) for save_model to copy."""
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel

    from vidslim.models.clip_tokenizer import CLIP_PATTERN, ClipTokenizer

    words = caption_words(captions)
    if not words:
        raise ConfigError("model.tokenizer=words: the training captions hold no words")
    vocab = {UNK: 0, **{w: i + 1 for i, w in enumerate(words)}}
    vocab[SOT], vocab[EOT] = len(vocab), len(vocab) + 1
    tokenizer = Tokenizer(WordLevel(vocab, unk_token=UNK))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                                 normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(CLIP_PATTERN), behavior="removed", invert=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return ClipTokenizer(tokenizer, source=str(path))


def run_tokenizer(section: ModelSection, run_dir: Path, captions: Any, info: DistInfo) -> Any:
    """The tokenizer of a `name` CLIP: RUN/tokenizer/tokenizer.json when it exists, else built (rank 0 writes)."""
    from vidslim.models.clip_tokenizer import ClipTokenizer

    choice = section.tokenizer or WORDS
    if choice != WORDS:
        return ClipTokenizer.from_folder(choice)
    path = run_dir / TOKENIZER_DIR / "tokenizer.json"
    if not broadcast_object(path.is_file(), info):  # rank 0 decides, so every rank takes the same collectives
        texts = list(captions())  # on every rank: reading the data set may synchronise the ranks itself
        if info.is_main:
            word_tokenizer(texts, path)
        barrier(info)
    return ClipTokenizer.from_folder(path)


# ------------------------------------------------------------------------------------------------ the model
def build_model(section: ModelSection, kind: str, run_dir: Path, info: DistInfo, captions: Any = None,
                num_classes: Any = None, checkpoint: str | Path | None = None) -> ReducibleModel:
    """The model the section describes, in training mode, with its reducers and its trainable set.

    captions / num_classes: callables giving the training captions (words tokenizer) and the data set's class
    count, asked only when needed. checkpoint: load these weights instead of the section's (evaluation).
    """
    import vidslim as vs
    from vidslim.models.registry import family_of

    reducers = section.reducers()
    overrides = dict(section.config)
    if checkpoint is None and section.name is not None:
        tokenizer = None
        if family_of(section.name) in ("clip", "xclip") and kind == "retrieval":  # words for the CLIP text tower
            if captions is None:
                raise ConfigError("model.tokenizer=words needs the training captions")
            tokenizer = run_tokenizer(section, run_dir, captions, info)
            overrides.setdefault("vocab_size", tokenizer.vocab_size)
            overrides.setdefault("eot_token_id", tokenizer.eot_id)
        classes = section.num_classes
        if classes is None and kind == "classify" and num_classes is not None:
            classes = int(num_classes())
        _check_size(section.name, classes, overrides)
        model = vs.create_model(section.name, num_classes=classes, reduction=reducers, **overrides)
        if tokenizer is not None:
            model.tokenizer = tokenizer  # type: ignore[assignment]
    else:
        if section.tokenizer == WORDS and checkpoint is None:
            raise ConfigError("model.tokenizer=words is for models built by name; a checkpoint brings its vocabulary "
                              "(or name a folder holding one)")
        source = checkpoint if checkpoint is not None else section.checkpoint
        tokenizer_arg = None if section.tokenizer in (None, WORDS) else section.tokenizer
        model = vs.load_model(str(source), reduction=reducers, num_classes=section.num_classes,
                              tokenizer=tokenizer_arg, **overrides)
    set_finetune(model, section)
    return model.train()


def _check_size(name: str, num_classes: int | None, overrides: dict[str, Any]) -> None:
    """Refuse model.config values that would build an absurd model (a width of 1e7 asks for terabytes) before
    anything is allocated (`vidslim.models.guards`)."""
    from vidslim.errors import CheckpointError
    from vidslim.models.guards import check_config
    from vidslim.models.registry import get_config

    values = dict(overrides, **({} if num_classes is None else {"num_classes": int(num_classes)}))
    try:
        check_config(get_config(name, **values), "model.config", advice="use sizes a model can have")
    except CheckpointError as error:
        raise ConfigError(str(error)) from None


def set_finetune(model: nn.Module, section: ModelSection) -> None:
    """Choose the trainable parameters: everything, LoRA adapters + reducers, or the head + reducers."""
    from vidslim.models.lora import add_lora, lora_parameters

    reducers = getattr(model, "reduction_modules", None)
    reducer_params = list(reducers.parameters()) if isinstance(reducers, nn.Module) else []
    if section.finetune == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return
    if section.finetune == "lora":
        if not lora_parameters(model):
            add_lora(model, section.lora_rank, section.lora_alpha, freeze=True)
        keep = [*lora_parameters(model), *reducer_params]
    else:
        head = getattr(model, "head", None)
        if not isinstance(head, nn.Module) or not list(head.parameters()):
            raise ConfigError("model.finetune=head needs a classifier head: set model.num_classes")
        keep = [*head.parameters(), *reducer_params]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in keep:
        p.requires_grad_(True)


def describe(model: nn.Module) -> str:
    """One line on what trains (vidslim.models.lora.describe_trainable)."""
    from vidslim.models.lora import describe_trainable

    return describe_trainable(model)


__all__ = ["FINETUNE", "ModelSection", "build_model", "caption_words", "describe", "run_tokenizer",
           "set_finetune", "word_tokenizer"]
