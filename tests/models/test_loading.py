"""Checkpoint formats other than Hugging Face folders, strictness, position-table resizing and error messages."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

import vidslim as vs
from checkpoint_files import openai_torchscript
from vidslim.errors import CheckpointError
from vidslim.models import save_model

FRAMES = torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(0))  # CLIP [B, T, C, H, W]
VIDEO = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))  # video ViT [B, C, T, H, W]
IDS = torch.tensor([[49406, 320, 1929, 49407, 0, 0], [49406, 518, 49407, 0, 0, 0]])


def clip_outputs(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode():
        return model.encode_video(FRAMES), model.encode_text(IDS)


def test_openai_state_dict_file_loads(tmp_path: Path) -> None:
    model = vs.create_model("clip-tiny").eval()
    torch.save(model.state_dict(), tmp_path / "ViT-tiny.pt")
    # heads are not stored: OpenAI's rule (width / 64) would give 1, so the tiny model names its 2
    loaded = vs.load_model(tmp_path / "ViT-tiny.pt", vision_heads=2, text_heads=2)
    assert loaded.config.eot_token_id is None  # OpenAI's rule: pool at argmax(ids)
    for ours, ref in zip(clip_outputs(loaded), clip_outputs(model), strict=True):
        torch.testing.assert_close(ours, ref)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script, used here to write the archive
def test_openai_torchscript_archive_loads(tmp_path: Path) -> None:
    model = vs.create_model("clip-tiny").eval()
    half = model.half().float()  # the archive holds fp16 tensors, as OpenAI's do
    openai_torchscript(half.state_dict(), tmp_path / "ViT-tiny.pt")
    loaded = vs.load_model(tmp_path / "ViT-tiny.pt", vision_heads=2, text_heads=2)
    assert loaded.visual.conv1.weight.dtype == torch.float32
    for ours, ref in zip(clip_outputs(loaded), clip_outputs(half), strict=True):
        torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("name", ["clip-tiny", "videomae-tiny"])
def test_own_checkpoint_round_trip_is_exact(tmp_path: Path, name: str) -> None:
    model = vs.create_model(name, drop_path=0.1).eval()
    save_model(model, tmp_path / "ckpt")
    meta = json.loads((tmp_path / "ckpt" / "vidslim.json").read_text())
    assert meta["format"] == "vidslim" and meta["config"]["drop_path"] == 0.1
    loaded = vs.load_model(tmp_path / "ckpt")
    assert loaded.config == model.config and not loaded.training
    with torch.inference_mode():
        if name.startswith("clip"):
            for a, b in zip(clip_outputs(loaded), clip_outputs(model), strict=True):
                assert torch.equal(a, b)
        else:
            assert torch.equal(loaded(VIDEO), model(VIDEO))


def test_videomae2_pth_wrapped_in_module_loads(tmp_path: Path) -> None:
    model = vs.create_model("videomae-tiny").eval()
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"module": state, "epoch": 3}, tmp_path / "vit_tiny.pth")
    loaded = vs.load_model(tmp_path / "vit_tiny.pth", image_size=32, num_frames=4, num_heads=2)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(VIDEO), model(VIDEO))


def test_strict_loading_lists_missing_unexpected_and_shapes(tmp_path: Path) -> None:
    save_model(vs.create_model("videomae-tiny"), tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    del state["blocks.1.attn.q_bias"]
    state["blocks.1.attn.k_bias"] = torch.zeros(64)
    state["fc_norm.weight"] = torch.ones(65)
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError) as error:
        vs.load_model(tmp_path)
    message = str(error.value)
    assert "1 missing: blocks.1.attn.q_bias" in message
    assert "1 unexpected: blocks.1.attn.k_bias" in message
    assert "fc_norm.weight (checkpoint (65,), model (64,))" in message


def test_new_head_replaces_classifier_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = vs.create_model("videomae-tiny")
    save_model(model, tmp_path)
    with caplog.at_level(logging.WARNING):
        loaded = vs.load_model(tmp_path, num_classes=3)
    assert "new classifier head with 3 outputs" in caplog.text
    assert loaded.head.out_features == 3
    assert torch.equal(loaded.fc_norm.weight, model.fc_norm.weight)


def test_clip_position_table_is_resized_for_another_resolution(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = vs.create_model("clip-tiny")
    save_model(model, tmp_path)
    with caplog.at_level(logging.WARNING):
        bigger = vs.load_model(tmp_path, image_size=48)
    assert "resized CLIP's position table from a 4x4 to a 6x6 grid" in caplog.text
    table = bigger.visual.positional_embedding
    assert table.shape == (1 + 36, 64)
    assert torch.equal(table[0], model.visual.positional_embedding[0])  # CLS row kept
    with torch.inference_mode():
        assert bigger.encode_video(torch.randn(1, 2, 3, 48, 48)).shape == (1, 32)


def test_videomae_sinusoid_is_rebuilt_for_more_frames(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    save_model(vs.create_model("videomae-tiny"), tmp_path)
    with caplog.at_level(logging.WARNING):
        longer = vs.load_model(tmp_path, num_frames=8)
    assert "fixed sinusoid position table is rebuilt for (4, 2, 2)" in caplog.text
    with torch.inference_mode():
        assert longer(torch.randn(1, 3, 8, 32, 32)).shape == (1, 10)


def test_learned_video_position_table_is_resized_in_3d(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = vs.create_model("videomae-tiny", learned_pos=True)
    with torch.no_grad():  # a table constant over time: trilinear resizing in t must keep it exactly
        model.pos_embed.copy_(model.pos_embed.view(2, 4, 64)[:1].expand(2, 4, 64).reshape(1, 8, 64))
    save_model(model, tmp_path)
    with caplog.at_level(logging.WARNING):
        longer = vs.load_model(tmp_path, num_frames=12)
    assert "resized the learned position table from grid (2, 2, 2) to (6, 2, 2)" in caplog.text
    torch.testing.assert_close(longer.pos_embed.view(6, 4, 64), model.pos_embed.view(2, 4, 64)[:1].expand(6, 4, 64))


def test_missing_path_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no such file or folder.*Hugging Face folder.*never downloads"):
        vs.load_model(tmp_path / "nope")
    with pytest.raises(CheckpointError, match=r"vs\.create_model\('clip-b16'\)"):
        vs.load_model("clip-b16")


def test_foreign_pickles_are_refused(tmp_path: Path) -> None:
    torch.save(
        {"state_dict": vs.create_model("videomae-tiny").state_dict(), "opt": logging.getLogger("x")}, tmp_path / "a.pt"
    )
    with pytest.raises(CheckpointError, match="weights only"):
        vs.load_model(tmp_path / "a.pt")


def test_unknown_tensors_and_hf_state_without_config_are_explained(tmp_path: Path) -> None:
    save_file({"foo.weight": torch.zeros(2)}, tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match=r"unrecognised checkpoint.*foo\.weight"):
        vs.load_model(tmp_path / "x.safetensors")
    save_file({"vision_model.post_layernorm.weight": torch.zeros(2)}, tmp_path / "y.safetensors")
    with pytest.raises(CheckpointError, match="without its config"):
        vs.load_model(tmp_path / "y.safetensors")


def test_reducer_parameters_are_saved_and_required(tmp_path: Path) -> None:
    class Learned(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.table = nn.Parameter(torch.zeros(4))

    reducer = Learned()
    with torch.no_grad():
        reducer.table.copy_(torch.arange(4.0))
    save_model(vs.create_model("videomae-tiny", reduction=[reducer]), tmp_path)
    with pytest.raises(CheckpointError, match="parameters of reducers"):
        vs.load_model(tmp_path)
    fresh = Learned()
    vs.load_model(tmp_path, reduction=[fresh])
    assert torch.equal(fresh.table, torch.arange(4.0))


def write_byte_vocab(folder: Path) -> None:
    """A minimal CLIP vocabulary: the 256 byte characters, the same with </w>, no merges, then SOT and EOT."""
    from vidslim.models.clip_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    tokens = [*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")


def test_tokenizer_in_the_checkpoint_folder_is_attached(tmp_path: Path) -> None:
    model = vs.create_model("clip-tiny").eval()
    save_model(model, tmp_path)
    assert vs.load_model(tmp_path).tokenizer is None  # no vocabulary yet: ids only
    write_byte_vocab(tmp_path)
    loaded = vs.load_model(tmp_path)
    ids = loaded.tokenizer(["a dog"])
    # printable bytes come first in the table, from "!" (33): "a</w>" = 256 + 97 - 33, "d" = 100 - 33, ...
    assert ids.shape == (1, 77) and ids[0, :6].tolist() == [512, 320, 67, 78, 326, 513]
    with torch.inference_mode():
        torch.testing.assert_close(loaded.encode_text(["a dog"]), model.encode_text(ids))
    assert vs.load_model(tmp_path, tokenizer=False).tokenizer is None
    save_model(loaded, tmp_path / "copy")  # the vocabulary travels with the weights
    assert torch.equal(vs.load_model(tmp_path / "copy").tokenizer(["a dog"]), ids)
    with pytest.raises(CheckpointError, match="elsewhere: no such folder"):
        vs.load_model(tmp_path, tokenizer=tmp_path / "elsewhere")
