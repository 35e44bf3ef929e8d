"""Share CPU work out to torch's threads by hand, each thread running its share single-threaded.

Some CPU kernels are made of many small, cache-sized steps (the block-sparse attention's gather-then-attend
chunks, and the fused C kernel's (head, query block) items, run through ctypes with the GIL released). Run
with torch's own intra-op threads, every step is a parallel region of its own: its tiles are too small to
split well and the threads meet at a barrier after each one. Handing each thread a contiguous share of the
steps instead, every thread running torch with one intra-op thread, keeps each share in its core's cache and
needs one join at the end. Torch ops release the GIL, so the shares run in parallel.

    run_shares(work, shares)   # work(share) for every share, one per thread; returns their results

Which threads: torch's own OpenMP team when torch runs on GNU OpenMP (Linux wheels): one OpenMP parallel
region (libgomp's `GOMP_parallel`, called through ctypes) whose threads each call back into Python for one
share; inside it torch sees it is in a parallel region and runs every op on the calling thread. Using the team
matters: after each parallel op, libgomp keeps its idle threads spinning for a few milliseconds (its default
spin count), so separate Python threads started right after the model's last op share a core with a spinning
thread and run markedly slower (seen on the ViT-B case of benchmarks/svitt_speed.py), while the team's threads
pick the region up at once. Elsewhere (no libgomp found) a small pool of Python threads, each set to one
intra-op thread (`torch.set_num_threads` is per thread under OpenMP and MKL), does the same; it is rebuilt
after a fork or a change of thread count.
"""

from __future__ import annotations

import ctypes
import functools
import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import torch

T = TypeVar("T")
S = TypeVar("S")

_Task = tuple[Callable[[], Any], Future] | None  # None: stop


class _Pool:
    """`size` daemon threads, each running torch single-threaded, taking tasks from one queue."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pid = os.getpid()
        self.tasks: queue.SimpleQueue[_Task] = queue.SimpleQueue()
        for index in range(size):
            threading.Thread(target=self._serve, name=f"vidslim-cpu-{index}", daemon=True).start()

    def _serve(self) -> None:
        torch.set_num_threads(1)
        while True:
            task = self.tasks.get()
            if task is None:
                return
            call, future = task
            try:
                future.set_result(call())
            except BaseException as error:  # handed to the caller, who re-raises it
                future.set_exception(error)

    def stop(self) -> None:
        """Let every thread finish its task at hand and end."""
        for _ in range(self.size):
            self.tasks.put(None)

    def submit(self, call: Callable[[], T]) -> Future:
        future: Future = Future()
        self.tasks.put((call, future))
        return future


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _get_pool(size: int) -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None or _pool.size != size or _pool.pid != os.getpid():
            if _pool is not None and _pool.pid == os.getpid():
                _pool.stop()  # (after a fork its threads are gone already)
            _pool = _Pool(size)
        return _pool


_TeamBody = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


@functools.cache
def _gnu_openmp() -> ctypes.CDLL | None:
    """The libgomp torch has loaded (found in this process's memory map), or None (other OpenMP, other OS)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libgomp" in line and line.rstrip().endswith(".so.1")}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            library = ctypes.CDLL(path)
            library.GOMP_parallel.argtypes = [_TeamBody, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
            library.GOMP_parallel.restype = None
            library.omp_get_thread_num.restype = ctypes.c_int
            library.omp_in_parallel.restype = ctypes.c_int
            return library
        except (OSError, AttributeError):
            continue
    return None


def _run_on_team(library: ctypes.CDLL, calls: Sequence[Callable[[], T]]) -> list[T]:
    """calls[i]() on thread i of one OpenMP parallel region of len(calls) threads; errors re-raised here.

    OpenMP may start fewer threads than asked (a thread limit); the calls no thread took run here afterwards.
    """
    results: list[Any] = [None] * len(calls)
    done = [False] * len(calls)
    errors: list[BaseException] = []

    def body(_: object) -> None:  # called by each thread of the team, holding the GIL between torch ops
        index = library.omp_get_thread_num()
        try:
            results[index] = calls[index]()
            done[index] = True
        except BaseException as error:  # ctypes would print and drop it
            errors.append(error)
            done[index] = True

    callback = _TeamBody(body)  # referenced until the region has ended
    library.GOMP_parallel(callback, None, len(calls), 0)  # ctypes releases the GIL for the call
    if errors:
        raise errors[0]
    for index, call in enumerate(calls):
        if not done[index]:
            results[index] = call()
    return results


def workers_available() -> int:
    """How many shares `run_shares` would run at once from this thread: torch's intra-op thread count; 1 inside
    one of the pool's own threads (no nesting) and while a dispatch mode is active (FLOP counters, fake tensors
    and tracers see only the thread they were entered on)."""
    if threading.current_thread().name.startswith("vidslim-cpu-") or torch._C._len_torch_dispatch_stack() > 0:
        return 1
    library = _gnu_openmp()
    if library is not None and library.omp_in_parallel():
        return 1
    return max(1, torch.get_num_threads())


def run_shares(work: Callable[[S], T], shares: Sequence[S]) -> list[T]:
    """work(share) for each share, concurrently on torch's OpenMP team (or the fallback pool), each thread with one
    intra-op thread, under the caller's grad and inference modes; results in order. At most
    `workers_available()` shares (split the work with `split_evenly`); one share or one worker: run inline."""
    if len(shares) <= 1 or workers_available() == 1:
        return [work(share) for share in shares]
    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

    def call(share: S) -> Callable[[], T]:
        def run() -> T:
            with torch.inference_mode(inference), torch.set_grad_enabled(grad):
                return work(share)

        return run

    calls = [call(share) for share in shares]
    library = _gnu_openmp()
    if library is not None and not library.omp_in_parallel():
        return _run_on_team(library, calls)
    pool = _get_pool(workers_available())
    futures = [pool.submit(run) for run in calls]
    return [future.result() for future in futures]


def split_evenly(count: int, parts: int) -> list[tuple[int, int]]:
    """[lo, hi) ranges cutting range(count) into at most `parts` contiguous pieces whose sizes differ by <= 1."""
    parts = max(1, min(parts, count))
    edges = [count * index // parts for index in range(parts + 1)]
    return [(edges[index], edges[index + 1]) for index in range(parts)]
