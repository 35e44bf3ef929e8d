"""TrainConfig from YAML with key=value overrides, and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidslim.errors import ConfigError
from vidslim.train import Stage, TrainConfig, config_from_dict, load_config

YAML = """
run_dir: runs/svitt
batch_size: 32
lr: 1.0e-5
betas: [0.9, 0.98]
precision: bf16
stages:
  - {name: short, steps: 100, overrides: {frames: 4, keep: 0.7}}
  - {name: long, epochs: 1, overrides: {frames: 8, keep: 0.6}, batch_size: 16}
model: {name: clip-b16, lora_rank: 8}
"""


def test_yaml_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(YAML)
    cfg = load_config(path, ["lr=1e-4", "stages.1.overrides.frames=16", "grad_clip=null", "progress=false",
                             "model.lora_rank=4", "warmup_steps=5"])
    assert cfg.lr == 1e-4 and isinstance(cfg.lr, float)  # "1e-4" is a string in YAML 1.1: coerced
    assert cfg.betas == (0.9, 0.98) and cfg.precision == "bf16" and cfg.grad_clip is None and cfg.progress is False
    assert cfg.stages == [Stage("short", steps=100, overrides={"frames": 4, "keep": 0.7}),
                          Stage("long", epochs=1.0, overrides={"frames": 16, "keep": 0.6}, batch_size=16)]
    assert cfg.model == {"name": "clip-b16", "lora_rank": 4} and cfg.warmup_steps == 5
    assert config_from_dict(cfg.to_dict()) == cfg  # round trip through plain data


def test_steps_make_one_stage() -> None:
    cfg = load_config(None, ["steps=10"])
    assert cfg.stages == [Stage("main", steps=10)]
    assert config_from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(("overrides", "message"), [
    (["steps=10", "learning_rate=1"], "unknown key.*learning_rate.*valid keys"),
    (["steps=10", "batch_size=eight"], "batch_size: needs an integer"),
    (["steps=10", "precision=fp8"], "precision: must be one of"),
    (["steps=10", "stages.3.steps=1"], "stages"),
    (["lr"], "key=value"),
    ([], "exactly one of steps or epochs"),
    (["steps=10", "epochs=2"], "exactly one of steps or epochs"),
    (["stages=[{name: a, steps: 1, epochs: 1}]"], "stage 'a': give exactly one"),
    (["steps=10", "grad_accum=0"], "grad_accum must be >= 1"),
])
def test_config_errors_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config("nope/run.yaml")


def test_direct_construction_validates() -> None:
    with pytest.raises(ConfigError, match="either stages or steps"):
        TrainConfig(steps=3, stages=[Stage(steps=1)])
