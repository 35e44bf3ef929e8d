"""TorchScript archives are read as data: genuine ones load the same tensors as torch.jit.load, crafted ones run
nothing and fail in one line naming the file."""

from __future__ import annotations

import builtins
import os
import pickle
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import vidslim as vs
from checkpoint_files import nested_holder
from vidslim.errors import CheckpointError, UnsafeCheckpointError
from vidslim.models.convert_openai import read_torchscript
from vidslim.models.safe_unpickle import read_torchscript_tensors

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit writes (and reads) the references


def tiny_clip_archive(path: Path) -> nn.Module:
    """A TorchScript archive of clip-tiny under OpenAI's names; returns the fp32 model it rounds to."""
    model = vs.create_model("clip-tiny").eval().half().float()
    torch.jit.script(nested_holder(model.state_dict())).save(str(path))
    return model


def jit_state(path: Path) -> dict[str, torch.Tensor]:
    """The reference: what torch.jit.load reads (fine here: the test wrote the file)."""
    return dict(torch.jit.load(str(path), map_location="cpu").state_dict())


def rewrite(src: Path, dst: Path, replace: dict[str, bytes]) -> None:
    """Copy zip `src` to `dst`, replacing the entries named (by their name after the top folder)."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for info in old.infolist():
            tail = info.filename.split("/", 1)[1] if "/" in info.filename else info.filename
            new.writestr(info, replace.get(tail, old.read(info)))


@pytest.fixture
def no_jit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any call into TorchScript's loader fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("TorchScript's loader was called")

    monkeypatch.setattr(torch.jit, "load", refuse)
    monkeypatch.setattr(torch._C, "import_ir_module", refuse)
    monkeypatch.setattr(torch._C, "import_ir_module_from_buffer", refuse)


# ---------------------------------------------------------------------------------------------- genuine archives
def test_scripted_archive_reads_like_jit_load(tmp_path: Path) -> None:
    class Odd(nn.Module):  # a strided view, a Sequential, a bool buffer, several dtypes
        def __init__(self) -> None:
            super().__init__()
            self.seq = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
            self.register_buffer("column", torch.arange(16.0).view(4, 4)[:, 1])
            self.register_buffer("mask", torch.tensor([True, False, True]))
            self.register_buffer("ids", torch.arange(5, dtype=torch.int32))
            self.bf = nn.Parameter(torch.randn(2, 3).bfloat16())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.seq(x)

    torch.jit.script(Odd()).save(str(tmp_path / "odd.pt"))
    ref = jit_state(tmp_path / "odd.pt")
    ours = read_torchscript_tensors(tmp_path / "odd.pt")
    assert sorted(ours) == sorted(ref)
    for key, value in ref.items():
        assert ours[key].dtype == value.dtype and torch.equal(ours[key], value), key


def test_traced_archive_reads_like_jit_load(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 2), nn.Flatten(), nn.LazyLinear(2))
    net(torch.randn(1, 3, 4, 4))
    torch.jit.trace(net, torch.randn(1, 3, 4, 4)).save(str(tmp_path / "traced.pt"))
    ref = jit_state(tmp_path / "traced.pt")
    ours = read_torchscript_tensors(tmp_path / "traced.pt")
    assert sorted(ours) == sorted(ref)
    assert all(torch.equal(ours[k], v) for k, v in ref.items())


def test_openai_clip_archive_loads_without_torchscript(tmp_path: Path, no_jit: None) -> None:
    path = tmp_path / "ViT-tiny.pt"
    expected = tiny_clip_archive(path)
    state = read_torchscript(path)
    assert state["visual.conv1.weight"].dtype == torch.float16
    loaded = vs.load_model(path, vision_heads=2, text_heads=2)
    for key, value in expected.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0, msg=key)


def test_openai_clip_archive_matches_jit_load(tmp_path: Path) -> None:
    path = tmp_path / "ViT-tiny.pt"
    tiny_clip_archive(path)
    ref, ours = jit_state(path), read_torchscript(path)
    assert sorted(ours) == sorted(ref)
    assert all(ours[k].dtype == v.dtype and torch.equal(ours[k], v) for k, v in ref.items())


def test_big_endian_archive_is_byteswapped(tmp_path: Path) -> None:
    class One(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(3, 2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    module = One()
    torch.jit.script(module).save(str(tmp_path / "little.pt"))
    swapped = module.w.detach().numpy().astype(">f4").tobytes()
    rewrite(tmp_path / "little.pt", tmp_path / "big.pt", {"data/0": swapped, "byteorder": b"big"})
    assert torch.equal(read_torchscript_tensors(tmp_path / "big.pt")["w"], module.w.detach())


# ---------------------------------------------------------------------------------------------- crafted archives
class Call:
    """Pickles as a call of `fn(*args)`: what a crafted checkpoint hides in its data.pkl."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.fn, self.args


