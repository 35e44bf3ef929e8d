"""FLOP counting: hand-derived multiply-add counts for single ops, attention, attribution, known ViT figures.

Convention everywhere: one multiply-add = one FLOP (fvcore). Expected numbers are derived in comments.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vidslim.bench import FlopCounter, count_flops


def test_linear_counts_one_per_multiply_add() -> None:
    # [3, 5, 8] @ W^T [8, 16]: 15 rows x 8 inputs x 16 outputs; the bias add is not counted
    report = count_flops(nn.Linear(8, 16), torch.randn(3, 5, 8))
    assert report.total == 3 * 5 * 8 * 16 == 1920
    assert report.by_operator == {"aten.addmm": 1920}
    assert count_flops(nn.Linear(8, 16, bias=False), torch.randn(3, 5, 8)).total == 1920


def test_bmm_matmul_einsum() -> None:
    a, b = torch.randn(4, 3, 5), torch.randn(4, 5, 7)
    assert count_flops(torch.bmm, a, b).total == 4 * 3 * 5 * 7  # 420
    # broadcasting 4-D matmul: [2, 4, 3, 5] @ [5, 7] -> 8 products of 3x5x7
    assert count_flops(torch.matmul, torch.randn(2, 4, 3, 5), torch.randn(5, 7)).total == 2 * 4 * 3 * 5 * 7
    assert count_flops(lambda x, y: torch.einsum("bij,bjk->bik", x, y), a, b).total == 420


def test_elementwise_softmax_norm_not_counted() -> None:
    x = torch.randn(4, 10, 32)
    assert count_flops(lambda t: F.layer_norm(t, (32,)).softmax(-1).exp() * 2 + t, x).total == 0


def test_conv2d_and_grouped_conv() -> None:
    # out [2, 8, 4, 4] = 256 outputs, each 3 channels x 4 x 4 kernel = 48 multiply-adds
    assert count_flops(nn.Conv2d(3, 8, 4, stride=4), torch.randn(2, 3, 16, 16)).total == 256 * 48 == 12288
    # groups=2: each of the 2*8*16*16 outputs sees 4/2 channels x 3 x 3
    conv = nn.Conv2d(4, 8, 3, padding=1, groups=2)
    assert count_flops(conv, torch.randn(2, 4, 16, 16)).total == 2 * 8 * 16 * 16 * 2 * 9


def _qkv(b: int, h: int, n: int, d: int, n_k: int | None = None, d_v: int | None = None, h_kv: int | None = None):
    n_k, d_v, h_kv = n_k or n, d_v or d, h_kv or h
    return torch.randn(b, h, n, d), torch.randn(b, h_kv, n_k, d), torch.randn(b, h_kv, n_k, d_v)


def test_sdpa_counts_qk_and_av() -> None:
    # self-attention: QK^T is B*H*N*N*d, AV the same -> 2*B*H*N*N*d = 2*2*3*25*4
    q, k, v = _qkv(2, 3, 5, 4)
    expected = 2 * 2 * 3 * 5 * 5 * 4
    assert count_flops(F.scaled_dot_product_attention, q, k, v).total == expected == 1200
    mask = torch.zeros(2, 1, 5, 5)
    assert count_flops(F.scaled_dot_product_attention, q, k, v, attn_mask=mask).total == expected
    assert count_flops(F.scaled_dot_product_attention, q, k, v, is_causal=True).total == expected  # full square
    # cross-attention with d_v != d: B*H*Nq*Nk*(d + d_v) = 1*2*3*7*(4+6)
    q, k, v = _qkv(1, 2, 3, 4, n_k=7, d_v=6)
    assert count_flops(F.scaled_dot_product_attention, q, k, v).total == 1 * 2 * 3 * 7 * 10


def test_sdpa_every_backend_and_meta_agree() -> None:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = _qkv(2, 4, 9, 8)
    expected = 2 * 2 * 4 * 9 * 9 * 8
    fused = count_flops(F.scaled_dot_product_attention, q, k, v)
    assert fused.total == expected
    assert "aten._scaled_dot_product_flash_attention_for_cpu" in fused.by_operator  # the kernel plain torch misses

    def math(*t: torch.Tensor) -> torch.Tensor:
        with sdpa_kernel(SDPBackend.MATH):
            return F.scaled_dot_product_attention(*t)

    assert count_flops(math, q, k, v).total == expected
    meta = [t.to("meta") for t in (q, k, v)]
    assert count_flops(F.scaled_dot_product_attention, *meta).total == expected


def test_sdpa_grouped_query_attention() -> None:
    q, k, v = _qkv(1, 8, 6, 4, h_kv=2)
    out = count_flops(lambda *t: F.scaled_dot_product_attention(*t, enable_gqa=True), q, k, v)
    assert out.total == 2 * 1 * 8 * 6 * 6 * 4  # every query head does its own products


def test_packed_attention_counts_real_or_padded_shapes() -> None:
    heads, d = 2, 4
    q = torch.randn(10, heads, d)  # two videos of 3 and 7 tokens, packed

    # padded to the longest and masked: pays for the padding (2 videos x 7 x 7)
    def padded(x: torch.Tensor) -> torch.Tensor:
        dense = torch.zeros(2, 7, heads, d)
        dense[0, :3], dense[1] = x[:3], x[3:]
        mask = torch.arange(7)[None, :] < torch.tensor([3, 7])[:, None]
        dense = dense.transpose(1, 2)
        return F.scaled_dot_product_attention(dense, dense, dense, attn_mask=mask[:, None, None, :])

    assert count_flops(padded, q).total == 2 * (2 * heads * 7 * 7 * d)

    # one call per video: real lengths 3 and 7
    def per_sequence(x: torch.Tensor) -> list[torch.Tensor]:
        return [F.scaled_dot_product_attention(s, s, s) for s in x.transpose(0, 1).split([3, 7], dim=1)]

    assert count_flops(per_sequence, q).total == 2 * heads * (3 * 3 + 7 * 7) * d


def test_vidslim_attend_equal_lengths() -> None:
    from vidslim.attention import attend

    q = torch.randn(10, 2, 4)  # 2 videos x 5 tokens, 2 heads, d = 4: 2 * (2*H*N*N*d)
    assert count_flops(attend, q, q, q, [5, 5]).total == 2 * (2 * 2 * 5 * 5 * 4)


def test_varlen_kernels_count_real_lengths() -> None:
    # CUDA-only kernels: check the formulas the counter uses on their argument layout, packed [total, H, d]
    from vidslim.bench.flops import _formulas

    formulas = _formulas()
    q, cu = torch.empty(10, 2, 4), torch.tensor([0, 3, 10])  # lengths 3 and 7, 2 heads, d = 4
    expected = 2 * (3 * 3 + 7 * 7) * 2 * 4  # H * sum(n_i^2) * (d + d_v), in multiply-adds
    flash = formulas[torch.ops.aten._flash_attention_forward](q, q, q, cu, cu, 7, 7, 0.0, False, False, out_val=None)
    assert flash == 2 * expected  # torch's convention, halved in reports
    varlen = getattr(torch.ops.torch_attn, "_varlen_attn", None)
    if varlen is not None:
        assert formulas[varlen](q, q, q, cu, cu, 7, 7, out_val=None) == 2 * expected


def test_flex_attention_counts_visited_blocks() -> None:
    flex = pytest.importorskip("torch.nn.attention.flex_attention")
    n, d = 300, 8
    q, k, v = (torch.randn(1, 2, n, d) for _ in range(3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dense = count_flops(flex.flex_attention, q, k, v)
        # causal mask, 128 x 128 blocks: query block 0 (128 rows) visits key block 0 (128 cols), block 1
        # (128 rows) visits 256 cols, block 2 (rows 256..299: 44 rows) visits all 300 cols
        mask = flex.create_block_mask(lambda b, h, i, j: i >= j, 1, 1, n, n, device="cpu")
        causal = count_flops(flex.flex_attention, q, k, v, block_mask=mask)
    pairs = 128 * 128 + 128 * 256 + 44 * 300
    assert dense.total == 2 * n * n * 2 * d  # 2 heads, N*N*(d + d_v)
    assert causal.total == 2 * pairs * 2 * d
    assert flex._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG is False  # restored after counting


class _Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).unsqueeze(1).chunk(3, dim=-1)
        return self.proj(F.scaled_dot_product_attention(q, k, v).squeeze(1))


class _Net(nn.Module):
    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.embed = nn.Linear(4, dim)
        self.blocks = nn.ModuleList([_Block(dim), _Block(dim)])
        self.head = nn.Linear(dim, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x) @ torch.ones(2, 3)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks[0](self.embed(x))


def test_per_module_attribution() -> None:
    # tokens N=10, dim 8: embed 10*4*8=320; qkv 10*8*24=1920; attention 2*10*10*8=1600; proj 640;
    # head 10*8*2=160; the final matmul in the root's forward 10*2*3=60
    report = count_flops(_Net(), torch.randn(1, 10, 4))
    block = 1920 + 1600 + 640
    assert report.total == 320 + 2 * block + 160 + 60 == 8860
    assert report.by_module["blocks.1"] == block
    assert report.by_module["blocks.0.qkv"] == 1920
    assert report.by_module[""] == report.total
    assert report.at_depth(2) == {"(root direct)": 60, "embed": 320, "blocks.0": block, "blocks.1": block,
                                  "head": 160}
    assert report.children("blocks.0") == {"blocks.0.qkv": 1920, "blocks.0.proj": 640, "blocks.0 (direct)": 1600}
    for depth in range(1, 5):
        assert sum(report.at_depth(depth).values()) == report.total
    assert list(report.at_depth(3))[:4] == ["(root direct)", "embed", "blocks.0 (direct)", "blocks.0.qkv"]
    table = report.table(depth=2)
    assert "blocks.1" in table and "KFLOPs" in table and "8.8600" in table
    assert report.to_dict()["by_module"]["blocks.0"] == block


def test_function_and_bound_method_roots() -> None:
    net = _Net()
    x = torch.randn(1, 10, 4)
    by_method = count_flops(net.features, x)  # names come from the bound method's module
    assert by_method.total == 320 + 1920 + 1600 + 640
    assert by_method.by_module["blocks.0.proj"] == 640
    lin_a, lin_b = nn.Linear(4, 4), nn.Linear(4, 4)
    free = count_flops(lambda t: lin_b(lin_a(t)), x)  # no root: modules named by class
    assert free.by_module == {"": 320, "Linear": 160, "Linear#2": 160}


def test_backward_counted_with_flop_counter_and_hooks_removed() -> None:
    lin = nn.Linear(8, 16, bias=False)
    x = torch.randn(5, 8, requires_grad=True)
    with FlopCounter(lin) as counter:
        lin(x).sum().backward()
    # forward x@W^T, backward grad_x = g@W and grad_W = g^T@x: three 5x8x16 products
    assert counter.report().total == 3 * 5 * 8 * 16
    lin(x)  # after exit nothing is recorded any more
    assert counter.report().total == 3 * 5 * 8 * 16


def _vit_flops(patch: int, layers: int, dim: int, mlp: int, image: int = 224, proj: int = 0) -> int:
    """Multiply-adds of a CLIP-style ViT image tower, derived by hand."""
    patches = (image // patch) ** 2
    n = patches + 1  # + class token
    embed = patches * dim * 3 * patch * patch
    block = 4 * n * dim * dim + 2 * n * dim * mlp + 2 * n * n * dim  # qkv+out, MLP, QK^T + AV
    return embed + layers * block + dim * proj


def _clip_config(patch: int, layers: int = 12, dim: int = 768, heads: int = 12, mlp: int = 3072):
    transformers = pytest.importorskip("transformers")
    return transformers, transformers.CLIPVisionConfig(
        hidden_size=dim, intermediate_size=mlp, num_hidden_layers=layers, num_attention_heads=heads,
        patch_size=patch, image_size=224, projection_dim=512,
    )


@pytest.mark.parametrize(("patch", "gflops"), [(32, 4.41), (16, 17.56)])
def test_clip_vit_b_matches_fvcore_figures(patch: int, gflops: float) -> None:
    transformers, config = _clip_config(patch)
    with torch.device("meta"):  # shapes only: no weights, no compute
        model = transformers.CLIPVisionModelWithProjection(config)
    report = count_flops(model, pixel_values=torch.empty(1, 3, 224, 224, device="meta"))
    assert report.total == _vit_flops(patch, 12, 768, 3072, proj=512)
    assert round(report.gflops, 2) == gflops  # fvcore: 4.41 (B/32, incl. projection); B/16 17.5-17.6
    layers = {k: v for k, v in report.at_depth(4).items() if ".layers." in k}
    assert len(layers) == 12 and len(set(layers.values())) == 1


def test_clip_real_cpu_run_equals_meta_count() -> None:
    transformers, config = _clip_config(32, layers=2, dim=64, heads=4, mlp=256)
    model = transformers.CLIPVisionModel(config).eval()
    real = count_flops(model, pixel_values=torch.randn(2, 3, 224, 224))  # CPU: fused flash SDPA kernel
    with torch.device("meta"):
        meta_model = transformers.CLIPVisionModel(config)
    meta = count_flops(meta_model, pixel_values=torch.empty(2, 3, 224, 224, device="meta"))  # math path
    assert real.total == meta.total == 2 * _vit_flops(32, 2, 64, 256)
