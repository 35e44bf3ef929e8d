"""SigLIP and SigLIP 2: parity with transformers (in memory and from save_pretrained folders), the way back, and
the reducers working with no protected CLS token (or refused by the registry)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import vidslim as vs
from vidslim.errors import CheckpointError, ConfigError

transformers = pytest.importorskip("transformers")

ATOL = 1e-4
TEXT = dict(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=16)
VISION = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, patch_size=8)


def perturb_(model: torch.nn.Module) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model.eval()


def hf_siglip(version: int) -> torch.nn.Module:
    torch.manual_seed(0)
    if version == 1:
        return perturb_(transformers.SiglipModel(transformers.SiglipConfig(
            text_config=TEXT, vision_config={**VISION, "image_size": 32})))
    return perturb_(transformers.Siglip2Model(transformers.Siglip2Config(
        text_config=TEXT, vision_config={**VISION, "num_patches": 16})))


def reference_frames(hf: torch.nn.Module, video: torch.Tensor) -> torch.Tensor:
    """transformers' image features of every frame: SigLIP takes pixels, SigLIP 2 (NaFlex) patch rows."""
    b, t = video.shape[:2]
    frames = video.flatten(0, 1)
    if type(hf).__name__ == "SiglipModel":
        out = hf.get_image_features(pixel_values=frames)
    else:
        n, c, h, w = frames.shape
        p = 8
        rows = frames.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(n, -1, p * p * c)
        grid = torch.tensor([[h // p, w // p]] * n)
        out = hf.get_image_features(pixel_values=rows, pixel_attention_mask=torch.ones(n, rows.shape[1],
                                    dtype=torch.long), spatial_shapes=grid)
    return out.pooler_output.view(b, t, -1)


def check_parity(hf: torch.nn.Module, ours: vs.ReducibleModel) -> None:
    gen = torch.Generator().manual_seed(1)
    video = torch.randn(2, 3, 3, 32, 32, generator=gen)
    ids = torch.randint(0, 1000, (3, 16), generator=gen)
    with torch.inference_mode():
        ref_frames = reference_frames(hf, video)
        ref_text = hf.get_text_features(input_ids=ids).pooler_output
        torch.testing.assert_close(ours.encode_frames(video), ref_frames, atol=ATOL, rtol=ATOL)
        torch.testing.assert_close(ours.encode_text(ids), ref_text, atol=ATOL, rtol=ATOL)
        if type(hf).__name__ == "SiglipModel":
            ref = hf(input_ids=ids, pixel_values=video[:, 0]).logits_per_text
            torch.testing.assert_close(ours.similarity(ours.encode_frames(video)[:, 0], ours.encode_text(ids)), ref,
                                       atol=ATOL, rtol=ATOL)


@pytest.mark.parametrize("version", [1, 2], ids=["siglip", "siglip2"])
def test_siglip_matches_transformers_in_memory_and_from_a_folder(tmp_path: Path, version: int) -> None:
    hf = hf_siglip(version)
    check_parity(hf, vs.from_transformers(hf))
    hf.save_pretrained(tmp_path)
    loaded = vs.load_model(tmp_path)
    assert isinstance(loaded, vs.models.SigLIP) and loaded.config.image_size == 32
    assert loaded.config.hf_model_type == ("siglip" if version == 1 else "siglip2")
    check_parity(hf, loaded)


@pytest.mark.parametrize("version", [1, 2], ids=["siglip", "siglip2"])
def test_siglip_round_trip(tmp_path: Path, version: int) -> None:
    model = vs.from_transformers(hf_siglip(version))
    vs.save_model(model, tmp_path, format="transformers")
    cls = transformers.SiglipModel if version == 1 else transformers.Siglip2Model
    again = cls.from_pretrained(tmp_path).eval()
    check_parity(again, model)
    back = vs.load_model(tmp_path)
    video = torch.randn(1, 4, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(back.encode_video(video), model.encode_video(video), atol=1e-5, rtol=1e-5)
    assert back.input_spec.mean == (0.5, 0.5, 0.5)


def test_naflex_table_that_is_not_square_is_refused(tmp_path: Path) -> None:
    torch.manual_seed(0)
    hf = transformers.Siglip2Model(transformers.Siglip2Config(text_config=TEXT,
                                                              vision_config={**VISION, "num_patches": 12}))
    with pytest.raises(CheckpointError, match="num_patches=12 is not a square grid"):
        vs.from_transformers(hf)


def tokens_at_head(model: vs.ReducibleModel, video: torch.Tensor) -> tuple[int, ...]:
    """The sequence lengths the pooling head reads."""
    seen: list[tuple[int, ...]] = []
    original = model.visual.head.forward
    model.visual.head.forward = lambda tokens, log_size=False: (seen.append(tokens.seqlens),  # type: ignore
                                                                original(tokens, log_size))[1]
    with torch.inference_mode():
        model.encode_frames(video)
    return seen[0]


def test_reducers_protect_no_token_on_siglip() -> None:
    """16 patches a frame, no CLS: ToMe(r=8) halves every frame in each of 2 layers (16 -> 8 -> 4); with one
    protected token it could merge only 7 then 4 (16 -> 9 -> 5)."""
    model = vs.create_model("siglip-tiny").eval()
    video = torch.randn(1, 4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        dense = model.encode_video(video)
    model.set_reduction([vs.ToMe(r=8)])
    assert tokens_at_head(model, video) == (4,) * 4
    model.set_reduction([vs.TokenPrune(layers=[0], keep=0.25)])
    assert tokens_at_head(model, video) == (4,) * 4  # ceil(0.25 · 16): no CLS kept on top
    model.set_reduction([vs.TempMe(r=2, merge_layers=(0, 1), groups=(2, 2))])
    assert len(tokens_at_head(model, video)) == 1  # one sequence per video after the last regrouping
    with torch.inference_mode():
        assert model.encode_frames(video).shape == (1, 1, 64)
    for zero in ([vs.ToMe(r=0)], [vs.TokenPrune(layers=[0], keep=1.0)], [vs.RLT(tau=0.0)]):
        model.set_reduction(zero)
        with torch.inference_mode():
            torch.testing.assert_close(model.encode_video(video), dense, atol=1e-5, rtol=1e-5)


def test_per_frame_rlt_on_siglip_drops_repeats_and_keeps_no_frame_empty() -> None:
    model = vs.create_model("siglip-tiny", reduction=[vs.RLT(tau=0.1)]).eval()
    still = torch.randn(1, 1, 3, 32, 32).expand(1, 4, -1, -1, -1).contiguous()  # frames 1..3 repeat frame 0
    assert tokens_at_head(model, still) == (16, 1, 1, 1)
    moved = still.clone()
    moved[:, 2, :, :8, :8] += 1.0  # one patch of frame 2 changes
    assert tokens_at_head(model, moved) == (16, 1, 1, 1)
    moved[:, 2, :, 8:16, 8:16] += 1.0
    assert tokens_at_head(model, moved) == (16, 1, 2, 2)  # frame 3 differs from frame 2 where frame 2 changed


def test_methods_that_do_not_fit_siglip_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"RandomMask acts on the video ViT.*not on SigLIP"):
        vs.create_model("siglip-tiny", reduction=[vs.RandomMask()])
    with pytest.raises(ConfigError, match="not on"):
        vs.build_reduction("random", family="siglip")


def test_named_siglip_configs() -> None:
    names = vs.list_models()
    assert {"siglip-b16-224", "siglip2-b16-224", "siglip-tiny"} <= set(names)
    config = vs.models.registry.get_config("siglip-b16-224")
    assert (config.vision_width, config.vision_layers, config.image_size, config.patch_size) == (768, 12, 224, 16)
    assert vs.models.registry.get_config("siglip2-b16-224").vocab_size == 256000


@pytest.mark.parametrize(("version", "ids"), [(1, (1, None, 1)), (2, (0, 2, 1))], ids=["siglip", "siglip2"])
def test_writing_back_gives_the_vocabularys_own_special_ids_and_no_warning(
        tmp_path: Path, version: int, ids: tuple[int | None, ...]) -> None:
    """SigLIP's </s> pads and ends (1); SigLIP 2's Gemma vocabulary has <pad> 0, <eos> 1, <bos> 2. Left out,
    transformers fills in CLIP's 49406/49407 and warns that they lie outside the vocabulary."""
    import logging

    warned: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: warned.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("transformers").addHandler(handler)
    transformers.utils.logging.warning_once.cache_clear()  # a warning given before in this process would hide one
    try:
        model = vs.create_model("siglip-tiny", hf_model_type="siglip" if version == 1 else "siglip2")
        vs.save_model(model, tmp_path, format="transformers")
        cls = transformers.SiglipModel if version == 1 else transformers.Siglip2Model
        text = cls.from_pretrained(tmp_path).config.text_config
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    assert (text.pad_token_id, text.bos_token_id, text.eos_token_id) == ids
    assert not [m for m in warned if "token_id" in m], warned
