"""Export a vidslim model, reducers included, as a `torch.export` program (.pt2) or an ONNX graph (.onnx).

    model = vs.create_model("videomae-b16", reduction=[vs.RLTBudget(keep=0.5)])
    vs.export_model(model, "videomae_rlt.onnx")                          # traced on a random batch of 1
    vs.export_model(model, "videomae_rlt.pt2", format="torch_export", example=clip)

The graph takes the *prepared* input (normalised float, in the model's layout and size: `model.input_spec`, or
`model.prepare_input(frames)`) with the example's shape, batch size included, and returns what `model(video)`
returns (logits, or CLIP's video embeddings). With `dynamic_batch=True` it takes any number of clips instead, run
one after another inside the graph (`vidslim.export.dynamic_batch`). Reading and resizing video stays outside.

Faithfulness is checked, not assumed: reductions that cannot be traced faithfully are refused up front
(`vidslim.export.guard`), and by default the exported graph is run on an input other than the example (torch for
.pt2, onnxruntime for .onnx) and compared with the eager model; a difference above `atol` removes the file and
raises, so a wrong graph is never left behind. Both formats come from one `torch.export` trace (non-strict); ONNX
then uses torch's dynamo exporter with `vidslim.export.onnx_ops` for the two ops it lacks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.export.guard import EXPORTABLE, ExportError, check_exportable

Format = Literal["onnx", "torch_export"]
#: format -> the file suffix it is written with
FORMATS: dict[str, str] = {"onnx": ".onnx", "torch_export": ".pt2"}
INSTALL = "pip install 'vidslim[export]'"


@dataclasses.dataclass(frozen=True)
class Exported:
    """What `export_model` wrote: the file, its format, the input shape it takes (-1 first: any number of clips),
    and the largest absolute difference from the eager model on the check input (None when not checked)."""

    path: Path
    format: str
    input_shape: tuple[int, ...]
    max_abs_diff: float | None


def example_input(model: nn.Module, batch_size: int = 1, seed: int = 0) -> Tensor:
    """A random prepared batch of the model's input shape (`input_spec`), standard-normal values."""
    spec = getattr(model, "input_spec", None)
    if spec is None:
        raise ConfigError(f"{type(model).__name__} has no input_spec: pass example= (a prepared input tensor)")
    frames, size = spec.num_frames, spec.image_size
    shape = (frames, 3, size, size) if spec.layout == "TCHW" else (3, frames, size, size)
    return torch.randn(batch_size, *shape, generator=torch.Generator().manual_seed(seed))


