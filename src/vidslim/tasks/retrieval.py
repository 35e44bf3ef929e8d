"""Text-video retrieval: the symmetric contrastive (InfoNCE) loss, gathered across ranks, and the task object.

Loss (spec tempme §1.10, CLIP / CLIP4Clip). With L2-normalised text and video embeddings t̂ [B, D], v̂ [B, D]
and a scale s = exp(logit_scale),

    logits = s · t̂ v̂ᵀ                                    [B_text, B_video]
    loss   = ½ · (CE(logits, diag) + CE(logitsᵀ, diag))   CE = mean over rows of -log softmax at the target

`positive_ids` (optional) makes every pair with the same id a positive (SViTT's `get_mask`): the target of a
row is then uniform over its positives instead of one-hot. Without it, a video that occurs twice in a batch is
a negative of itself, as in TempMe / CLIP4Clip.

Several processes. The features of every rank are all-gathered (`gather_with_grad`) so each rank scores the
global batch, and the gradient flows back to the local slice only. The backward of the gather *sums* the
incoming gradient over ranks before slicing. Why: rank r's parameters receive Σ_k ∂L_k/∂F_r (L_k the loss
rank k computed, F_r rank r's features); DDP then averages over ranks, giving d/dθ of mean_k L_k. When
every rank computes the same global loss L (the default) that is exactly dL/dθ, the gradient one process
gets with the same global batch. TempMe's `AllGather` returns the local slice without the sum, which makes
the DDP gradient W times too small (harmless for Adam, not for gradient clipping). `local_loss=True` scores
only the local rows and columns against the gathered ones (B_local x B_global instead of B_global²) and
weights each rank's part so that mean_k L_k is still the global loss: same value in expectation of ranks,
same gradient, less compute.

A model whose text embedding depends on the video (X-CLIP prompts each text with each video) defines
`retrieval_cosine(text_emb, video_emb) -> [N_text, N_video]`; when it does, that function replaces the cosine of
the normalised embeddings in the loss and in evaluation (the embeddings are then passed to it as the model gave
them, not normalised here). That is the one hook: the scale, the targets and the metrics are the same.

The temperature is the model's `logit_scale` (CLIP, TempMe: ln 100, trainable or not as the model decides),
or owned by the task: fixed, or learnable (SViTT: 0.07 learnable, i.e. ln(1/0.07)). It is clamped at
`max_logit_scale` (ln 100) in the loss and, in place, after each optimiser step (`after_step`), like CLIP.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.models.base import VideoTextModel
from vidslim.tasks.metrics import retrieval_metrics

LN100 = math.log(100.0)


def _world() -> tuple[int, int]:
    """(rank, world size) of the default process group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_gather_rows(x: Tensor, sizes: Sequence[int]) -> Tensor:
    """Concatenate the rows of every rank's `x` (rank order); rows per rank may differ (padded on the wire)."""
    largest = max(sizes)
    padded = x if x.shape[0] == largest else torch.cat([x, x.new_zeros(largest - x.shape[0], *x.shape[1:])])
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:n] for p, n in zip(parts, sizes, strict=True)])


def _row_counts(n: int, device: torch.device) -> list[int]:
    """Rows on every rank (one small all_gather)."""
    _, world = _world()
    counts = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(world)]
    dist.all_gather(counts, torch.tensor([n], dtype=torch.long, device=device))
    return [int(c) for c in counts]



def _valid(batch: dict[str, Any]) -> Tensor:
    """uint8 [B]: 1 for items whose video loaded (a blank stand-in for a broken video gives 0)."""
    valid = batch.get("valid")
    if valid is None:
        return torch.ones(len(batch["video"]), dtype=torch.uint8, device=batch["video"].device)
    return valid.to(torch.uint8)

class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums the gradient over ranks and returns this rank's rows (see module doc)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, sizes: tuple[int, ...], rank: int) -> Tensor:  # type: ignore[override]
        ctx.start = sum(sizes[:rank])
        ctx.size = sizes[rank]
        return _all_gather_rows(x, sizes)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start : ctx.start + ctx.size], None, None


def gather_with_grad(x: Tensor) -> tuple[Tensor, int]:
    """Rows of `x` from every rank, concatenated in rank order, differentiable w.r.t. the local rows.

    Returns (gathered, offset of this rank's rows). Without a process group: (x, 0).
    """
    rank, world = _world()
    if world == 1:
        return x, 0
    sizes = tuple(_row_counts(x.shape[0], x.device))
    return _GatherWithGrad.apply(x, sizes, rank), sum(sizes[:rank])


def gather_no_grad(x: Tensor) -> Tensor:
    """Rows of `x` from every rank in rank order, without gradient (ids, labels)."""
    _, world = _world()
    if world == 1:
        return x
    return _all_gather_rows(x.detach(), _row_counts(x.shape[0], x.device))


