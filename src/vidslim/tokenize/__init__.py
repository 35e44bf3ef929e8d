"""Before-the-model reducers: which patches or tubelets of a clip become tokens (RLT, random masking). Each is a
`TokenSelector`: pixels and the model's input spec in, a keep mask and run lengths out; the model embeds the kept
slots itself. Names load lazily.

    from vidslim.tokenize import RLT, keep_mask_uint8
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidslim._lazy import lazy_exports

if TYPE_CHECKING:  # the public names: what IDEs read; at run time each module is imported on first use
    from vidslim.tokenize.frame_rlt import frame_keep_mask as frame_keep_mask
    from vidslim.tokenize.random_mask import random_keep_mask as random_keep_mask
    from vidslim.tokenize.rlt import RLT as RLT
    from vidslim.tokenize.rlt import RandomMask as RandomMask
    from vidslim.tokenize.rlt_budget import RLTBudget as RLTBudget
    from vidslim.tokenize.rlt_mask import keep_mask as keep_mask
    from vidslim.tokenize.rlt_mask import keep_mask_uint8 as keep_mask_uint8
    from vidslim.tokenize.run_length import run_length_map as run_length_map
    from vidslim.tokenize.run_length import run_lengths as run_lengths

__getattr__, __dir__, __all__ = lazy_exports(__name__)
