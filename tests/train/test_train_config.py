"""TrainConfig from YAML with key=value overrides, and its errors (hostile YAML and numbers included)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from vidslim.errors import ConfigError
from vidslim.train import Stage, TrainConfig, config_from_dict, load_config, parse_overrides
from vidslim.train.config import load_yaml

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


# --- attacks: what a small config may demand -------------------------------------------------------------------

BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True))


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    assert len(BOMB) < 700  # 9**9 (387 million) strings once expanded
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"bomb\.yaml: its anchors and aliases expand to more than 100000"):
        load_config(path)
    with pytest.raises(ConfigError, match="expand to more than"):
        load_yaml(BOMB, "x")
    with pytest.raises(ConfigError, match=r"override 'model\.x=.*expand to more than"):  # override values are YAML
        parse_overrides(["model.x=" + BOMB.replace("\n", ", ").join("{}")])
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(("text", "message"), [
    ("a: &a [*a]\n", "refers to a node that contains it"),
    ("x: " + "[" * 2000 + "]" * 2000 + "\n", "nested more than 64 levels"),
    ("steps: 3\nlr: [1, 2\n", "not valid YAML"),
])
def test_hostile_yaml_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_a_binary_file_is_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_bytes(b"steps: 3\n\xff\xfe\x00\x81garbage")
    with pytest.raises(ConfigError, match=r"run\.yaml: not a text file") as caught:
        load_config(path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("line", "message"), [
    ("weight_decay: .nan", "weight_decay must be a finite number"),
    ("lr: .inf", "lr must be a finite number"),
    ("lr: -1.0e-4", "need lr > 0"),
    ("weight_decay: -0.1", "weight_decay must be >= 0"),
    ("eps: 0", "eps must be > 0"),
    ("betas: [0.9, 1.5]", "betas must be in"),
    ("grad_clip: .nan", "grad_clip must be a finite number"),
    ("warmup_start_lr: -1", "warmup_start_lr must be >= 0"),
    ("min_lr: .nan", "min_lr must be a finite number"),
    ("batch_size: .inf", "batch_size: needs an integer"),
    ("data: {frames: 0}", r"data\.frames: needs a whole number >= 1"),
    ("data: {frames: 2.5}", r"data\.frames: needs a whole number"),
    ("data: {size: -8}", r"data\.size: needs a whole number >= 1"),
    ("data: {fps: .nan}", r"data\.fps: needs a finite number > 0"),
    ("data: {hflip: 2}", r"data\.hflip: needs a probability"),
])
def test_numbers_must_be_finite_and_in_range(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(f"steps: 3\n{line}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_stage_numbers_are_checked() -> None:
    with pytest.raises(ConfigError, match="steps / epochs must be positive and finite"):
        load_config(None, ["stages=[{name: a, epochs: .nan}]"])
    with pytest.raises(ConfigError, match=r"stage 'a': overrides\.frames: needs a whole number >= 1"):
        load_config(None, ["stages=[{name: a, steps: 1, overrides: {frames: 0}}]"])


def test_shared_data_parsed_elsewhere_is_bounded() -> None:
    # the command line parses the file itself: a bomb reaches config_from_dict as one list shared many times
    shared: list = ["lol"] * 9
    for _ in range(8):
        shared = [shared] * 9
    with pytest.raises(ConfigError, match="more than 100000 values"):
        config_from_dict({"steps": 1, "model": {"x": shared}})
    loop: list = []
    loop.append(loop)
    with pytest.raises(ConfigError, match="nested more than 64 levels"):
        config_from_dict({"steps": 1, "model": {"x": loop}})
