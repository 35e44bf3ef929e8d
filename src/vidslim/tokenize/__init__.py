"""Before-the-model reducers: which patches or tubelets of a clip become tokens (RLT, random masking). Each is a
`TokenSelector`: pixels and the model's input spec in, a keep mask and run lengths out; the model embeds the kept
slots itself. Names load lazily.

    from vidslim.tokenize import RLT, keep_mask_uint8
"""

from __future__ import annotations

from vidslim._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "RLT": "vidslim.tokenize.rlt",
    "RandomMask": "vidslim.tokenize.rlt",
    "RLTBudget": "vidslim.tokenize.rlt_budget",
    "keep_mask": "vidslim.tokenize.rlt_mask",
    "keep_mask_uint8": "vidslim.tokenize.rlt_mask",
    "frame_keep_mask": "vidslim.tokenize.frame_rlt",
    "random_keep_mask": "vidslim.tokenize.random_mask",
    "run_length_map": "vidslim.tokenize.run_length",
    "run_lengths": "vidslim.tokenize.run_length",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
