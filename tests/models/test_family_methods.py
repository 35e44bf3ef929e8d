"""Every method string that fits V-JEPA 2, ViViT or X-CLIP runs on its tiny config from its presets (what `vidslim
bench --model NAME --method M` builds), every other one is refused in one line naming those that fit, and the
published sizes start from presets that reduce."""

from __future__ import annotations

import pytest
import torch

import vidslim as vs
from model_checks import decoded_frames
from vidslim.errors import ConfigError
from vidslim.reduce.registry import method_names

TINY = {"vjepa2": "vjepa2-tiny", "vivit": "vivit-tiny", "xclip": "xclip-tiny"}
FITS = {"vjepa2": {"rlt", "random", "tome", "tokenprune", "svitt"}, "vivit": {"rlt", "tome", "tokenprune", "svitt"},
        "xclip": {"rlt", "tome", "tempme"}}


def test_the_registry_lists_the_methods_the_issue_names() -> None:
    for family, fits in FITS.items():
        assert set(method_names(family)) - {"rlt_budget"} == fits


@pytest.mark.parametrize(("family", "method"), [(f, m) for f, ms in FITS.items() for m in sorted(ms)])
@torch.no_grad()
def test_each_fitting_method_runs_from_its_preset(family: str, method: str) -> None:
    name = TINY[family]
    model = vs.create_model(name, reduction=vs.build_reduction(method, name, family=family)).eval()
    out = model(decoded_frames())
    assert out.shape[0] == 2 and torch.isfinite(out).all()


@pytest.mark.parametrize("family", sorted(FITS))
def test_the_others_are_refused_in_one_line(family: str) -> None:
    name = TINY[family]
    refused = sorted(set(method_names()) - FITS[family])
    assert "rlt_budget" in refused and len(refused) >= 2
    for method in refused:
        with pytest.raises(ConfigError) as error:
            vs.build_reduction(method, name, family=family)
        message = str(error.value)
        assert "\n" not in message and f"not on {name!r}" in message and "pick a method that fits" in message


@pytest.mark.parametrize(("name", "method", "most"), [
    ("vjepa2-vitl-256", "tome", 0.6), ("vjepa2-vith-256", "tome", 0.6), ("vjepa2-vitg-256", "tome", 0.6),
    ("vivit-b", "tome", 0.6), ("vjepa2-vitl-256", "tokenprune", 0.7), ("xclip-b16", "tempme", 0.7),
])
def test_published_sizes_start_from_presets_that_reduce(name: str, method: str, most: float) -> None:
    """The FLOPs of the preset against dense, counted on the meta device (no weights, no time)."""
    from vidslim.bench.flops import count_flops

    spec = vs.models.registry.spec_of_name(name)
    shape = (1, spec.num_frames, 3, spec.image_size, spec.image_size)
    ratios = []
    for reduction in ([], vs.build_reduction(method, name)):
        with torch.device("meta"):
            model = vs.create_model(name, reduction=reduction).eval()
        ratios.append(count_flops(model, torch.empty(shape, device="meta")).total)
    assert ratios[1] <= most * ratios[0]
