"""Per-layer cost of any vidslim encoder as it actually runs: sequences, tokens into attention, tokens out, GFLOPs.

    report = layer_report(model.encode_video, video, videos=video.shape[0])
    print(report.table())           # one row per block that ran, plus the total (per video)
    report.to_dict()["layers"]      # [{"layer", "sequences", "tokens_attn", "tokens_out", "gflops", "density"}, ...]

One forward pass runs under a `FlopCounter` with module hooks on every transformer block (`vidslim.models.blocks
.Block`) and its attention: the attention's input gives the sequences and the tokens entering it (after any
`before_attention` reducer, e.g. TempMe's cross-clip merge), the block's output the tokens leaving it, and the
counter the FLOPs of everything the block's call ran, reducer work (matching, merging) included. Nothing here
knows a method: whatever the reducers do shows up in the counts. Figures are per video (divided by `videos`).

Density is the fraction of the (query, key) pairs inside each sequence that the layer's attention computes,
from the `pattern=` the block hands its attention (`vidslim.attention.svitt_pattern.attention_density`; SViTT's
`SparseAttention` sets one). It is 1.0, not missing, where attention is dense: every pair is computed there, so
the column reads the same way on every row (and a pattern so small that every query sees every block, which
SparseAttention runs as dense attention, is 1.0 too).

A CLIP tower computes only the CLS tokens in its last block (`cls_readout`), so that row's tokens out is the CLS
count; the keys entering its attention are still every token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from vidslim.attention.svitt_pattern import attention_density
from vidslim.bench.flops import FlopCounter
from vidslim.models.blocks import Block
from vidslim.tokens import Tokens


@dataclasses.dataclass(frozen=True)
class LayerRow:
    """One block, per video: sequences and tokens entering attention, tokens leaving the block, GFLOPs."""

    layer: int
    name: str
    sequences: float
    tokens_attn: float
    tokens_out: float
    gflops: float
    density: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "sequences": _num(self.sequences),
            "tokens_attn": _num(self.tokens_attn),
            "tokens_out": _num(self.tokens_out),
            "gflops": self.gflops,
            "density": self.density,
        }


@dataclasses.dataclass(frozen=True)
class LayerReport:
    """Rows of the blocks that ran (in order), and the total GFLOPs of the whole call, per video."""

    rows: tuple[LayerRow, ...]
    gflops_per_video: float
    videos: int

    def table(self) -> str:
        """A plain-text table: layer, seq/video, tokens/seq and tokens/video into attention, out, GFLOPs."""
        head = (
            f"{'layer':>5}  {'seq/video':>9}  {'tok/seq attn':>12}  {'tok attn':>9}  {'tok out':>8}  {'GFLOPs':>8}  "
            f"{'density':>7}"
        )
        lines = [head]
        for r in self.rows:
            per_seq = r.tokens_attn / r.sequences if r.sequences else 0.0
            lines.append(
                f"{r.layer:>5}  {_fmt(r.sequences):>9}  {_fmt(per_seq):>12}  {_fmt(r.tokens_attn):>9}  "
                f"{_fmt(r.tokens_out):>8}  {r.gflops:>8.3f}  {r.density:>7.3f}"
            )
        blocks = sum(r.gflops for r in self.rows)
        lines.append(f"{'total':>5}  {'':>9}  {'':>12}  {'':>9}  {'':>8}  {self.gflops_per_video:>8.3f}")
        lines.append(f"(blocks {blocks:.3f} GFLOPs, the rest {self.gflops_per_video - blocks:.3f}: stem, heads)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"gflops_per_video": self.gflops_per_video, "layers": [r.to_dict() for r in self.rows]}


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() else v


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"


def layer_report(fn: Callable[..., Any], *inputs: Any, videos: int = 1, root: nn.Module | None = None) -> LayerReport:
    """Run `fn(*inputs)` once (no_grad) and report every block it ran. `root` names the modules (default: the
    module `fn` is, or is a bound method of); `videos` divides every figure."""
    root = root if root is not None else (fn if isinstance(fn, nn.Module) else getattr(fn, "__self__", None))
    if not isinstance(root, nn.Module):
        raise TypeError("layer_report needs a module or a bound method of one (e.g. model.encode_video)")
    blocks = {m: name for name, m in root.named_modules() if isinstance(m, Block)}
    seen: dict[str, dict[str, float]] = {}
    handles = []

    def on_attention(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            seqlens = args[1] if len(args) > 1 else kwargs["seqlens"]
            row = seen.setdefault(name, {})
            row["sequences"], row["tokens_attn"] = len(seqlens), sum(int(n) for n in seqlens)
            row["density"] = attention_density(kwargs.get("pattern"), seqlens)

        return hook

    def on_block(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            if isinstance(output, Tokens):
                seen.setdefault(name, {})["tokens_out"] = output.total

        return hook

    try:
        for block, name in blocks.items():
            handles.append(block.attention.register_forward_pre_hook(on_attention(name), with_kwargs=True))
            handles.append(block.register_forward_hook(on_block(name)))
        with torch.no_grad(), FlopCounter(root) as counter:
            fn(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    flops = counter.report()
    rows = tuple(
        LayerRow(
            layer=i,
            name=name,
            sequences=row.get("sequences", 0) / videos,
            tokens_attn=row.get("tokens_attn", 0) / videos,
            tokens_out=row.get("tokens_out", 0) / videos,
            gflops=flops.by_module.get(name, 0) / 1e9 / videos,
            density=row.get("density", 1.0),
        )
        for i, (name, row) in enumerate(seen.items())
    )
    return LayerReport(rows, flops.total / 1e9 / videos, videos)
