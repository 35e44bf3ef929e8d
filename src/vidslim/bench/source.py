"""The model a benchmark runs: a registered name (random weights) or anything `vidslim.load_model` reads (a folder,
a file, a cached hub id), and one copy of it per reduction method, all sharing the same weights.

    source = ModelSource.open("clip-b16")                     # random weights, as `create_model`
    source = ModelSource.open("runs/clip-msrvtt", num_frames=8)  # a checkpoint; config overrides apply to both
    net = source.build(build_method("tempme", source))        # a model with those reducers, the source's weights

`preset` is the registered backbone whose presets (TempMe's paper settings, ToMe's r) a method string starts from:
the name itself, or for a checkpoint the registered model with the same architecture (None when none matches,
then the reducers' "*" presets or defaults apply).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import Any

from torch import nn

from vidslim.errors import ConfigError

_LOADED: dict[tuple[str, str], ModelSource] = {}


@dataclasses.dataclass
class ModelSource:
    """A model to benchmark: how to build it with any reducers, its config, family and preset backbone."""

    name: str
    config: Any
    family: str
    preset: str | None
    base: nn.Module | None = None  # the loaded dense model (checkpoints); None: registered, built by name
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def open(cls, name: str, **overrides: Any) -> ModelSource:
        """A registered name, else whatever `load_model` reads (its error names what to pass)."""
        from vidslim.models.registry import family_of, get_config

        family = family_of(name)
        if family is not None:
            return cls(name, get_config(name, **overrides), family, name, None, dict(overrides))
        key = (name, repr(sorted(overrides.items())))
        if key not in _LOADED:  # one load per checkpoint and settings: the suite and the CLI both open it
            from vidslim.models.loading import load_model
            from vidslim.models.registry import registered_name_of

            model = load_model(name, reduction=[], **overrides).eval()
            _LOADED.clear()
            _LOADED[key] = cls(name, model.config, model.family, registered_name_of(model.config, model.family), model,
                               dict(overrides))
        return _LOADED[key]

    @property
    def spec(self) -> Any:
        """The model's input spec (what it takes as input)."""
        from vidslim.models.registry import FAMILIES

        model_cls = FAMILIES[self.family][0]
        return model_cls.spec_of(self.config)  # type: ignore[attr-defined]

    def build(self, reduction: Sequence[object] = ()) -> nn.Module:
        """A model in eval mode with `reduction` attached: random weights (seeded by the caller) for a name, the
        checkpoint's weights, shared and not copied, for a loaded model."""
        if self.base is None:
            from vidslim.models.registry import create_model

            return create_model(self.name, reduction=list(reduction), **self.overrides).eval()
        shared = {id(t): t for t in (*self.base.parameters(), *self.base.buffers())}
        net = copy.deepcopy(self.base, memo=shared)
        net.set_reduction(list(reduction))  # type: ignore[operator]
        return net.eval()


def config_fields(source: ModelSource) -> set[str]:
    """The config fields `--set` may change on this model."""
    if not dataclasses.is_dataclass(source.config):
        raise ConfigError(f"{source.name}: its config is not a dataclass; cannot list its fields")
    return {f.name for f in dataclasses.fields(source.config)}


__all__ = ["ModelSource", "config_fields"]
