"""Tasks: what a model is trained and evaluated for (retrieval, classification) and how it is scored.

`vidslim.tasks.metrics` holds the metrics as pure tensor functions: retrieval R@K / MdR / MnR / R-Sum for
text-to-video and video-to-text (several captions per video, tie handling, optional dual softmax) and
classification top-k with multi-view averaging. `retrieval` and `classification` hold the losses and the task
objects the training loop drives. Names load lazily.
"""

from __future__ import annotations

from vidslim._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "retrieval_metrics": "vidslim.tasks.metrics",
    "t2v_ranks": "vidslim.tasks.metrics",
    "v2t_ranks": "vidslim.tasks.metrics",
    "rank_metrics": "vidslim.tasks.metrics",
    "dual_softmax": "vidslim.tasks.metrics",
    "average_views": "vidslim.tasks.metrics",
    "topk_accuracy": "vidslim.tasks.metrics",
    "classification_metrics": "vidslim.tasks.metrics",
    "RetrievalTask": "vidslim.tasks.retrieval",
    "contrastive_loss": "vidslim.tasks.retrieval",
    "gather_with_grad": "vidslim.tasks.retrieval",
    "gather_no_grad": "vidslim.tasks.retrieval",
    "LN100": "vidslim.tasks.retrieval",
    "ClassificationTask": "vidslim.tasks.classification",
    "classification_loss": "vidslim.tasks.classification",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
