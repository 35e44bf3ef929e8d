"""The bad-input corpus of benchmarks/fault_sweep.py: the files, configs, model folders, checkpoints and index
folders its cases name, written into one folder (`make_corpus`; the index folders by `make_indexes`, on demand).

Each file is a way an input goes wrong: empty, text or random bytes named .mp4, a real video cut at 10/50/90 %
(index at the front and at the end), audio only, a folder or a FIFO where a file is expected, names too long or
holding control characters, YAML that is binary, a list, NaN or an alias bomb, model folders whose config.json
or shard index is damaged or escapes the folder, a collection with one broken video, index folders with a
truncated Parquet part, a damaged index.json or faiss.index, a hub cache whose refs/main is a FIFO.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import numpy as np

LONG = "x" * 300 + ".mp4"  # longer than any file system's name limit (255 bytes)
CONTROL = "ctl\x1b[31m\nname.mp4"  # an escape sequence and a newline, echoed escaped: ctl\x1b[31m\nname.mp4
CONTROL_SHOWN = "ctl\\x1b[31m\\nname.mp4"
CLIP_CKPT = "models/clip"  # saved by `_write_checkpoints`, relative to the corpus
CLASSIFY_CKPT = "models/videomae"
INDEXES = ("index_good", "index_part", "index_meta", "index_faiss")  # written by `make_indexes`


def _write_video(path: Path, frames: int = 40, size: int = 32, faststart: bool = False) -> Path:
    """A small H.264 mp4 of noise (every frame differs), 25 fps, a keyframe every 10 frames."""
    import av

    rng = np.random.default_rng(0)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=Fraction(25), options={"preset": "veryfast"})
        stream.width = stream.height = size
        stream.pix_fmt, stream.gop_size = "yuv420p", 10
        for _ in range(frames):
            image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def _write_audio(path: Path) -> Path:
    """An .m4a with one silent AAC stream and no video."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def make_corpus(root: Path) -> None:
    """Write every bad (and the few good) input files the cases name into `root`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "empty.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("<html><body>404 Not Found</body></html>\n")
    (root / "random.mp4").write_bytes(np.random.default_rng(1).bytes(4096))
    (root / "random.pt").write_bytes(np.random.default_rng(2).bytes(4096))
    real = _write_video(root / "real.mp4", faststart=True)
    plain = _write_video(root / "plain.mp4")
    for source, tag in ((real, "fs"), (plain, "plain")):
        data = source.read_bytes()
        for percent in (10, 50, 90):
            (root / f"cut_{tag}_{percent}.mp4").write_bytes(data[: len(data) * percent // 100])
    _write_audio(root / "audio.m4a")
    (root / "folder.mp4").mkdir(exist_ok=True)
    if not (root / "fifo.mp4").exists():
        os.mkfifo(root / "fifo.mp4")
    (root / CONTROL).write_text("not a video\n")
    (root / "out_file").write_text("a file, not a folder\n")
    (root / "viz_dir.png").mkdir(exist_ok=True)
    _write_configs(root)
    _write_model_folders(root)
    _write_checkpoints(root)
    mixed = root / "mixed"  # a collection with one good and one broken video: skipped, named, counted, exit 0
    mixed.mkdir(exist_ok=True)
    (mixed / "good.mp4").write_bytes(real.read_bytes())
    (mixed / "empty.mp4").write_bytes(b"")
    hub = root / "hub" / "models--org--fifo"  # a hub cache whose refs/main is a FIFO (reading it would wait)
    (hub / "snapshots" / "abc").mkdir(parents=True, exist_ok=True)
    (hub / "refs").mkdir(exist_ok=True)
    if not (hub / "refs" / "main").exists():
        os.mkfifo(hub / "refs" / "main")


def _yaml(root: Path, name: str, text: str) -> None:
    (root / name).write_text(text)


def base_config(root: Path, **top: object) -> dict[str, object]:
    """A tiny classification run on 10 synthetic videos (4 frames of 32 px) with videomae-tiny and RLT."""
    config: dict[str, object] = {
        "run_dir": str(root / "runs" / "base"), "seed": 0, "steps": 2, "batch_size": 4, "lr": 1e-3,
        "log_every": 1, "checkpoint_every": 1, "eval_at_end": False,
        "model": {"name": "videomae-tiny", "config": {"image_size": 32, "patch_size": 16, "num_frames": 4},
                  "reduction": [{"rlt": {"tau": 0.1}}]},
        "data": {"name": "synthetic", "video_root": str(root / "synth"), "frames": 4, "size": 32, "cache": True,
                 "synthetic": {"num_videos": 10, "fps": 4, "seconds": 1, "size": 32, "seed": 0}},
    }
    config.update(top)
    return config


def _write_configs(root: Path) -> None:
    import yaml

    def dump(name: str, config: object) -> None:
        (root / name).write_text(yaml.safe_dump(config, sort_keys=False))

    dump("good.yaml", base_config(root))
    dump("wd_nan.yaml", {**base_config(root), "weight_decay": float("nan")})
    dump("list.yaml", [1, 2, 3])
    (root / "binary.yaml").write_bytes(b"run_dir: x\n" + bytes(range(128, 256)) + b"\n")
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        refs = ", ".join(f"*{chr(96 + level)}" for _ in range(10))
        bomb.append(f"{chr(97 + level)}: &{chr(97 + level)} [{refs}]")
    _yaml(root, "bomb.yaml", "\n".join(bomb) + "\n")
    dump("device_cuda.yaml", {**base_config(root), "device": "cuda"})
    # classification labels: a label outside the class list, a line of binary bytes, classes given as a file name
    classes = root / "labels"
    (classes / "videos").mkdir(parents=True, exist_ok=True)
    (classes / "classes.txt").write_text("walk\nrun\n")
    (classes / "train.csv").write_text("video,label\nreal.mp4,0\nreal.mp4,99\n")
    (classes / "binary.csv").write_bytes(b"video,label\nreal.mp4,0\n" + bytes(range(128, 200)) + b",1\n")
    for name, split, names in (("label99.yaml", "train.csv", ["walk", "run"]),
                               ("label_binary.yaml", "binary.csv", ["walk", "run"]),
                               ("classes_file.yaml", "train.csv", str(classes / "classes.txt"))):
        config = base_config(root)
        config["data"] = {"name": "labels", "annotation": str(classes / split), "video_root": str(root),
                          "frames": 4, "size": 32, "eval_split": None, "options": {"classes": names}}
        dump(name, config)


def _write_model_folders(root: Path) -> None:
    """Model folders `vidslim eval --checkpoint` is pointed at: config.json a list, invalid, shard indexes."""
    for name, files in {
        "hf_list": {"config.json": "[1, 2, 3]"},
        "hf_invalid": {"config.json": "{\"model_type\": \"clip\", "},
        "hf_no_map": {"config.json": json.dumps({"model_type": "videomae"}),
                      "model.safetensors.index.json": json.dumps({"metadata": {}})},
        "hf_escape": {"config.json": json.dumps({"model_type": "videomae"}),
                      "model.safetensors.index.json": json.dumps(
                          {"weight_map": {"w": "../../../etc/passwd.safetensors"}})},
    }.items():
        folder = root / name
        folder.mkdir(exist_ok=True)
        for file, text in files.items():
            (folder / file).write_text(text)


def _write_checkpoints(root: Path) -> None:
    """Tiny random checkpoints (4 frames of 32 px) saved as vidslim folders: what embed and classify are given, so
    their cases test the bad input, not the "config name: random weights" warning."""
    import vidslim as vs

    for name, folder, extra in (("clip-tiny", CLIP_CKPT, {}), ("videomae-tiny", CLASSIFY_CKPT, {"num_classes": 3})):
        if not (root / folder / "vidslim.json").is_file():
            vs.save_model(vs.create_model(name, num_frames=4, image_size=32, **extra), root / folder)


def make_indexes(root: Path) -> None:
    """Index folders for the search cases: one embedded for real (with a FAISS index when faiss is installed),
    then copies with a truncated Parquet part, a damaged index.json and a damaged faiss.index."""
    import shutil

    from vidslim.jobs.embed import embed_videos

    good = root / "index_good"
    if not (good / "index.json").is_file():
        saved = os.dup(2)  # FAISS warns on stderr (from C++) that one row is few to cluster: true, and beside the point
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 2)
                embed_videos([str(root / "real.mp4")], root / CLIP_CKPT, good, workers=0,
                             faiss="always" if has_faiss() else "never")
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    for name in INDEXES[1:]:
        shutil.rmtree(root / name, ignore_errors=True)
        shutil.copytree(good, root / name)
    part = next((root / "index_part").glob("part-*.parquet"))
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    (root / "index_meta" / "index.json").write_text('{"model": "x", "dim": ')
    if (root / "index_faiss" / "faiss.index").is_file():
        (root / "index_faiss" / "faiss.index").write_bytes(np.random.default_rng(3).bytes(2048))


def has_faiss() -> bool:
    import importlib.util

    return importlib.util.find_spec("faiss") is not None
