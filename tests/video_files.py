"""The one place the tests write media files with PyAV.

Every test folder imports it as `from video_files import write_video` (tests/conftest.py puts tests/ on
sys.path). Fixtures that build their own frames (barcodes, squares, grey levels) make a uint8 [T, H, W, 3]
array and hand it here, so the encoder settings of every test video are spelled out at the call site.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# x264 settings when the caller names none: near-lossless, and veryfast keeps B-frames (presentation order
# differs from decode order), as real files have.
X264_DEFAULTS = {"crf": "12", "preset": "veryfast"}


def write_video(
    path: Path,
    frames: np.ndarray | Sequence[np.ndarray],
    fps: int | Fraction = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    *,
    gop: int | None = None,
    rotation: int | None = None,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    container_options: dict[str, str] | None = None,
    **options: str,
) -> Path:
    """Encode RGB uint8 frames [T, H, W, 3] at `fps` with `codec` / `pix_fmt`; return `path`.

    `options` are the codec's private options (x264: crf, qp, preset, threads, ...); with none given, libx264
    gets `X264_DEFAULTS` and other codecs their own defaults. `gop` sets the keyframe interval (None: the
    encoder's default), `rotation` the display rotation in degrees. `pts` gives frame i the timestamp `pts[i]`
    in `time_base` (variable frame rate); `time_base` alone sets the stream's time base.
    `container_options` go to the muxer (e.g. {"movflags": "faststart"}).
    """
    first = np.asarray(frames[0])
    if first.ndim != 3 or first.shape[2] != 3 or first.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got frame 0 of {first.dtype} {first.shape}")
    if pts is not None and (time_base is None or len(pts) != len(frames)):
        raise ValueError("pts needs a time_base and one timestamp per frame")
    height, width = first.shape[:2]
    if options:
        codec_options = {k: str(v) for k, v in options.items()}
    else:
        codec_options = dict(X264_DEFAULTS) if codec == "libx264" else {}
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=Fraction(fps), options=codec_options)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if time_base is not None:
            stream.time_base = stream.codec_context.time_base = time_base
        if gop is not None:
            stream.gop_size = gop
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i, frame in enumerate(frames):
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            if pts is not None:
                image.pts, image.time_base = pts[i], time_base
            container.mux(stream.encode(image))
        container.mux(stream.encode(None))
    return path


def write_audio_only(path: Path, num_frames: int = 8, sample_rate: int = 16000, codec: str = "aac") -> Path:
    """A container holding one silent mono audio stream and no video (for the "no video stream" errors)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=sample_rate)
        for i in range(num_frames):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = sample_rate, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
