"""`probe`: what a video file holds (codec, size, frame rate, frame count, duration, rotation), cheaply.

The header answers most of it. Probing also decodes the first frame, so a file that opens but cannot be
decoded fails here with a clear error, and so the display rotation (carried as frame side data) is known.
"""

from __future__ import annotations

import math
import os
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Any

import av

from vidslim.errors import VideoDecodeError
from vidslim.io._av import OpenVideo, frame_rotation, no_frame_error, open_video
from vidslim.io.decode import missing_frames, scan


@dataclass(frozen=True)
class VideoInfo:
    """Metadata of one video file.

    width/height are the frame size `read_video(path)` returns: upright (rotation applied), in stored pixels
    (`sample_aspect_ratio`, e.g. "12:11", says how wide a pixel is shown; like other loaders, vidslim does
    not stretch frames by it). rotation is the counter-clockwise angle the display matrix turns the stored
    frames by (0, 90, 180 or -90; ffprobe's sign convention). num_frames comes from the container when it records it
    (mp4, avi); otherwise it is `round(duration_s * fps)` and `num_frames_estimated` is True.
    """

    path: str
    format: str
    codec: str
    pix_fmt: str | None
    width: int
    height: int
    fps: float | None
    num_frames: int
    num_frames_estimated: bool
    duration_s: float | None
    rotation: int
    sample_aspect_ratio: str
    bit_rate: int | None
    has_audio: bool
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with every field."""
        return asdict(self)


def probe(path: str | os.PathLike[str], count_frames: bool = False) -> VideoInfo:
    """Read the metadata of `path`, raising `VideoDecodeError` (or a subclass) if it is not a decodable video.

    count_frames=True counts the packets of the video stream (no decoding: fast, but it reads the whole
    file) so `num_frames` is exact even where the container does not record it (mkv, webm).
    """
    with open_video(path, threads=False) as video:  # one frame: frame threads would only add latency
        first = _first_frame(video)
        stream = video.stream
        rate = video.rate
        fps = float(rate) if rate else None
        duration = _duration(video)
        num_frames, estimated = int(stream.frames or 0), False
        if count_frames or (num_frames <= 0 and (duration is None or not fps)):
            num_frames = _count_packets(video.path)  # nothing to estimate from (raw streams): count
        elif num_frames <= 0:
            num_frames, estimated = round(duration * fps), True
        if duration is None and fps and num_frames:
            duration = num_frames / fps
        if stream.frames:
            _check_tail(video)
        rotation = frame_rotation(first)
        width, height = first.width, first.height
        sar = stream.sample_aspect_ratio
        if rotation in (90, -90):
            width, height = height, width
        return VideoInfo(
            path=video.path,
            format=video.container.format.name,
            codec=stream.codec_context.name,
            pix_fmt=first.format.name if first.format is not None else stream.codec_context.pix_fmt,
            width=int(width),
            height=int(height),
            fps=fps,
            num_frames=int(num_frames),
            num_frames_estimated=estimated,
            duration_s=duration,
            rotation=rotation,
            sample_aspect_ratio=f"{sar.numerator}:{sar.denominator}" if sar else "1:1",
            bit_rate=int(stream.bit_rate or video.container.bit_rate or 0) or None,
            has_audio=bool(video.container.streams.audio),
            size_bytes=os.path.getsize(video.path),
        )


def header_duration(path: str | os.PathLike[str]) -> float | None:
    """The duration `probe` reports when the header records one (the stream's, else the container's), read
    without decoding a frame or seeking to the end; None when the header does not say. For jobs that only need
    the length to cut a video into windows: the read that follows decodes and checks the file anyway."""
    with open_video(path, threads=False) as video:
        return _duration(video)


def _check_tail(video: OpenVideo) -> None:
    """Read the packets of the last second or so (no decoding) and raise `VideoDecodeError` when the file ends
    before the frames its header lists: a cut-short mp4 whose index sits at the front opens and decodes its
    first frame, so only the end shows the loss. A complete file costs one seek and a GOP of packets."""
    stream, rate = video.stream, video.rate
    if not stream.duration or not rate:
        return
    frame_ticks = 1 / (rate * video.time_base)
    near_end = int((stream.start_time or 0) + stream.duration - 2 * frame_ticks)
    with ExitStack() as stack:
        def reopen() -> OpenVideo:
            return stack.enter_context(open_video(video.path, threads=False))

        tail, index = scan(video, near_end, None, reopen)
        cut = missing_frames(tail, index)
    if cut is not None:
        raise VideoDecodeError(video.path, f"truncated: the file ends after about {cut[0]} of the {cut[1]} frames "
                               "its header lists", "the download or copy was cut short: fetch or copy it again")


def _first_frame(video: OpenVideo) -> av.VideoFrame:
    """Decode frames until the first one comes out; packets the decoder rejects are skipped."""
    errors = 0
    packets = video.container.demux(video.stream)
    try:
        for packet in packets:
            try:
                frames = video.stream.decode(packet)
            except av.FFmpegError:
                errors += 1
                continue
            if frames:
                return frames[0]
    except av.FFmpegError:
        errors += 1
    finally:
        packets.close()
    raise no_frame_error(video.path, errors)


def _duration(video: OpenVideo) -> float | None:
    """Stream duration in seconds, else the container's, else None."""
    stream = video.stream
    if stream.duration is not None and stream.duration > 0:
        return float(stream.duration * video.time_base)
    if video.container.duration is not None and video.container.duration > 0:
        return video.container.duration / av.time_base
    return None


def _count_packets(path: str) -> int:
    """Number of video packets (one per frame for every common codec), reading the file from the start."""
    count = 0
    with open_video(path, threads=False) as video:
        packets = video.container.demux(video.stream)
        try:
            count = sum(1 for p in packets if p.size > 0 and not p.is_discard)
        except av.FFmpegError:
            pass  # damaged from here on: count what could be read
        finally:
            packets.close()
    return count


def format_duration(seconds: float | None) -> str:
    """'1:02:03.50' style text for a duration; '?' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:05.2f}"
    return f"{minutes}:{secs:05.2f}"
