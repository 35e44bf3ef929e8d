"""Building a model whose weights a checkpoint is about to overwrite, without drawing random weights first.

Building a model draws every weight at random (`nn.init`) before the checkpoint's tensors are copied over them;
for a ViT-B that drawing is most of the load time. Inside `SkipRandomInit` the random fills set their tensor to
zeros instead (a torch function mode, so only this thread is affected). A memset costs a fraction of drawing, and
zeros, unlike untouched memory, end the rejection loop of torch's `trunc_normal_` (not dispatched itself, but its
inner `normal_` is). The caller must then check that the checkpoint covers every parameter and buffer, and build
again the ordinary way if not (`loading.py` does), so no weight the file lacks stays zero.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode

#: the random fills skipped while the model is built (nn.init's, and the tensor methods they and others call)
RANDOM_FILLS = {
    torch.nn.init.uniform_, torch.nn.init.normal_, torch.nn.init.kaiming_uniform_, torch.nn.init.kaiming_normal_,
    torch.nn.init.xavier_uniform_, torch.nn.init.xavier_normal_,
    torch.Tensor.uniform_, torch.Tensor.normal_,
}  # fmt: skip


class SkipRandomInit(TorchFunctionMode):
    """Inside this mode the random fills above set their tensor to zeros and return it."""

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in RANDOM_FILLS:
            tensor = args[0] if args else kwargs["tensor"]
            with torch.no_grad():
                return tensor.zero_()
        return func(*args, **kwargs)
