"""Read the tensors of a TorchScript archive as data, without running any of it.

A TorchScript archive (`torch.jit.save`, OpenAI's `ViT-B-16.pt`) is a zip file whose entries share one top folder:
- `<top>/data.pkl`: the module object, pickled. Module classes appear as globals `__torch__.<qualified name>`,
  built with NEWOBJ and given their attributes (parameters, buffers, submodules, plain values) as a dict by BUILD.
  A tensor is a call to `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` whose storage is a
  persistent id `('storage', torch.<Type>Storage, key, location, numel)`.
- `<top>/data/<key>`: the raw bytes of each storage, `numel` elements of the storage's dtype, in the byte order
  named by `<top>/byteorder` (little-endian when absent: archives older than that entry).
- `<top>/code/`, `<top>/constants.pkl`: the compiled program (TorchScript source, its constants). Never read here.

`torch.jit.load` compiles `code/` and runs it (a class's `__setstate__` runs at load time), so a crafted archive can
run code. `read_torchscript_tensors` instead unpickles `data.pkl` with an unpickler that resolves only the few
globals that rebuild tensors, replaced by vidslim's own functions; `__torch__.*` classes become inert
`ScriptObject`s that only keep the state they are given. Any other global (`os.system`, `builtins.eval`, ...), and
BUILD on anything but a `ScriptObject`, is an `UnsafeCheckpointError` naming the archive and the global. The
tensors are then collected from the objects' attribute dicts under their dotted names (`visual.conv1.weight`).

Differences from `torch.jit.load(path).state_dict()`: every tensor attribute is collected, plain tensor
attributes of scripted modules included (TorchScript keeps them apart from parameters and buffers only in `code/`);
the state of a class with its own `__getstate__` (not a dict) is kept but not searched for tensors.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from vidslim.errors import CheckpointError, UnsafeCheckpointError

#: storage classes a tensor record may name -> the dtype of its bytes
STORAGE_DTYPES: dict[str, torch.dtype] = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
}


class ScriptObject:
    """An inert stand-in for an instance of a TorchScript class (`__torch__.*`): it keeps its pickled state."""

    qualified_name: ClassVar[str] = "__torch__"

    def __new__(cls, *args: Any) -> ScriptObject:
        obj = super().__new__(cls)
        obj.args = args
        obj.state = None
        return obj

    def __init__(self, *args: Any) -> None:  # REDUCE calls the class: keep the arguments, do nothing else
        self.args = args

    def __repr__(self) -> str:
        return f"<{self.qualified_name}>"


class _StorageType:
    """What `torch.<Type>Storage` resolves to: only the dtype of the bytes it names."""

    def __init__(self, name: str) -> None:
        self.name, self.dtype = name, STORAGE_DTYPES[name]


class _Storage:
    """One storage of the archive: its elements as a flat tensor."""

    def __init__(self, flat: Tensor) -> None:
        self.flat = flat


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(type(v) is int and v >= 0 for v in value):
        raise ValueError(f"a tensor record's {what} is {value!r}, not a tuple of non-negative ints")
    return tuple(value)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_: Any) -> Tensor:
    """The tensor `torch._utils._rebuild_tensor(_v2)` describes, as a view of the storage, bounds checked."""
    if not isinstance(storage, _Storage) or type(offset) is not int or offset < 0:
        raise ValueError(f"a tensor record names storage {storage!r} at offset {offset!r}")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if len(size) != len(stride):
        raise ValueError(f"a tensor record has size {size} but stride {stride}")
    if 0 not in size:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
        if last >= storage.flat.numel():
            raise ValueError(
                f"a tensor of size {size} at offset {offset} overruns its storage of {storage.flat.numel()} elements"
            )
    return storage.flat.as_strided(size, stride, offset)


def _rebuild_parameter(data: Any, *_: Any) -> Tensor:
    """A parameter is kept as its plain tensor (requires_grad and hooks are dropped)."""
    if not isinstance(data, Tensor):
        raise ValueError(f"a parameter record holds a {type(data).__name__}, not a tensor")
    return data


def _plain_list(data: Any) -> list[Any]:
    """TorchScript's typed-list markers (`build_intlist`, ...): the list itself."""
    if not isinstance(data, list):
        raise ValueError(f"a typed list record holds a {type(data).__name__}")
    return data


def _untagged(value: Any, _type: Any) -> Any:
    """`restore_type_tag(value, type)`: the value; the type tag only matters to TorchScript."""
    return value


#: the only callables a pickle may name, each replaced by vidslim's own inert function
_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch.jit._pickle", "build_intlist"): _plain_list,
    ("torch.jit._pickle", "build_doublelist"): _plain_list,
    ("torch.jit._pickle", "build_boollist"): _plain_list,
    ("torch.jit._pickle", "build_tensorlist"): _plain_list,
    ("torch.jit._pickle", "restore_type_tag"): _untagged,
}


