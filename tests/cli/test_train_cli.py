"""`vidslim train` end to end on the synthetic data: a run stopped after a checkpoint resumes to the same model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_cli_helpers import records, run_cli, write_config

import vidslim as vs
import vidslim.train.checkpoint as ckpt
from vidslim.train.checkpoint import list_checkpoints


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synth")


def test_stopped_run_resumes_to_the_same_model(tmp_path: Path, synth_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    ref = write_config(tmp_path / "ref.yaml", tmp_path / "ref", synth_dir, "classify")
    assert run_cli(monkeypatch, capsys, "train", "classify", ref)[0] == 0

    # the same run, interrupted (Ctrl-C) right after its second checkpoint (step 4 of 6)
    config = write_config(tmp_path / "run.yaml", tmp_path / "run", synth_dir, "classify")
    real_save, saves = ckpt.save_checkpoint, []

    def save_then_stop(*args, **kwargs):  # type: ignore[no-untyped-def]
        path = real_save(*args, **kwargs)
        saves.append(path)
        if len(saves) == 2:
            raise KeyboardInterrupt
        return path

    with monkeypatch.context() as patch:
        patch.setattr(ckpt, "save_checkpoint", save_then_stop)
        status, _, err = run_cli(monkeypatch, capsys, "train", "classify", config)
    assert status == 130 and "interrupted" in err
    assert [step for step, _ in list_checkpoints(tmp_path / "run")] == [2, 4]
    assert not (tmp_path / "run" / "model").exists()

    status, out, _ = run_cli(monkeypatch, capsys, "train", "classify", config, "--json")
    assert status == 0
    summary = json.loads(out)
    assert summary["resumed_from"] == 4 and summary["steps"] == 6
    assert [r["step"] for r in records(tmp_path / "run", "train")] == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "run" / "train.csv").read_text().splitlines()[0].startswith("kind,step")
    expected = load_file(str(tmp_path / "ref" / "model" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    assert expected.keys() == resumed.keys()
    assert all(torch.equal(expected[k], resumed[k]) for k in expected)
    assert records(tmp_path / "run", "eval")[-1]["top1"] == records(tmp_path / "ref", "eval")[-1]["top1"]

    # the exported model is the trained one, reducers included
    model = vs.load_model(tmp_path / "run" / "model")
    assert isinstance(model.reduction[0], vs.RLT) and model.reduction[0].use_length_embed
    assert model.config.num_classes == 8  # the synthetic motion classes


def test_overrides_and_config_errors(tmp_path: Path, synth_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "run.yaml", tmp_path / "run", synth_dir, "classify")
    status, _, err = run_cli(monkeypatch, capsys, "train", "classify", config, "lrr=1e-3")
    assert status == 2 and "unknown key(s) ['lrr']" in err
    status, _, err = run_cli(monkeypatch, capsys, "train", "classify", config, "model.reduction=[{rlt: {taux: 1}}]")
    assert status == 2 and "unknown setting(s) ['taux'] for RLT" in err
    status, _, err = run_cli(monkeypatch, capsys, "train", "classify", tmp_path / "missing.yaml")
    assert status == 2 and "config file not found" in err
    status, _, err = run_cli(monkeypatch, capsys, "train", "retrieval", config, f"run_dir={tmp_path / 'r'}")
    assert status == 2 and "RetrievalTask needs a vision-text model" in err  # a classifier cannot do retrieval
    # LoRA fine-tuning and an override of the schedule; the exported model carries the adapters
    status, out, _ = run_cli(monkeypatch, capsys, "train", "classify", config, "model.finetune=lora",
                             "model.lora_rank=2", "steps=2", "checkpoint_every=0", f"run_dir={tmp_path / 'lora'}",
                             "--json")
    assert status == 0 and json.loads(out)["trainable_params"] < json.loads(out)["total_params"] / 2
    meta = json.loads((tmp_path / "lora" / "model" / "vidslim.json").read_text())
    assert meta["lora"] == {"rank": 2, "scale": 1.0}


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_example_configs_are_valid(path: Path) -> None:
    from vidslim.train import config_from_dict
    from vidslim.train.recipe.data import DataSection
    from vidslim.train.recipe.model import ModelSection
    from vidslim.train.recipe.setup import read_tree

    tree = read_tree(path, [])
    config = config_from_dict(tree)  # every run setting known and well typed
    section = ModelSection.from_dict(tree["model"])
    reducers = section.reducers()
    assert reducers and all(type(r).__name__ in ("RLT", "TempMe") for r in reducers)
    DataSection.from_dict(tree["data"])
    assert config.stages[0].steps or config.stages[0].epochs


def test_word_tokenizer_gives_one_id_per_caption_word(tmp_path: Path) -> None:
    from vidslim.train.recipe.model import caption_words, word_tokenizer

    captions = ["A red 3 moves left, then up", "a blue 7  moves DOWN"]
    words = caption_words(captions)
    assert words == [",", "3", "7", "a", "blue", "down", "left", "moves", "red", "then", "up"]
    tokenizer = word_tokenizer(captions, tmp_path / "tokenizer.json")
    ids = tokenizer(["a red 7 moves sideways"], context_length=8)[0].tolist()
    index = {w: i + 1 for i, w in enumerate(words)}  # 0 is <unk>, then the words, then SOT, EOT
    sot, eot = len(words) + 1, len(words) + 2
    assert ids == [sot, index["a"], index["red"], index["7"], index["moves"], 0, eot, 0]
    assert tokenizer.vocab_size == eot + 1  # EOT is the largest id: CLIP's argmax pooling finds it
    assert (tmp_path / "tokenizer.json").is_file()


@pytest.mark.slow
def test_two_processes_through_torchrun(tmp_path: Path, synth_dir: Path) -> None:
    """Rank 0 writes the data and the word vocabulary, the others wait for it; the evaluation matches one process."""
    import subprocess
    import sys

    config = write_config(tmp_path / "run.yaml", tmp_path / "run", synth_dir, "retrieval", steps=2)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
               "vidslim.cli.main", "train", "retrieval", str(config), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["steps"] == 2 and summary["model_dir"] == str(tmp_path / "run" / "model")
    one = subprocess.run([sys.executable, "-m", "vidslim.cli.main", "eval", "retrieval", str(config), "--json",
                          "--no-flops"], capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stderr[-2000:]
    assert json.loads(one.stdout)["metrics"] == pytest.approx(summary["eval_metrics"])
