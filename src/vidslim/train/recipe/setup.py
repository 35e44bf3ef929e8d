"""From a run config to the objects `run_training` and `evaluate` take: config, model, task, data factory.

Shared by `vidslim train` and `vidslim eval` (the schema is in `vidslim.cli.train`'s docstring). The YAML file
is read and the key=value overrides are applied on top. Batches carry the frames as decoded (uint8 [B, T, H, W, C])
and the model prepares them with its own input spec (layout, statistics), on its own device, unless the config
sets `video_layout` / `video_normalize` itself. The model is built after the first stage's data (a words
tokenizer needs its captions, a classifier its class count), under the run's seed, so a resumed run rebuilds the
same model.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from pathlib import Path
from typing import Any

from torch import nn

from vidslim.errors import CheckpointError, ConfigError, printable
from vidslim.train import StageData, TrainConfig, config_from_dict, parse_overrides
from vidslim.train.config import Stage, read_yaml_file
from vidslim.train.distributed import DistInfo
from vidslim.train.recipe.data import KINDS, DataSection, build_split
from vidslim.train.recipe.model import ModelSection, build_model

log = logging.getLogger(__name__)

MODEL_DIR = "model"


def read_tree(path: str | Path, overrides: list[str]) -> dict[str, Any]:
    """The YAML file as a dict with the key=value overrides applied."""
    file = Path(path)
    loaded = read_yaml_file(file) or {}  # bounded: size, depth and alias expansion
    if not isinstance(loaded, dict):
        raise ConfigError(f"{printable(str(file))}: the top level must be a mapping of run settings, got a "
                          f"{type(loaded).__name__}")
    return parse_overrides(list(overrides), loaded)


def build_task(kind: str, values: dict[str, Any]) -> nn.Module:
    """RetrievalTask or ClassificationTask from the `task:` section (unknown keys named)."""
    from vidslim.tasks.classification import ClassificationTask
    from vidslim.tasks.retrieval import RetrievalTask

    cls: Any = RetrievalTask if kind == "retrieval" else ClassificationTask
    valid = [n for n in inspect.signature(cls).parameters]
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ConfigError(f"task: unknown key(s) {unknown} for {cls.__name__}; valid keys: {valid}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**values)  # type: ignore[no-any-return]


class _StageFactory:
    """The loaders factory: the training and evaluation splits at a stage's clip length, the newest kept."""

    def __init__(self, kind: str, data: DataSection, layout: str, info: DistInfo) -> None:
        self.kind, self.data, self.layout, self.info = kind, data, layout, info
        self.built: dict[tuple[str, int | None], Any] = {}

    def frames(self, stage: Stage) -> int | None:
        frames = stage.overrides.get("frames", self.data.frames)
        return None if frames is None else int(frames)

    def split(self, which: str, stage: Stage) -> Any:
        """The "train" or "eval" dataset of `stage` (None for eval without data.eval_split)."""
        key = (which, self.frames(stage))
        if key not in self.built:
            d = self.data
            name = d.train_split if which == "train" else d.eval_split
            self.built = {k: v for k, v in self.built.items() if k[1] == key[1]}  # drop other clip lengths
            self.built[key] = build_split(d, self.kind, name, which == "train", self.info, key[1]) if name else None
        return self.built[key]

    def collate(self) -> Any:
        from vidslim.data.collate import Collate

        return Collate(layout=self.layout)  # type: ignore[arg-type]

    def __call__(self, stage: Stage) -> StageData:
        return StageData(self.split("train", stage), self.split("eval", stage), self.collate())


@dataclasses.dataclass
class Run:
    """Everything one training or evaluation run needs."""

    kind: str
    config: TrainConfig
    model: nn.Module
    task: nn.Module
    data: DataSection
    model_section: ModelSection
    info: DistInfo
    stage_data: _StageFactory

    @property
    def run_dir(self) -> Path:
        return Path(self.config.run_dir)

    def on_stage(self, stage: Stage) -> None:
        """Curriculum settings of a stage (frames, keep, sparsity) applied to the model (`apply_stage`)."""
        from vidslim.reduce.curriculum import apply_stage

        apply_stage(self.model, stage)