class _RestrictedUnpickler(pickle._Unpickler):  # the Python unpickler: its dispatch table can be restricted
    """Unpickles `data.pkl`: known rebuild functions, inert script objects, storages read from the zip."""

    dispatch: ClassVar[dict[int, Callable[..., Any]]] = dict(pickle._Unpickler.dispatch)

    def __init__(self, data: bytes, archive: zipfile.ZipFile, top: str, big_endian: bool, where: str) -> None:
        super().__init__(io.BytesIO(data))
        self.archive, self.top, self.big_endian, self.where = archive, top, big_endian, where
        self.classes: dict[str, type[ScriptObject]] = {}
        self.storages: dict[tuple[str, torch.dtype], _Storage] = {}

    def refuse(self, what: str) -> UnsafeCheckpointError:
        return UnsafeCheckpointError(
            f"refusing to load {self.where}: it asks to run code ({what}); vidslim reads checkpoints as data only"
        )

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            qualified = f"{module}.{name}"
            if qualified not in self.classes:
                self.classes[qualified] = type(name, (ScriptObject,), {"qualified_name": qualified})
            return self.classes[qualified]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise self.refuse(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(f"{self.where}: data.pkl names an unknown record {str(pid)[:80]}")
        _, kind, key, _location, numel = pid
        if not isinstance(kind, _StorageType) or not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise CheckpointError(f"{self.where}: data.pkl has a malformed storage record {str(pid)[:80]}")
        if (key, kind.dtype) not in self.storages:
            self.storages[(key, kind.dtype)] = _Storage(self._read_storage(key, kind.dtype, numel))
        return self.storages[(key, kind.dtype)]

    def _read_storage(self, key: str, dtype: torch.dtype, numel: int) -> Tensor:
        """`numel` elements of `dtype` from `<top>/data/<key>`, in native byte order."""
        name = f"{self.top}data/{key}"
        try:
            info = self.archive.getinfo(name)
        except KeyError:
            raise CheckpointError(f"{self.where}: the archive lacks {name}, a storage its data.pkl names") from None
        itemsize = torch.empty(0, dtype=dtype).element_size()
        nbytes = numel * itemsize
        if info.file_size < nbytes:
            raise CheckpointError(f"{self.where}: {name} holds {info.file_size} bytes, its record says {nbytes}")
        if numel == 0:
            return torch.empty(0, dtype=dtype)
        raw = torch.frombuffer(bytearray(self.archive.read(name)[:nbytes]), dtype=torch.uint8)
        if self.big_endian and itemsize > 1:
            raw = raw.view(-1, itemsize).flip(1).reshape(-1)
        return raw.view(dtype)

    def _build(self) -> None:
        """BUILD: only a script object takes state; on anything else it could call a `__setstate__`."""
        state = self.stack.pop()
        inst = self.stack[-1]
        if not isinstance(inst, ScriptObject):
            raise self.refuse(f"setting the state of a {type(inst).__module__}.{type(inst).__qualname__}")
        inst.state = state

    dispatch[pickle.BUILD[0]] = _build


def named_tensors(root: Any) -> dict[str, Tensor]:
    """Every tensor reachable from `root` through attribute dicts (script objects' states, dicts), by dotted name."""
    out: dict[str, Tensor] = {}
    seen = {id(root)}
    stack: list[tuple[str, Any]] = [("", root)]
    while stack:
        prefix, obj = stack.pop()
        attrs = obj.state if isinstance(obj, ScriptObject) else obj
        if not isinstance(attrs, dict):
            continue
        for key, value in attrs.items():
            if not isinstance(key, str):
                continue
            if isinstance(value, Tensor):
                out[prefix + key] = value
            elif isinstance(value, (ScriptObject, dict)) and id(value) not in seen:
                seen.add(id(value))
                stack.append((f"{prefix}{key}.", value))
    return out


def _one_line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())[:200]


def read_torchscript_tensors(path: str | Path) -> dict[str, Tensor]:
    """The tensors of TorchScript archive `path` by dotted name, read as data (see the module docstring)."""
    where = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pickles) != 1:
                raise CheckpointError(f"{where}: not a TorchScript archive (no single <folder>/data.pkl inside)")
            top = pickles[0][: -len("data.pkl")]
            order = "little"
            if f"{top}byteorder" in archive.namelist():
                order = archive.read(f"{top}byteorder").decode("ascii", "replace").strip()
            if order not in ("little", "big"):
                raise CheckpointError(f"{where}: unknown byte order {order[:20]!r} in {top}byteorder")
            unpickler = _RestrictedUnpickler(archive.read(pickles[0]), archive, top, order == "big", where)
            root = unpickler.load()
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, OSError) as error:
        raise CheckpointError(f"{where}: not a readable TorchScript archive ({_one_line(error)})") from error
    except Exception as error:  # a malformed pickle fails in many ways
        raise CheckpointError(f"{where}: data.pkl is not a valid tensor pickle ({_one_line(error)})") from error
    if not isinstance(root, (ScriptObject, dict)):
        raise CheckpointError(f"{where}: data.pkl holds a {type(root).__name__}, not a module")
    return named_tensors(root)


__all__ = ["STORAGE_DTYPES", "ScriptObject", "named_tensors", "read_torchscript_tensors"]