def check_input(example: Tensor, layout: str, seed: int = 1) -> Tensor:
    """Another input of the example's shape and dtype: fresh noise in which the left half of every frame of the
    clip's second half repeats the middle frame, so RLT's scores hold exact ties (zeros) where a fixed budget's cut
    is decided by tie-breaking."""
    other = torch.randn(example.shape, generator=torch.Generator().manual_seed(seed)).to(example.dtype)
    time = 1 if layout == "TCHW" else 2
    frames, half = other.shape[time], other.shape[-1] // 2
    if frames >= 2:
        still = other.narrow(time, frames // 2, 1)[..., :half]
        other.narrow(time, frames // 2, frames - frames // 2)[..., :half] = still
    return other.to(example.device)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the ONNX exporter's progress and warnings about optional packages (torchvision ops) while it runs."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir", "torch.export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _trace(model: nn.Module, video: Tensor) -> Any:
    """torch.export (non-strict) of `model(video)`, with a one-line ExportError when tracing fails."""
    try:
        return torch.export.export(model, (video,), strict=False)
    except Exception as error:  # torch raises many kinds; the user needs one line and the chained cause
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        data_dependent = "data-dependent" in str(error) or "DataDependent" in type(error).__name__
        why = "the reduction takes a path that depends on the input's values" if data_dependent else "tracing failed"
        names = ", ".join(type(r).__name__ for r in getattr(model, "reduction", ())) or "dense"
        raise ExportError(
            f"cannot export {type(model).__name__} with [{names}]: {why} ({type(error).__name__}: {first[:200]}); "
            f"methods that export: {EXPORTABLE}"
        ) from error


def _onnx_runner(path: Path) -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ExportError(f"checking {path} needs onnxruntime: {INSTALL}, or pass check=False") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(video: Tensor) -> list[Tensor]:
        return [torch.from_numpy(out) for out in session.run(None, {name: video.detach().cpu().numpy()})]

    return run


def _outputs(result: Any) -> list[Tensor]:
    """A model's output(s) as a flat list of CPU tensors."""
    items = result if isinstance(result, (tuple, list)) else [result]
    return [t.detach().cpu() for t in items]


def max_abs_diff(got: list[Tensor], want: list[Tensor]) -> float:
    """The largest |got - want| over matching outputs (inf when the shapes or counts differ)."""
    if len(got) != len(want) or any(g.shape != w.shape for g, w in zip(got, want, strict=True)):
        return float("inf")
    return max((float((g.float() - w.float()).abs().max()) for g, w in zip(got, want, strict=True) if w.numel()),
               default=0.0)


def _write(program: Any, path: Path, format: str) -> Any:
    """Save the traced program in `format`; return a callable running the saved graph on a prepared input."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "torch_export":
        torch.export.save(program, str(path))
        return program.module()
    from vidslim.export.onnx_ops import translation_table

    try:
        onnx_program = torch.onnx.export(program, dynamo=True, input_names=["video"],
                                         custom_translation_table=translation_table(), verbose=False)
    except Exception as error:  # the exporter's message is a page long: keep the op it could not translate
        text = str(error)
        missing = re.search(r"No ONNX function found for <OpOverload\(op='([\w.]+)', overload='(\w+)'\)>", text)
        what = f"has no ONNX translation for {missing.group(1)}.{missing.group(2)}" if missing else \
            f"failed ({type(error).__name__})"
        raise ExportError(f"{path}: the ONNX exporter {what}; export a .pt2 (torch.export) program instead, or "
                          "report it to vidslim") from error
    onnx_program.save(str(path))
    return _onnx_runner(path)


def _write_any_batch(model: nn.Module, clip: Tensor, path: Path, format: str) -> Any:
    """`_write` of a graph that takes any number of clips, traced on the one clip `clip` [1, ...]."""
    from vidslim.export.dynamic_batch import scan_over_batch, trace_any_batch

    one = _trace(model, clip)
    if format == "onnx":
        _write(one, path, format)
        scan_over_batch(path)
        return _onnx_runner(path)
    return _write(trace_any_batch(one, clip), path, format)


def export_model(
    model: nn.Module,
    path: str | Path,
    format: Format | None = None,
    example: Any = None,
    *,
    batch_size: int = 1,
    check: bool = True,
    check_with: Any = None,
    atol: float = 1e-4,
    dynamic_batch: bool = False,
) -> Exported:
    """Export `model` (with its reducers) to `path` and check it against eager mode (see the module docstring).

    format: "onnx" (needs the `export` extra) or "torch_export" (a .pt2 file for `torch.export.load`); by default
        from the suffix of `path` (.onnx or .pt2).
    example: the input to trace on (a prepared tensor, uint8 frames or a `Clip`; the model prepares it); by
        default a random batch of `batch_size` in the model's input shape. The graph takes this shape only.
    check: run the exported graph on another input (`check_with`, else `check_input`) and compare with eager;
        a difference above `atol` deletes the file and raises ExportError.
    dynamic_batch: the graph takes any number of clips (traced on one; checked on a batch of another size than
        any traced), at the cost of running them one after another.
    """
    path = Path(path)
    format = format or next((f for f, suffix in FORMATS.items() if path.suffix == suffix), None)  # type: ignore[assignment]
    if format not in FORMATS:
        raise ConfigError(f"{path}: cannot tell the export format; name the file .onnx or .pt2, or pass format= "
                          f"one of {', '.join(FORMATS)}")
    if path.suffix != FORMATS[format]:
        raise ConfigError(f"{path}: a {format} export is written as a {FORMATS[format]} file; rename it")
    check_exportable(getattr(model, "reduction", ()))
    if format == "onnx":
        try:
            import onnx  # noqa: F401  (the exporter needs both; say so before tracing)
            import onnxscript  # noqa: F401
        except ImportError:
            raise ExportError(f"ONNX export needs onnx and onnxscript: {INSTALL}, or format='torch_export'") from None
    prepare = getattr(model, "prepare_input", lambda video: video)
    was_training = model.training
    model.eval()
    try:
        video = example_input(model, batch_size) if example is None else prepare(example)
        with torch.no_grad():
            model(video)  # eager once: input errors surface here, and the model's position caches fill
            with _quiet_exporter():
                run = _write_any_batch(model, video[:1], path, format) if dynamic_batch else \
                    _write(_trace(model, video), path, format)
            shape = (-1, *video.shape[1:]) if dynamic_batch else tuple(video.shape)
            if not check:
                return Exported(path, format, shape, None)
            layout = getattr(getattr(model, "input_spec", None), "layout", "TCHW")
            like = video.new_zeros(max(video.shape[0], 2) + 1, *video.shape[1:]) if dynamic_batch else video
            other = check_input(like, layout) if check_with is None else prepare(check_with)
            if tuple(other.shape[dynamic_batch:]) != tuple(video.shape[dynamic_batch:]):
                raise ConfigError(f"check_with has shape {tuple(other.shape)}; the graph takes {shape}")
            diff = max_abs_diff(_outputs(run(other)), _outputs(model(other)))
    finally:
        model.train(was_training)
    if not diff <= atol:
        path.unlink(missing_ok=True)
        raise ExportError(
            f"{path}: the exported graph differs from the model by {diff:.3g} (> atol {atol}) on an input other than "
            f"the example, so it was not kept; the reduction takes a path that depends on the input's values "
            f"(methods that export: {EXPORTABLE})"
        )
    return Exported(path, format, shape, diff)
