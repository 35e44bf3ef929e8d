"""`classify_videos`: the top-k class names of each window of each video, and pooled over the video.

    for result in vs.classify_videos(["a.mp4"], "runs/classify/model", k=5):
        print(result.path, result.pooled)           # [("move left, then up", 0.91), ...]

Each window gets the softmax of the model's logits; a video's pooled scores are the mean of its windows'
probabilities (the multi-view protocol of the recognition benchmarks). Class names come from the model's input
spec (saved with the checkpoint), or from `classes` (a list, or a classes.json file holding one); without either
the classes are called "class 0", "class 1", ...
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from vidslim.errors import ConfigError
from vidslim.jobs.failures import require_some_read
from vidslim.jobs.model_source import resolve_model
from vidslim.jobs.reader import WindowReader, decoded
from vidslim.jobs.sources import list_videos
from vidslim.jobs.windows import WindowPlan


@dataclass
class Classified:
    """One video: per window (start_s, end_s, [(name, score)] best first), pooled [(name, score)], or its error."""

    path: str
    windows: list[dict[str, Any]] = field(default_factory=list)
    pooled: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def class_names(model: Any, classes: Sequence[str] | str | os.PathLike[str] | None, num_classes: int) -> list[str]:
    """The names of the model's `num_classes` outputs (see the module docstring)."""
    if isinstance(classes, (str, os.PathLike)):
        path = Path(classes)
        try:
            classes = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"{path}: cannot read class names ({error}); give a JSON list of names") from None
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise ConfigError(f"{path}: class names must be a JSON list of strings")
    if classes is None:
        classes = model.input_spec.class_names
    if classes is None:
        return [f"class {i}" for i in range(num_classes)]
    if len(classes) != num_classes:
        raise ConfigError(f"{len(classes)} class names for a model with {num_classes} outputs; give one name per "
                          "output")
    return list(classes)


def _top(probs: torch.Tensor, names: list[str], k: int) -> list[tuple[str, float]]:
    values, indices = probs.topk(min(k, probs.shape[-1]))
    return [(names[i], float(v)) for v, i in zip(values.tolist(), indices.tolist(), strict=True)]


def classify_videos(
    source: str | os.PathLike[str] | Iterable[str],
    model: Any,
    *,
    k: int = 5,
    classes: Sequence[str] | str | os.PathLike[str] | None = None,
    method: str | None = None,
    settings: dict[str, Any] | None = None,
    window: float | None = None,
    stride: float | None = None,
    workers: int = 0,
    device: str = "cpu",
) -> list[Classified]:
    """Top-k class names per window and pooled, for every video SOURCE names (unreadable ones carry `error`; a
    `NothingReadError` when none could be read)."""
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    paths = list_videos(source)
    model, _ = resolve_model(model, method, settings)
    if not getattr(model.config, "num_classes", 0):
        raise ConfigError(f"{type(model).__name__} has no classification head (num_classes=0): classify needs a "
                          "model trained with `vidslim train classify` or loaded with num_classes")
    model.to(device)
    reader = WindowReader.for_model(paths, model, WindowPlan(window, stride))
    names: list[str] | None = None
    results = []
    for item in decoded(reader, workers):
        if item.error is not None or item.video is None:
            results.append(Classified(item.path, error=item.error))
            continue
        with torch.inference_mode():
            video = item.video.to(device)
            logits = model(video) if item.keep is None or not _takes_mask(model) else \
                model(video, token_mask=item.keep.to(device))
        if logits.dim() != 2 or logits.shape[0] != video.shape[0]:
            raise ConfigError(f"{type(model).__name__} returned {tuple(logits.shape)}, not class logits: classify "
                              "needs a model with a classification head (num_classes)")
        names = names or class_names(model, classes, logits.shape[1])
        probs = logits.float().softmax(-1).cpu()
        result = Classified(item.path, pooled=_top(probs.mean(0), names, k))
        for (start, end), row in zip(item.spans or [], probs, strict=True):
            result.windows.append({"start_s": start, "end_s": end, "top": _top(row, names, k)})
        results.append(result)
    require_some_read(len(paths), {r.path: r.error for r in results if r.error is not None})
    return results


def _takes_mask(model: Any) -> bool:
    import inspect

    return "token_mask" in inspect.signature(model.forward).parameters
