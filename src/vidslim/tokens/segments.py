"""Reductions over the sequences of a packed tensor: rows [total, ...] with a sequence index per row."""

from __future__ import annotations

from torch import Tensor


def segment_softmax(logits: Tensor, seq: Tensor, num_seqs: int) -> Tensor:
    """Softmax of logits [total, H] within each sequence (seq [total] gives each row's sequence), per column.

    One scatter of the per-sequence maximum, one exp, one scatter of the sums: no Python loop over sequences.
    """
    heads = logits.shape[1]
    index = seq[:, None].expand(-1, heads)
    peak = logits.new_full((num_seqs, heads), float("-inf")).scatter_reduce(0, index, logits, reduce="amax")
    weights = (logits - peak[seq]).exp()
    norm = weights.new_zeros(num_seqs, heads).index_add_(0, seq, weights)
    return weights / norm[seq]
