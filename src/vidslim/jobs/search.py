"""`VideoIndex(path).search(query, k)`: the windows of an index nearest to a text, a video or a vector.

    index = vs.VideoIndex("index/")                       # the model is loaded from index.json when a query needs it
    for hit in index.search("a red 3 moves left, then up", k=5):
        print(hit.path, hit.start_s, hit.end_s, hit.score)
    index.search(Path("clip.mp4"))                        # search by example: the clip's windows, averaged

Scores are cosine similarities (rows are L2-normalised). X-CLIP prompts each text with each video's frame tokens
(`XCLIP.retrieval_cosine`), which an index does not store: its rows are X-CLIP's video embeddings and a text query
is its unprompted text embedding, so text search ranks by X-CLIP without its video-specific prompts; `vidslim eval
retrieval` and `model.retrieval_cosine` give the prompted score. Two ways to find the nearest rows:
- exact: one matrix product over every row, then top-k. Exact and fast while the matrix is small.
- FAISS (faiss-cpu): an inverted-file index (IVF, inner product) that visits `nprobe` of its `nlist` cells.
  `vidslim embed` builds it (faiss.index) once the index holds FAISS_MIN_ROWS rows, where the exact product
  starts to cost tens of milliseconds per query on a CPU (BENCHMARKS.md, benchmarks/embed_throughput.py);
  `search` uses it when it is there and covers every row, unless `exact=True`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidslim.errors import ConfigError
from vidslim.jobs.store import read_meta, read_rows

log = logging.getLogger(__name__)

#: rows from which `vidslim embed --faiss auto` builds a FAISS index
FAISS_MIN_ROWS = 200_000
#: cells visited per query (of `nlist = sqrt(rows)`)
FAISS_NPROBE = 32
FAISS_FILE = "faiss.index"
FAISS_META = "faiss.json"


@dataclass(frozen=True)
class Hit:
    """One window found: its video, span, score, and its row in the index."""

    path: str
    window: int
    start_s: float
    end_s: float
    score: float
    row: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def faiss_module() -> Any:
    try:
        import faiss
    except ImportError:
        raise ConfigError("FAISS search needs faiss-cpu: pip install 'vidslim[search]'") from None
    return faiss


def build_ivf(vectors: np.ndarray, nprobe: int = FAISS_NPROBE, seed: int = 0) -> Any:
    """An IVF inner-product index over L2-normalised `vectors` [N, D]: sqrt(N) cells (k-means trained on at most
    64 vectors a cell, which bounds the k-means work at a million rows)."""
    faiss = faiss_module()
    n, dim = vectors.shape
    nlist = max(1, min(int(np.sqrt(n)), n // 39))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    sample = vectors[rng.choice(n, size=min(n, 64 * nlist), replace=False)] if n > 64 * nlist else vectors
    index.train(np.ascontiguousarray(sample))
    index.add(np.ascontiguousarray(vectors))
    index.nprobe = min(nprobe, nlist)
    return index


def maybe_build_faiss(folder: Path, mode: str = "auto") -> bool:
    """Build faiss.index over every row when `mode` is "always", or "auto" with FAISS_MIN_ROWS rows and faiss
    installed; return whether the folder now has one that covers every row."""
    if mode not in ("auto", "always", "never"):
        raise ConfigError(f"--faiss must be auto, always or never, got {mode!r}")
    if mode == "never":
        return False
    if mode == "auto":
        try:
            import faiss
        except ImportError:
            return False
    _columns, vectors = read_rows(folder)
    if mode == "auto" and len(vectors) < FAISS_MIN_ROWS:
        return False
    if len(vectors) == 0:
        return False
    faiss = faiss_module()
    index = build_ivf(vectors)
    tmp = folder / f".{FAISS_FILE}.tmp-{os.getpid()}"
    faiss.write_index(index, str(tmp))
    os.replace(tmp, folder / FAISS_FILE)
    (folder / FAISS_META).write_text(json.dumps({"rows": len(vectors), "nprobe": index.nprobe}) + "\n")
    return True


class VideoIndex:
    """The rows of an index folder, searchable by text, video or vector (see the module docstring).

    model: the model to embed queries with (default: the one index.json names, loaded on first use).
    """

    def __init__(self, path: str | os.PathLike[str], model: Any = None, device: str = "cpu") -> None:
        self.path = Path(path)
        self.meta = read_meta(self.path)
        self.columns, self.vectors = read_rows(self.path)
        self._model = model
        self.device = device
        self._faiss: Any = None

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def model(self) -> Any:
        """The index's model with the reducers it was embedded with (loaded on first use)."""
        if self._model is None:
            from vidslim.jobs.model_source import resolve_model
            from vidslim.models.registry import list_models

            name = self.meta["model"]
            if name in list_models() and not Path(name).exists():
                raise ConfigError(f"{self.path}: was embedded with {name!r} (random weights), which cannot embed "
                                  "queries; embed with a trained checkpoint")
            self._model, _ = resolve_model(name)
            from vidslim.reduce.registry import build_reduction

            self._model.set_reduction(build_reduction(self.meta["card"], family=self._model.family))
        return self._model

    # ------------------------------------------------------------------------------------------ queries
    def embed_text(self, text: str) -> np.ndarray:
        """[D] normalised embedding of a text query."""
        encode = getattr(self.model, "encode_text", None)
        if encode is None:
            raise ConfigError(f"{self.meta['model']} has no text encoder; search by video (--video) or vector")
        with torch.inference_mode():
            emb = encode([text]).float()[0]
        return (emb / emb.norm().clamp_min(1e-12)).cpu().numpy()

    def embed_video(self, path: str | os.PathLike[str]) -> np.ndarray:
        """[D] normalised mean of the embeddings of a video's windows, cut as the index's videos were."""
        from vidslim.jobs.budget import TokenBudget
        from vidslim.jobs.encode import WindowEncoder, embed_stream
        from vidslim.jobs.reader import WindowReader
        from vidslim.jobs.windows import WindowPlan

        plan = WindowPlan(**self.meta["windows"])
        reader = WindowReader.for_model([str(path)], self.model, plan)
        ((item, rows),) = list(embed_stream([reader[0]], WindowEncoder(self.model, self.device), TokenBudget(None, 8)))
        if rows is None:
            from vidslim.jobs.failures import short_reason

            raise ConfigError(f"{path}: cannot search by this video: {short_reason(str(path), item.error)}")
        mean = np.mean(np.stack(rows.embedding), axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)

    def query_vector(self, query: str | os.PathLike[str] | np.ndarray | torch.Tensor) -> np.ndarray:
        if isinstance(query, torch.Tensor):
            query = query.detach().float().cpu().numpy()
        if isinstance(query, np.ndarray):
            vector = query.astype(np.float32).reshape(-1)
            if vector.shape[0] != self.vectors.shape[1]:
                raise ConfigError(f"a query vector of {vector.shape[0]} values for an index of width "
                                  f"{self.vectors.shape[1]}")
            return vector / max(float(np.linalg.norm(vector)), 1e-12)
        if isinstance(query, os.PathLike):
            return self.embed_video(query)
        return self.embed_text(str(query))

    # ------------------------------------------------------------------------------------------ search
    def faiss_index(self) -> Any:
        """The folder's FAISS index when it covers every row (else None)."""
        if self._faiss is None and (self.path / FAISS_FILE).is_file():
            try:
                info = json.loads((self.path / FAISS_META).read_text())
                rows = info.get("rows") if isinstance(info, dict) else None
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                rows = None
            if rows != len(self):
                log.warning("%s: faiss.index covers %s rows of %s; searching exactly (rerun vidslim embed to "
                            "rebuild it)", self.path, rows, len(self))
                return None
            try:
                self._faiss = faiss_module().read_index(str(self.path / FAISS_FILE))
            except RuntimeError as error:  # faiss reports a damaged file as a RuntimeError with its C++ trace
                reason = str(error).strip().splitlines()[-1][:160] if str(error).strip() else "unreadable"
                raise ConfigError(f"{self.path / FAISS_FILE}: damaged FAISS index ({reason}); search with --exact, "
                                  f"or delete it and run `vidslim embed ... --faiss always` to rebuild it") from None
        return self._faiss

    def nearest(self, vector: np.ndarray, k: int, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the k nearest rows to a normalised vector [D]."""
        k = min(k, len(self))
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        index = None if exact else self.faiss_index()
        if index is not None:
            scores, rows = index.search(vector[None].astype(np.float32), k)
            keep = rows[0] >= 0
            return scores[0][keep], rows[0][keep].astype(np.int64)
        return exact_topk(self.vectors, vector, k)

    def search(self, query: str | os.PathLike[str] | np.ndarray | torch.Tensor, k: int = 10,
               exact: bool = False) -> list[Hit]:
        """The k windows nearest to `query`: a text (str), a video (a Path) or an embedding, best first."""
        if isinstance(query, str) and Path(query).suffix.lower() in (".mp4", ".avi", ".mkv", ".mov", ".webm") \
                and Path(query).is_file():
            log.warning("searching for the text %r; pass Path(%r) to search by that video", query, query)
        scores, rows = self.nearest(self.query_vector(query), k, exact)
        c = self.columns
        return [Hit(str(c["path"][r]), int(c["window"][r]), float(c["start_s"][r]), float(c["end_s"][r]),
                    float(s), int(r)) for s, r in zip(scores, rows, strict=True)]


def exact_topk(vectors: np.ndarray, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of the k largest inner products of `vector` with the rows of `vectors` (ties: lower row)."""
    scores = torch.from_numpy(vectors) @ torch.from_numpy(np.ascontiguousarray(vector, np.float32))
    top = torch.topk(scores, k)
    return top.values.numpy(), top.indices.numpy().astype(np.int64)
