"""The fused CPU kernel of block-sparse attention: block_sparse_cpu.c, compiled on first use, called through ctypes.

Why a kernel of our own: on CPU, torch can only run block-sparse attention as gather-then-SDPA. The gathers copy
every key block once per query block that uses it through memory, and torch's SDPA runs 56 x 224 tiles at ~0.75
of its rate on a full sequence (it cuts queries into 32-row chunks), which held SViTT's ViT-B case
(benchmarks/svitt_speed.py: 1568 tokens, 4 of 28 key blocks per query) to 4.1-5.0x faster than dense against a
density ratio of 7. The kernel does one (head, query block) at a time with everything in cache: copy the block's
queries, keys and values of one head into small tiles, one BLAS sgemm for the scores, a vectorised softmax, one
sgemm for the output, rows written straight to their packed places (5.5-5.9x on the same machine and case).

How it runs, with nothing to install:
- the C source ships in the package; the first call compiles it with the system C compiler ($CC, else cc, gcc or
  clang; ~0.2 s) into a cache folder ($VIDSLIM_CACHE_DIR, else $XDG_CACHE_HOME/vidslim or ~/.cache/vidslim),
  named by a hash of the source, the compiler, the flags and the CPU, and reuses it afterwards;
- BLAS is torch's own (the Fortran `sgemm_` exported by libtorch_cpu: MKL in Linux x86 wheels), found in this
  process and handed to the kernel as a function pointer; MKL is told to run each call on the calling thread;
- work items (head x query block) are shared out to torch's threads by `cpu_workers.run_shares`.
Where any of this is missing (no compiler, no `sgemm_`, another OS) or VIDSLIM_NATIVE=0, `native_kernel()` is
None and block_sparse.py keeps its gather + SDPA path; a failed build is logged once, with the compiler's error.
The kernel covers float32 CPU tensors without autograd, outside dispatch modes (FLOP counters, fake tensors) and
tracers (`native_applicable`). Rows are as SDPA's: a NaN score gives a NaN row, a row whose keys are all masked
gives zeros.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import hashlib
import logging
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from vidslim.attention.cpu_workers import run_shares, split_evenly, workers_available

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("block_sparse_cpu.c")
#: flag sets tried in order: tuned for this CPU, then portable (a compiler that does not know -march=native)
FLAG_SETS = (
    ("-O3", "-march=native", "-fno-math-errno", "-fopenmp-simd"),
    ("-O3", "-fno-math-errno"),
)


#: below this many FLOPs one call runs on the calling thread: sharing out costs ~50-150 us (one OpenMP region and
#: a Python callback per thread), the time of ~10 MFLOP here
PARALLEL_FLOPS = 10_000_000


class _Strides(ctypes.Structure):
    """Element strides of a packed [rows, heads, d] tensor (see strides_t in the C source)."""

    _fields_ = [("row", ctypes.c_int64), ("head", ctypes.c_int64)]


_P, _I, _I64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64
_ARGTYPES = [_P, _Strides, _P, _Strides, _P, _Strides, _P, _Strides, _I, _I, _I, _I, _I, _P, _P, _P]
_ARGTYPES += [ctypes.c_float, _I64, _I64, _P, _P]


@dataclasses.dataclass(frozen=True)
class NativeKernel:
    """The loaded kernel: its entry point, the BLAS it calls and where the compiled library lies."""

    attend: ctypes._CFuncPtr
    sgemm: int
    set_blas_threads: int | None
    path: Path


def cache_dir() -> Path:
    """Where compiled kernels are kept: $VIDSLIM_CACHE_DIR, else $XDG_CACHE_HOME/vidslim, else ~/.cache/vidslim."""
    if os.environ.get("VIDSLIM_CACHE_DIR"):
        return Path(os.environ["VIDSLIM_CACHE_DIR"]) / "kernels"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vidslim" / "kernels"


def find_compiler() -> str | None:
    """$CC if set (a command line such as "ccache gcc"; used even when it does not work: the user chose it), else
    the first of cc, gcc, clang on PATH."""
    if os.environ.get("CC"):
        return os.environ["CC"]
    return next((path for name in ("cc", "gcc", "clang") if (path := shutil.which(name))), None)


def _cpu_signature() -> str:
    """What a -march=native build depends on: the machine and its CPU flags (Linux), so a moved cache rebuilds."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((line for line in info if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    return f"{platform.machine()} {flags.strip()}"


