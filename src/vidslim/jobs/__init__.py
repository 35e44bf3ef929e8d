"""What users run on collections of videos: embed them into a searchable index, search it, classify videos.

    import vidslim as vs
    vs.embed_videos("videos/", "runs/x/model", "index/", method="rlt")     # windows -> Parquet parts
    vs.VideoIndex("index/").search("a dog catches a frisbee", k=10)       # exact, or FAISS for large indexes
    vs.classify_videos(["a.mp4"], "runs/y/model", k=5)                    # class names per window and pooled

`vidslim.scale` runs the embedding on a Ray cluster with the same code and the same folder layout.
"""

from __future__ import annotations

from vidslim._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "embed_videos": "vidslim.jobs.embed",
    "EmbedSummary": "vidslim.jobs.embed",
    "VideoIndex": "vidslim.jobs.search",
    "Hit": "vidslim.jobs.search",
    "classify_videos": "vidslim.jobs.classify",
    "Classified": "vidslim.jobs.classify",
    "TokenBudget": "vidslim.jobs.budget",
    "WindowPlan": "vidslim.jobs.windows",
    "list_videos": "vidslim.jobs.sources",
    "NothingReadError": "vidslim.jobs.failures",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
