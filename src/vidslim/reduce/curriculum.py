"""SViTT's temporal sparse expansion as data: stages that grow the clip and the sparsity together (spec svitt §4).

    stages = load_curriculum([{"frames": 4, "keep": 0.7}, {"frames": 8, "keep": 0.6}])
    curriculum = Curriculum(model, stages)          # curriculum.on_stage(stage) is the training loop's hook
    apply_stage(model, stages[1])                   # or by hand: 8 frames, keep 0.6

The release chains these stages by hand as separate runs (4 frames at keep 0.7, then 8 frames at keep 0.6,
re-initialised from the first run with the temporal axis of its relative position bias resized by nearest
interpolation). `apply_stage` does the same to a live model:

- the temporal axis of a learned position table is resized to the stage's frames, by nearest-neighbour
  interpolation as the release does (`mode="linear"` interpolates instead). For the VideoMAE-layout video ViT
  with `learned_pos=True` that is `pos_embed` (its (t, h, w) grid, t = frames / tubelet); the fixed sinusoid
  table needs nothing (it is rebuilt for any grid), and CLIP has no temporal table (frames are independent
  until a reducer joins them). Any model may define `resize_frames(frames)` to be resized its own way.
  `model.config.num_frames` is updated, so a saved checkpoint describes the new table;
- the reducers take the stage's sparsity: `keep` for `TokenPrune`, `text_keep` for `TextGuidedPrune`, and
  `block`, `local`, `random` for `SparseAttention` (fields left out, or None, are unchanged).

A replaced position table is a new `nn.Parameter`: the training loop rebuilds its optimiser when a stage
hook replaces trainable parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.reduce.svitt_prune import TextGuidedPrune, TokenPrune

MODES = ("nearest", "linear")


@dataclasses.dataclass(frozen=True)
class CurriculumStage:
    """One stage: clip length and sparsity. None leaves a setting as it is.

    frames: frames per clip; keep: TokenPrune's keep rate; text_keep: TextGuidedPrune's keep rate;
    block / local / random: SparseAttention's pattern; name: a label for logs.
    """

    frames: int | None = None
    keep: float | None = None
    text_keep: float | None = None
    block: int | None = None
    local: int | None = None
    random: int | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.frames is not None and int(self.frames) < 1:
            raise ConfigError(f"curriculum stage {self.name!r}: frames must be >= 1, got {self.frames}")
        for field in ("keep", "text_keep"):
            value = getattr(self, field)
            if value is not None and not 0.0 < float(value) <= 1.0:
                raise ConfigError(f"curriculum stage {self.name!r}: {field} must be in (0, 1], got {value}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "curriculum stage") -> CurriculumStage:
        """Build from a plain dict (a YAML entry, or a training `Stage.overrides`), naming unknown keys."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
        return cls(**dict(values))


def load_curriculum(stages: Iterable[CurriculumStage | Mapping[str, Any]]) -> list[CurriculumStage]:
    """A list of stages from stages or plain dicts, e.g. [{"frames": 4, "keep": 0.7}, {"frames": 8, "keep": 0.6}]."""
    out = []
    for i, stage in enumerate(stages):
        out.append(stage if isinstance(stage, CurriculumStage) else CurriculumStage.from_dict(stage, f"stage {i}"))
    return out


def as_stage(stage: CurriculumStage | Mapping[str, Any] | Any) -> CurriculumStage:
    """A CurriculumStage from a stage, a dict, or the training loop's `Stage` (its `overrides` dict).

    Keys of `overrides` that are not curriculum settings (data options, say) are ignored here.
    """
    if isinstance(stage, CurriculumStage):
        return stage
    if isinstance(stage, Mapping):
        return CurriculumStage.from_dict(stage)
    overrides = getattr(stage, "overrides", None)
    if isinstance(overrides, Mapping):
        fields = {f.name for f in dataclasses.fields(CurriculumStage)}
        values = {k: v for k, v in overrides.items() if k in fields}
        values.setdefault("name", str(getattr(stage, "name", "")))
        return CurriculumStage.from_dict(values)
    raise ConfigError(
        f"apply_stage: cannot read a curriculum stage from {type(stage).__name__}; pass a CurriculumStage, a dict "
        "such as {'frames': 8, 'keep': 0.6}, or a training Stage with those keys in its overrides"
    )