def payloads(marker: Path) -> dict[str, Any]:
    touch = f"touch {marker}"
    return {
        "os.system": Call(os.system, touch),
        "builtins.exec": Call(builtins.exec, f"open({str(marker)!r}, 'w').close()"),
        "builtins.eval": Call(builtins.eval, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.call": Call(subprocess.call, ["touch", str(marker)]),
        # a real-looking module whose attribute dict hides the call among tensors
        "nested": {"visual": {"conv1": Call(os.system, touch)}, "weight": torch.zeros(2)},
    }


@pytest.mark.parametrize("name", ["os.system", "builtins.exec", "builtins.eval", "subprocess.call", "nested"])
@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_crafted_data_pkl_runs_nothing(tmp_path: Path, no_jit: None, name: str, protocol: int) -> None:
    marker = tmp_path / "pwned"
    tiny_clip_archive(tmp_path / "genuine.pt")
    evil = tmp_path / "ViT-B-16.pt"
    rewrite(tmp_path / "genuine.pt", evil, {"data.pkl": pickle.dumps(payloads(marker)[name], protocol=protocol)})
    for read in (read_torchscript, vs.load_model):
        with pytest.raises(UnsafeCheckpointError) as info:
            read(evil)
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"refusing to load {evil}: it asks to run code (")
        assert "vidslim reads checkpoints as data only" in message
    assert not marker.exists()


def test_build_on_a_tensor_is_refused(tmp_path: Path, no_jit: None) -> None:
    """BUILD would call Tensor.__setstate__ (hooks, set_): only inert script objects take state."""
    tiny_clip_archive(tmp_path / "genuine.pt")
    with zipfile.ZipFile(tmp_path / "genuine.pt") as archive:
        top = archive.namelist()[0].split("/")[0]
        data = archive.read(f"{top}/data.pkl")
    # the first tensor record ends with its REDUCE; give the tensor a state right after it
    cut = data.index(b"R", data.index(b"_rebuild_tensor_v2"))
    cut = data.index(b"R", cut + 1) + 1
    crafted = data[:cut] + b"(K\x00K\x00K\x00t" + pickle.BUILD + data[cut:]
    rewrite(tmp_path / "genuine.pt", tmp_path / "evil.pt", {"data.pkl": crafted})
    with pytest.raises(UnsafeCheckpointError, match=r"setting the state of a torch\.Tensor"):
        read_torchscript(tmp_path / "evil.pt")


def test_setstate_in_code_is_never_run(tmp_path: Path) -> None:
    """A class's TorchScript __setstate__ runs inside torch.jit.load; vidslim never compiles code/."""

    class Sneaky(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("w", torch.ones(2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

        @torch.jit.export
        def __getstate__(self) -> tuple[torch.Tensor, bool]:
            return (self.w, self.training)

        @torch.jit.export
        def __setstate__(self, state: tuple[torch.Tensor, bool]) -> None:
            self.w = state[0] * 0 + 42  # stands for any code the archive's author wants run
            self.training = state[1]

    class Root(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.kept = nn.Parameter(torch.full((3,), 7.0))
            self.sneaky = Sneaky()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.sneaky(x)

    path = tmp_path / "sneaky.pt"
    torch.jit.script(Root()).save(str(path))
    assert (jit_state(path)["sneaky.w"] == 42).all()  # torch.jit.load ran the archive's code
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.jit, "load", lambda *a, **k: pytest.fail("torch.jit.load was called"))
        patch.setattr(torch._C, "import_ir_module", lambda *a, **k: pytest.fail("TorchScript import was called"))
        ours = read_torchscript(path)
    assert torch.equal(ours["kept"], torch.full((3,), 7.0))
    assert not any((t == 42).any() for t in ours.values())


# ---------------------------------------------------------------------------------------------- malformed archives
def one_line_error(path: Path, match: str) -> None:
    with pytest.raises(CheckpointError) as info:
        read_torchscript(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert match in str(info.value), str(info.value)


def test_malformed_archives_fail_in_one_line(tmp_path: Path) -> None:
    genuine = tmp_path / "genuine.pt"
    tiny_clip_archive(genuine)
    with zipfile.ZipFile(genuine) as archive:
        top = archive.namelist()[0].split("/")[0]
        data = archive.read(f"{top}/data.pkl")
        first = archive.read(f"{top}/data/0")

    rewrite(genuine, tmp_path / "truncated.pt", {"data.pkl": data[: len(data) // 2]})
    one_line_error(tmp_path / "truncated.pt", "not a valid tensor pickle")
    rewrite(genuine, tmp_path / "short.pt", {"data/0": first[:2]})
    one_line_error(tmp_path / "short.pt", "data/0 holds 2 bytes")
    rewrite(genuine, tmp_path / "order.pt", {"byteorder": b"middle"})
    one_line_error(tmp_path / "order.pt", "unknown byte order")
    with zipfile.ZipFile(genuine) as old, zipfile.ZipFile(tmp_path / "missing.pt", "w") as new:
        for info in old.infolist():
            if not info.filename.endswith("/data/0"):
                new.writestr(info, old.read(info))
    one_line_error(tmp_path / "missing.pt", "lacks")
    (tmp_path / "junk.pt").write_bytes(b"PK\x03\x04 not really a zip")
    one_line_error(tmp_path / "junk.pt", "not a readable TorchScript archive")


def test_overrunning_tensor_record_is_refused(tmp_path: Path) -> None:
    class One(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    torch.jit.script(One()).save(str(tmp_path / "one.pt"))
    with zipfile.ZipFile(tmp_path / "one.pt") as archive:
        data = archive.read("one/data.pkl")
    # the size tuple (4,) is BININT1 4 inside a MARK ... TUPLE; make it 400 elements of a 4-element storage
    crafted = data.replace(b"(K\x04t", b"(M\x90\x01t", 1)
    assert crafted != data
    rewrite(tmp_path / "one.pt", tmp_path / "over.pt", {"data.pkl": crafted})
    one_line_error(tmp_path / "over.pt", "overruns its storage")
