"""Tasks: what a model is trained and evaluated for (retrieval, classification) and how it is scored.

`vidslim.tasks.metrics` holds the metrics as pure tensor functions: retrieval R@K / MdR / MnR / R-Sum for
text-to-video and video-to-text (several captions per video, tie handling, optional dual softmax) and
classification top-k with multi-view averaging. `retrieval` and `classification` hold the losses and the task
objects the training loop drives. Names load lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidslim._lazy import lazy_exports

if TYPE_CHECKING:  # the public names: what IDEs read; at run time each module is imported on first use
    from vidslim.tasks.classification import ClassificationTask as ClassificationTask
    from vidslim.tasks.classification import classification_loss as classification_loss
    from vidslim.tasks.metrics import average_views as average_views
    from vidslim.tasks.metrics import classification_metrics as classification_metrics
    from vidslim.tasks.metrics import dual_softmax as dual_softmax
    from vidslim.tasks.metrics import rank_metrics as rank_metrics
    from vidslim.tasks.metrics import retrieval_metrics as retrieval_metrics
    from vidslim.tasks.metrics import t2v_ranks as t2v_ranks
    from vidslim.tasks.metrics import topk_accuracy as topk_accuracy
    from vidslim.tasks.metrics import v2t_ranks as v2t_ranks
    from vidslim.tasks.retrieval import LN100 as LN100
    from vidslim.tasks.retrieval import RetrievalTask as RetrievalTask
    from vidslim.tasks.retrieval import contrastive_loss as contrastive_loss
    from vidslim.tasks.retrieval import gather_no_grad as gather_no_grad
    from vidslim.tasks.retrieval import gather_with_grad as gather_with_grad

__getattr__, __dir__, __all__ = lazy_exports(__name__)
