"""Evaluation metrics as pure tensor functions: text-video retrieval ranks and recalls, classification top-k.

Retrieval. `sim` is [num_texts, num_videos] (higher = more similar) and `text_to_video[i]` the index of the
video caption i describes; several captions may share a video (MSRVTT with all 20 captions, or any
multi-caption test), and the 1k-A protocol is the special case `text_to_video = arange(N)`.
- text-to-video: the rank of caption i is the number of *other* videos scored above its video.
- video-to-text: the rank of video j is the number of captions *not of video j* scored above its best-scored
  caption (the standard "best of its captions" rule; a video with no caption is left out).
Ranks are 0-based; R@K = 100 * mean(rank < K), MdR = median(rank) + 1 (the mean of the two middle ranks for
an even count, as `np.median`), MnR = mean(rank) + 1, R-Sum = R@1 + R@5 + R@10. On a square matrix with
the ground truth on the diagonal and no ties this is exactly the TempMe / CLIP4Clip `compute_metrics`.

Ties. `ties="pessimistic"` (default) ranks every competitor with an *equal* score above the ground truth;
"optimistic" ranks them below. Pessimistic is the default because it cannot be gamed: a collapsed model
that gives every pair the same score gets chance-level ranks instead of R@1 = 100, and with fp16 / bf16
embeddings exact ties do happen. The official helper assumes there are none (a tie there adds spurious rank
entries and misaligns the rest, spec tempme §6.2 item 7); without ties both options agree with it.

Dual softmax (DSL, CAMoE, Cheng et al. 2021), optional and off by default (TempMe does not use it). Each
direction re-weights the scores by a prior computed over the *other* side, here exactly:
    t2v: sim * softmax(temperature * sim, dim=0)    (for each video, a softmax over the texts)
    v2t: sim * softmax(temperature * sim, dim=1)    (for each text, a softmax over the videos)
with `sim` the raw matrix passed in (use cosine similarities and temperature 100, CLIP's logit scale). It
uses the whole test set's queries at once (transductive), so report it separately from plain numbers.

Classification. `topk_accuracy(logits, labels)`; `average_views` averages softmax probabilities over the
views of a video (clips x crops), as the RLT test step does, before the top-k.
"""

from __future__ import annotations

from typing import Literal

import torch

Ties = Literal["pessimistic", "optimistic"]
RECALL_KS = (1, 5, 10, 50)
# compare at most this many scores at once (bounds the temporary boolean matrices)
_CHUNK_ELEMENTS = 1 << 24


def _check_sim(sim: torch.Tensor, text_to_video: torch.Tensor) -> torch.Tensor:
    """Validate shapes and indices; returns text_to_video as int64 on sim's device."""
    if sim.dim() != 2:
        raise ValueError(f"sim must be [num_texts, num_videos], got shape {tuple(sim.shape)}")
    t2v = torch.as_tensor(text_to_video, device=sim.device).long()
    if t2v.shape != (sim.shape[0],):
        raise ValueError(f"text_to_video must have one video index per text ({sim.shape[0]}), got shape "
                         f"{tuple(t2v.shape)}")
    if len(t2v) and (int(t2v.min()) < 0 or int(t2v.max()) >= sim.shape[1]):
        raise ValueError(f"text_to_video holds indices outside [0, {sim.shape[1]})")
    if bool(torch.isnan(sim).any()):
        raise ValueError("sim holds NaN scores; check the embeddings that produced it")
    return t2v


def _check_ties(ties: str) -> None:
    if ties not in ("pessimistic", "optimistic"):
        raise ValueError(f"ties must be 'pessimistic' or 'optimistic', got {ties!r}")


def _above(scores: torch.Tensor, reference: torch.Tensor, ties: Ties) -> torch.Tensor:
    """Boolean: which scores rank above `reference` (broadcast), counting equal scores as `ties` says."""
    return scores >= reference if ties == "pessimistic" else scores > reference


