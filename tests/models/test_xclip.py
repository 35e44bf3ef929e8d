"""X-CLIP: parity with transformers' XCLIPModel (in memory and from save_pretrained folders), the way back, message
tokens on packed sequences, and the reducers that fit it (ToMe, TempMe, per-frame RLT) or are refused."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import vidslim as vs
from hub_files import load_through_cache
from vidslim.errors import CheckpointError, ConfigError
from vidslim.models.xclip_parts import MessageAttention

transformers = pytest.importorskip("transformers")

ATOL = 1e-4
TEXT = dict(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=16)
VISION = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, patch_size=8,
              image_size=32, num_frames=4, mit_hidden_size=32, mit_intermediate_size=64, mit_num_attention_heads=2)


def hf_xclip(**top: object) -> torch.nn.Module:
    torch.manual_seed(0)
    config = transformers.XCLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=32,
                                      prompt_num_attention_heads=2, **top)
    model = transformers.XCLIPModel(config)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # move every weight off its init (LayerNorms, zero biases, alpha) so each one counts
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model.eval()


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(2, 4, 3, 32, 32, generator=gen), torch.randint(0, 1000, (3, 16), generator=gen)


def check_parity(hf: torch.nn.Module, ours: vs.ReducibleModel, atol: float = ATOL) -> None:
    video, ids = inputs()
    with torch.inference_mode():
        ref = hf(input_ids=ids, pixel_values=video)
        state = ours.encode_video(video)
        text = ours.encode_text(ids)
        torch.testing.assert_close(ours.video_embedding(state), hf.get_video_features(pixel_values=video).pooler_output,
                                   atol=atol, rtol=atol)
        torch.testing.assert_close(text, hf.get_text_features(input_ids=ids).pooler_output, atol=atol, rtol=atol)
        torch.testing.assert_close(F.normalize(ours.prompted_text(ids, state), dim=-1), ref.text_embeds, atol=atol,
                                   rtol=atol)
        torch.testing.assert_close(ours.similarity(state, text), ref.logits_per_text, atol=atol, rtol=atol)


def test_xclip_matches_transformers_in_memory_and_from_a_folder(tmp_path: Path) -> None:
    hf = hf_xclip()
    ours = vs.from_transformers(hf)
    assert isinstance(ours, vs.models.XCLIP) and ours.config.num_frames == 4 and ours.config.eot_token_id is None
    check_parity(hf, ours)
    hf.save_pretrained(tmp_path)
    loaded = vs.load_model(tmp_path)
    assert isinstance(loaded, vs.models.XCLIP) and loaded.config.mit_width == 32
    check_parity(hf, loaded)


def test_xclip_round_trip_in_memory_and_through_a_folder(tmp_path: Path) -> None:
    hf = hf_xclip(prompt_layers=1, prompt_alpha=0.3)
    model = vs.from_transformers(hf)
    back = vs.to_transformers(model)
    assert type(back).__name__ == "XCLIPModel"
    check_parity(back, model, atol=1e-5)
    theirs, mine = hf.state_dict(), back.state_dict()
    assert set(theirs) == set(mine)
    for key, value in theirs.items():
        torch.testing.assert_close(mine[key], value, atol=0, rtol=0, msg=key)
    vs.save_model(model, tmp_path, format="transformers")
    again = transformers.XCLIPModel.from_pretrained(tmp_path).eval()
    check_parity(again, model, atol=1e-5)


def test_a_classifier_head_has_no_xclip_counterpart(tmp_path: Path) -> None:
    model = vs.create_model("xclip-tiny", num_classes=3)
    with pytest.raises(CheckpointError, match="3-class head"):
        vs.save_model(model, tmp_path, format="transformers")


def test_mit_width_must_match_the_projection() -> None:
    from vidslim.models.convert_xclip import xclip_config_from_hf

    with pytest.raises(CheckpointError, match="mit_hidden_size=48 differs from projection_dim=32"):
        xclip_config_from_hf({"projection_dim": 32, "vision_config": {**VISION, "mit_hidden_size": 48}})


def test_message_attention_on_packed_sequences_equals_each_sequence_alone() -> None:
    """Sequences of unequal lengths (per-frame RLT) take the packed path; each must see its own messages only."""
    torch.manual_seed(0)
    attn = MessageAttention(16, 2).eval()
    x = torch.randn(5 + 3, 16)
    messages = torch.randn(2, 16)
    bias = torch.randn(8)
    with torch.inference_mode():
        attn.messages = messages
        packed, info = attn(x, (5, 3), key_bias=bias, want_info=True)
        attn.messages = messages[:1]
        first, _ = attn(x[:5], (5,), key_bias=bias[:5])
        attn.messages = messages[1:]
        second, _ = attn(x[5:], (3,), key_bias=bias[5:])
        attn.messages = None
        plain, plain_info = attn(x, (5, 3), key_bias=bias, want_info=True)
    torch.testing.assert_close(packed, torch.cat((first, second)), atol=1e-6, rtol=1e-6)
    assert info is not None and plain_info is not None and info.k.shape == plain_info.k.shape  # real tokens only
    torch.testing.assert_close(info.k, plain_info.k)  # keys of the real tokens do not depend on the messages
    assert not torch.allclose(packed, plain, atol=1e-3)  # the messages are attended to


def test_every_reducer_switched_off_equals_dense() -> None:
    model = vs.create_model("xclip-tiny").eval()
    video, _ = inputs()
    with torch.inference_mode():
        dense = model.encode_video(video)
        for zero in ([vs.ToMe(r=0)], [vs.TempMe(r=0, merge_layers=(), groups=())], [vs.RLT(tau=0.0)]):
            model.set_reduction(zero)
            torch.testing.assert_close(model.encode_video(video), dense, atol=1e-5, rtol=1e-5)


def test_prompt_context_of_placed_tokens_equals_the_mean_over_frames() -> None:
    """The general path (tokens placed by their positions, weighted by size) on whole frames is transformers'
    view-and-mean; a merged token of size 2 counts twice in its slot; an empty slot is a zero row."""
    model = vs.create_model("xclip-tiny").eval()
    video, _ = inputs()
    with torch.inference_mode():
        tokens, b, t = model.encode_tokens(video)
        whole = model.visual.prompt_context(tokens, b, t, whole=True)
        placed = model.visual.prompt_context(tokens, b, t)
        torch.testing.assert_close(placed, whole, atol=1e-6, rtol=1e-6)
        # video 0, slot 0 holds frames 0..3; give frame 0's token size 2 and empty slot 1 of video 1
        n = tokens.max_seqlen
        size = torch.ones(tokens.total)
        size[1] = 2.0
        keep = torch.ones(tokens.total, dtype=torch.bool)
        keep[torch.arange(4, 8) * n + 2] = False  # slot 1 of video 1's frames (rows: CLS, slot 0, slot 1, ...)
        lens = tuple(int(keep.view(b * t, n)[i].sum()) for i in range(b * t))
        cut = vs.tokens.Tokens(tokens.x[keep], lens, tokens.pos[keep], size[keep])
        context = model.visual.prompt_context(cut, b, t)
        f = model.visual.prompts_visual_ln(tokens.x) @ model.visual.prompts_visual_proj
        rows = f.view(b, t, n, -1)[0, :, 1]
        torch.testing.assert_close(context[0, 0], (2 * rows[0] + rows[1:].sum(0)) / 5, atol=1e-6, rtol=1e-6)
        assert torch.equal(context[1, 1], torch.zeros_like(context[1, 1]))


def test_tome_tempme_and_rlt_run_in_the_per_frame_encoder() -> None:
    model = vs.create_model("xclip-tiny").eval()
    video, ids = inputs()
    still = video.clone()
    still[:, 1:] = still[:, :1]  # frames 1..3 repeat frame 0: per-frame RLT keeps one patch of each
    still[1, 2, :, :8, :8] += 1.0
    for reduction in ([vs.ToMe(r=4)], [vs.TempMe(r=2, merge_layers=(1,), groups=(2,), rc=0.3, ri=0.1)],
                      [vs.RLT(tau=0.1)], [vs.RLT(tau=0.1), vs.ToMe(r=2)],
                      [vs.RLT(tau=0.1), vs.TempMe(r=1, merge_layers=(1,), groups=(4,))]):
        model.set_reduction(reduction)
        with torch.inference_mode():
            state = model.encode_video(still)
            alone = model.encode_video(still[1:])
            scores = model.similarity(state, model.encode_text(ids))
        assert state.shape == (2, 17, 32) and torch.isfinite(state).all() and scores.shape == (3, 2)
        torch.testing.assert_close(alone[0], state[1], atol=1e-5, rtol=1e-5)  # a video alone or batched: the same


def test_cls_only_last_block_gives_the_video_embedding_of_the_full_block() -> None:
    """forward and encode_frames let the last block compute the CLS tokens only (their queries see every token and
    every message): the same embeddings as the full last block, dense, with proportional attention (ToMe), on
    joined frames (TempMe) and on sequences of unequal lengths (per-frame RLT)."""
    model = vs.create_model("xclip-tiny").eval()
    video, _ = inputs()
    video[:, 1:, :, 8:] = video[:, :1, :, 8:]  # half of every frame repeats frame 0: RLT keeps unequal counts
    for reduction in ([], [vs.ToMe(r=4)], [vs.TempMe(r=2, merge_layers=(0,), groups=(2,))], [vs.RLT(tau=0.1)]):
        model.set_reduction(reduction)
        with torch.inference_mode():
            fast, frames = model(video), model.encode_frames(video)
            model.visual.cls_readout = False
            full, full_frames = model.video_embedding(model.encode_video(video)), model.encode_frames(video)
            model.visual.cls_readout = True
        torch.testing.assert_close(fast, full, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(frames, full_frames, atol=1e-5, rtol=1e-5)


def test_methods_that_do_not_fit_xclip_are_refused() -> None:
    for method in ("token_prune", "sparse_attention", "random"):
        with pytest.raises(ConfigError, match=r"not on X-CLIP \(xclip-\*\).*methods that fit it: rlt, tempme, tome"):
            vs.create_model("xclip-tiny", reduction=vs.build_reduction(method))
    with pytest.raises(ConfigError, match="not on"):
        vs.build_reduction("svitt", family="xclip")


def test_xclip_input_errors() -> None:
    model = vs.create_model("xclip-tiny").eval()
    with pytest.raises(ConfigError, match="takes 4 frames per video"):
        model.encode_video(torch.randn(1, 3, 3, 32, 32))
    with pytest.raises(ConfigError, match="frame_mask= is not supported"):
        model.encode_video(torch.randn(1, 4, 3, 32, 32), frame_mask=torch.ones(1, 4))
    with pytest.raises(ConfigError, match=r"video states \[M, 1 \+ P, E\]"):
        model.retrieval_cosine(torch.randn(2, 32), torch.randn(2, 32))


def test_named_xclip_configs() -> None:
    assert {"xclip-b32", "xclip-b16", "xclip-tiny"} <= set(vs.list_models())
    b16 = vs.models.registry.get_config("xclip-b16")
    assert (b16.patch_size, b16.vision_width, b16.embed_dim, b16.mit_width, b16.num_frames) == (16, 768, 512, 512, 8)
    assert vs.models.registry.spec_of_name("xclip-b32").per_frame


def test_xclip_loads_by_hub_id_from_the_local_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hf = hf_xclip()
    check_parity(hf, load_through_cache(hf, "microsoft/xclip-tiny", tmp_path, monkeypatch))


@pytest.mark.parametrize("name", ["xclip-b32", "xclip-b16", "xclip-tiny"])
def test_method_strings_start_from_presets_that_fit_each_named_xclip(name: str) -> None:
    """`--method tempme` / `tome` on a named X-CLIP: TempMe's groups join its frames and its merge layers exist."""
    tempme, tome = vs.build_reduction("tempme+tome", name, family="xclip")
    assert (tempme.r, tome.r) == {"xclip-b32": (2, 2), "xclip-b16": (10, 10), "xclip-tiny": (1, 1)}[name]
    with torch.device("meta"):  # attaching checks the layers and frames without allocating a B/16
        model = vs.create_model(name, reduction=vs.build_reduction("tempme", name, family="xclip"))
    assert model.input_spec.num_frames % math.prod(tempme.groups) == 0
    if name == "xclip-tiny":
        model = vs.create_model(name, reduction=vs.build_reduction("tempme", name, family="xclip")).eval()
        with torch.inference_mode():
            assert torch.isfinite(model(inputs()[0])).all()
