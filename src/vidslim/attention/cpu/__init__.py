"""CPU-only plumbing of block-sparse attention: the fused C kernel and the threads it runs on.

    choose_kernel(q, k, v, key_bias)  "native" or "gather": the one decision, made per call (choose.py)
    native_group_attend(...)          the fused kernel on one group of query blocks (kernel.py)
    native_kernel()                   the compiled, checked and loaded library, or None (build.py)
    private_folder(...), damage(...)  where builds may be kept and loaded from, and whether one is intact (cache.py)
    run_shares(work, shares)          work shared out to torch's threads, one share each (workers.py)

block_sparse.c is the kernel's source, compiled on first use.
"""

from __future__ import annotations

from vidslim._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "NativeKernel": "vidslim.attention.cpu.build",
    "forget_native_kernel": "vidslim.attention.cpu.build",
    "native_kernel": "vidslim.attention.cpu.build",
    "Kernel": "vidslim.attention.cpu.choose",
    "choose_kernel": "vidslim.attention.cpu.choose",
    "gather_kernel_only": "vidslim.attention.cpu.choose",
    "native_group_attend": "vidslim.attention.cpu.kernel",
    "run_shares": "vidslim.attention.cpu.workers",
    "split_evenly": "vidslim.attention.cpu.workers",
    "workers_available": "vidslim.attention.cpu.workers",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
