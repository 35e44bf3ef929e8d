"""What every vidslim model shares: a config dataclass, its input spec, and an attached list of reducers.

`ReducibleModel.input_spec` says what the model takes (`vidslim.io.input_spec`), built from its config, and
`prepare_input` turns what a caller hands in (a `Clip`, decoded uint8 frames, or an already normalised tensor) into
exactly that, so no caller prepares input by model family. `embed_input` runs the attached before-the-model
reducer (a `TokenSelector` such as RLT), if any, and the model's own `embed(video, keep)`.

`set_reduction(reducers)` attaches the reducer objects (see `vidslim.tokens.protocol`), refuses those that do not
apply to the model (`vidslim.reduce.registry`), gathers their hooks once, and registers those that are `nn.Module`s
under `reduction_modules` so their parameters follow the model. With no reducers `hook_context` returns None and
the blocks run their plain dense path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

import torch
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.io.input_spec import InputSpec, Layout
from vidslim.tokens import Tokens
from vidslim.tokens.protocol import HookContext, ReducerHooks, reduce_range
from vidslim.tokens.selection import Selection, TokenSelector

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
    #: the layout of the video the model takes (see `vidslim.io.input_spec`)
    layout: ClassVar[Layout] = "TCHW"
    #: every frame is its own sequence with its own CLS token (an image tower run on each frame)
    per_frame: ClassVar[bool] = False

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self._reduction: tuple[object, ...] = ()
        self._hooks: ReducerHooks | None = None
        self.reduction_modules = nn.ModuleList()

    # ------------------------------------------------------------------------------------------ input
    @property
    def input_spec(self) -> InputSpec:
        """What this model takes as input, from its config (layout, mean/std, frames, size, patch, class names)."""
        return self.spec_of(self.config)

    @classmethod
    def spec_of(cls, config: Any) -> InputSpec:
        """The input spec of this model class built with `config` (no model needed)."""
        return InputSpec(
            layout=cls.layout,
            mean=tuple(config.image_mean),
            std=tuple(config.image_std),
            num_frames=config.num_frames,
            image_size=config.image_size,
            patch_size=config.patch_size,
            tubelet_size=getattr(config, "tubelet_size", 1),
            per_frame=cls.per_frame,
            class_names=tuple(config.class_names) if config.class_names else None,
        )

    @property
    def token_dim(self) -> int:
        """Width of the tokens the reducers see."""
        raise NotImplementedError

    @property
    def num_layers(self) -> int:
        """Blocks the reducers' hooks run in."""
        raise NotImplementedError

    def input_device(self) -> torch.device:
        """Where the model's first weights live (where decoded frames are normalised)."""
        return next(self.parameters()).device

    def prepare_input(self, video: Any) -> Tensor:
        """The normalised float batch this model takes, from a `Clip`, decoded uint8 frames [T, H, W, C] /
        [B, T, H, W, C] (prepared with `input_spec`), or a float tensor already in the model's layout (checked)."""
        spec = self.input_spec
        frames = getattr(video, "frames", video)
        if not isinstance(frames, Tensor) or frames.dtype == torch.uint8:
            return spec.prepare(frames, device=self.input_device())
        spec.check(frames, type(self).__name__)
        spec.check_values(frames, type(self).__name__)
        return frames

    def embed(self, video: Tensor, keep: Selection | Tensor | None = None) -> Tokens:
        """Tokens of a prepared batch: every patch or tubelet, or those `keep` selects (a mask or a Selection)."""
        raise NotImplementedError

    def encode_video(self, video: Any, *args: Any, **kwargs: Any) -> Tensor:
        """A batch of clips (decoded frames, a `Clip`, or a prepared tensor) -> video embeddings [B, D]."""
        raise NotImplementedError

    if TYPE_CHECKING:
        # Declared for type checkers and IDEs only, so `vs.load_model(...)` offers it: the video-text families
        # (CLIP, SigLIP, X-CLIP) define it; video-only models have no such attribute at run time, which is how
        # `VideoTextModel` (isinstance) tells them apart.
        def encode_text(self, text: Tensor | str | Sequence[str]) -> Tensor:
            """Texts (strings, or token ids [T, L]) -> text embeddings [T, D]."""
            ...

    @property
    def selector(self) -> TokenSelector | None:
        """The attached before-the-model reducer (RLT, random masking), or None."""
        return next((r for r in self._reduction if isinstance(r, TokenSelector)), None)

    def embed_input(self, video: Tensor, token_mask: Tensor | None = None) -> Tokens:
        """Tokens entering the first block: `embed` of the slots the attached selector keeps (all without one).

        token_mask: a keep mask computed earlier (RLT's in a data loader, say) for the attached selector.
        """
        selector = self.selector
        if selector is None:
            if token_mask is not None:
                raise ConfigError("token_mask= needs a tokenizing reducer such as vs.RLT() in the model's reduction")
            return self.embed(video)
        with reduce_range(selector, "token_mask"):  # the selector's own time in a profiled pass (bench overhead)
            selection = selector.select(video, self.input_spec, token_mask)
        return self.embed(video, selection)

    # ------------------------------------------------------------------------------------------ reduction
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
        if sum(isinstance(r, TokenSelector) for r in reducers) > 1:
            names = " and ".join(type(r).__name__ for r in reducers if isinstance(r, TokenSelector))
            raise ConfigError(f"reduction= holds {names}, both before-the-model reducers; a model runs one (to mask "
                              "RLT's tokens at random as well use vs.RLT(random_keep=FRACTION))")
        from vidslim.reduce.registry import check_applies

        for r in reducers:
            check_applies(r, self)
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


@runtime_checkable
class VideoTextModel(Protocol):
    """A model that embeds videos and texts into one space (CLIP and the other vision-text families): what
    text-video retrieval, search and zero-shot classification need."""

    def encode_video(self, video: Any) -> Tensor: ...

    def encode_text(self, text: Any) -> Tensor: ...