def t2v_ranks(sim: torch.Tensor, text_to_video: torch.Tensor, ties: Ties = "pessimistic") -> torch.Tensor:
    """int64 [num_texts]: 0-based rank of each caption's video among all videos (row-wise)."""
    _check_ties(ties)
    t2v = _check_sim(sim, text_to_video)
    ranks = torch.empty(sim.shape[0], dtype=torch.long, device=sim.device)
    step = max(1, _CHUNK_ELEMENTS // max(sim.shape[1], 1))
    for lo in range(0, sim.shape[0], step):
        rows, gt = sim[lo : lo + step], t2v[lo : lo + step]
        target = rows.gather(1, gt[:, None])
        count = _above(rows, target, ties).sum(1)
        ranks[lo : lo + step] = count - 1 if ties == "pessimistic" else count  # the ground truth is >= itself
    return ranks


def v2t_ranks(sim: torch.Tensor, text_to_video: torch.Tensor, ties: Ties = "pessimistic") -> torch.Tensor:
    """int64 [num_videos with a caption]: 0-based rank of each video's best-scored caption among the captions
    of other videos (column-wise), for the videos that have at least one caption, in video order."""
    _check_ties(ties)
    t2v = _check_sim(sim, text_to_video)
    num_videos = sim.shape[1]
    own = sim.gather(1, t2v[:, None])[:, 0]  # score of each caption with its own video
    best = torch.full((num_videos,), float("-inf"), dtype=sim.dtype, device=sim.device)
    best = best.scatter_reduce(0, t2v, own, reduce="amax")
    counts = torch.zeros(num_videos, dtype=torch.long, device=sim.device)
    step = max(1, _CHUNK_ELEMENTS // max(num_videos, 1))
    videos = torch.arange(num_videos, device=sim.device)
    for lo in range(0, sim.shape[0], step):
        rows, gt = sim[lo : lo + step], t2v[lo : lo + step]
        other = gt[:, None] != videos[None, :]  # competitors are captions of other videos
        counts += (_above(rows, best[None, :], ties) & other).sum(0)
    has_caption = torch.zeros(num_videos, dtype=torch.bool, device=sim.device)
    has_caption[t2v] = True
    return counts[has_caption]


def rank_metrics(ranks: torch.Tensor, ks: tuple[int, ...] = RECALL_KS) -> dict[str, float]:
    """R@K (percent), MdR, MnR and R-Sum (R@1 + R@5 + R@10, when those are in `ks`) from 0-based ranks."""
    if ranks.numel() == 0:
        raise ValueError("no ranks to summarise (empty similarity matrix?)")
    r = ranks.double()
    out = {f"R@{k}": 100.0 * float((r < k).double().mean()) for k in ks}
    out["MdR"] = float(torch.quantile(r, 0.5)) + 1.0
    out["MnR"] = float(r.mean()) + 1.0
    if all(k in ks for k in (1, 5, 10)):
        out["R-Sum"] = out["R@1"] + out["R@5"] + out["R@10"]
    return out


def dual_softmax(sim: torch.Tensor, temperature: float = 100.0, dim: int = 0) -> torch.Tensor:
    """`sim * softmax(temperature * sim, dim)`; dim=0 is the text-to-video prior, dim=1 the video-to-text one."""
    return sim * torch.softmax(sim.float() * temperature, dim=dim).to(sim.dtype)


def retrieval_metrics(
    sim: torch.Tensor,
    text_to_video: torch.Tensor | None = None,
    ties: Ties = "pessimistic",
    dsl: bool = False,
    dsl_temperature: float = 100.0,
    ks: tuple[int, ...] = RECALL_KS,
) -> dict[str, dict[str, float]]:
    """{"t2v": {...}, "v2t": {...}} with R@K, MdR, MnR, R-Sum for a [num_texts, num_videos] similarity.

    text_to_video: the video of each caption (default: caption i describes video i, a square matrix).
    dsl: re-weight with the dual softmax before ranking (see the module docstring for the exact variant).
    """
    if text_to_video is None:
        if sim.dim() != 2 or sim.shape[0] != sim.shape[1]:
            raise ValueError(f"without text_to_video sim must be square, got shape {tuple(sim.shape)}")
        text_to_video = torch.arange(sim.shape[0], device=sim.device)
    t2v_sim = dual_softmax(sim, dsl_temperature, dim=0) if dsl else sim
    v2t_sim = dual_softmax(sim, dsl_temperature, dim=1) if dsl else sim
    return {
        "t2v": rank_metrics(t2v_ranks(t2v_sim, text_to_video, ties), ks),
        "v2t": rank_metrics(v2t_ranks(v2t_sim, text_to_video, ties), ks),
    }


def average_views(logits: torch.Tensor, num_views: int | None = None, mode: Literal["softmax", "logits"] = "softmax",
                  ) -> torch.Tensor:
    """Per-video scores [N, C] from per-view logits [N, V, C] (or [N * V, C] with `num_views`, views of one
    video adjacent, as `Collate` gives them after flattening [B, V, ...]).

    mode="softmax" averages the class probabilities over the views (the RLT / VideoMAE test protocol);
    mode="logits" averages the raw logits.
    """
    if logits.dim() == 2:
        if num_views is None:
            raise ValueError("[N * V, C] logits need num_views")
        if logits.shape[0] % num_views:
            raise ValueError(f"{logits.shape[0]} rows are not a multiple of num_views={num_views}")
        logits = logits.reshape(-1, num_views, logits.shape[-1])
    if logits.dim() != 3:
        raise ValueError(f"logits must be [N, V, C] or [N * V, C], got shape {tuple(logits.shape)}")
    if mode == "softmax":
        return torch.softmax(logits.float(), dim=-1).mean(dim=1)
    if mode == "logits":
        return logits.float().mean(dim=1)
    raise ValueError(f"mode must be 'softmax' or 'logits', got {mode!r}")


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """{"top1": %, "top5": %}: percent of rows whose label is among the k highest scores.

    A k above the number of classes counts every row as correct (top-5 of a 3-class problem is 100).
    Ties between the label's score and others are broken by `torch.topk` (arbitrary but deterministic).
    """
    if scores.dim() != 2 or labels.shape != (scores.shape[0],):
        raise ValueError(f"scores must be [N, C] and labels [N], got {tuple(scores.shape)} and {tuple(labels.shape)}")
    if scores.shape[0] == 0:
        raise ValueError("no rows to score")
    labels = labels.to(scores.device).long()
    top = scores.topk(min(max(ks), scores.shape[1]), dim=1).indices
    hits = top == labels[:, None]
    return {f"top{k}": 100.0 * float(hits[:, :k].any(dim=1).double().mean()) for k in ks}


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, num_views: int | None = None,
                           ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """top-k accuracy of [N, C], [N, V, C] or [N * V, C] logits (views averaged as softmax probabilities)."""
    if logits.dim() == 3 or num_views not in (None, 1):
        logits = average_views(logits, num_views)
    return topk_accuracy(logits, labels, ks)
