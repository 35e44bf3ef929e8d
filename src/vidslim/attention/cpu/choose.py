"""Which kernel runs block-sparse attention on given inputs: the one place that decides.

"native" is the fused C kernel (`vidslim.attention.cpu.kernel`); "gather" is the gather + SDPA path of
`vidslim.attention.block_sparse`, which runs everywhere (any device and dtype, autograd, tracers) and is the
reference the native kernel must match.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch
from torch import Tensor

from vidslim.attention.cpu.build import native_kernel

Kernel = Literal["native", "gather"]

_switched_off = 0


@contextlib.contextmanager
def gather_kernel_only() -> Iterator[None]:
    """Within this block (in every thread), block-sparse attention runs the gather + SDPA kernel even where the
    fused one could run (to compare the two side by side; VIDSLIM_NATIVE=0 does it for a whole process)."""
    global _switched_off
    _switched_off += 1
    try:
        yield
    finally:
        _switched_off -= 1


def _traced() -> bool:
    """Whether a tracer or compiler is recording: a ctypes call would be invisible to it (its output a constant)."""
    return bool(torch._C._get_tracing_state()) or torch.jit.is_scripting() or torch.compiler.is_compiling()


def choose_kernel(q: Tensor, k: Tensor, v: Tensor, *others: Tensor | None) -> Kernel:
    """The kernel for these inputs: "native" where the fused kernel can take them, else "gather".

    Native needs: float32 CPU [rows, H, d] q, k, v; no autograd through any of them or `others` (a key bias, say);
    no dispatch mode (a FLOP counter or fake tensors must see the torch ops) and no tracer or compiler recording
    (they would not see a ctypes call); not inside `gather_kernel_only()`; and the kernel built and loaded. The
    checks run cheapest first, so the build is attempted only for inputs it could serve.
    """
    tensors = (q, k, v)
    if _switched_off:
        return "gather"
    if any(t.device.type != "cpu" or t.dtype != torch.float32 or t.dim() != 3 for t in tensors):
        return "gather"
    extra = [t for t in others if t is not None]
    if torch.is_grad_enabled() and any(t.requires_grad for t in (*tensors, *extra)):
        return "gather"
    if torch._C._len_torch_dispatch_stack() > 0 or any(type(t) is not torch.Tensor for t in (*tensors, *extra)):
        return "gather"
    if _traced():
        return "gather"
    return "native" if native_kernel() is not None else "gather"
