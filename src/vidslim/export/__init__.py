"""Export vidslim models, reducers included, with `torch.export` (.pt2) or to ONNX (.onnx), checked against eager.

    vs.export_model(model, "model.onnx")                       # vidslim.export.api
    vs.export_model(model, "model.pt2", format="torch_export")
    vs.export_model(model, "model.onnx", dynamic_batch=True)   # any number of clips (vidslim.export.dynamic_batch)

Reductions whose token counts depend on the pixels (threshold RLT) are refused with the static variant to use
(`vs.RLTBudget`); see `vidslim.export.guard`. Names load lazily; ONNX needs the `export` extra.
"""

from __future__ import annotations

from vidslim._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Exported": "vidslim.export.api",
    "ExportError": "vidslim.export.guard",
    "check_input": "vidslim.export.api",
    "example_input": "vidslim.export.api",
    "export_model": "vidslim.export.api",
    "refusal": "vidslim.export.guard",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
