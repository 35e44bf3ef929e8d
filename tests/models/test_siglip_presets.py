"""Every method that fits SigLIP builds from its preset for every registered SigLIP config, and runs.

The presets are keyed by model name (`--method tempme` on siglip-tiny must not fall back to CLIP's merge layers
8, 9, 10); the merge and prune layers follow the rule the presets' comments state: paper layer l of 12 -> floor(l·L/12).
"""

from __future__ import annotations

import math

import pytest
import torch

import vidslim as vs
from vidslim.bench.suite import build_method
from vidslim.models.registry import family_of, get_config, list_models
from vidslim.reduce.registry import method_names

SIGLIP = [name for name in list_models() if family_of(name) == "siglip"]
METHODS = [*method_names("siglip"), "rlt+tempme", "rlt+tome"]


def test_every_siglip_config_is_covered() -> None:
    assert {"siglip-b16-224", "siglip2-b16-224", "siglip-tiny"} <= set(SIGLIP)


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n == "siglip-tiny" else pytest.mark.slow)
                                  for n in SIGLIP])
def test_each_method_builds_from_its_preset_and_runs(name: str) -> None:
    config = get_config(name)
    frames, layers = config.num_frames, config.vision_layers
    tempme = build_method("tempme", name)[0]
    assert tempme.merge_layers == tuple(sorted({math.floor(m * layers / 12) for m in (8, 9, 10)}))
    assert math.prod(tempme.groups) == frames  # joined into one sequence by the last merge layer, as the paper
    # the text tower and the frame size do not meet the vision presets: keep them small so the B/16 builds fast
    model = vs.create_model(name, vocab_size=64, text_layers=1, image_size=4 * config.patch_size).eval()
    video = torch.randn(1, frames, 3, model.config.image_size, model.config.image_size)
    video[:, 1:] = video[:, :1]  # repeated frames, so RLT has patches to drop
    for method in METHODS:
        model.set_reduction(build_method(method, name))
        with torch.inference_mode():
            out = model.encode_video(video)
        assert out.shape == (1, config.embed_dim) and torch.isfinite(out).all(), method
