"""LoRA on the fused QKV projections (spec tempme §2): initialisation, identity at init, the trainable set and its
count (507,648 for TempMe on CLIP ViT-B), merging into the weights, and the delta reaching q, k and v."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import vidslim as vs
from vidslim.errors import ConfigError
from vidslim.models.blocks import ClipAttention
from vidslim.models.lora import LoRA, add_lora, count_trainable, describe_trainable, lora_rank, merge_lora
from vidslim.reduce.tempme import TempMe


def tiny_clip(**overrides: object) -> vs.models.CLIP:
    torch.manual_seed(0)
    return vs.create_model("clip-tiny", **overrides).eval()


def test_init_kaiming_uniform_a_sqrt5_and_zero_b() -> None:
    torch.manual_seed(0)
    lora = LoRA(768, 2304, 8)
    bound = 1 / math.sqrt(768)  # gain sqrt(2 / (1 + 5)) * sqrt(3 / fan_in) = 1 / sqrt(fan_in)
    assert lora.A.shape == (8, 768) and lora.B.shape == (2304, 8)
    assert lora.A.abs().max() <= bound and lora.A.abs().max() > 0.95 * bound
    assert lora.B.eq(0).all() and lora.scale == 1.0


def test_paper_trainable_count_on_real_shapes() -> None:
    for backbone in ("clip-b32", "clip-b16"):
        with torch.device("meta"):
            model = vs.create_model(backbone, reduction=[TempMe.paper(backbone)])
            count = add_lora(model, rank=8)
        # visual 12 x (8 x 768 + 2304 x 8) + text 12 x (8 x 512 + 1536 x 8) + (12 + 6 + 3) x 768
        assert count == 12 * (8 * 768 + 2304 * 8) + 12 * (8 * 512 + 1536 * 8) + 21 * 768 == 507_648
        assert "507,648 trainable" in describe_trainable(model) and "reducers 16,128" in describe_trainable(model)
        frozen = dict(model.named_parameters())
        assert not frozen["logit_scale"].requires_grad and not frozen["visual.conv1.weight"].requires_grad


def test_lora_at_init_is_the_frozen_model_and_merge_is_exact() -> None:
    model = tiny_clip().requires_grad_(False)  # frozen (kernels may differ by an ulp between frozen and not)
    video, text = torch.randn(2, 4, 3, 32, 32), torch.randint(0, 49406, (2, 7))
    with torch.inference_mode():
        before_v, before_t = model.encode_video(video), model.encode_text(text)
    add_lora(model, rank=4)
    with torch.inference_mode():
        assert torch.equal(model.encode_video(video), before_v)
        assert torch.equal(model.encode_text(text), before_t)
    for p in model.parameters():  # pretend training moved both factors
        if p.requires_grad:
            p.data.normal_(0, 0.05)
    with torch.inference_mode():
        tuned_v, tuned_t = model.encode_video(video), model.encode_text(text)
    assert not torch.allclose(tuned_v, before_v)
    merge_lora(model)
    assert all(m.lora is None for m in model.modules() if isinstance(m, ClipAttention))
    with torch.inference_mode():
        torch.testing.assert_close(model.encode_video(video), tuned_v, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(model.encode_text(text), tuned_t, atol=1e-5, rtol=1e-4)


def test_delta_is_x_at_a_t_at_b_t_added_before_q_scaling() -> None:
    torch.manual_seed(0)
    attn = ClipAttention(8, 2).eval()
    attn.lora = LoRA(8, 24, 2)
    with torch.no_grad():
        attn.lora.B.normal_()
    x = torch.randn(5, 8)
    _, info = attn(x, (5,), want_info=True)
    qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias) + x @ attn.lora.A.t() @ attn.lora.B.t()
    q, k, _ = qkv.view(5, 3, 2, 4).unbind(1)
    torch.testing.assert_close(info.q, q)  # unscaled q, with the delta
    torch.testing.assert_close(info.keys_mean, k.mean(1))  # the merge metric includes the delta


def test_only_adapters_and_reducers_train() -> None:
    model = vs.create_model("clip-tiny", reduction=[TempMe(r=1, merge_layers=(0, 1), groups=(2, 2), num_frames=4)])
    count = add_lora(model, rank=2, alpha=4.0)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all(".lora." in n or n.startswith("reduction_modules.") for n in names)
    assert any(n.startswith("reduction_modules.") for n in names)
    assert count == count_trainable(model) == sum(p.numel() for n, p in model.named_parameters() if p.requires_grad)
    lora = next(m.lora for m in model.modules() if isinstance(m, ClipAttention))
    assert lora.scale == 2.0  # alpha / rank
    assert lora_rank(model.state_dict()) == 2
    model.encode_video(torch.randn(1, 4, 3, 32, 32)).sum().backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if ".lora.B" in n and "visual" in n)
    with pytest.raises(ConfigError, match="already has a LoRA"):
        add_lora(model)


def test_video_vit_gets_adapters_too() -> None:
    torch.manual_seed(0)
    model = vs.create_model("videomae-tiny").eval().requires_grad_(False)
    clip = torch.randn(1, 3, 4, 32, 32)
    with torch.inference_mode():
        before = model(clip)
    assert add_lora(model, rank=2) == 2 * (2 * 64 + 192 * 2)
    with torch.inference_mode():
        assert torch.equal(model(clip), before)
