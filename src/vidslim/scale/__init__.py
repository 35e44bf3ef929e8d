"""Embedding a collection on a Ray cluster with the code and the folder layout of `vidslim embed`.

    from vidslim.scale import EmbedVideos, embed_on_ray
    summary = embed_on_ray("videos.txt", "runs/x/model", "/shared/index", address="auto")

    # or inside an existing Ray Data pipeline:
    ds = ray.data.from_items([{"path": p} for p in paths])
    ds.map_batches(EmbedVideos, fn_constructor_kwargs={"model": CKPT, "out": OUT}, batch_size=16, concurrency=8)

Ray is an optional extra (`pip install 'vidslim[scale]'`); this package imports it only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidslim._lazy import lazy_exports

if TYPE_CHECKING:  # the public names: what IDEs read; at run time each module is imported on first use
    from vidslim.scale.ray_embed import EmbedVideos as EmbedVideos
    from vidslim.scale.ray_embed import embed_on_ray as embed_on_ray

__getattr__, __dir__, __all__ = lazy_exports(__name__)
