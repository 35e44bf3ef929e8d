"""Export vidslim models, reducers included, with `torch.export` (.pt2) or to ONNX (.onnx), checked against eager.

    vs.export_model(model, "model.onnx")                       # vidslim.export.api
    vs.export_model(model, "model.pt2", format="torch_export")
    vs.export_model(model, "model.onnx", dynamic_batch=True)   # any number of clips (vidslim.export.dynamic_batch)

Reductions whose token counts depend on the pixels (threshold RLT) are refused with the static variant to use
(`vs.RLTBudget`); see `vidslim.export.guard`. Names load lazily; ONNX needs the `export` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidslim._lazy import lazy_exports

if TYPE_CHECKING:  # the public names: what IDEs read; at run time each module is imported on first use
    from vidslim.export.api import Exported as Exported
    from vidslim.export.api import check_input as check_input
    from vidslim.export.api import example_input as example_input
    from vidslim.export.api import export_model as export_model
    from vidslim.export.guard import ExportError as ExportError
    from vidslim.export.guard import refusal as refusal

__getattr__, __dir__, __all__ = lazy_exports(__name__)
