"""Build and load the fused CPU block-sparse attention kernel (block_sparse.c): compile on first use, cache, dlopen.

Nothing to install: the C source ships in the package; the first call compiles it with the system C compiler
($CC, else cc, gcc or clang; a fraction of a second, cut off after $VIDSLIM_CC_TIMEOUT seconds, 60 by default)
into a cache folder ($VIDSLIM_CACHE_DIR, else $XDG_CACHE_HOME/vidslim or ~/.cache/vidslim; a private folder in
the temporary directory when that one cannot be used), named by a hash of the source, the compiler, the flags
and the CPU, and reuses it afterwards. Native code is loaded only from a folder this user alone can write, and
only after its checksum matches (`vidslim.attention.cpu.cache`). BLAS is torch's own (the Fortran `sgemm_`
exported by libtorch_cpu: MKL in Linux x86 wheels), found in this process and handed to the kernel as a function
pointer; MKL is told to run each call on the calling thread.

Where any of this is missing (no compiler, no `sgemm_`, another OS, no safe folder, a compiler that hangs) or
VIDSLIM_NATIVE is off (0, false, no, off), `native_kernel()` is None and block-sparse attention keeps its gather +
SDPA path; why is logged once. Why the kernel exists and how it is called: `vidslim.attention.cpu.kernel`.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import hashlib
import logging
import os
import platform
import shlex
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import torch

from vidslim.attention.cpu import cache
from vidslim.attention.cpu.cache import UnsafeFolder

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("block_sparse.c")
#: flag sets tried in order: tuned for this CPU, then portable (a compiler that does not know -march=native)
FLAG_SETS = (
    ("-O3", "-march=native", "-fno-math-errno", "-fopenmp-simd"),
    ("-O3", "-fno-math-errno"),
)


class Strides(ctypes.Structure):
    """Element strides of a packed [rows, heads, d] tensor (see strides_t in the C source)."""

    _fields_ = [("row", ctypes.c_int64), ("head", ctypes.c_int64)]


_P, _I, _I64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64
_ARGTYPES = [_P, Strides, _P, Strides, _P, Strides, _P, Strides, _I, _I, _I, _I, _I, _P, _P, _P]
_ARGTYPES += [ctypes.c_float, _I64, _I64, _P, _P]


@dataclasses.dataclass(frozen=True)
class NativeKernel:
    """The loaded kernel: its entry point, the BLAS it calls and where the compiled library lies."""

    attend: ctypes._CFuncPtr
    sgemm: int
    set_blas_threads: int | None
    path: Path


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


#: seconds a compiler call may take before it is stopped (the build falls back); VIDSLIM_CC_TIMEOUT overrides
COMPILER_TIMEOUT = 60.0


class CompilerTimeout(Exception):
    """The C compiler did not finish in time (a hanging $CC, say); it has been stopped."""


def compiler_timeout() -> float:
    """$VIDSLIM_CC_TIMEOUT in seconds (> 0), else COMPILER_TIMEOUT; a value that is not a positive number is
    warned about and ignored."""
    raw = os.environ.get("VIDSLIM_CC_TIMEOUT", "").strip()
    if not raw:
        return COMPILER_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        logger.warning("VIDSLIM_CC_TIMEOUT=%r is not a positive number of seconds; using %g", raw, COMPILER_TIMEOUT)
        return COMPILER_TIMEOUT
    return seconds


def _stop(process: subprocess.Popen) -> None:
    """Kill the process and everything it started (a compiler driver runs cc1, as and ld), then reap it."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)  # its own session: see _run_compiler
        else:
            process.kill()
    except OSError:  # already gone
        pass
    process.wait()


