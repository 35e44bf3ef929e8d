"""vs.export_model: every static reduction exports (torch.export and ONNX under onnxruntime) and matches eager on an
input other than the traced one; data-dependent ones are refused in one line; a wrong graph is never kept."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import vidslim as vs
from vidslim.errors import ConfigError
from vidslim.export import ExportError, check_input, example_input, export_model
from vidslim.reduce.svitt_prune import TokenPrune
from vidslim.tokens import Tokens

HAS_ONNX = all(importlib.util.find_spec(name) for name in ("onnx", "onnxscript", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="ONNX export needs the export extra (onnx, onnxscript, "
                                                     "onnxruntime)")


def _tempme() -> list[object]:
    return [vs.TempMe(r=2, merge_layers=(1,), groups=(2,), rc=0.3, ri=0.1)]


#: (model, config overrides, reducers): every method the export supports, on tiny models
CASES = {
    "dense-videomae": ("videomae-tiny", {}, list),
    "dense-clip": ("clip-tiny", {}, list),
    "tome-clip": ("clip-tiny", {}, lambda: [vs.ToMe(r=2)]),
    "tome-videomae": ("videomae-tiny", {"num_frames": 8}, lambda: [vs.ToMe(r=3)]),
    "tempme-clip": ("clip-tiny", {}, _tempme),
    "tokenprune-clip": ("clip-tiny", {}, lambda: [vs.TokenPrune(layers=[0], keep=0.5)]),
    "tokenprune-videomae": ("videomae-tiny", {"num_frames": 8}, lambda: [vs.TokenPrune(layers=[0], keep=0.5)]),
    "rlt_budget-videomae": ("videomae-tiny", {"num_frames": 8}, lambda: [vs.RLTBudget(keep=0.5)]),
    "tome-vjepa2": ("vjepa2-tiny", {}, lambda: [vs.ToMe(r=1)]),  # its size-weighted mean: a segment sum
    "rlt_budget+tome-videomae": ("videomae-tiny", {"num_frames": 8},
                                 lambda: [vs.RLTBudget(keep=0.75, pool="length"), vs.ToMe(r=2)]),
}
#: torch.export is traced once for both formats: a few cases for it, every method under onnxruntime
TORCH_EXPORT = ("dense-videomae", "tempme-clip", "tokenprune-videomae", "rlt_budget+tome-videomae")
ONNX = tuple(c for c in CASES if c not in ("dense-videomae", "tome-videomae"))


def _model(case: str) -> vs.ReducibleModel:
    name, config, reducers = CASES[case]
    torch.manual_seed(0)
    return vs.create_model(name, reduction=reducers(), **config)


@pytest.mark.slow
@pytest.mark.parametrize("case", TORCH_EXPORT)
def test_torch_export_matches_eager_on_another_input(case: str, tmp_path: Path) -> None:
    model = _model(case)
    result = export_model(model, tmp_path / "m.pt2", batch_size=2)
    assert result.format == "torch_export" and result.path.is_file()
    # independently of export_model's own check: load the file and run a third input
    program = torch.export.load(str(result.path))
    other = torch.randn(result.input_shape, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert (program.module()(other) - model(other)).abs().max() <= 1e-4


@needs_onnx
@pytest.mark.slow
@pytest.mark.parametrize("case", ONNX)
def test_onnx_under_onnxruntime_matches_eager_on_another_input(case: str, tmp_path: Path) -> None:
    import onnxruntime

    model = _model(case)
    result = export_model(model, tmp_path / "m.onnx", batch_size=2)
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-4
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    other = torch.randn(result.input_shape, generator=torch.Generator().manual_seed(7))
    (got,) = session.run(None, {"video": other.numpy()})
    with torch.no_grad():
        assert (torch.from_numpy(got) - model(other)).abs().max() <= 1e-4


def test_check_input_differs_and_holds_still_regions() -> None:
    model = vs.create_model("videomae-tiny", num_frames=8)
    example = example_input(model, batch_size=2)
    other = check_input(example, "CTHW")
    assert other.shape == example.shape and not torch.equal(other, example)
    assert torch.equal(other[:, :, 4, :, :16], other[:, :, 7, :, :16])  # exact ties for RLT's scores


@pytest.mark.parametrize("reducer, named", [
    (lambda: vs.RLT(), "RLTBudget"),
    (lambda: vs.RandomMask(keep=0.5), "RLTBudget"),
    (lambda: vs.TokenPrune(layers=[0], score="random"), "score='auto'"),
    (lambda: vs.SparseAttention(), "tome, tempme"),
    (lambda: vs.ToMe(r=2, trace_source=True), "trace_source=False"),
])
def test_data_dependent_reductions_are_refused_in_one_line(reducer, named: str, tmp_path: Path) -> None:
    model = vs.create_model("videomae-tiny", reduction=[reducer()])
    with pytest.raises(ExportError, match=named) as caught:
        export_model(model, tmp_path / "m.pt2")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "m.pt2").exists()


class _Branchy(nn.Module):
    """Branches in Python on a value of its input: tracing cannot decide the branch."""

    def forward(self, x: Tensor) -> Tensor:
        return x * 2 if bool(x.sum() > 0) else x - 1


_CALLS = itertools.count(1)


class _Counter(nn.Module):
    """Traces fine but bakes in a Python counter kept outside the module: the graph is wrong on every later call."""

    def forward(self, x: Tensor) -> Tensor:
        return x * next(_CALLS)


def test_a_data_dependent_branch_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="depends on the input's values") as caught:
        export_model(_Branchy(), tmp_path / "m.pt2", example=torch.randn(2, 3))
    assert "\n" not in str(caught.value)


def test_a_graph_that_differs_from_eager_is_not_kept(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="differs from the model"):
        export_model(_Counter(), tmp_path / "m.pt2", example=torch.randn(2, 3))
    assert not (tmp_path / "m.pt2").exists()


def test_format_comes_from_the_suffix_or_is_refused(tmp_path: Path) -> None:
    model = vs.create_model("videomae-tiny")
    with pytest.raises(ConfigError, match=r"\.onnx or \.pt2"):
        export_model(model, tmp_path / "m.bin")
    with pytest.raises(ConfigError, match=r"\.pt2 file"):
        export_model(model, tmp_path / "m.onnx", format="torch_export")
    result = export_model(model, tmp_path / "m.pt2", check=False)
    assert result.max_abs_diff is None and result.input_shape == (1, 3, 4, 32, 32)


def test_prune_equal_keeps_the_tokens_prune_keeps() -> None:
    """TokenPrune's static path (used when tracing) against its packed path, with and without CLS tokens."""
    gen = torch.Generator().manual_seed(0)
    prune = TokenPrune(layers=[0], keep=0.6)
    for cls in (0, 2):
        s, n = 3, 11
        pos = torch.randint(0, 4, (s, n, 3), generator=gen)
        pos[:, :cls] = -1
        tokens = Tokens.from_dense(torch.randn(s, n, 4, generator=gen), pos=pos, size=torch.rand(s, n, generator=gen))
        scores = torch.rand(s * n, generator=gen).round(decimals=1)  # ties, broken towards the earlier token
        want = prune.prune(tokens, scores, cls_tokens=cls)
        got = prune.prune_equal(tokens, scores, cls)
        assert got.seqlens == want.seqlens
        assert torch.equal(got.x, want.x) and torch.equal(got.pos, want.pos) and torch.equal(got.size, want.size)


