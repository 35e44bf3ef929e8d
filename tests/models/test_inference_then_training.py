"""An evaluation under `torch.inference_mode()` never breaks the next training step on the same input.

Index plans and position tables are cached across calls; built inside inference mode they would be inference
tensors, which autograd refuses to save ("Inference tensors cannot be saved for backward").
"""

from __future__ import annotations

import pytest
import torch

import vidslim as vs


def _ragged_clip(model: vs.ReducibleModel) -> torch.Tensor:
    torch.manual_seed(0)
    clip = torch.rand(*model.input_spec.shape(batch=2))
    if model.input_spec.layout == "TCHW":  # one still video: ragged lengths
        clip[1] = clip[1, :1]
    else:
        clip[1] = clip[1, :, :1]
    return clip


@pytest.mark.parametrize(
    ("name", "reduction"),
    [
        ("clip-tiny", [vs.RLT()]),
        ("clip-tiny", [vs.RLT(), vs.ToMe(r=2)]),
        ("clip-tiny", "rlt+svitt"),
        ("videomae-tiny", "rlt_budget"),
        ("videomae-tiny", "tome"),
        ("videomae-tiny", "svitt"),
    ],
)
def test_a_training_step_after_an_inference_mode_call(name: str, reduction: object) -> None:
    family = name.split("-")[0]
    if isinstance(reduction, str):
        reduction = vs.build_reduction(reduction, name, family="clip" if family == "clip" else "video_vit")
    model = vs.create_model(name, reduction=reduction)
    clip = _ragged_clip(model)
    with torch.inference_mode():
        expected = model(clip)
    out = model(clip)  # the same lengths again, now recording for backward
    tensor = out[0] if isinstance(out, tuple) else out
    tensor.float().sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    torch.testing.assert_close(tensor.detach(), expected[0] if isinstance(expected, tuple) else expected)
