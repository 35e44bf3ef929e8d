"""CPU-only plumbing of block-sparse attention: the fused C kernel and the threads it runs on.

    choose_kernel(q, k, v, key_bias)  "native" or "gather": the one decision, made per call (choose.py)
    native_group_attend(...)          the fused kernel on one group of query blocks (kernel.py)
    native_kernel()                   the compiled, checked and loaded library, or None (build.py)
    private_folder(...), damage(...)  where builds may be kept and loaded from, and whether one is intact (cache.py)
    run_shares(work, shares)          work shared out to torch's threads, one share each (workers.py)

block_sparse.c is the kernel's source, compiled on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidslim._lazy import lazy_exports

if TYPE_CHECKING:  # the public names: what IDEs read; at run time each module is imported on first use
    from vidslim.attention.cpu.build import NativeKernel as NativeKernel
    from vidslim.attention.cpu.build import forget_native_kernel as forget_native_kernel
    from vidslim.attention.cpu.build import native_kernel as native_kernel
    from vidslim.attention.cpu.choose import Kernel as Kernel
    from vidslim.attention.cpu.choose import choose_kernel as choose_kernel
    from vidslim.attention.cpu.choose import gather_kernel_only as gather_kernel_only
    from vidslim.attention.cpu.kernel import native_group_attend as native_group_attend
    from vidslim.attention.cpu.workers import run_shares as run_shares
    from vidslim.attention.cpu.workers import split_evenly as split_evenly
    from vidslim.attention.cpu.workers import workers_available as workers_available

__getattr__, __dir__, __all__ = lazy_exports(__name__)