def resize_temporal(table: Tensor, grid: tuple[int, int, int], frames: int, mode: str = "nearest") -> Tensor:
    """A [t·h·w, D] table on a (t, h, w) grid resized along t to `frames` slots ("nearest" or "linear")."""
    if mode not in MODES:
        raise ConfigError(f"resize_temporal(mode={mode!r}): use one of {', '.join(MODES)}")
    t, h, w = grid
    if table.shape[0] != t * h * w:
        raise ConfigError(f"position table of {table.shape[0]} rows does not fit the grid {grid}")
    if frames == t:
        return table
    dim = table.shape[1]
    image = table.float().reshape(1, t, h * w, dim).permute(0, 3, 1, 2)  # [1, D, t, hw]
    if mode == "nearest":
        image = F.interpolate(image, size=(frames, h * w), mode="nearest")
    else:
        image = F.interpolate(image, size=(frames, h * w), mode="bilinear", align_corners=False)
    return image.permute(0, 2, 3, 1).reshape(frames * h * w, dim).to(table.dtype)


def _resize_frames(model: nn.Module, frames: int, mode: str) -> None:
    resize = getattr(model, "resize_frames", None)
    if callable(resize):
        resize(frames)
        return
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "num_frames"):
        raise ConfigError(f"apply_stage: {type(model).__name__} has no config.num_frames, so frames cannot change")
    tubelet = int(getattr(config, "tubelet_size", 1))
    if frames % tubelet:
        raise ConfigError(f"apply_stage: frames={frames} must be a multiple of the model's tubelet_size={tubelet}")
    pos = getattr(model, "pos_embed", None)
    if isinstance(pos, nn.Parameter) and getattr(config, "learned_pos", False):
        table = resize_temporal(pos.detach()[0], tuple(config.grid), frames // tubelet, mode)
        model.pos_embed = nn.Parameter(table[None].contiguous(), requires_grad=pos.requires_grad)
    config.num_frames = frames


def _reducers(model: nn.Module) -> list[object]:
    found = list(getattr(model, "reduction", ()) or ())
    prune = getattr(model, "prune", None)  # the cross-modal encoder's TextGuidedPrune
    if prune is not None:
        found.append(prune)
    return found


def apply_stage(model: nn.Module, stage: CurriculumStage | Mapping[str, Any] | Any, mode: str = "nearest") -> None:
    """Move a model to a curriculum stage: resize its temporal position table, set its reducers' sparsity."""
    stage = as_stage(stage)
    if stage.frames is not None:
        _resize_frames(model, int(stage.frames), mode)
    for reducer in _reducers(model):
        if isinstance(reducer, TokenPrune) and stage.keep is not None:
            reducer.set_keep(stage.keep)
        elif isinstance(reducer, TextGuidedPrune) and stage.text_keep is not None:
            reducer.set_keep(stage.text_keep)
        elif callable(getattr(reducer, "set_sparsity", None)):
            reducer.set_sparsity(block=stage.block, local=stage.local, random=stage.random)  # type: ignore[attr-defined]


class Curriculum:
    """A model and its stages; `on_stage(stage)` is the hook the training loop calls at each stage start.

    The loop passes its own `Stage` (whose `overrides` hold frames / keep / ...); an int picks one of
    `stages` by index; a CurriculumStage or a dict is applied as is.
    """

    def __init__(self, model: nn.Module, stages: Iterable[CurriculumStage | Mapping[str, Any]] = (),
                 mode: str = "nearest") -> None:
        self.model = model
        self.stages = load_curriculum(stages)
        self.mode = mode
        self.current: CurriculumStage | None = None

    def on_stage(self, stage: CurriculumStage | Mapping[str, Any] | int | Any) -> None:
        """Apply a stage to the model (see the class docstring)."""
        if isinstance(stage, int):
            if not 0 <= stage < len(self.stages):
                raise ConfigError(f"Curriculum.on_stage({stage}): there are {len(self.stages)} stages")
            stage = self.stages[stage]
        self.current = as_stage(stage)
        apply_stage(self.model, self.current, self.mode)


__all__ = ["Curriculum", "CurriculumStage", "apply_stage", "as_stage", "load_curriculum", "resize_temporal"]