#: every method that exports, for a graph taking any number of clips (ToMe on the video ViT, TempMe and
#: TokenPrune on the per-frame towers, RLTBudget with ToMe after it)
DYNAMIC = ("dense-clip", "tome-videomae", "tempme-clip", "tokenprune-videomae", "rlt_budget+tome-videomae")


@pytest.mark.slow
@pytest.mark.parametrize("case", DYNAMIC)
def test_torch_export_with_a_dynamic_batch_runs_any_number_of_clips(case: str, tmp_path: Path) -> None:
    model = _model(case)
    result = export_model(model, tmp_path / "m.pt2", dynamic_batch=True)
    assert result.input_shape[0] == -1 and result.max_abs_diff is not None and result.max_abs_diff <= 1e-4
    program = torch.export.load(str(result.path)).module()
    for batch in (1, 4):  # traced on two copies of one clip; checked on three by export_model
        other = example_input(model, batch_size=batch, seed=batch + 10)
        with torch.no_grad():
            assert (program(other) - model(other)).abs().max() <= 1e-4


@needs_onnx
@pytest.mark.slow
@pytest.mark.parametrize("case", DYNAMIC)
def test_onnx_with_a_dynamic_batch_runs_any_number_of_clips_under_onnxruntime(case: str, tmp_path: Path) -> None:
    import onnxruntime

    model = _model(case)
    result = export_model(model, tmp_path / "m.onnx", dynamic_batch=True)
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"
    for batch in (1, 2, 5):  # the body was traced on one clip
        other = example_input(model, batch_size=batch, seed=batch + 10)
        (got,) = session.run(None, {"video": other.numpy()})
        with torch.no_grad():
            assert (torch.from_numpy(got) - model(other)).abs().max() <= 1e-4


@needs_onnx
def test_a_dynamic_batch_export_is_checked_on_another_batch_size(tmp_path: Path) -> None:
    """The check input has more clips than either trace used, and a check_with of any batch size is accepted."""
    model = _model("rlt_budget-videomae")
    result = export_model(model, tmp_path / "m.onnx", dynamic_batch=True,
                          check_with=torch.randn(3, 3, 8, 32, 32, generator=torch.Generator().manual_seed(3)))
    assert result.input_shape == (-1, 3, 8, 32, 32) and result.max_abs_diff <= 1e-4
    with pytest.raises(ConfigError, match="check_with has shape"):
        export_model(model, tmp_path / "n.pt2", dynamic_batch=True, check_with=torch.randn(3, 3, 4, 32, 32))


@needs_onnx
def test_an_op_the_onnx_exporter_cannot_translate_is_named_in_one_line(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from vidslim.export import onnx_ops

    table = onnx_ops.translation_table
    monkeypatch.setattr(onnx_ops, "translation_table",
                        lambda: {k: v for k, v in table().items() if k != torch.ops.aten.segment_reduce.default})
    with pytest.raises(ExportError, match=r"no ONNX translation for aten\.segment_reduce\.default; export a \.pt2") \
            as caught:
        export_model(_model("tome-vjepa2"), tmp_path / "m.onnx")
    assert "\n" not in str(caught.value) and not (tmp_path / "m.onnx").exists()
