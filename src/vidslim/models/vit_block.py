"""The plain ViT block V-JEPA 2 and ViViT share: fused q/k/v with a full bias, and (V-JEPA 2) 3-D rotary positions.

    x = x + proj(attn(norm1(x)))      q, k rotated by each token's own (t, h, w) when `rotary` is set
    x = x + fc2(act(fc1(norm2(x))))

Parameter names: `norm1`, `attn.qkv` (weight [3D, D] and bias [3D], q then k then v), `attn.proj`, `norm2`,
`mlp.fc1`, `mlp.fc2`; the converters fuse transformers' separate q/k/v projections into `qkv`.

`Rotary3d` is V-JEPA 2's rotary embedding: the head dimension is cut into three equal even parts (the rest is left
as it is) that turn with the token's frame, row and column index. Within a part of d dims, pair j = (x[2j], x[2j+1])
is rotated as (x[2j]·cos - x[2j+1]·sin, x[2j+1]·cos + x[2j]·sin), and the angle of dim i is pos · 10000^-(i mod
d/2)/(d/2): the frequency table is laid out twice one after the other while the pairs are interleaved, as the
released checkpoints were trained (and as transformers computes it). Because it reads `Tokens.pos`, a token that
RLT keeps, or a token ToMe merges into another, turns by its own position, never by its slot in the sequence.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vidslim.models.blocks import Attention, Block, VideoMAEMLP


class RotaryTables:
    """cos and sin of V-JEPA 2's rotary angles for a positions tensor, with sin's sign folded in per dim.

    One instance is shared by every block of a model, so a forward computes the tables once, not once per block:
    the last result is kept while the same positions tensor comes back (the blocks of a forward pass it along
    unchanged; a reducer that merges or reorders tokens makes a new one, and the tables follow it). Tables made
    under inference mode are never handed to a forward that records gradients, and the other way round.
    """

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        self.head_dim = head_dim
        self.part = 2 * ((head_dim // 3) // 2)  # dims per axis (even)
        self.base = base
        self._last: tuple[Tensor, torch.dtype, bool, Tensor, Tensor] | None = None

    def __call__(self, positions: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """cos and signed sin [total, 1, d] for positions [total, 3]: cos 1 and sin 0 on the dims left unrotated;
        sin negated on the even dims, which take -x[2j+1]·sin (see `rotate`)."""
        inference = torch.is_inference_mode_enabled()
        last = self._last
        if last is not None and last[0] is positions and last[1] == dtype and last[2] == inference:
            return last[3], last[4]
        d = self.part
        omega = torch.arange(d // 2, dtype=torch.float32, device=positions.device) / (d / 2.0)
        omega = 1.0 / self.base**omega  # [d/2]
        angles = positions.to(torch.float32)[:, :, None] * omega  # [total, 3, d/2]
        angles = torch.cat((angles, angles), dim=-1).flatten(1)  # [total, 3·d]: each axis' table laid out twice
        total, rest = positions.shape[0], self.head_dim - 3 * d
        cos = torch.cat((angles.cos(), angles.new_ones(total, rest)), dim=1)
        sin = torch.cat((angles.sin(), angles.new_zeros(total, rest)), dim=1)
        sin.view(total, -1, 2)[..., 0].neg_()
        cos, sin = cos.to(dtype)[:, None], sin.to(dtype)[:, None]
        self._last = (positions, dtype, inference, cos, sin)
        return cos, sin


class Rotary3d(nn.Module):
    """Rotate q and k [total, H, d] by positions [total, 3] (see the module docstring). `tables` is shared by
    the blocks of one model (`RotaryTables`); without one the module makes its own."""

    def __init__(self, head_dim: int, tables: RotaryTables | None = None) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.tables = tables if tables is not None else RotaryTables(head_dim)
        if self.tables.head_dim != head_dim:
            raise ValueError(f"rotary tables of head width {self.tables.head_dim} for heads of width {head_dim}")

    def forward(self, q: Tensor, k: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
        cos, sin = self.tables(positions, q.dtype)
        return rotate(q, cos, sin), rotate(k, cos, sin)


def rotate(x: Tensor, cos: Tensor, signed_sin: Tensor) -> Tensor:
    """x·cos + swap(x)·signed_sin, where swap exchanges the two dims of each interleaved pair: the even dim gets
    -x[2j+1]·sin and the odd one x[2j]·sin. One copy (the swap) and two in-place passes over it."""
    out = x.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)  # a fresh tensor: flip copies
    return out.mul_(signed_sin).add_(x * cos)


class FusedAttention(Attention):
    """Attention with one `qkv` Linear (bias on q, k and v) and an output `proj`; optional 3-D rotary positions."""

    def __init__(
        self, dim: int, heads: int, qkv_bias: bool = True, rotary: bool | RotaryTables = False
    ) -> None:
        super().__init__(dim, heads)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        if rotary is not False:
            self.rotary = Rotary3d(self.head_dim, rotary if isinstance(rotary, RotaryTables) else None)

    def qkv_weight_bias(self) -> tuple[Tensor, Tensor | None]:
        return self.qkv.weight, self.qkv.bias

    def project_out(self, x: Tensor) -> Tensor:
        return self.proj(x)


class ViTBlock(Block):
    """norm1, attn (qkv, proj), norm2, mlp (fc1, fc2): a pre-LN ViT block with a fused, fully biased projection."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_dim: int,
        eps: float,
        act: str,
        qkv_bias: bool = True,
        rotary: bool | RotaryTables = False,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = FusedAttention(dim, heads, qkv_bias, rotary)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = VideoMAEMLP(dim, mlp_dim, act)
        self.drop_path_rate = drop_path_rate

    @property
    def norm_a(self) -> nn.Module:
        return self.norm1

    @property
    def attention(self) -> Attention:
        return self.attn

    @property
    def norm_b(self) -> nn.Module:
        return self.norm2

    @property
    def feedforward(self) -> nn.Module:
        return self.mlp


__all__ = ["FusedAttention", "Rotary3d", "RotaryTables", "ViTBlock", "rotate"]
