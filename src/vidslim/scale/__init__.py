"""Embedding a collection on a Ray cluster with the code and the folder layout of `vidslim embed`.

    from vidslim.scale import EmbedVideos, embed_on_ray
    summary = embed_on_ray("videos.txt", "runs/x/model", "/shared/index", address="auto")

    # or inside an existing Ray Data pipeline:
    ds = ray.data.from_items([{"path": p} for p in paths])
    ds.map_batches(EmbedVideos, fn_constructor_kwargs={"model": CKPT, "out": OUT}, batch_size=16, concurrency=8)

Ray is an optional extra (`pip install 'vidslim[scale]'`); this package imports it only when used.
"""

from __future__ import annotations

from vidslim._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "EmbedVideos": "vidslim.scale.ray_embed",
    "embed_on_ray": "vidslim.scale.ray_embed",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