def _video_defaults(tree: dict[str, Any]) -> dict[str, Any]:
    """Batches as decoded unless the config says otherwise: the model prepares them (its input spec)."""
    if tree.get("video_normalize") is not None and tree.get("video_layout", "THWC") == "THWC":
        raise ConfigError("video_normalize needs a video_layout (TCHW or CTHW); leave both out and the model "
                          "prepares the decoded frames with its own statistics")
    tree.setdefault("video_layout", "THWC")
    return tree


def _check_frame_size(data: DataSection, model: nn.Module) -> None:
    """data.size must be the frame size the model reads: decoding at another size and letting the model resize
    again only blurs the frames (or, upscaled, spends decoding on pixels that are thrown away)."""
    spec = getattr(model, "input_spec", None)
    if data.size is None or spec is None or data.size == spec.image_size:
        return
    fits = data.size % spec.patch_size == 0
    raise ConfigError(f"data.size={data.size}, but the model reads {spec.image_size} x {spec.image_size} frames: set "
                      f"data.size={spec.image_size}" + (f", or model.config.image_size={data.size}" if fits else
                      f" (a model size must be a multiple of its patch size {spec.patch_size})"))


def prepare_run(kind: str, config_path: str | Path, overrides: list[str], info: DistInfo,
                checkpoint: str | Path | None = None) -> Run:
    """Read the config and build the model (or load `checkpoint`), the task and the data factory."""
    from vidslim.train.seeding import seed_everything

    if kind not in KINDS:
        raise ConfigError(f"the task must be one of {KINDS}, got {kind!r}")
    tree = read_tree(config_path, overrides)
    model_section = ModelSection.from_dict(tree.get("model"))
    data = DataSection.from_dict(tree.get("data"))
    tree = _video_defaults(tree)
    try:
        config = config_from_dict(tree)
    except ConfigError as error:
        raise ConfigError(f"{config_path}: {error}") from None
    factory = _StageFactory(kind, data, config.video_layout, info)
    seed_everything(config.seed)
    first = config.stages[0]
    model = build_model(model_section, kind, Path(config.run_dir), info,
                        captions=lambda: factory.split("train", first).captions,
                        num_classes=lambda: factory.split("train", first).num_classes, checkpoint=checkpoint)
    _check_frame_size(data, model)
    task = build_task(kind, dict(config.task))
    return Run(kind, config, model, task, data, model_section, info, factory)


def resolve_checkpoint(path: str | Path | None, run_dir: Path) -> tuple[str, Path | None]:
    """What evaluation loads: ("model", vidslim folder), ("train", training checkpoint folder) or ("none", None).

    path None looks in the run folder: RUN/model, else the newest training checkpoint, else nothing (the model as
    the config builds it). A path may be a vidslim model folder, a run folder, or a training checkpoint folder.
    """
    from vidslim.train.checkpoint import STATE_NAME, list_checkpoints

    folder = Path(path) if path is not None else run_dir
    if (folder / "vidslim.json").is_file():
        return "model", folder
    if (folder / STATE_NAME).is_file():
        return "train", folder
    if (folder / "config.json").is_file() or folder.is_file():  # a Hugging Face folder, a weights file
        return "model", folder
    if (folder / MODEL_DIR / "vidslim.json").is_file():
        return "model", folder / MODEL_DIR
    found = list_checkpoints(folder)
    if found:
        return "train", found[-1][1]
    if path is not None:
        raise CheckpointError(f"{path}: neither a vidslim model folder (vidslim.json), a run folder (model/ or "
                              "checkpoints/) nor a training checkpoint (state.json); pass one of those")
    return "none", None


__all__ = ["MODEL_DIR", "Run", "build_task", "prepare_run", "read_tree", "resolve_checkpoint"]
