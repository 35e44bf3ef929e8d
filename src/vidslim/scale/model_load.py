"""Loading a job's model from a checkpoint without drawing the random weights the checkpoint then overwrites.

Building a model draws every weight at random (`nn.init`) before `load_model` copies the checkpoint's tensors
over them; for a ViT-B that drawing is most of the load time. A Ray job loads the model once in the driver (for
the index's meta) and once per actor, so it pays this waste several times where the local job pays it once.
`load_job_model` builds the model with the random fills turned into no-ops (a torch function mode, so only this
thread is affected), then checks that the checkpoint held every parameter and buffer of the model it built; if
not, it loads the model again the ordinary way, so a model never runs on weights that were never set.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from vidslim.jobs.model_source import resolve_model

#: the random fills skipped while the model is built (nn.init's, and the tensor methods they and others call)
_RANDOM_FILLS = {
    torch.nn.init.uniform_, torch.nn.init.normal_, torch.nn.init.kaiming_uniform_, torch.nn.init.kaiming_normal_,
    torch.nn.init.xavier_uniform_, torch.nn.init.xavier_normal_, torch.Tensor.uniform_, torch.Tensor.normal_,
}


class SkipRandomInit(TorchFunctionMode):
    """Inside this mode the random fills above return their tensor untouched (whatever memory it holds)."""

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in _RANDOM_FILLS:
            return args[0] if args else kwargs["tensor"]
        return func(*args, **kwargs)


def _is_checkpoint(model: Any) -> bool:
    """A path or hub id `load_model` reads (not a registered config name, which means random weights)."""
    if not isinstance(model, (str, Path)):
        return False
    from vidslim.models.registry import list_models

    return not (str(model) in list_models() and not Path(model).exists())


def load_job_model(model: Any, method: str | None = None, settings: Mapping[str, Any] | None = None
                   ) -> tuple[Any, str]:
    """`resolve_model(model, method, settings)` with a checkpoint's weights loaded without random init first."""
    if not _is_checkpoint(model):
        return resolve_model(model, method, settings)
    from vidslim.models.checkpoint_read import read_checkpoint
    from vidslim.models.loading import model_from_checkpoint

    name = str(model)
    ckpt = read_checkpoint(model)
    with SkipRandomInit():
        built = model_from_checkpoint(ckpt, name)
    if not set(built.state_dict()) <= set(ckpt.state):  # something was left as uninitialised memory
        built = model_from_checkpoint(ckpt, name)
    loaded, _ = resolve_model(built, method, settings)  # the method's reducers are built outside the mode
    return loaded, name
