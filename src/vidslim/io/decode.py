"""The two passes that read a few frames of a video without decoding all of it.

1. `scan` demuxes packets (no decoding) from the keyframe before the window to its end and records each
   frame's presentation timestamp and which frames are keyframes. This gives the exact frame count and
   timestamps of the window, so frame indices can be sampled before any pixel is decoded.
2. `decode_targets` decodes only what the chosen frames need: it seeks to the keyframe before each target
   whenever a keyframe lies between the decoder's position and the target, decodes forward, and converts
   (resizes, in FFmpeg's swscale) only the chosen frames. Memory holds the chosen frames, already resized.

Seeking is checked, not trusted: some containers (MPEG-TS) land after the requested time or on a frame
that is not a keyframe, so `packets_from` backs off until the first packet is a keyframe at or before
the wanted time. Timestamps stay in stream ticks (integers) here; `video.py` turns them into seconds.
Streams without timestamps (raw `.h264` elementary streams) are untimed: frames are numbered in order and
decoded from the start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import av
import numpy as np

from vidslim.io._av import OpenVideo

Reopen = Callable[[], OpenVideo]


@dataclass(frozen=True)
class StreamIndex:
    """What `scan` learned: sorted frame timestamps and keyframe timestamps, in stream ticks.

    `from_start` says the scan began at the stream's first frame (so positions in `pts` are frame numbers);
    `timed` is False for streams whose packets carry no timestamps (then `pts` are frame numbers too).
    `to_end` says the scan ran out of packets (the end of the file, or damage) rather than stopping at the end
    of the window; `packets` counts the packets it read, discarded ones included.
    """

    pts: np.ndarray
    keyframes: np.ndarray
    from_start: bool
    timed: bool
    to_end: bool = False
    packets: int = 0

    def keyframe_before(self, pts: int) -> int | None:
        """The last keyframe at or before `pts`; None when there is none (decode from the stream start)."""
        slot = int(np.searchsorted(self.keyframes, pts, side="right")) - 1
        return int(self.keyframes[slot]) if slot >= 0 else None


def _timestamp(packet: av.Packet) -> int | None:
    return packet.pts if packet.pts is not None else packet.dts


def packets_from(video: OpenVideo, pts: int | None, reopen: Reopen) -> tuple[OpenVideo, Iterator[av.Packet], bool]:
    """Packets of the video stream starting at a keyframe at or before `pts` (None: the stream start).

    Returns the video (reopened when the container cannot seek back to its start), a closable packet
    iterator, and whether it starts at the beginning of the stream. Seeks to `pts`, then 1, 2, 4, ... seconds
    earlier until the first keyframe read lies at or before `pts`; packets before that keyframe are skipped.
    """
    if pts is not None:
        origin = video.stream.start_time or 0
        second = max(1, round(1 / video.time_base))
        back = 0
        while pts - back > origin:
            video.touched = True  # even a failed seek may move the read position
            if not _seek(video, pts - back):
                break
            packets = video.container.demux(video.stream)
            first = _first_keyframe(packets)
            if first is not None and (ts := _timestamp(first)) is not None and ts <= pts:
                return video, _chain(first, packets), False
            packets.close()
            back = 2 * back if back else second
    if video.touched:  # something was read already: go back to the very first packet
        try:
            video.container.seek(0, backward=True, any_frame=False)
        except av.FFmpegError:
            video = reopen()
    video.touched = True
    return video, video.container.demux(video.stream), True


def _seek(video: OpenVideo, pts: int) -> bool:
    """Ask the container for the keyframe at or before `pts`; False when it cannot seek."""
    try:
        video.container.seek(int(pts), stream=video.stream, backward=True, any_frame=False)
    except av.FFmpegError:
        return False
    return True


def _first_keyframe(packets: Iterator[av.Packet]) -> av.Packet | None:
    """Consume packets up to the first keyframe and return it (None at the end or on a read error)."""
    try:
        for packet in packets:
            if packet.size == 0:
                return None
            if packet.is_keyframe:
                return packet
    except av.FFmpegError:
        return None
    return None


def _chain(first: av.Packet, packets: Iterator[av.Packet]) -> Iterator[av.Packet]:
    """`first`, then the rest of `packets`; closing this closes the demuxer too."""
    try:
        yield first
        yield from packets
    finally:
        packets.close()  # type: ignore[attr-defined]


def scan(video: OpenVideo, start_pts: int | None, end_pts: int | None, reopen: Reopen) -> tuple[OpenVideo, StreamIndex]:
    """Index the frames presented in [start_pts, end_pts) plus the GOP before them, reading packets only.

    Stops at the first packet whose decode timestamp reaches `end_pts`: decode timestamps never decrease and
    never exceed presentation timestamps, so no frame of the window comes later. A read error ends the scan
    (a truncated file keeps the frames before the damage).
    """
    video, packets, from_start = packets_from(video, start_pts, reopen)
    pts: list[int] = []
    keyframes: list[int] = []
    timed = True
    to_end = True
    count = 0
    try:
        for packet in packets:
            if packet.size == 0:
                continue
            count += 1
            ts = _timestamp(packet)
            if ts is None:
                timed = False
            elif end_pts is not None and timed and ts >= end_pts:
                dts = packet.dts
                if (dts is not None and dts >= end_pts) or (dts is None and packet.is_keyframe):
                    to_end = False
                    break
            if packet.is_keyframe and ts is not None:
                keyframes.append(ts)
            if not packet.is_discard:  # discarded packets are decoded but never shown (edit lists)
                pts.append(ts if ts is not None else len(pts))
    except av.FFmpegError:
        pass  # damaged or truncated after this point: index what could be read
    finally:
        packets.close()  # type: ignore[attr-defined]
    if not timed:  # number frames in stream order and decode from the start
        if not from_start:
            return scan(video, None, None, reopen)
        return video, StreamIndex(np.arange(len(pts), dtype=np.int64), np.zeros(1, np.int64), True, False)
    index = StreamIndex(np.sort(np.asarray(pts, np.int64)), np.unique(np.asarray(keyframes, np.int64)),
                        from_start, True, to_end, count)
    return video, index


def missing_frames(video: OpenVideo, index: StreamIndex) -> tuple[int, int] | None:
    """(frames read, frames the container lists) when a scan that ran to the end of the file found fewer frames
    than the container's header promises, i.e. a file cut short (its index at the front, the data after the cut
    missing); None when nothing says so. Where the header has no frame count, its duration is compared with the
    last timestamp (allowing two frames), so a scan that started mid-stream is judged too."""
    if not index.to_end or not index.timed or len(index.pts) == 0:
        return None
    stream = video.stream
    listed = int(stream.frames or 0)
    if index.from_start and listed > 0:
        return (index.packets, listed) if index.packets < listed else None
    rate = video.rate
    if not stream.duration or not rate:
        return None
    frame_ticks = float(1 / (rate * video.time_base))
    end = (stream.start_time or 0) + int(stream.duration)
    last = int(index.pts[-1])
    if last + 2 * frame_ticks < end:
        return round((last - (stream.start_time or 0)) / frame_ticks) + 1, round(int(stream.duration) / frame_ticks)
    return None


def count_before(video: OpenVideo, pts: int, reopen: Reopen) -> tuple[OpenVideo, int]:
    """How many shown frames have timestamps below `pts`, by demuxing from the stream start (no decoding)."""
    video, packets, _ = packets_from(video, None, reopen)
    count = 0
    try:
        for packet in packets:
            ts = _timestamp(packet)
            if packet.size == 0 or ts is None:
                continue
            if packet.dts is not None and packet.dts >= pts:
                break
            count += ts < pts and not packet.is_discard
    except av.FFmpegError:
        pass
    finally:
        packets.close()  # type: ignore[attr-defined]
    return video, count


class FrameStore(Protocol):
    """Where decoded frames go: `store[i] = frame` for target i."""

    def __setitem__(self, i: int, frame: np.ndarray) -> None: ...


@dataclass
class DecodeResult:
    """Outcome of `decode_targets`: `found[i]` is the timestamp of the frame that filled target i (-1: none)."""

    found: np.ndarray
    num_decoded: int
    num_errors: int


def decode_targets(
    video: OpenVideo,
    index: StreamIndex,
    targets: np.ndarray,
    convert: Callable[[av.VideoFrame], np.ndarray],
    out: FrameStore,
    reopen: Reopen,
) -> DecodeResult:
    """Decode the frames whose timestamps are `targets` (sorted, unique) into `out[i]` via `convert`.

    Seeks only when a keyframe lies between the decoder's position and the next target, so a dense run of
    targets is decoded in one sweep and sparse targets cost one GOP each. A target whose frame never comes
    out of the decoder (a corrupt packet) takes the next decoded frame; targets after the last decodable
    frame stay unfilled. `reopen` gives a fresh container, used when seeking fails.
    """
    found = np.full(len(targets), -1, dtype=np.int64)
    decoder = _Decoder(video, index, reopen)
    frame: av.VideoFrame | None = None
    frame_pts = 0
    converted: np.ndarray | None = None
    for i, target in enumerate(targets.tolist()):
        keyframe = index.keyframe_before(target)
        if decoder.needs_restart(keyframe):
            decoder.restart(keyframe)
            frame = None
        decoder.target = target
        while frame is None or frame_pts < target:
            frame = decoder.next_frame()
            if frame is None:
                break
            frame_pts, converted = decoder.pts, None
        if frame is None:
            break  # end of the stream: later targets stay unfilled
        if converted is None:
            converted = convert(frame)
        out[i] = converted
        found[i] = frame_pts
    decoder.close()
    return DecodeResult(found, decoder.num_decoded, decoder.num_errors)


_BEFORE_ALL = -(2**62)
# frames between the decoder and the next useful keyframe below which decoding on beats seeking
_SEEK_GAP = 4


class _Decoder:
    """A decoding position in the stream, moved by seeking; counts decoded frames and rejected packets."""

    def __init__(self, video: OpenVideo, index: StreamIndex, reopen: Reopen) -> None:
        self.video = video
        self.index = index
        self.reopen = reopen
        self.frames: Iterator[av.VideoFrame] | None = None
        self.position = _BEFORE_ALL  # largest timestamp decoded since the last restart
        self.pts = 0  # timestamp of the last decoded frame
        self.count = 0  # frames decoded since the last restart
        self.target = _BEFORE_ALL  # the frame wanted next: unreferenced frames before it are skipped
        self.num_decoded = 0
        self.num_errors = 0

    def needs_restart(self, keyframe: int | None) -> bool:
        """Seek when nothing was decoded yet, or when the keyframe before the target lies more than a few
        frames ahead of the decoder (decoding straight on through a GOP boundary is cheaper than a seek)."""
        if self.frames is None:
            return True
        if not self.index.timed or keyframe is None or keyframe <= self.position:
            return False
        pts = self.index.pts
        between = np.searchsorted(pts, keyframe, side="left") - np.searchsorted(pts, self.position, side="right")
        return int(between) > _SEEK_GAP

    def restart(self, keyframe: int | None) -> None:
        """Position the decoder at `keyframe` (None, or an untimed stream: the beginning of the stream)."""
        self.close()
        self.video, packets, _ = packets_from(self.video, keyframe if self.index.timed else None, self.reopen)
        self.video.stream.codec_context.flush_buffers()
        self.frames = self._frames(packets)
        self.position = _BEFORE_ALL
        self.count = 0

    def _frames(self, packets: Iterator[av.Packet]) -> Iterator[av.VideoFrame]:
        """Decoded frames in presentation order; a packet the decoder rejects is counted and skipped.

        Frames shown before the next target are only decoded when other frames reference them: FFmpeg's
        `skip_frame = NONREF` drops the others (about half of an H.264 stream with B-frames), which nearly
        halves the cost of decoding from a keyframe up to a target. It is switched per packet.
        """
        stream = self.video.stream
        skipping = False
        try:
            for packet in packets:
                skip = self.index.timed and packet.pts is not None and packet.pts < self.target
                if skip != skipping:
                    stream.codec_context.skip_frame = "NONREF" if skip else "DEFAULT"
                    skipping = skip
                try:
                    frames = stream.decode(packet)
                except av.FFmpegError:
                    self.num_errors += 1
                    continue
                yield from frames
        except av.FFmpegError:
            self.num_errors += 1  # the container is damaged from here on: treat it as the end
        finally:
            packets.close()  # type: ignore[attr-defined]
            stream.codec_context.skip_frame = "DEFAULT"

    def next_frame(self) -> av.VideoFrame | None:
        """The next decoded frame (setting `pts` and `position`), or None at the end of the stream."""
        assert self.frames is not None
        frame = next(self.frames, None)
        if frame is None:
            return None
        self.num_decoded += 1
        if not self.index.timed:
            self.pts = self.count  # untimed streams: frames are numbered from the start
        elif frame.pts is not None:
            self.pts = int(frame.pts)
        else:
            self.pts = self.position + 1 if self.position > _BEFORE_ALL else 0
        self.count += 1
        self.position = max(self.position, self.pts)
        return frame

    def close(self) -> None:
        """Stop the current sweep (closing its packet generator)."""
        if self.frames is not None:
            self.frames.close()  # type: ignore[attr-defined]
            self.frames = None
