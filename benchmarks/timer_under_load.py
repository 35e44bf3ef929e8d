"""Does a busy machine change the speedup `vidslim bench` reports? RLT on videomae-b16, quiet and beside busy processes.

    python benchmarks/timer_under_load.py                 # quiet run, then the same beside 2 busy processes
    python benchmarks/timer_under_load.py --busy 2 --frames 8 --repeat 9 --threads 1 --json out.json

Runs `vidslim bench --model videomae-b16 --method dense,rlt --json` twice in a fresh process each: once as the
machine is, once beside `--busy` processes this script starts (each spins a core in pure Python) and stops
itself. It passes when the two paired speedups are within 15% of each other, or when the busy run says it is
unreliable (the timer's verdict), i.e. the timer never prints a moved figure as a plain fact. Both runs' load,
spread and verdict are printed, so the figures can be quoted with their conditions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

SPIN = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"


def bench(args: argparse.Namespace) -> dict[str, Any]:
    """One `vidslim bench` run in its own process; its RLT row."""
    command = [sys.executable, "-m", "vidslim.cli.main", "bench", "--model", "videomae-b16", "--method", "dense,rlt",
               "--frames", str(args.frames), "--set", f"image_size={args.size}", "--repeat", str(args.repeat),
               "--warmup", "1", "--no-overhead",
               "--threads", str(args.threads), "--json"]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"vidslim bench failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    rows = {row["method"]: row for row in json.loads(done.stdout)["rows"]}
    row = rows["rlt"]
    keys = ("speedup", "speedup_q25", "speedup_q75", "speedup_ci95", "cpu_speedup", "rounds", "reliable", "verdict",
            "load_before", "load_after", "cores", "token_fraction", "flop_ratio", "time_ms")
    return {**{k: row.get(k) for k in keys}, "dense_ms": rows["dense"]["time_ms"],
            "seconds": time.perf_counter() - started}  # fmt: skip


def busy(n: int, seconds: float) -> list[subprocess.Popen]:
    """`n` processes that each keep a core busy for `seconds` (stopped earlier by `stop`)."""
    return [subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=seconds)]) for _ in range(n)]


def stop(processes: list[subprocess.Popen]) -> None:
    for p in processes:
        p.terminate()
    for p in processes:
        p.wait(timeout=10)


def line(name: str, r: dict[str, Any]) -> str:
    spread = f"[{r['speedup_q25']:.2f}-{r['speedup_q75']:.2f}]"
    return (f"- {name:<6} speedup {r['speedup']:.2f}x {spread} cpu-time speedup {r['cpu_speedup']:.2f}x, "
            f"{r['rounds']} rounds, load {r['load_before']:.1f} -> {r['load_after']:.1f} on {r['cores']} cores, "
            f"dense {r['dense_ms']:.0f} ms, rlt {r['time_ms']:.0f} ms, {r['seconds']:.0f} s: {r['verdict']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--busy", type=int, default=2, help="busy processes in the second run (default 2)")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (default 8)")
    parser.add_argument("--size", type=int, default=112, help="frame size in pixels (default 112: 4x fewer tokens "
                        "than 224, so the two runs take minutes, not ten)")
    parser.add_argument("--repeat", type=int, default=9, help="timed rounds (default 9)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the benched process (default 1)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write both runs here")
    args = parser.parse_args()
    quiet = bench(args)
    print(line("quiet", quiet), flush=True)
    spinners = busy(args.busy, seconds=quiet["seconds"] * 4 + 60)
    try:
        time.sleep(2)  # let the spinners take their cores
        loaded = bench(args)
    finally:
        stop(spinners)
    print(line("busy", loaded))
    moved = abs(loaded["speedup"] / quiet["speedup"] - 1)
    ok = moved <= 0.15 or not loaded["reliable"]
    why = "within 15%" if moved <= 0.15 else "flagged unreliable" if ok else "moved > 15% yet called reliable"
    print(f"- busy/quiet speedup {loaded['speedup'] / quiet['speedup']:.3f} (moved {moved:.0%}); "
          f"{'PASS' if ok else 'FAIL'}: {why}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"quiet": quiet, "busy": loaded, "moved": moved, "pass": ok, "busy_processes": args.busy,
                       "threads": args.threads, "frames": args.frames, "size": args.size,
                       "cpus": os.cpu_count()}, f, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
