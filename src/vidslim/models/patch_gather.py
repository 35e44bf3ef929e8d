"""Read only the patches (or tubelets) a before-the-model reducer keeps, straight out of the video.

A patch embedding applied to kept patches alone needs those patches as rows [K, C·p·p]. Cutting the whole video
into patches first (a permute, then a reshape) copies every pixel, kept or not; advanced indexing on the permuted
view avoids that copy but walks the view one element at a time. `gather_blocks` reads each kept patch as runs of
its last dimension instead: in a contiguous video one patch is C·p rows of p neighbouring pixels, so a single
`index_select` over "rows of p pixels" of the video's storage fetches exactly the kept patches, in the order a
Conv2d / Conv3d weight flattens them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def gather_blocks(view: Tensor, index: Sequence[Tensor]) -> Tensor:
    """`view[index]` flattened to rows [K, block]: the blocks picked by K indices into the leading `len(index)`
    dimensions of `view`, each block being the remaining dimensions in order.

    `view` is typically a permuted reshape of a contiguous video ([frames, H', W', C, p, p] for patches); it is
    never copied. Where its last dimension is contiguous and every other stride is a multiple of that run (any
    such view of a contiguous video), the blocks are gathered as runs of that length; otherwise plain advanced
    indexing gives the same rows.
    """
    lead = len(index)
    k = index[0].numel()
    block = math.prod(view.shape[lead:])
    strides = view.stride()
    run = view.shape[-1] if view.dim() > lead else 0
    runs_ok = (
        run > 0
        and view.numel() > 0
        and strides[-1] == 1
        and view.storage_offset() % run == 0
        and all(s % run == 0 for s, n in zip(strides[:-1], view.shape[:-1], strict=True) if n > 1)
    )
    if not runs_ok:
        return view[tuple(index)].reshape(k, block)
    device = view.device
    step = [s // run for s in strides]  # strides counted in runs
    first = view.storage_offset() // run + sum(i.to(device, torch.long) * s for i, s in zip(index, step, strict=False))
    inner = torch.zeros((), dtype=torch.long, device=device)
    for n, s in zip(view.shape[lead:-1], step[lead:-1], strict=True):  # the runs of one block, in order
        inner = inner[..., None] + torch.arange(n, device=device) * s
    end = view.storage_offset() + sum((n - 1) * s for n, s in zip(view.shape, strides, strict=True)) + 1
    runs = view.as_strided((end // run, run), (run, 1), 0)  # the storage as rows of `run` elements
    rows = first[:, None] + inner.reshape(1, -1)  # [K, runs per block]
    return runs.index_select(0, rows.reshape(-1)).view(k, block)


__all__ = ["gather_blocks"]
