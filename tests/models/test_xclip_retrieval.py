"""The retrieval pipeline on X-CLIP: the task scores pairs with the model's own `retrieval_cosine` (each text
prompted by each video), in the loss and in evaluation; `vidslim train/eval retrieval` run on xclip-tiny."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

import vidslim as vs
from vidslim.tasks.retrieval import RetrievalTask, contrastive_loss, model_cosine


def batch() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return {"video": torch.randn(3, 4, 3, 32, 32, generator=gen),
            "text": torch.randint(1, 49000, (3, 8), generator=gen)}


def test_the_loss_uses_the_prompted_cosine_and_trains() -> None:
    model = vs.create_model("xclip-tiny")
    data = batch()
    task = RetrievalTask()
    loss, logs = task.loss(model, data)
    # by hand: logits[i, j] = exp(scale) · cos(video j, text i prompted by video j), symmetric cross-entropy
    state, text = model.encode_video(data["video"]), model.encode_text(data["text"])
    prompted = model.prompted_text(data["text"], state)  # [videos, texts, E]
    cos = torch.einsum("vd,vtd->tv", F.normalize(model.video_embedding(state), dim=-1), F.normalize(prompted, dim=-1))
    logits = model.logit_scale.exp() * cos
    target = torch.arange(3)
    expected = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.similarity(state, text), logits, atol=1e-5, rtol=1e-5)
    assert float(logs["logit_scale"]) == pytest.approx(float(model.logit_scale.detach()))
    # the plain cosine of the video and unprompted text embeddings is another number: the hook is what ran
    plain = contrastive_loss(text, model.video_embedding(state), model.logit_scale)
    assert abs(float(plain.detach()) - float(loss.detach())) > 1e-4

    alpha = model.prompts_generator.alpha.detach().clone()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    loss.backward()
    assert model.prompts_generator.alpha.grad is not None and model.mit.position_embedding.grad is not None
    optimiser.step()
    assert not torch.equal(model.prompts_generator.alpha, alpha)


def test_evaluation_ranks_with_the_prompted_cosine() -> None:
    model = vs.create_model("xclip-tiny").eval()
    data = batch()
    task = RetrievalTask()
    with torch.inference_mode():
        out = task.eval_step(model, data)
        assert out["video_emb"].shape == (3, 17, 32)  # the state, kept whole for retrieval_cosine
        metrics = task.eval_metrics(model, out, None, gather=lambda d: d, rank=0, world_size=1)
        sim = model.retrieval_cosine(out["text_emb"], out["video_emb"])
    ranks = (sim > sim.diagonal()[:, None]).sum(1) + 1  # rank of each text's own video
    assert metrics["t2v/R@1"] == pytest.approx(100.0 * float((ranks == 1).float().mean()))
    assert metrics["t2v/MnR"] == pytest.approx(float(ranks.float().mean()))
    assert model_cosine(vs.create_model("clip-tiny")) is None  # CLIP keeps the plain cosine


def test_chunked_retrieval_cosine_equals_one_pass() -> None:
    model = vs.create_model("xclip-tiny").eval()
    with torch.inference_mode():
        state = model.encode_video(torch.randn(5, 4, 3, 32, 32))
        text = model.encode_text(torch.randint(1, 49000, (4, 8)))
        torch.testing.assert_close(model.retrieval_cosine(text, state, chunk=2), model.retrieval_cosine(text, state))


def test_train_and_eval_retrieval_commands_on_xclip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import vidslim.cli.main as cli_main

    monkeypatch.setattr(cli_main, "_COMMANDS", (*cli_main._COMMANDS, *(c for c in ("train", "evaluate")
                                                                        if c not in cli_main._COMMANDS)))
    run_dir = tmp_path / "run"
    config = {"run_dir": str(run_dir), "seed": 0, "steps": 2, "batch_size": 4, "lr": 2e-3, "log_every": 1,
              "checkpoint_every": 2,
              "model": {"name": "xclip-tiny", "reduction": [{"tempme": {"r": 1, "merge_layers": [1], "groups": [2]}}]},
              "data": {"name": "synthetic", "video_root": str(tmp_path / "synth"), "frames": 4, "size": 32,
                       "cache": True, "synthetic": {"num_videos": 10, "fps": 4, "seconds": 1, "size": 32, "seed": 0}}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    assert cli_main.main(["train", "retrieval", str(path), "--json"]) == 0
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if r["kind"] == "train"]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
    capsys.readouterr()
    assert cli_main.main(["eval", "retrieval", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["num_texts"] == result["metrics"]["num_videos"] == 2
    model = vs.load_model(run_dir / "model")
    assert isinstance(model, vs.models.XCLIP) and type(model.reduction[0]).__name__ == "TempMe"
    assert model.encode_text(["a red 3 moves left"]).shape == (1, 32)
