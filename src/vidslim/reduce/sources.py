"""Source tracing: which original tokens every current token covers, through merges and regroupings.

ToMe keeps a 0/1 matrix [S, N, N0] per sequence and merges it with `amax`. That matrix cannot follow TempMe's
ClipMe layers, which join sequences (the release crashes there, spec tempme §6.2-1), and it grows with N·N0.
vidslim keeps the inverse instead: for every original token (in the packed order the first block saw) the packed
index of the current token that covers it. A merge moves every token to a slot (`Merge.destinations`) and a
regrouping permutes tokens; both compose by indexing, `index = moved[index]`, whatever the sequences look like.
The 0/1 matrix is one `one_hot` away when a picture needs it.

Where the original tokens sit is recorded too when the reducer knows it (`pos0`, the first block's `Tokens.pos`):
after RLT the original layout is ragged (each frame keeps the patches that changed), so positions cannot be
re-derived from the sequence lengths, and `vidslim.viz.merge` reads them from here.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor


@dataclasses.dataclass(frozen=True)
class SourceMap:
    """index [total0] int64: the current packed token that covers each original token; `seqlens0` the original
    layout (one sequence per frame for CLIP, per video for the video ViT); `pos0` [total0, 3] the original tokens'
    (t, h, w) positions (NO_POSITION for CLS tokens), None when unknown; `videos` the videos in the batch, None when
    unknown."""

    index: Tensor
    seqlens0: tuple[int, ...]
    pos0: Tensor | None = None
    videos: int | None = None

    @classmethod
    def identity(
        cls, seqlens: tuple[int, ...], device: torch.device, pos: Tensor | None = None, videos: int | None = None
    ) -> SourceMap:
        """Every token covers itself (before the first merge); `pos` ([total, 3] `Tokens.pos`) and `videos` (the
        batch size) are recorded when given."""
        if pos is not None and pos.shape[0] != sum(seqlens):
            raise ValueError(f"pos has {pos.shape[0]} rows for {sum(seqlens)} tokens")
        return cls(torch.arange(sum(seqlens), device=device), tuple(seqlens), pos, videos)

    def moved(self, destination: Tensor) -> SourceMap:
        """Follow one step that sends current token i to packed position destination[i] (a merge sends several
        tokens to one position; a regrouping is a permutation)."""
        return dataclasses.replace(self, index=destination[self.index])

    def matrix(self, num_tokens: int) -> Tensor:
        """[num_tokens, total0] bool: row j marks the original tokens current token j covers."""
        return torch.nn.functional.one_hot(self.index, num_tokens).t().bool()

    def sizes(self, num_tokens: int) -> Tensor:
        """[num_tokens] how many original tokens each current token covers (equals `Tokens.size` after merges)."""
        return torch.bincount(self.index, minlength=num_tokens)
