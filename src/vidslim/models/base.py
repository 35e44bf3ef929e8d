"""What every vidslim model shares: a config dataclass and an attached list of reducers.

`ReducibleModel.set_reduction(reducers)` attaches the reducer objects (see `vidslim.tokens.protocol`), gathers their
hooks once, and registers those that are `nn.Module`s under `reduction_modules` so their parameters follow the
model. With no reducers `hook_context` returns None and the blocks run their plain dense path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

from torch import nn

from vidslim.errors import ConfigError
from vidslim.tokens.protocol import HookContext, ReducerHooks

C = TypeVar("C")


def config_from_dict(cls: type[C], values: dict[str, Any], where: str = "config") -> C:
    """Build config dataclass `cls` from a dict, naming unknown fields (and the valid ones) in the error."""
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown} for {cls.__name__}; valid fields: {sorted(fields)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**values)


class ReducibleModel(nn.Module):
    """Base of the vidslim encoders: holds `config`, the reducers and their gathered hooks."""

    #: "clip" or "video_vit": which config class and loader a saved checkpoint needs
    family: ClassVar[str] = ""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self._reduction: tuple[object, ...] = ()
        self._hooks: ReducerHooks | None = None
        self.reduction_modules = nn.ModuleList()

    @property
    def reduction(self) -> tuple[object, ...]:
        """The attached reducers, in the order their hooks run."""
        return self._reduction

    def set_reduction(self, reduction: Sequence[object] | object | None) -> ReducibleModel:
        """Attach reducers (a list, one reducer, or None for the dense model), replacing earlier ones."""
        if reduction is None:
            reducers: tuple[object, ...] = ()
        elif isinstance(reduction, (list, tuple)):
            reducers = tuple(reduction)
        else:
            reducers = (reduction,)
        for r in reducers:
            if r is None or isinstance(r, (str, bytes, dict)):
                raise ConfigError(
                    f"reduction= takes reducer objects such as vs.RLT(tau=0.1) or vs.ToMe(r=8), got {r!r}"
                )
        for r in reducers:
            attach = getattr(r, "attach", None)
            if callable(attach):
                attach(self)
        self._reduction = reducers
        self._hooks = ReducerHooks.gather(reducers)
        if "reduction_modules" in self._modules:  # re-register last, so it prints after the backbone
            del self._modules["reduction_modules"]
        self.reduction_modules = nn.ModuleList([r for r in reducers if isinstance(r, nn.Module)])
        return self

    def hook_context(
        self,
        num_layers: int,
        batch_size: int,
        num_frames: int,
        cls_tokens: int,
        grid: tuple[int, int, int],
        encoder: nn.Module,
        input_sequences: int | None = None,
    ) -> HookContext | None:
        """A fresh context for one forward, or None when no reducer has hooks (the dense path).

        input_sequences: sequences entering the first block when not one per video (CLIP: one per frame)."""
        if self._hooks is None:
            return None
        return HookContext(
            layer=0,
            num_layers=num_layers,
            batch_size=batch_size,
            num_frames=num_frames,
            cls_tokens=cls_tokens,
            grid=grid,
            model=encoder,
            proportional_attention=self._hooks.proportional_attention,
            input_sequences=batch_size if input_sequences is None else input_sequences,
        )

    @property
    def hooks(self) -> ReducerHooks | None:
        """The gathered hooks of the attached reducers (None when there are none)."""
        return self._hooks

    def extra_repr(self) -> str:
        names = ", ".join(type(r).__name__ for r in self._reduction)
        return f"reduction=[{names}]" if names else ""
