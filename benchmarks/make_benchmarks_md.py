"""Regenerate BENCHMARKS.md from the benchmark scripts in this folder, run one after another on this machine.

Every figure in BENCHMARKS.md comes from here: each section runs one script (its exact command is printed in the
file) and pastes its markdown output, under a header that describes the machine. Timings on a shared machine are
noisy, so every script reports medians of interleaved rounds and ratios measured side by side in one run.

    .venv/bin/python benchmarks/make_benchmarks_md.py                  # everything (about half an hour on 2 cores)
    .venv/bin/python benchmarks/make_benchmarks_md.py --only rlt_tokens rlt_speed   # some sections; others kept
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: (section key, title, script arguments, what the section shows)
SECTIONS: list[tuple[str, str, list[str], str]] = [
    ("decode", "Video decoding", ["decode.py"], "Reading a short window by seeking against decoding the whole file."),
    (
        "attention",
        "Packed variable-length attention",
        ["attention.py"],
        "Packed blocks on ragged batches against padding; the packed container's cost on equal lengths.",
    ),
    (
        "clip_speed",
        "Dense encoders against Hugging Face transformers",
        ["clip_speed.py", "--threads", "1"],
        "Our dense CLIP and VideoMAE encoders against transformers' on the same weights and inputs.",
    ),
    (
        "rlt_tokens",
        "RLT: tokens kept on real video",
        ["rlt_tokens.py"],
        "Kept fraction by threshold and by frame rate on the real sample videos.",
    ),
    (
        "rlt_speed",
        "RLT: speed against dense",
        ["rlt_speed.py", "--threads", "1"],
        "RLT's build overhead, inference and training speedup against its FLOP ratio.",
    ),
    (
        "svitt_speed",
        "SViTT: sparse attention and token pruning",
        ["svitt_speed.py", "--threads", "1", "--rounds", "15"],
        "Block-sparse attention against dense, and node pruning against the whole encoder's FLOP ratio.",
    ),
    (
        "svitt_speed_threads",
        "SViTT: sparse attention with every core",
        ["svitt_speed.py", "--quick", "--rounds", "25"],
        "The attention case again with torch's default thread count (every core of this machine).",
    ),
    (
        "tempme_speed",
        "TempMe: speed against dense",
        ["tempme_speed.py"],
        "TempMe (paper settings) against our dense CLIP path, timed side by side; the official code's figures are "
        "quoted under the table.",
    ),
    (
        "clip_rlt_speed",
        "RLT + TempMe on CLIP ViT-B/16",
        ["clip_rlt_speed.py"],
        "Per-frame RLT, TempMe and both on CLIP ViT-B/16, 12 frames at native fps of each sample video, against dense.",
    ),
    (
        "methods_table",
        "Every method and combination (vidslim bench)",
        ["methods_table.py"],
        "`vidslim bench --method all` on both paper models: batch 1, a saturating batch and bf16, side by side.",
    ),
    (
        "rlt_mask_speed",
        "RLT: keep mask against the official rule",
        ["rlt_mask_speed.py", "--threads", "1", "--rounds", "9"],
        "vidslim's RLT keep mask against the release's rule (re-implemented from the spec) on the same 8 real clips.",
    ),
    (
        "overhead_profile",
        "Where the non-FLOP time goes (realised speedup and profile)",
        ["overhead_profile.py", "--threads", "1", "--rounds", "3", "--batches", "1,sat"],
        "Every method and combination: realised = speedup x FLOP ratio with its IQR, and one profiled call split "
        "into GEMM, attention, reducer and other time.",
    ),
    (
        "timer_under_load",
        "Does a busy machine move the reported speedup?",
        ["timer_under_load.py"],
        "`vidslim bench` RLT on videomae-b16 (8 frames, 112 px, one thread) as the machine is, then beside two busy "
        "processes the script starts and stops: the paired speedup, its spread, the load and the verdict of each run.",
    ),
    (
        "siglip_speed",
        "SigLIP: dense against transformers, ToMe and TempMe against their FLOP ratios",
        ["siglip_speed.py", "--layers", "12", "--rounds", "5", "--threads", "1"],
        "SigLIP B/16 (8 frames) in vidslim against transformers' SiglipVisionModel on the same weights, and ToMe / "
        "TempMe against vidslim dense.",
    ),
    (
        "new_families",
        "V-JEPA 2, ViViT and X-CLIP",
        ["new_families.py", "--threads", "1"],
        "RLT on V-JEPA 2 (ViT-L layout, 16x256) against its FLOP ratio, dense vidslim against transformers for each "
        "family on the same weights, and TempMe on X-CLIP B/16 (the depth is printed with the figures).",
    ),
    (
        "export_speed",
        "Exported graphs: ONNX Runtime against eager",
        ["export_speed.py"],
        "Dense and fixed-budget RLT exported to ONNX and run by onnxruntime, against eager vidslim, same input.",
    ),
    (
        "embed_throughput",
        "Embedding and search (vidslim embed / vidslim search)",
        ["embed_throughput.py", "--synthetic", "48", "--repeat", "3"],
        "Whole `vidslim embed` jobs (decode included) dense against RLT and RLT+TempMe, token budget against fixed "
        "batches, exact against FAISS search, local against Ray.",
    ),
    (
        "embed_ray",
        "A longer embedding job: local vs Ray",
        ["embed_throughput.py", "--skip", "real,synthetic,batching,search", "--synthetic", "160", "--ray-videos",
         "160", "--repeat", "3"],
        "Ray's start-up is paid once per job, so its share falls as the job grows: the Ray comparison of the section "
        "above on 160 synthetic videos instead of 48.",
    ),
    (
        "learn",
        "Do reduced models learn as well?",
        ["learn.py"],
        "Dense against TempMe (retrieval) and RLT (classification), trained from scratch on the synthetic videos.",
    ),
]

MARK = "<!-- section:{key} -->"
KEPT = ("_Kept from an earlier run (its date is on the command line below), not rerun with the sections around it: "
        "compare its figures only with each other._")
#: the day every script began printing each speedup with its interquartile range, the load and the timer's verdict
SPREAD_SINCE = "2026-12-06"
BARE = ("_This run predates the spread column ({since}): its speedups are medians of per-round ratios timed side by "
        "side, printed without their interquartile range, load or verdict; rerun the section for them._")


#: section key -> (the day its script changed, what a kept run from before that day shows that the script no
#: longer does)
CHANGED: dict[str, tuple[str, str]] = {
    "learn": ("2026-12-07", "_Its 'epoch speedup' column divides the epoch times of two training runs that took "
                            "turns on the machine, not rounds timed side by side: read the interleaved step "
                            "speedup; the script no longer prints the epoch ratio._"),
}


def kept_body(body: str, key: str = "") -> str:
    """An earlier run's section, marked as kept, and as printed without spread when it has speedups ("1.52x") and
    its date (the first YYYY-MM-DD on its command line) is before `SPREAD_SINCE`."""
    if KEPT not in body:
        body = body.replace("\n\n", f"\n\n{KEPT}\n\n", 1)
    dated = re.search(r"\d{4}-\d{2}-\d{2}", body)
    speedups = re.search(r"\d\.\d+x\b", body)
    if dated and speedups and dated.group(0) < SPREAD_SINCE and "predates the spread column" not in body:
        body = body.replace(KEPT, f"{KEPT}\n\n{BARE.format(since=SPREAD_SINCE)}", 1)
    since, note = CHANGED.get(key, ("", ""))
    if dated and dated.group(0) < since and note not in body:
        body = body.replace(KEPT, f"{KEPT}\n\n{note}", 1)
    return body


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (
        f"- CPU: {cpu}, {os.cpu_count()} cores, {mem:.0f} GiB memory; GPU: {gpu}\n"
        f"- load average when the run started: {load} (the machine may be shared)\n"
        f"- Python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"{platform.system()} {platform.release()}"
    )


def _load() -> str:
    try:
        return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at its start"
    except (AttributeError, OSError):
        return "load unknown"


def run_section(args: list[str]) -> tuple[str, float]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(HERE / args[0]), *args[1:]], cwd=ROOT, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        return f"The script failed (exit {done.returncode}):\n\n```\n{tail}\n```", seconds
    output = done.stdout.strip()
    if "|---" not in output and "| --- |" not in output:  # plain text (aligned columns): keep it as printed
        output = f"```\n{output}\n```"
    return output, seconds


def existing_sections(path: Path) -> dict[str, str]:
    """Sections of an earlier BENCHMARKS.md, by key, so `--only` can keep the others."""
    if not path.exists():
        return {}
    text = path.read_text()
    found = {}
    for key, *_ in SECTIONS:
        match = re.search(re.escape(MARK.format(key=key)) + r"\n(.*?)(?=\n<!-- section:|\Z)", text, re.S)
        if match:
            found[key] = match.group(1).rstrip()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=[key for key, *_ in SECTIONS], help="sections to rerun")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    old = existing_sections(args.out)
    parts = [
        "# vidslim benchmarks",
        "",
        "Generated by `benchmarks/make_benchmarks_md.py`; rerun it to refresh every figure (or `--only KEY` for one",
        "section). Every speedup is the median of per-round ratios of contenders timed in alternating order in the",
        "same process and run (`vidslim.bench.timer`), with the interquartile range of the rounds; a figure whose",
        "rounds scatter too much is printed '~1.4x?' with the load that explains it, not as a fact (sections kept",
        f"from runs before {SPREAD_SINCE} say that they print the median alone). A figure quoted from elsewhere (a",
        "paper, another day, another program) is said to be so, with its date and conditions, under its table and",
        "never in a column beside this run's figures.",
        "",
        "## Machine",
        "",
        machine(),
    ]
    for key, title, script, what in SECTIONS:
        if args.only and key not in args.only and key in old:
            body = kept_body(old[key], key)
        elif not (HERE / script[0]).exists():
            body = f"## {title}\n\n_Not available yet: `benchmarks/{script[0]}` is not in this checkout._"
        else:
            print(f"running {' '.join(script)} ...", file=sys.stderr, flush=True)
            output, seconds = run_section(script)
            command = "python benchmarks/" + " ".join(script)
            body = (f"## {title}\n\n{what}\n\n`{command}` ({seconds:.0f} s, {time.strftime('%Y-%m-%d')}, "
                    f"{_load()}):\n\n{output}")
        parts += ["", MARK.format(key=key), body]
    args.out.write_text("\n".join(parts) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
