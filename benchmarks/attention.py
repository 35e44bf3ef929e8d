"""Variable-length attention and packed transformer blocks vs padding, on this machine (CPU by default).

Three measurements, each printed as a markdown table (or one JSON document with --json):

(a) ragged batch: `--videos` videos with lengths drawn (seeded) in [--min-len, --max-len] run through
    `--depth` pre-LN ViT blocks (width 768, 12 heads, MLP 3072). Packed blocks (LayerNorm, Linears and MLP
    on [total, D], attention through `vidslim.attention.attend`) against the padding baseline: every video
    padded to the longest, the same block math on [B, L, D] with a key-padding mask, MLP on the padded
    tokens too, as a padded implementation would run it.
(b) equal-length batch: the same packed blocks through the `Tokens` container against the same block math
    written directly on [B, N, D] tensors: the container's overhead.
(c) attention alone on the ragged batch, per backend (buckets = "sdpa", "padded", "flex", and a per-video
    Python loop of SDPA calls for reference).

Protocol: torch.inference_mode, fp32, one warm-up call per contender, then `--rounds` rounds in which the
contenders run interleaved (the order rotates each round); tables give the median time and the median of
the per-round ratios against the baseline with their interquartile range (`PairedRatio.cell`: "~1.4x?" when the
rounds scatter too much, with the timer's verdict and the load under the table). vidslim.models' VideoMAEBlock is
timed too when it is importable.

    .venv/bin/python benchmarks/attention.py            # full run, a few minutes on 2 cores
    .venv/bin/python benchmarks/attention.py --quick    # smaller shapes, a smoke test
"""

from __future__ import annotations

import argparse
import json
import platform
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidslim.attention import attend, plan_buckets
from vidslim.bench import compare
from vidslim.bench.spread import load_span, unreliable_note
from vidslim.bench.timer import Comparison
from vidslim.errors import AttentionBackendError
from vidslim.tokens import Tokens


