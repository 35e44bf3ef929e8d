"""CPU-only plumbing of block-sparse attention: the fused C kernel and the threads it runs on.

    choose_kernel(q, k, v, key_bias)  "native" or "gather": the one decision, made per call (choose.py)
    native_group_attend(...)          the fused kernel on one group of query blocks (kernel.py)
    native_kernel()                   the compiled, checked and loaded library, or None (build.py)
    private_folder(...), damage(...)  where builds may be kept and loaded from, and whether one is intact (cache.py)
    run_shares(work, shares)          work shared out to torch's threads, one share each (workers.py)

block_sparse.c is the kernel's source, compiled on first use.
"""

from vidslim.attention.cpu.build import NativeKernel, forget_native_kernel, native_kernel
from vidslim.attention.cpu.choose import Kernel, choose_kernel, gather_kernel_only
from vidslim.attention.cpu.kernel import native_group_attend
from vidslim.attention.cpu.workers import run_shares, split_evenly, workers_available

__all__ = [
    "Kernel",
    "NativeKernel",
    "choose_kernel",
    "forget_native_kernel",
    "gather_kernel_only",
    "native_group_attend",
    "native_kernel",
    "run_shares",
    "split_evenly",
    "workers_available",
]
