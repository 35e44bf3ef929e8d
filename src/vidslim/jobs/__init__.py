"""What users run on collections of videos: embed them into a searchable index, search it, classify videos.

    import vidslim as vs
    vs.embed_videos("videos/", "runs/x/model", "index/", method="rlt")     # windows -> Parquet parts
    vs.VideoIndex("index/").search("a dog catches a frisbee", k=10)       # exact, or FAISS for large indexes
    vs.classify_videos(["a.mp4"], "runs/y/model", k=5)                    # class names per window and pooled

`vidslim.scale` runs the embedding on a Ray cluster with the same code and the same folder layout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidslim._lazy import lazy_exports

if TYPE_CHECKING:  # the public names: what IDEs read; at run time each module is imported on first use
    from vidslim.jobs.budget import TokenBudget as TokenBudget
    from vidslim.jobs.classify import Classified as Classified
    from vidslim.jobs.classify import classify_videos as classify_videos
    from vidslim.jobs.embed import EmbedSummary as EmbedSummary
    from vidslim.jobs.embed import embed_videos as embed_videos
    from vidslim.jobs.failures import NothingReadError as NothingReadError
    from vidslim.jobs.search import Hit as Hit
    from vidslim.jobs.search import VideoIndex as VideoIndex
    from vidslim.jobs.sources import list_videos as list_videos
    from vidslim.jobs.windows import WindowPlan as WindowPlan

__getattr__, __dir__, __all__ = lazy_exports(__name__)
