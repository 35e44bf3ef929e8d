"""Weights from Hugging Face transformers load exactly: same random checkpoint, same outputs within 1e-4 (fp32).

Each reference model is randomly initialised, perturbed so that no parameter keeps its init value (biases and
LayerNorm affine terms would otherwise all be 0 / 1 and hide a mapping error), saved with `save_pretrained`, and
read back with `vs.load_model`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import vidslim as vs
from vidslim.models.positions import sinusoid_table

transformers = pytest.importorskip("transformers")

ATOL = 1e-4


def perturb_(model: torch.nn.Module, seed: int = 0) -> None:
    """Add small noise to every parameter so biases, norms and the logit scale all differ from their init."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))


def features(out: object) -> torch.Tensor:
    """transformers >= 5 returns an output object from get_*_features, older versions a tensor."""
    return out.pooler_output if hasattr(out, "pooler_output") else out  # type: ignore[union-attr]


def save_clip(tmp_path: Path, text: dict, vision: dict, projection_dim: int) -> tuple[object, Path]:
    config = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim)
    torch.manual_seed(0)
    model = transformers.CLIPModel(config).eval()
    perturb_(model)
    model.save_pretrained(tmp_path)
    return model, tmp_path


def check_clip(hf: object, ours: vs.models.CLIP, image_size: int, vocab: int, eos: int | None) -> None:
    gen = torch.Generator().manual_seed(1)
    video = torch.randn(2, 3, 3, image_size, image_size, generator=gen)  # [B, T, C, H, W]
    ids = torch.randint(0, min(vocab - 1, 40000), (3, 16), generator=gen)
    end = vocab - 1 if eos is None else eos
    for row, at in enumerate((5, 15, 2)):
        ids[row, at] = end
    with torch.inference_mode():
        ref_frames = features(hf.get_image_features(pixel_values=video.flatten(0, 1))).view(2, 3, -1)
        ref_text = features(hf.get_text_features(input_ids=ids))
        frames = ours.encode_frames(video)
        text = ours.encode_text(ids)
        vid = ours.encode_video(video)
    torch.testing.assert_close(frames, ref_frames, atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(text, ref_text, atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(vid, F.normalize(ref_frames, dim=-1).mean(1), atol=ATOL, rtol=ATOL)
    assert torch.allclose(ours.logit_scale, hf.logit_scale)


@pytest.mark.parametrize("eos", [999, 2], ids=["eos-id", "legacy-eos-argmax"])
def test_clip_tiny_matches_transformers(tmp_path: Path, eos: int) -> None:
    text = dict(
        vocab_size=1000,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        eos_token_id=eos,
    )
    vision = dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8
    )
    hf, folder = save_clip(tmp_path, text, vision, projection_dim=32)
    ours = vs.load_model(folder)
    assert ours.config.eot_token_id == (None if eos == 2 else eos)
    check_clip(hf, ours, 32, 1000, None if eos == 2 else eos)


@pytest.mark.slow
def test_clip_b32_full_vision_matches_transformers(tmp_path: Path) -> None:
    """The whole ViT-B/32 image tower (12 layers, width 768, 224 px); a 1-layer text tower keeps it quick."""
    hf, folder = save_clip(tmp_path, dict(num_hidden_layers=1), dict(patch_size=32), projection_dim=512)
    ours = vs.load_model(folder)
    reference = vs.create_model("clip-b32").config
    for field in ("image_size", "patch_size", "vision_width", "vision_layers", "vision_heads", "embed_dim"):
        assert getattr(ours.config, field) == getattr(reference, field)
    check_clip(hf, ours, 224, 49408, 49407)


def test_clip_b16_shape_matches_transformers(tmp_path: Path) -> None:
    """ViT-B/16 widths and 197 tokens per frame, 2 layers per tower."""
    hf, folder = save_clip(tmp_path, dict(num_hidden_layers=2), dict(patch_size=16, num_hidden_layers=2), 512)
    ours = vs.load_model(folder)
    assert ours.visual.positional_embedding.shape == (197, 768)
    check_clip(hf, ours, 224, 49408, 49407)


def save_videomae(tmp_path: Path, **config: object) -> tuple[object, Path]:
    torch.manual_seed(0)
    model = transformers.VideoMAEForVideoClassification(transformers.VideoMAEConfig(**config)).eval()
    perturb_(model)
    model.save_pretrained(tmp_path)
    return model, tmp_path


@pytest.mark.parametrize(
    ("config", "shape"),
    [
        (
            dict(
                image_size=32,
                num_frames=4,
                hidden_size=64,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=128,
                num_labels=7,
            ),
            (2, 4, 32),
        ),
        (dict(num_hidden_layers=2, num_labels=400), (1, 16, 224)),  # ViT-B widths, 16x224x224, 1568 tokens
    ],
    ids=["tiny", "base-2-layers"],
)
def test_videomae_matches_transformers(tmp_path: Path, config: dict, shape: tuple[int, int, int]) -> None:
    hf, folder = save_videomae(tmp_path, **config)
    ours = vs.load_model(folder)
    b, t, s = shape
    video = torch.randn(b, t, 3, s, s, generator=torch.Generator().manual_seed(2))  # transformers: [B, T, C, H, W]
    with torch.inference_mode():
        ref = hf(pixel_values=video).logits
        logits = ours(video.permute(0, 2, 1, 3, 4))  # vidslim: [B, C, T, H, W]
    assert logits.shape == ref.shape
    torch.testing.assert_close(logits, ref, atol=ATOL, rtol=ATOL)


def test_sinusoid_table_matches_transformers() -> None:
    """Spec rlt §2.1: angle pos / 10000^(2·floor(j/2)/D), sin on even and cos on odd dimensions."""
    from transformers.models.videomae.modeling_videomae import get_sinusoid_encoding_table

    ref = get_sinusoid_encoding_table(1568, 768)[0]
    torch.testing.assert_close(sinusoid_table(1568, 768), ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("layout", ["pytorch_model.bin", "sharded safetensors"])
def test_hf_folder_weight_layouts(tmp_path: Path, layout: str) -> None:
    """The same tiny VideoMAE folder read from pytorch_model.bin (weights_only) or from two safetensors shards."""
    from safetensors.torch import load_file, save_file

    hf, folder = save_videomae(
        tmp_path,
        image_size=32,
        num_frames=4,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        num_labels=3,
    )
    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    if layout == "pytorch_model.bin":
        torch.save(state, folder / "pytorch_model.bin")
    else:
        names = sorted(state)
        shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
        for file, keys in shards.items():
            save_file({k: state[k] for k in keys}, folder / file)
        index = {"metadata": {}, "weight_map": {k: f for f, keys in shards.items() for k in keys}}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    video = torch.randn(1, 4, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(vs.load_model(folder)(video.permute(0, 2, 1, 3, 4)), hf(pixel_values=video).logits)
