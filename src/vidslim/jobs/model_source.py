"""The model a job runs: a checkpoint (folder, file or cached hub id, read by `vs.load_model`), a registered config
name (random weights, for measuring speed only), or a model object; with an optional reduction method that
replaces the checkpoint's own reducers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vidslim.errors import ConfigError

log = logging.getLogger(__name__)


def resolve_model(model: Any, method: str | list[Any] | None = None,
                  settings: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """(model in eval mode, the name the index records). method: None keeps the checkpoint's reducers, "dense" none,
    else a method string ("rlt", "rlt+tempme") built by the reducer registry with `settings` (--set values), or a
    reduction card (a list, as `vidslim tune --out` writes) built the same way."""
    name = getattr(model, "name_or_path", None) or f"<{type(model).__name__} object>"
    from vidslim.models.registry import list_models

    backbone = None
    if isinstance(model, (str, Path)):
        text = str(model)
        if text in list_models() and not Path(text).exists():
            from vidslim.models.registry import create_model

            log.warning("%s is a model config name: its weights are random (fine for measuring speed, not for "
                        "search or class names); pass a checkpoint for real results", text)
            model, name, backbone = create_model(text), text, text
        else:
            from vidslim.models.loading import load_model

            model, name = load_model(text), text
    if method is not None:
        from vidslim.models.registry import registered_name_of
        from vidslim.reduce.registry import build_reduction

        family = getattr(model, "family", None)
        if backbone is None and family is not None and hasattr(model, "config"):
            backbone = registered_name_of(model.config, family)  # a checkpoint: its architecture's presets
        reducers = [] if method == "dense" else build_reduction(method, model=backbone, family=family,
                                                                **dict(settings or {}))
        model.set_reduction(reducers)
    elif settings:
        raise ConfigError("--set applies to a --method; name the method the settings are for")
    return model.eval(), name


def card_of(model: Any) -> list[Any]:
    """The model's reduction card (plain data; class names for reducers the registry does not know)."""
    from vidslim.reduce.cards import reduction_card
    from vidslim.reduce.registry import entry_for

    reducers = getattr(model, "reduction", ())
    if all(entry_for(r) is not None for r in reducers):
        return reduction_card(reducers)
    return [type(r).__name__ for r in reducers]