def _compiler_version(compiler: str) -> str:
    try:
        done = subprocess.run([*shlex.split(compiler), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        return f"unknown ({error})"
    return done.stdout


def compile_kernel(compiler: str, folder: Path) -> Path:
    """The compiled kernel library in `folder`, built now unless a build of this source, compiler and CPU is there.

    Raises RuntimeError with the compiler's output when no flag set builds it.
    """
    source = SOURCE.read_bytes()
    version = _compiler_version(compiler)
    errors = []
    for flags in FLAG_SETS:
        key = hashlib.sha256(b"\0".join(x.encode() for x in (compiler, version, *flags)))
        key.update(source)
        key.update(_cpu_signature().encode())
        target = folder / f"block_sparse_cpu-{key.hexdigest()[:16]}.so"
        if target.exists():
            return target
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        command = [*shlex.split(compiler), *flags, "-shared", "-fPIC", str(SOURCE), "-o", str(partial)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as error:
            errors.append(f"{' '.join(command)}: {error}")
            continue
        if done.returncode == 0:
            os.replace(partial, target)  # atomic: a process compiling beside us writes the same bytes
            return target
        partial.unlink(missing_ok=True)
        errors.append(f"{' '.join(command)}: exit status {done.returncode}\n{done.stderr.strip()[-2000:]}")
    raise RuntimeError("\n".join(errors))


def _torch_blas() -> tuple[int, int | None] | None:
    """(address of sgemm_, address of MKL's mkl_set_num_threads_local or None) from torch's CPU library, or None."""
    folder = Path(torch.__file__).parent / "lib"
    for name in ("libtorch_cpu.so", "libtorch_cpu.dylib"):
        if not (folder / name).exists():
            continue
        try:
            library = ctypes.CDLL(str(folder / name))  # already loaded by torch: this only looks symbols up
        except OSError:
            continue
        sgemm = getattr(library, "sgemm_", None)
        if sgemm is None:
            return None
        set_threads = getattr(library, "MKL_Set_Num_Threads_Local", None)  # the C interface (by value)
        address = ctypes.cast(set_threads, ctypes.c_void_p).value if set_threads is not None else None
        return ctypes.cast(sgemm, ctypes.c_void_p).value or 0, address
    return None


def _fallback_dir() -> Path:
    """A per-user build folder in the temporary directory, for when the cache folder cannot be written."""
    return Path(tempfile.gettempdir()) / f"vidslim-kernels-{getattr(os, 'getuid', lambda: 0)()}"


def _load(path: Path, blas: tuple[int, int | None]) -> NativeKernel:
    library = ctypes.CDLL(str(path))  # OSError: not loadable (a noexec folder, a truncated or foreign file)
    attend = library.vidslim_block_sparse_attend
    attend.argtypes = _ARGTYPES
    attend.restype = ctypes.c_int
    return NativeKernel(attend, blas[0], blas[1], path)


_load_lock = threading.Lock()


def native_kernel() -> NativeKernel | None:
    """The fused kernel, compiled and loaded on first call; None where it cannot run (see the module doc)."""
    with _load_lock:  # threads calling first at once wait for the one build
        return _build_and_load()


def forget_native_kernel() -> None:
    """Let the next `native_kernel()` build and load again (after changing CC, VIDSLIM_CACHE_DIR or VIDSLIM_NATIVE)."""
    with _load_lock:
        _build_and_load.cache_clear()


@functools.cache
def _build_and_load() -> NativeKernel | None:
    if os.environ.get("VIDSLIM_NATIVE", "1") == "0":
        return None
    blas = _torch_blas()
    if blas is None or not blas[0]:
        logger.info("no BLAS sgemm_ exported by torch here: block-sparse attention uses gather + SDPA")
        return None
    compiler = find_compiler()
    if compiler is None:
        logger.warning(
            "no C compiler found (cc, gcc, clang; or set CC): block-sparse attention on CPU falls back to "
            "gather + SDPA, ~20-25% slower. Install one (e.g. apt install gcc) or set VIDSLIM_NATIVE=0 to silence this."
        )
        return None
    problems = []
    for folder in (cache_dir(), _fallback_dir()):  # the second: an unwritable or noexec cache folder
        try:
            return _load(compile_kernel(compiler, folder), blas)
        except (RuntimeError, OSError, AttributeError) as error:
            problems.append(f"in {folder}: {error}")
    logger.warning(
        "could not build or load %s with %s; block-sparse attention on CPU falls back to gather + SDPA. "
        "Set CC to a working C compiler, or VIDSLIM_NATIVE=0 to silence this.\n%s",
        SOURCE,
        compiler,
        "\n".join(problems),
    )
    return None


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


def native_applicable(q: Tensor, k: Tensor, v: Tensor, *others: Tensor | None) -> bool:
    """Whether the fused kernel can take these inputs: float32 CPU q, k, v; no autograd through any of them or
    `others` (a key bias, say); no dispatch mode (a FLOP counter or fake tensors must see the torch ops) and no
    tracer or compiler recording; not inside `gather_kernel_only()`; and the kernel available."""
    tensors = (q, k, v)
    if _switched_off:
        return False
    if any(t.device.type != "cpu" or t.dtype != torch.float32 or t.dim() != 3 for t in tensors):
        return False
    extra = [t for t in others if t is not None]
    if torch.is_grad_enabled() and any(t.requires_grad for t in (*tensors, *extra)):
        return False
    if torch._C._len_torch_dispatch_stack() > 0 or any(type(t) is not torch.Tensor for t in (*tensors, *extra)):
        return False
    if _traced():
        return False
    return native_kernel() is not None


def _unit_last(t: Tensor) -> Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


def _check_rows(name: str, rows: Tensor, low: int, high: int) -> None:
    """Index tables are read unchecked in C: an index out of [low, high) raises here instead of crashing there."""
    if rows.dtype != torch.int64:
        raise TypeError(f"{name} must be int64, got {rows.dtype}")
    if rows.numel() and (int(rows.min()) < low or int(rows.max()) >= high):
        raise ValueError(f"{name} holds rows outside [{low}, {high}): {int(rows.min())}..{int(rows.max())}")


def native_group_attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    q_rows: Tensor | None,
    kv_rows: Tensor,
    bias: Tensor | None,
    scale: float | None,
) -> None:
    """Attention of one group of query blocks, written into the packed rows of `out` [total, H, dv].

    q, k, v: packed [rows, H, d] float32 CPU tensors (any strides); q_rows [R, bq] the packed row of every query
    slot (-1: empty, not written) or None for the identity layout of R blocks of bq = total / R rows; kv_rows
    [R, K] the rows each block sees (valid rows only; masked slots read any row and get -inf in bias);
    bias [R, K] float32 or None. Work items (head, block) are shared out to torch's threads.
    """
    kernel = native_kernel()
    assert kernel is not None, "call native_applicable first"
    assert out.stride(-1) == 1 and out.dtype == torch.float32
    q, k, v = _unit_last(q), _unit_last(k), _unit_last(v)
    blocks, kk = kv_rows.shape
    heads, dk, dv = q.shape[1], q.shape[2], v.shape[2]
    if k.shape[1:] != (heads, dk) or v.shape[1] != heads or out.shape[1:] != (heads, dv):
        shapes = ", ".join(f"{name} {tuple(t.shape)}" for name, t in zip("qkvo", (q, k, v, out), strict=True))
        raise ValueError(f"block-sparse attention: packed [rows, heads, d] shapes do not match: {shapes}")
    if blocks == 0 or q.shape[0] == 0:
        return  # no query to write
    bq = q_rows.shape[1] if q_rows is not None else q.shape[0] // blocks
    q_rows = q_rows.contiguous() if q_rows is not None else None
    kv_rows = kv_rows.contiguous()
    _check_rows("kv_rows", kv_rows, 0, min(k.shape[0], v.shape[0]))
    if q_rows is not None:
        if q_rows.shape[0] != blocks:
            raise ValueError(f"q_rows has {q_rows.shape[0]} blocks, kv_rows {blocks}")
        _check_rows("q_rows", q_rows, -1, min(q.shape[0], out.shape[0]))
    elif blocks * bq != q.shape[0] or out.shape[0] != q.shape[0]:
        raise ValueError(f"identity layout: {blocks} blocks of {bq} rows do not cover the {q.shape[0]} queries")
    if bias is not None and bias.shape != kv_rows.shape:
        raise ValueError(f"bias {tuple(bias.shape)} must match kv_rows {tuple(kv_rows.shape)}")
    bias = bias.to(torch.float32).contiguous() if bias is not None else None
    scale = dk**-0.5 if scale is None else scale
    strides = [_Strides(t.stride(0), t.stride(1)) for t in (q, k, v, out)]

    def attend(share: tuple[int, int]) -> None:  # ctypes releases the GIL for the call
        status = kernel.attend(
            q.data_ptr(), strides[0], k.data_ptr(), strides[1], v.data_ptr(), strides[2], out.data_ptr(),
            strides[3], dk, dv, blocks, bq, kk, None if q_rows is None else q_rows.data_ptr(), kv_rows.data_ptr(),
            None if bias is None else bias.data_ptr(), scale, share[0], share[1], kernel.sgemm,
            kernel.set_blas_threads,
        )  # fmt: skip
        if status != 0:
            raise MemoryError(f"block-sparse attention: no memory for the tiles of {kk} keys x {bq} queries")

    flops = 2 * heads * blocks * bq * kk * (dk + dv)
    workers = workers_available() if flops >= PARALLEL_FLOPS else 1
    run_shares(attend, split_evenly(heads * blocks, workers))
