"""`vidslim search INDEX_DIR "a dog catches a frisbee" [-k 10]`: the windows of an index nearest to a text, or to
a video with --video CLIP.mp4; a table of video, time span and score, or --json.

The recipe is `vidslim.jobs.VideoIndex`; this file parses and prints.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vidslim.errors import ConfigError


def add_parser(subparsers: Any) -> None:
    """Register `search` on the `vidslim` command."""
    parser = subparsers.add_parser(
        "search", help="search an index made by `vidslim embed` by text or by example video",
        description="The windows of INDEX_DIR nearest to TEXT (or to --video), best first.",
    )
    parser.add_argument("index", metavar="INDEX_DIR", help="folder written by `vidslim embed`")
    parser.add_argument("text", nargs="?", default=None, metavar="TEXT", help="what to look for")
    parser.add_argument("--video", default=None, metavar="CLIP", help="search by this example video instead")
    parser.add_argument("-k", type=int, default=10, help="how many windows (default 10)")
    parser.add_argument("--exact", action="store_true", help="search exactly even when a FAISS index exists")
    parser.add_argument("--model", default=None, metavar="CKPT", help="embed the query with this model (default: "
                        "the one the index names)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vidslim.jobs.search import VideoIndex

    if (args.text is None) == (args.video is None):
        raise ConfigError("give a TEXT to search for, or --video CLIP.mp4 (one of them)")
    if args.k < 1:
        raise ConfigError(f"-k must be >= 1, got {args.k}")
    model = None
    if args.model:
        from vidslim.jobs.model_source import resolve_model

        model, _ = resolve_model(args.model)
    index = VideoIndex(args.index, model=model)
    query: Any = Path(args.video) if args.video else args.text
    hits = index.search(query, k=args.k, exact=args.exact)
    how = "exact" if args.exact or index.faiss_index() is None else "faiss"
    if args.json:
        print(json.dumps({"query": str(query), "by": "video" if args.video else "text", "search": how,
                          "rows": len(index), "hits": [h.to_dict() for h in hits]}))
        return 0
    print(f"{len(hits)} of {len(index)} windows ({how} search) for {'video ' if args.video else ''}{str(query)!r}:")
    width = max((len(h.path) for h in hits), default=4)
    print(f"  {'rank':>4}  {'score':>6}  {'video':<{width}}  span")
    for rank, h in enumerate(hits, 1):
        print(f"  {rank:>4}  {h.score:6.3f}  {h.path:<{width}}  {h.start_s:.2f}-{h.end_s:.2f} s")
    return 0
