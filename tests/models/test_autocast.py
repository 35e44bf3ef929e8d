"""Every family runs every method that fits it under CPU bf16 autocast (what `vidslim bench --precision bf16` does),
on a batch whose second clip repeats its first frame, so RLT drops tokens and the packed, gathered paths run."""

from __future__ import annotations

import pytest
import torch

import vidslim as vs
from vidslim.reduce.registry import method_names

TINY = ["clip-tiny", "siglip-tiny", "videomae-tiny", "vjepa2-tiny", "vivit-tiny", "xclip-tiny"]
#: settings that fit the 2-layer, 4-frame tiny models where a method has no preset for them
FIT_TINY = {"tempme": {"merge_layers": (1,), "groups": (4,)}, "tokenprune": {"layers": (0, 1)}}
#: methods whose tokens do not depend on the model's numbers (RLT reads pixels), so bf16 stays near fp32; ToMe,
#: TempMe and token pruning choose by scores that bf16 may reorder, random masking draws anew on every call
SAME_TOKENS = {"dense", "rlt", "rlt_budget"}


def _cases() -> list[tuple[str, str]]:
    from vidslim.models.registry import family_of

    return [(name, method) for name in TINY for method in ["dense", *method_names(family_of(name))]]


def _clips(model: torch.nn.Module) -> torch.Tensor:
    spec = model.input_spec  # type: ignore[attr-defined]
    side = spec.image_size
    clips = torch.randint(0, 256, (2, spec.num_frames, side, side, 3), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
    clips[1, 1:] = clips[1, :1]  # a still clip: RLT keeps only its first frame's (or first tubelet's) tokens
    return clips


@pytest.mark.parametrize(("name", "method"), _cases())
def test_each_method_runs_under_bf16_autocast(name: str, method: str) -> None:
    from vidslim.models.registry import family_of

    family = family_of(name)
    settings = {f"{part}.{key}": value for part in method.split("+") for key, value in FIT_TINY.get(part, {}).items()}
    reduction = [] if method == "dense" else vs.build_reduction(method, name, family=family, **settings)
    model = vs.create_model(name, reduction=reduction).eval()
    clips = _clips(model)
    with torch.inference_mode():
        full = model(clips).float()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(clips).float()
    assert half.shape == full.shape and torch.isfinite(half).all()
    if method in SAME_TOKENS:
        assert (half - full).abs().max() <= 0.1 * full.abs().max() + 0.05  # bf16 keeps about 3 significant digits