def _run_compiler(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run `command` with its output captured; past `timeout` seconds it is killed with all its children and
    CompilerTimeout raised. OSError when it cannot be started."""
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(process)
            raise CompilerTimeout(f"{' '.join(command)} did not finish within {timeout:g} s") from None
        except BaseException:  # an interrupt: the compiler must not outlive us
            _stop(process)
            raise
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def _compiler_version(compiler: str, timeout: float) -> str:
    try:
        return _run_compiler([*shlex.split(compiler), "--version"], timeout).stdout
    except (OSError, ValueError) as error:  # ValueError: a CC that shlex cannot split
        return f"unknown ({error})"


def kernel_file(folder: Path, compiler: str, version: str, flags: tuple[str, ...]) -> Path:
    """Where the build of this source with this compiler (its command line and version), flags and CPU lies."""
    key = hashlib.sha256(b"\0".join(x.encode() for x in (compiler, version, *flags)))
    key.update(SOURCE.read_bytes())
    key.update(_cpu_signature().encode())
    return folder / f"block_sparse_cpu-{key.hexdigest()[:16]}.so"


def compile_kernel(compiler: str, folder: Path) -> Path:
    """The compiled kernel library in `folder` (a folder `cache.private_folder` has checked), built now unless an
    intact build of this source, compiler and CPU is there; a damaged one is rebuilt.

    Raises RuntimeError with the compiler's output when no flag set builds it, CompilerTimeout when the compiler
    hangs (not retried with other flags: it would hang again).
    """
    timeout = compiler_timeout()
    version = _compiler_version(compiler, timeout)
    errors = []
    for flags in FLAG_SETS:
        target = kernel_file(folder, compiler, version, flags)
        problem = cache.damage(target)
        if problem is None:
            return target
        if os.path.lexists(target):
            log = logger.info if "is missing" in problem else logger.warning  # (no checksum: an older vidslim's)
            log("rebuilding the cached kernel %s: %s", target, problem)
        partial = folder / f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        command = [*shlex.split(compiler), *flags, "-shared", "-fPIC", str(SOURCE), "-o", str(partial)]
        try:
            done = _run_compiler(command, timeout)
        except OSError as error:
            errors.append(f"{' '.join(command)}: {error}")
            continue
        except CompilerTimeout:
            partial.unlink(missing_ok=True)
            raise
        if done.returncode == 0:
            cache.install(partial, target)
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


def _load(path: Path, blas: tuple[int, int | None]) -> NativeKernel:
    """Load the library at `path` after checking its folder, its owner and its checksum (`vidslim.attention.cpu.cache`).

    Raises UnsafeFolder, or OSError when the file is damaged or does not load (a noexec folder, say).
    """
    cache.check_folder(path.parent)
    problem = cache.damage(path)
    if problem is not None:
        raise OSError(f"not loaded: {problem}")
    library = ctypes.CDLL(str(path))
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


_OFF, _ON = ("0", "false", "no", "off"), ("1", "true", "yes", "on")


def native_switched_on() -> bool:
    """VIDSLIM_NATIVE read as a switch: unset or 1/true/yes/on is on, 0/false/no/off is off (any case); anything
    else is warned about and leaves the kernel on."""
    raw = os.environ.get("VIDSLIM_NATIVE", "")
    value = raw.strip().lower()
    if value in _OFF:
        return False
    if value and value not in _ON:
        logger.warning(
            "VIDSLIM_NATIVE=%r is not understood: use %s to turn the fused kernel off, %s to keep it on; it stays on",
            raw,
            "/".join(_OFF),
            "/".join(_ON),
        )
    return True


@functools.cache
def _build_and_load() -> NativeKernel | None:
    if not native_switched_on():
        return None
    blas = _torch_blas()
    if blas is None or not blas[0]:
        logger.info("no BLAS sgemm_ exported by torch here: block-sparse attention uses gather + SDPA")
        return None
    compiler = find_compiler()
    if compiler is None:
        logger.warning(
            "no C compiler found (cc, gcc, clang; or set CC): block-sparse attention on CPU falls back to "
            "gather + SDPA, which is slower (benchmarks/svitt_speed.py times both). Install one (e.g. apt install gcc) "
            "or set VIDSLIM_NATIVE=0 to silence this."
        )
        return None
    problems: list[str] = []
    refused: list[str] = []
    for folder in (cache.cache_dir(), cache.fallback_dir()):  # the second: an unusable or noexec cache folder
        try:
            kernel = _load(compile_kernel(compiler, cache.private_folder(folder)), blas)
        except UnsafeFolder as error:
            refused.append(str(error))
            continue
        except CompilerTimeout as error:
            logger.warning(
                "C compiler hangs: %s (VIDSLIM_CC_TIMEOUT sets the limit); block-sparse attention on CPU falls back "
                "to gather + SDPA",
                error,
            )
            return None
        except (RuntimeError, OSError, AttributeError) as error:
            problems.append(f"in {folder}: {error}")
            continue
        if refused:
            logger.warning("not loading native code: %s; using %s instead", "; ".join(refused), kernel.path)
        return kernel
    if refused:  # one line: which folder and why (with the first line of any other folder's error)
        also = "".join(f"; {problem.splitlines()[0]}" for problem in problems)
        logger.warning(
            "not loading native code: %s%s; block-sparse attention on CPU falls back to gather + SDPA",
            "; ".join(refused),
            also,
        )
        return None
    logger.warning(
        "could not build or load %s with %s; block-sparse attention on CPU falls back to gather + SDPA. "
        "Set CC to a working C compiler, or VIDSLIM_NATIVE=0 to silence this.\n%s",
        SOURCE,
        compiler,
        "\n".join(problems),
    )
    return None