def _soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean over rows of -Σ_j target_j · log softmax(logits)_j (targets rows sum to 1)."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def contrastive_loss(
    text_emb: Tensor,
    video_emb: Tensor,
    logit_scale: Tensor | float,
    positive_ids: Tensor | None = None,
    gather: bool = True,
    local_loss: bool = False,
    normalize: bool = True,
    cosine: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> Tensor:
    """Symmetric InfoNCE over [B, D] text and video embeddings of B matching pairs (see the module doc).

    logit_scale: the log of the scale (CLIP's parameter; ln 100 gives logits 100·cos). positive_ids: [B] ids,
    equal ids are positives of each other. gather: score against every rank's pairs. local_loss: only this
    rank's rows and columns (same global loss, same gradient, less compute). Computed in float32.
    cosine: the model's `retrieval_cosine(texts, videos) -> [N_text, N_video]` in place of t̂ v̂ᵀ (the
    embeddings are then not normalised here, and a video embedding may have any shape [B, ...]).
    """
    pairs = text_emb.shape[0] == video_emb.shape[0] if cosine is not None else text_emb.shape == video_emb.shape
    if text_emb.dim() != 2 or not pairs:
        raise ConfigError(f"contrastive_loss: text and video embeddings must both be [B, D] pairs, got "
                          f"{tuple(text_emb.shape)} and {tuple(video_emb.shape)}")
    t = text_emb.float()
    v = video_emb.float()
    score: Callable[[Tensor, Tensor], Tensor] = (lambda a, b: a @ b.t()) if cosine is None else cosine
    if normalize and cosine is None:
        t = F.normalize(t, dim=-1)
        v = F.normalize(v, dim=-1)
    scale = torch.as_tensor(logit_scale, dtype=torch.float32, device=t.device).exp()
    local_n = t.shape[0]
    offset = 0
    ids = positive_ids
    if gather:
        t_all, offset = gather_with_grad(t)
        v_all, _ = gather_with_grad(v)
        if ids is not None:
            ids = gather_no_grad(ids.to(t.device))
    else:
        t_all, v_all = t, v
    total = t_all.shape[0]
    if ids is None:
        eye = torch.eye(total, device=t.device, dtype=torch.float32)
    else:
        eye = (ids[:, None] == ids[None, :]).float()
        eye = eye / eye.sum(1, keepdim=True)  # symmetric; each row (and column) spreads 1 over its positives
    if local_loss and total != local_n:
        rows = slice(offset, offset + local_n)
        t2v = scale * score(t_all[rows], v_all)  # local texts against every video
        v2t = scale * score(t_all, v_all[rows]).t()  # local videos against every text
        loss = 0.5 * (_soft_cross_entropy(t2v, eye[rows]) + _soft_cross_entropy(v2t, eye[rows]))
        _, world = _world()
        return loss * (local_n * world / total)  # mean over ranks of these is the global loss
    logits = scale * score(t_all, v_all)
    if ids is None:
        target = torch.arange(total, device=t.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
    return 0.5 * (_soft_cross_entropy(logits, eye) + _soft_cross_entropy(logits.t(), eye))


def model_cosine(model: nn.Module) -> Callable[[Tensor, Tensor], Tensor] | None:
    """The model's own text-video cosine (`retrieval_cosine`, see the module doc), or None for the plain one."""
    cosine = getattr(model, "retrieval_cosine", None)
    return cosine if callable(cosine) else None


def _embeddings(model: nn.Module, emb: Tensor) -> Tensor:
    """Embeddings as evaluation keeps them: float, normalised unless the model scores them itself."""
    return emb.float() if model_cosine(model) is not None else F.normalize(emb.float(), dim=-1)


def _require_video_text(model: nn.Module) -> VideoTextModel:
    if not isinstance(model, VideoTextModel):
        raise ConfigError(
            f"RetrievalTask needs a vision-text model with encode_video and encode_text; {type(model).__name__} "
            "has not both (use a CLIP-family model)"
        )
    return model


class RetrievalTask(nn.Module):
    """Text-video retrieval for `vidslim.train`: contrastive training and R@K / MdR / MnR evaluation.

    The model needs `encode_video(video) -> [B, D]` and `encode_text(list[str]) -> [B, D]`.
    logit_scale: None uses `model.logit_scale` (a log scale, CLIP's parameter); a number is the task's own log
    scale, fixed or, with learnable=True, a parameter trained with the model. max_logit_scale: clamp (None: off).
    same_video_positives: captions of the same video (`batch["video_index"]`) are positives of each other.
    dsl: dual-softmax re-ranking at evaluation (reported next to nothing else; see `tasks.metrics`).
    """

    def __init__(
        self,
        logit_scale: float | None = None,
        learnable: bool = False,
        max_logit_scale: float | None = LN100,
        gather: bool = True,
        local_loss: bool = False,
        same_video_positives: bool = False,
        dsl: bool = False,
        text_batch_size: int = 256,
    ) -> None:
        super().__init__()
        if logit_scale is None and learnable:
            raise ConfigError("RetrievalTask: learnable=True needs a logit_scale to start from (e.g. "
                              "math.log(1 / 0.07)); with logit_scale=None the model's own parameter is used")
        self.fixed_scale = logit_scale if not learnable else None
        self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale))) if learnable else None
        self.max_logit_scale = max_logit_scale
        self.gather = gather
        self.local_loss = local_loss
        self.same_video_positives = same_video_positives
        self.dsl = dsl
        self.text_batch_size = text_batch_size

    def scale_param(self, model: nn.Module) -> Tensor | float:
        """The log scale used now: the task's parameter or number, or the model's `logit_scale`."""
        if self.logit_scale is not None:
            return self.logit_scale
        if self.fixed_scale is not None:
            return self.fixed_scale
        scale = getattr(model, "logit_scale", None)
        if not isinstance(scale, Tensor):
            raise ConfigError(f"RetrievalTask(logit_scale=None) uses model.logit_scale, which "
                              f"{type(model).__name__} lacks; pass a number, e.g. logit_scale=math.log(100)")
        return scale

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """Contrastive loss of one batch of (video, caption) pairs, plus what to log."""
        video_text = _require_video_text(model)
        video_emb, text_emb = video_text.encode_video(batch["video"]), video_text.encode_text(batch["text"])
        scale = self.scale_param(model)
        if isinstance(scale, Tensor) and self.max_logit_scale is not None:
            scale = scale.clamp(max=self.max_logit_scale)
        ids = batch.get("video_index") if self.same_video_positives else None
        loss = contrastive_loss(text_emb, video_emb, scale, ids, gather=self.gather, local_loss=self.local_loss,
                                cosine=model_cosine(model))
        return loss, {"logit_scale": torch.as_tensor(scale).detach().float()}

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        """Clamp a trainable log scale in place after the optimiser step (CLIP's rule)."""
        if self.max_logit_scale is None:
            return
        scale = self.scale_param(model)
        if isinstance(scale, nn.Parameter) and scale.requires_grad:
            scale.clamp_(max=self.max_logit_scale)

    def eval_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Per-item embeddings: videos, and texts when the batch holds (video, caption) pairs."""
        out = {"video_emb": _embeddings(model, model.encode_video(batch["video"])), "valid": _valid(batch)}
        if "text" in batch:
            out["text_emb"] = _embeddings(model, model.encode_text(batch["text"]))
        if "video_index" in batch:
            out["video_index"] = batch["video_index"]
        return out

    def eval_metrics(
        self,
        model: nn.Module,
        outputs: dict[str, Tensor],
        dataset: Any,
        *,
        gather: Callable[[dict[str, Tensor]], dict[str, Tensor]],
        rank: int,
        world_size: int,
    ) -> dict[str, float]:
        """R@K / MdR / MnR both ways from the gathered embeddings (dataset order).

        Pair data (each item a caption and its video): the similarity is captions x distinct videos.
        Video data (`dataset.unit == "video"`, several captions per video): the captions of
        `dataset.captions` are encoded here, split across ranks, and mapped by `dataset.text_to_video`.
        """
        videos = outputs["video_emb"]
        if "text_emb" in outputs:
            texts = outputs["text_emb"]
            if "video_index" in outputs:
                vid = outputs["video_index"].long()
                distinct, text_to_video = torch.unique(vid, return_inverse=True)
                first = torch.full((len(distinct),), len(vid), dtype=torch.long, device=vid.device)
                first = first.scatter_reduce(0, text_to_video, torch.arange(len(vid), device=vid.device), "amin")
                videos = videos[first]
            else:
                text_to_video = torch.arange(len(texts), device=texts.device)
        else:
            captions = list(getattr(dataset, "captions", []))
            mapping = getattr(dataset, "text_to_video", None)
            if not captions or mapping is None:
                raise ConfigError("retrieval evaluation over videos needs a dataset with `captions` and "
                                  "`text_to_video` (vidslim.data.RetrievalDataset with unit='video')")
            lo, hi = len(captions) * rank // world_size, len(captions) * (rank + 1) // world_size
            mine = [model.encode_text(captions[i : min(i + self.text_batch_size, hi)]).float()
                    for i in range(lo, hi, self.text_batch_size)]
            local = torch.cat(mine) if mine else videos.new_zeros(0, videos.shape[-1])
            texts = gather({"text_emb": _embeddings(model, local)})["text_emb"]
            text_to_video = torch.as_tensor(mapping, device=texts.device)
        cosine = model_cosine(model)
        videos = videos.to(texts.device)
        sim = texts @ videos.t() if cosine is None else cosine(texts, videos).float()
        result = retrieval_metrics(sim, text_to_video, dsl=self.dsl)
        flat = {f"{direction}/{name}": value for direction, row in result.items() for name, value in row.items()}
        flat["num_texts"] = float(sim.shape[0])
        flat["num_videos"] = float(sim.shape[1])
        flat["invalid_videos"] = float((outputs["valid"] == 0).sum())
        return flat


__all__ = ["LN100", "RetrievalTask", "contrastive_loss", "gather_no_grad", "gather_with_grad", "model_cosine"]
