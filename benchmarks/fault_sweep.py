"""Try the bad-input corpus against every `vidslim` command and check each is one clear line, never a traceback.

    python benchmarks/fault_sweep.py                 # every case; prints each failure and "N/N handled"
    python benchmarks/fault_sweep.py --only tokens   # the cases whose name contains "tokens"
    python benchmarks/fault_sweep.py --quick         # the small subset the test suite runs

The corpus (written to a temporary folder by `fault_corpus.py`, beside this script): broken, truncated and
audio-only videos, folders, FIFOs, missing, long and control-character names, bad YAML run configs, damaged model
folders and annotation files, tiny saved checkpoints, a collection with one broken video (handled: exit 0, nothing
on stderr), damaged index folders, a FIFO in a hub cache; plus every bad option value of issue 14.

Each case runs `python -m vidslim.cli.main ARGS` in a subprocess with a timeout and checks: the exit status
(2 unless the case says otherwise: 130 after Ctrl-C, 141 on a closed pipe), exactly the expected number of
lines on stderr (one, none for a closed pipe) with no "Traceback", and that the line names the bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the corpus writers beside this script
from fault_corpus import (  # noqa: E402
    CLASSIFY_CKPT,
    CLIP_CKPT,
    CONTROL,
    CONTROL_SHOWN,
    INDEXES,
    LONG,
    base_config,
    has_faiss,
    make_corpus,
    make_indexes,
)


@dataclasses.dataclass(frozen=True)
class Case:
    """One command line and what a clean refusal of it looks like."""

    name: str
    argv: tuple[str, ...]
    names: str  # text the error line must contain (the bad file or option)
    status: int = 2
    lines: int = 1  # lines on stderr
    quick: bool = False  # part of the test suite's subset
    env: tuple[tuple[str, str], ...] = ()
    stdout: str = "pipe"  # pipe | closed (the reader went away) | full (/dev/full)
    interrupt_after: float | None = None  # send SIGINT after this many seconds
    before: tuple[tuple[str, ...], ...] = ()  # commands that must succeed first (a run to resume, say)
    timeout: float = 90.0


def cases(root: Path) -> list[Case]:
    """Every case, with paths inside `root` (the corpus)."""
    r = str(root)
    good = f"{r}/good.yaml"
    out: list[Case] = []
    files = {  # bad video -> text the error line names
        "empty": ("empty.mp4", "empty.mp4"), "text": ("text.mp4", "text.mp4"), "random": ("random.mp4", "random.mp4"),
        "cut_fs_10": ("cut_fs_10.mp4", "cut_fs_10"), "cut_fs_50": ("cut_fs_50.mp4", "cut_fs_50"),
        "cut_fs_90": ("cut_fs_90.mp4", "cut_fs_90"), "cut_plain_10": ("cut_plain_10.mp4", "cut_plain_10"),
        "cut_plain_50": ("cut_plain_50.mp4", "cut_plain_50"), "cut_plain_90": ("cut_plain_90.mp4", "cut_plain_90"),
        "audio": ("audio.m4a", "audio.m4a"), "folder": ("folder.mp4", "folder.mp4"), "fifo": ("fifo.mp4", "fifo.mp4"),
        "missing": ("missing.mp4", "missing.mp4"), "long": (LONG, "x" * 40), "control": (CONTROL, CONTROL_SHOWN),
    }
    quick_files = {"empty", "fifo", "cut_fs_50", "control", "long"}
    for key, (file, shown) in files.items():
        path = f"{r}/{file}"
        out.append(Case(f"info {key}", ("info", path), shown, quick=key in quick_files))
        out.append(Case(f"tokens {key}", ("tokens", path, "--frames", "4", "--size", "32"), shown))
        out.append(Case(f"bench {key}", ("bench", "--model", "videomae-tiny", "--method", "rlt", "--no-time",
                                         "--video", path), shown))
        out.append(Case(f"train config {key}", ("train", "classify", path), shown))
        out.append(Case(f"eval --checkpoint {key}", ("eval", "classify", good, "--checkpoint", path), shown))
    for key in ("missing", "empty", "fifo", "control", "cut_fs_50"):  # the commands that read collections
        file, shown = files[key]
        path = f"{r}/{file}"
        out.append(Case(f"classify {key}", ("classify", path, "--model", f"{r}/{CLASSIFY_CKPT}"), shown,
                        quick=key == "empty"))
        out.append(Case(f"embed {key}", ("embed", path, "--model", f"{r}/{CLIP_CKPT}", "--out", f"{r}/index_{key}"),
                        shown))
        out.append(Case(f"search {key}", ("search", path, "a dog"), shown))
        out.append(Case(f"tune --video {key}", ("tune", "--model", "videomae-tiny", "--video", path, "--target",
                                                "speedup=2"), shown))
        out.append(Case(f"export {key}", ("export", path, "--out", f"{r}/exported_{key}.onnx"), shown,
                        quick=key == "fifo"))
    out.extend(_collection_cases(r))
    out.append(Case("info 300-char folder", ("info", f"{r}/{'y' * 300}/a.mp4"), "y" * 40))
    real = f"{r}/real.mp4"
    tokens = ("tokens", real, "--frames", "4", "--size", "32")
    for option, value, shown in (
        ("--fps", "1e-9", "--fps"), ("--fps", "1e5", "--fps"), ("--fps", "nan", "--fps"), ("--fps", "-1", "--fps"),
        ("--fps", "0", "--fps"), ("--fps", "abc", "--fps"), ("--frames", "0", "--frames"), ("--size", "30", "--size"),
        ("--size", "100000", "--size"), ("--tau", "nan", "tau"), ("--tau", "-1", "tau"), ("--tau", "inf", "tau"),
        ("--keep", "2", "--keep"), ("--viz", f"{r}/no/such/folder/v.png", "no/such/folder"),
        ("--viz", f"{r}/folder.mp4", "folder.mp4"), ("--viz", f"{r}/viz_dir.png", "viz_dir.png"),
        ("--viz", f"{r}/out_file/v.png", "out_file"), ("--viz-window", "-1", "--viz-window"),
    ):
        quick = value in ("1e-9", "1e5", "nan") and option == "--fps"
        out.append(Case(f"tokens {option} {value}", (*tokens, option, value), shown, quick=quick, timeout=30))
    synth = ("data", "synth", f"{r}/synth_out")
    for option, value, shown in (
        ("--fps", "1e9", "--fps"), ("--fps", "nan", "--fps"), ("--fps", "0", "--fps"), ("--videos", "0", "--videos"),
        ("--videos", "100000000", "--videos"), ("--seconds", "-1", "--seconds"), ("--seconds", "1e9", "--seconds"),
        ("--size", "31", "--size"), ("--size", "100000", "--size"), ("--size", "0", "--size"),
    ):
        out.append(Case(f"data synth {option} {value}", (*synth, "--videos", "1", option, value), shown,
                        quick=value == "1e9", timeout=30))
    out.append(Case("data synth into a file", ("data", "synth", f"{r}/out_file", "--videos", "1"), "out_file",
                    quick=True))
    out.append(Case("data synth 300-char folder", ("data", "synth", f"{r}/{'z' * 300}", "--videos", "1"), "z" * 40))
    out.append(Case("data synth Ctrl-C", ("data", "synth", f"{r}/synth_int", "--videos", "100000", "--size", "64",
                                         "--json"),
                    "interrupted", status=130, interrupt_after=6.0))
    for option, value, shown in (
        ("--out", f"{r}/out_file", "out_file"), ("--repeat", "0", "--repeat"), ("--repeat", "-3", "--repeat"),
        ("--tau", "nan", "tau"), ("--tau", "-0.5", "tau"), ("--clip", f"{r}/missing.pt", "missing.pt"),
        ("--clip", f"{r}/random.pt", "random.pt"),
    ):
        out.append(Case(f"demo {option} {Path(value).name}", ("demo", "--quick", "--no-speed", "--out",
                                                              f"{r}/demo_out", option, value), shown,
                        quick=option == "--out"))
    for name, file, shown in (
        ("binary yaml", "binary.yaml", "binary.yaml"), ("a list", "list.yaml", "list.yaml"),
        ("weight_decay nan", "wd_nan.yaml", "weight_decay"), ("alias bomb", "bomb.yaml", "bomb.yaml"),
        ("device cuda", "device_cuda.yaml", "cuda"), ("label 99", "label99.yaml", "train.csv:3: label 99"),
        ("binary annotation", "label_binary.yaml", "binary.csv"),
        ("classes as a file name", "classes_file.yaml", "classes.txt"),
    ):
        out.append(Case(f"train {name}", ("train", "classify", f"{r}/{file}"), shown,
                        quick=name in ("binary yaml", "alias bomb")))
    for override, shown in (
        ("data.size=30", "data.size"), ("data.frames=0", "data.frames"), ("lr=nan", "lr"), ("lr=-1", "lr"),
        ("weight_decay=.nan", "weight_decay"), ("batch_size=0", "batch_size"), ("steps=-5", "steps"),
        ("model.reduction=[{rlt: {tau: .nan}}]", "tau"), ("model.reduction=[{rlt: {tau: -1}}]", "tau"),
        ("model.reduction=[{tokenprune: {layers: [99]}}]", "99"), ("data.synthetic.fps=1e9", "fps"),
        ("model.config.embed_dim=10000000", "embed_dim"), ("data.video_root=/proc/no/such", "/proc/no/such"),
        ("data.fps=1e9", "data.fps"), ("data.frames=100000000", "data.frames"), ("device=tpu9", "tpu9"),
        ("nonsense", "nonsense"),
    ):
        slug = "".join(c if c.isalnum() else "_" for c in override)[:40]
        out.append(Case(f"train {override}", ("train", "classify", good, override, f"run_dir={r}/runs/{slug}"), shown,
                        quick=override.startswith("model.reduction=[{tokenprune")))
    resume = f"{r}/resume.yaml"
    out.append(Case("train resume with another width", ("train", "classify", resume, "model.config.embed_dim=48",
                                                        "--json"),
                    "embed_dim", before=(("train", "classify", resume, "--json"),), timeout=180))
    for name in ("hf_list", "hf_invalid", "hf_no_map", "hf_escape"):
        out.append(Case(f"eval --checkpoint {name}", ("eval", "classify", good, "--checkpoint", f"{r}/{name}"),
                        name, quick=name == "hf_escape"))
    out.append(Case("eval --checkpoint random .pt", ("eval", "classify", good, "--checkpoint", f"{r}/random.pt"),
                    "random.pt"))
    out.append(Case("eval --batch-size 0", ("eval", "classify", good, "--batch-size", "0"), "--batch-size"))
    out.append(Case("eval --out into a folder", ("eval", "classify", good, "--no-flops", "--out", f"{r}/folder.mp4"),
                    "folder.mp4", timeout=120))
    for value in ("nan", "abc"):
        out.append(Case(f"bench --set tau={value}", ("bench", "--model", "videomae-tiny", "--method", "rlt",
                                                     "--no-time", "--set", f"tau={value}"), "tau"))
    out.append(Case("bench --threads -1", ("bench", "--model", "videomae-tiny", "--no-time", "--threads", "-1"),
                    "threads"))
    out.append(Case("bench --device cuda", ("bench", "--model", "videomae-tiny", "--no-time", "--device", "cuda"),
                    "CUDA"))  # bench's options are checked by bench itself; here the top-level handler's one line
    out.append(Case("unknown command", ("frobnicate",), "frobnicate", quick=True))
    out.append(Case("info to a closed pipe", ("info", "--json", real), "", status=141, lines=0, stdout="closed",
                    quick=True))
    out.append(Case("info to /dev/full", ("info", real), "standard output", stdout="full", quick=True))
    return out


def _collection_cases(r: str) -> list[Case]:
    """embed, classify, search, export and tune beyond the bad video files: a collection with one broken video
    (exit 0), damaged index folders, bad targets and output paths, a FIFO where a checkpoint is looked for."""
    clip, classify, real = f"{r}/{CLIP_CKPT}", f"{r}/{CLASSIFY_CKPT}", f"{r}/real.mp4"
    export = ("export", "videomae-tiny", "--method", "tome", "--out")
    out = [
        Case("embed a collection with one broken video", ("embed", f"{r}/mixed", "--model", clip, "--out",
                                                          f"{r}/index_mixed", "--workers", "0"), "", status=0, lines=0),
        Case("classify a collection with one broken video", ("classify", f"{r}/mixed", "--model", classify), "",
             status=0, lines=0),
        Case("embed resuming into a damaged part", ("embed", real, "--model", clip, "--out", f"{r}/index_part"),
             "part-"),
        Case("embed resuming another model's index", ("embed", real, "--model", classify, "--out", f"{r}/index_good"),
             "other settings"),
        Case("search a missing index folder", ("search", f"{r}/no_index", "a dog"), "no_index", quick=True),
        Case("search a damaged part", ("search", f"{r}/index_part", "a dog"), "part-"),
        Case("search a damaged index.json", ("search", f"{r}/index_meta", "a dog"), "index.json"),
        Case("search -k 0", ("search", f"{r}/index_good", "a dog", "-k", "0"), "-k"),
        *(Case(f"embed {option} {value}", ("embed", real, "--model", clip, "--out", f"{r}/index_new", option, value),
               option) for option, value in (("--batch-size", "0"), ("--token-budget", "0"), ("--workers", "-1"),
                                             ("--part-videos", "0"), ("--actors", "0"))),
        Case("search by a missing video", ("search", f"{r}/index_good", "--video", f"{r}/missing.mp4"),
             "missing.mp4"),
        Case("export --out into a missing folder", (*export, f"{r}/no/such/folder/m.onnx"), "no/such/folder",
             quick=True),
        Case("export --out a folder", (*export, f"{r}/folder.mp4"), "folder.mp4"),
        Case("export --atol nan", (*export, f"{r}/m.onnx", "--atol", "nan"), "--atol"),
        Case("export --out .txt", (*export, f"{r}/m.txt"), "m.txt"),
        Case("export a FIFO in the hub cache", ("export", "org/fifo", "--out", f"{r}/m.onnx"), "refs/main",
             env=(("HF_HUB_CACHE", f"{r}/hub"),)),
        Case("eval --checkpoint fifo", ("eval", "classify", f"{r}/good.yaml", "--checkpoint", f"{r}/fifo.mp4"),
             "fifo.mp4"),
        Case("tune --target speedup=abc", ("tune", "--model", "videomae-tiny", "--video", real, "--target",
                                           "speedup=abc"), "speedup=abc", quick=True),
        Case("tune --target 0", ("tune", "--model", "videomae-tiny", "--video", real, "--target", "keep=0"),
             "keep=0"),
        Case("tune --out into a missing folder", ("tune", "--model", "videomae-tiny", "--video", real, "--target",
                                                  "keep=0.5", "--out", f"{r}/no/such/card.json"), "no/such"),
    ]
    if has_faiss():
        out.append(Case("search a damaged faiss.index", ("search", f"{r}/index_faiss", "--video", real),
                        "faiss.index"))
    return out


def _env(case: Case) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("VIDSLIM_DEBUG", None)
    env.update(dict(case.env))
    return env


def _setup(root: Path) -> None:
    """The run the resume cases start from, and its finished copy for evaluation."""
    import yaml

    config = base_config(root, run_dir=str(root / "runs" / "resume_done"))
    (root / "resume.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def _default_sigint() -> None:
    """In the child: Ctrl-C interrupts (a sweep started in the background inherits SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_case(case: Case, root: Path) -> str | None:
    """Run one case; None when it was handled as it should be, else what was wrong."""
    command = [sys.executable, "-m", "vidslim.cli.main"]
    for before in case.before:
        done = subprocess.run([*command, *before], cwd=root, env=_env(case), capture_output=True, text=True,
                              timeout=case.timeout)
        if done.returncode != 0:
            return f"setup {' '.join(before)} failed ({done.returncode}): {done.stderr.strip()[-300:]}"
    stdout: int | object = subprocess.PIPE
    full = None
    if case.stdout == "full":
        full = open(os.devnull if not Path("/dev/full").exists() else "/dev/full", "wb")  # noqa: SIM115
        stdout = full
    started = time.monotonic()
    process = subprocess.Popen([*command, *case.argv], cwd=root, env=_env(case), stdin=subprocess.DEVNULL,
                               stdout=stdout, stderr=subprocess.PIPE,  # type: ignore[arg-type]
                               preexec_fn=_default_sigint if case.interrupt_after is not None else None)
    if case.stdout == "closed":
        assert process.stdout is not None
        process.stdout.close()  # the reader is gone before the command writes
    try:
        if case.interrupt_after is not None:
            try:
                process.wait(case.interrupt_after)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGINT)
        _, err_bytes = process.communicate(timeout=max(1.0, case.timeout - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return f"no answer within {case.timeout:.0f} s"
    finally:
        if full is not None:
            full.close()
    status = process.returncode if process.returncode >= 0 else 128 - process.returncode  # as a shell reports it
    return judge(case, status, err_bytes.decode("utf-8", "replace"))


def judge(case: Case, status: int, err: str) -> str | None:
    """None when exit status and stderr are what `case` expects, else what was wrong."""
    lines = [line for line in err.splitlines() if line.strip()]
    problems = []
    if status != case.status:
        problems.append(f"exit status {status}, expected {case.status}")
    if "Traceback" in err:
        problems.append("a traceback")
    if len(lines) != case.lines:
        problems.append(f"{len(lines)} lines on stderr, expected {case.lines}")
    if case.names and not any(case.names in line for line in lines):
        problems.append(f"no line names {case.names!r}")
    if problems:
        shown = " | ".join(lines[-3:])[:600]
        return f"{'; '.join(problems)}: {shown}"
    return None


def in_process(case: Case) -> bool:
    """Whether `run_in_process` can run `case` (no real standard output, signal, setup or environment needed)."""
    return case.stdout == "pipe" and case.interrupt_after is None and not case.before and not case.env


def run_in_process(case: Case, root: Path) -> str | None:
    """`run_case` without a subprocess: `vidslim.cli.main.main(argv)` with stdout and stderr captured (fast)."""
    import contextlib
    import io

    from vidslim.cli.main import main as cli

    out, err = io.StringIO(), io.StringIO()
    cwd = Path.cwd()
    os.chdir(root)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = cli(list(case.argv))
            except SystemExit as exit_:  # argparse's usage errors
                status = exit_.code if isinstance(exit_.code, int) else 2
    finally:
        os.chdir(cwd)
    return judge(case, status, err.getvalue())


def sweep(root: Path, selected: Callable[[Case], bool], jobs: int = 1,
          runner: Callable[[Case, Path], str | None] = run_case) -> list[tuple[Case, str | None]]:
    """Write the corpus into `root`, run the selected cases (`jobs` at a time): [(case, failure or None)]."""
    make_corpus(root)
    _setup(root)
    chosen = [c for c in cases(root) if selected(c)]
    if any(Path(arg).name in INDEXES for c in chosen for arg in c.argv):
        make_indexes(root)  # only when a chosen case reads one (embedding costs a few seconds)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(lambda c: runner(c, root), chosen))
    return list(zip(chosen, results, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=None, help="run the cases whose name contains this text")
    parser.add_argument("--quick", action="store_true", help="only the subset the test suite runs")
    parser.add_argument("--jobs", type=int, default=1, help="cases run at once (default 1)")
    parser.add_argument("--keep", type=Path, default=None, help="write the corpus here and keep it")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args(argv)

    def selected(case: Case) -> bool:
        return (not args.quick or case.quick) and (args.only is None or args.only in case.name)

    if args.list:
        for case in cases(Path("CORPUS")):
            print(f"{'quick ' if case.quick else '      '}{case.name}")
        return 0
    with tempfile.TemporaryDirectory(prefix="vidslim-faults-") as tmp:
        root = args.keep or Path(tmp)
        started = time.monotonic()
        results = sweep(root, selected, args.jobs)
    for case, failure in results:
        if failure is not None:
            print(f"FAILED {case.name}: {failure}")
    handled = sum(failure is None for _, failure in results)
    print(f"{handled}/{len(results)} handled ({time.monotonic() - started:.0f} s)")
    return 0 if handled == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
