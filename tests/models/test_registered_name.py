"""A loaded checkpoint is matched to the registered model of the same architecture, so method strings on it start
from that model's presets (TempMe's paper settings, ToMe's r) wherever a job or benchmark builds them."""

from __future__ import annotations

from pathlib import Path

import pytest

import vidslim as vs
from vidslim.models.registry import get_config, registered_name_of


@pytest.mark.parametrize("name", ["clip-b16", "xclip-b16", "vjepa2-vitl-256", "videomae-b16", "siglip-tiny"])
def test_a_named_config_matches_itself_whatever_its_run_settings(name: str) -> None:
    assert registered_name_of(get_config(name), _family(name)) == name
    assert registered_name_of(get_config(name, num_frames=16), _family(name)) == name


def _family(name: str) -> str:
    from vidslim.models.registry import family_of

    family = family_of(name)
    assert family is not None
    return family


def test_another_architecture_or_family_matches_nothing() -> None:
    wider = get_config("clip-b16", vision_width=640)
    assert registered_name_of(wider, "clip") is None
    assert registered_name_of(get_config("clip-b16"), "siglip") is None


def test_a_job_on_a_saved_checkpoint_starts_tempme_from_its_architectures_preset(tmp_path: Path) -> None:
    """xclip-tiny has 2 layers and 4 frames: TempMe's class defaults (merge layers 8-10, groups 2,2,3) do not fit it,
    its preset does. Before, a checkpoint folder took the defaults and was refused."""
    from vidslim.jobs.model_source import resolve_model

    vs.save_model(vs.create_model("xclip-tiny"), tmp_path / "ckpt")
    model, _ = resolve_model(str(tmp_path / "ckpt"), "tempme")
    (tempme,) = model.reduction
    assert list(tempme.merge_layers) == [1] and list(tempme.groups) == [4]