class MiniBlock(nn.Module):
    """A plain pre-LN ViT block with two forwards of the same math: packed [total, D] and dense [B, N, D]."""

    def __init__(self, dim: int = 768, heads: int = 12, mlp: int = 3072) -> None:
        super().__init__()
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc1, self.fc2 = nn.Linear(dim, mlp), nn.Linear(mlp, dim)

    def mlp(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(self.ln2(x))))

    def packed(self, x: Tensor, seqlens: Sequence[int], backend: str | None = None) -> Tensor:
        """[total, D] -> [total, D]; attention through vidslim's attend."""
        total = x.shape[0]
        q, k, v = self.qkv(self.ln1(x)).view(total, 3, self.heads, self.head_dim).unbind(1)
        x = x + self.proj(attend(q, k, v, seqlens, backend=backend).reshape(total, self.dim))
        return x + self.mlp(x)

    def dense(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        """[B, N, D] -> [B, N, D]; key_mask [B, N] bool (True = real token) for padded batches."""
        b, n, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        mask = key_mask[:, None, None, :] if key_mask is not None else None
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(b, n, self.dim)
        x = x + self.proj(a)
        return x + self.mlp(x)


def interleaved(contenders: dict[str, Callable[[], object]], rounds: int, baseline: str) -> Comparison:
    """`rounds` interleaved rounds (order rotating) after one warm-up call each, ratios against `baseline`."""
    return compare(contenders, baseline=baseline, warmup=1, repeat=rounds, memory=False)


def summarize(result: Comparison) -> list[dict[str, Any]]:
    """Median and fastest seconds per contender, and its paired speed-up over the baseline (spread, verdict)."""
    rows = []
    for name, timing in result.timings.items():
        paired = result.paired(name)
        rows.append({"contender": name, "median_s": timing.median, "min_s": timing.min, "speedup": paired.speedup,
                     "cell": "1.00x" if name == result.baseline else paired.cell(), "paired": paired.to_dict()})
    return rows


def table(title: str, rows: list[dict[str, Any]], baseline: str) -> str:
    lines = [
        f"### {title}",
        "",
        f"| contender | median (ms) | min (ms) | speed-up vs {baseline} (median of rounds) [IQR] |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['contender']} | {1000 * float(row['median_s']):.1f} | {1000 * float(row['min_s']):.1f} "
            f"| {row['cell']} |"
        )
    paired = [r["paired"] for r in rows if r["contender"] != baseline]
    loads = [x for p in paired for x in (p["load_before"], p["load_after"])]
    lines += ["", f"During the timings: {load_span(loads, paired[0]['cores'] if paired else None)} (1-minute average)."]
    note = unreliable_note([p["verdict"] for p in paired if not p["reliable"]], len(paired), "--rounds")
    if note:
        lines.append(note + ".")
    return "\n".join(lines)


def stack(blocks: Sequence[MiniBlock], fn: Callable[[MiniBlock, Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    def run(x: Tensor) -> Tensor:
        for block in blocks:
            x = fn(block, x)
        return x

    return run


def models_blocks(depth: int, dim: int, heads: int, mlp: int) -> list[nn.Module] | None:
    """vidslim.models' VideoMAEBlock stack when that module is importable and works on Tokens, else None."""
    try:
        from vidslim.models.blocks import VideoMAEBlock

        blocks = [VideoMAEBlock(dim, heads, mlp).eval() for _ in range(depth)]
        probe = Tokens.from_list([torch.randn(3, dim), torch.randn(5, dim)])
        for block in blocks:
            probe = block(probe)
        return blocks
    except Exception:  # the models layer is optional here: time it only when it works
        return None


def bench_ragged(args: argparse.Namespace, blocks: list[MiniBlock], mblocks: list[nn.Module] | None) -> dict:
    gen = torch.Generator().manual_seed(args.seed)
    lengths = torch.randint(args.min_len, args.max_len + 1, (args.videos,), generator=gen).tolist()
    tokens = Tokens.from_list([torch.randn(n, args.dim, generator=gen) for n in lengths])
    padded, valid = tokens.pad()
    contenders: dict[str, Callable[[], object]] = {
        "padded to longest": lambda: stack(blocks, lambda b, x: b.dense(x, valid))(padded),
        "packed, varlen buckets": lambda: stack(blocks, lambda b, x: b.packed(x, lengths))(tokens.x),
    }
    if args.flex:
        contenders["packed, FlexAttention"] = lambda: stack(blocks, lambda b, x: b.packed(x, lengths, "flex"))(tokens.x)
    if mblocks is not None:

        def run_models() -> Tokens:
            t = tokens
            for block in mblocks:
                t = block(t)
            return t

        contenders["vidslim.models VideoMAEBlock"] = run_models
    _drop_broken(contenders)
    result = interleaved(contenders, args.rounds, "padded to longest")
    return {"lengths": lengths, "total": tokens.total, "padded_total": padded.shape[0] * padded.shape[1],
            "rows": summarize(result), "baseline": "padded to longest"}


def bench_equal(args: argparse.Namespace, blocks: list[MiniBlock], mblocks: list[nn.Module] | None) -> dict:
    gen = torch.Generator().manual_seed(args.seed + 1)
    x = torch.randn(args.equal_batch, args.equal_len, args.dim, generator=gen)
    t = Tokens.from_dense(x)
    contenders: dict[str, Callable[[], object]] = {
        "dense [B, N, D]": lambda: stack(blocks, lambda b, h: b.dense(h))(x),
        "packed Tokens": lambda: stack(blocks, lambda b, h: b.packed(h, t.seqlens))(t.x),
    }
    if mblocks is not None:

        def run_models() -> Tokens:
            out = t
            for block in mblocks:
                out = block(out)
            return out

        contenders["vidslim.models VideoMAEBlock"] = run_models
    result = interleaved(contenders, args.rounds, "dense [B, N, D]")
    return {"batch": args.equal_batch, "length": args.equal_len, "rows": summarize(result),
            "baseline": "dense [B, N, D]"}


def bench_attention(args: argparse.Namespace) -> dict:
    gen = torch.Generator().manual_seed(args.seed)
    lengths = torch.randint(args.min_len, args.max_len + 1, (args.videos,), generator=gen).tolist()
    heads, head_dim = 12, args.dim // 12
    q, k, v = (torch.randn(sum(lengths), heads, head_dim, generator=gen) for _ in range(3))

    def per_video_loop() -> Tensor:
        outs = [
            F.scaled_dot_product_attention(a.transpose(0, 1)[None], b.transpose(0, 1)[None], c.transpose(0, 1)[None])
            for a, b, c in zip(q.split(lengths), k.split(lengths), v.split(lengths), strict=True)
        ]
        return torch.cat([o[0].transpose(0, 1) for o in outs])

    contenders: dict[str, Callable[[], object]] = {
        "padded": lambda: attend(q, k, v, lengths, backend="padded"),
        "sdpa (length buckets)": lambda: attend(q, k, v, lengths, backend="sdpa"),
        "per-video loop": per_video_loop,
    }
    if args.flex:
        contenders["flex (document mask)"] = lambda: attend(q, k, v, lengths, backend="flex")
    _drop_broken(contenders)
    result = interleaved(contenders, args.rounds, "padded")
    return {"lengths": lengths, "buckets": plan_buckets(lengths, heads * head_dim),
            "rows": summarize(result), "baseline": "padded"}


def _drop_broken(contenders: dict[str, Callable[[], object]]) -> None:
    """Remove contenders that cannot run here (FlexAttention without a compiler), saying so."""
    for name in list(contenders):
        try:
            contenders[name]()
        except AttentionBackendError as error:
            print(f"skipping {name!r}: {error}")
            del contenders[name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--min-len", type=int, default=200)
    parser.add_argument("--max-len", type=int, default=1568)
    parser.add_argument("--equal-batch", type=int, default=4)
    parser.add_argument("--equal-len", type=int, default=1568)
    parser.add_argument("--depth", type=int, default=1, help="blocks per forward")
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--mlp", type=int, default=3072)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--no-flex", dest="flex", action="store_false", help="skip FlexAttention (compiles)")
    parser.add_argument("--quick", action="store_true", help="small shapes and 3 rounds: a smoke test")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    args = parser.parse_args()
    if args.quick:
        args.videos, args.max_len, args.min_len, args.equal_len, args.rounds = 4, 300, 50, 256, 3

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    blocks = [MiniBlock(args.dim, args.heads, args.mlp).eval() for _ in range(args.depth)]
    mblocks = models_blocks(args.depth, args.dim, args.heads, args.mlp)
    with torch.inference_mode():
        results = {
            "machine": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                        "cpu": platform.processor() or platform.machine()},
            "config": {k: v for k, v in vars(args).items() if k != "json"},
            "ragged_blocks": bench_ragged(args, blocks, mblocks),
            "equal_blocks": bench_equal(args, blocks, mblocks),
            "attention_only": bench_attention(args),
        }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    rag, eq, att = results["ragged_blocks"], results["equal_blocks"], results["attention_only"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, inference_mode, "
          f"{args.rounds} interleaved rounds, depth {args.depth}, width {args.dim}, {args.heads} heads, "
          f"mlp {args.mlp}\n")
    print(table(f"(a) ragged batch: {args.videos} videos, lengths {rag['lengths']} ({rag['total']} tokens, "
                f"{rag['padded_total']} padded)", rag["rows"], rag["baseline"]))
    print()
    print(table(f"(b) equal lengths: {eq['batch']} videos x {eq['length']} tokens", eq["rows"], eq["baseline"]))
    print()
    print(table(f"(c) attention only, same ragged batch; buckets {att['buckets']}", att["rows"], att["baseline"]))


if __name__ == "__main__":
    main()
