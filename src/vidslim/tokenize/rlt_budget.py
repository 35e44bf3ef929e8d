"""RLT with a fixed token budget: every clip keeps exactly k tubelets, those RLT's own difference score ranks
highest. The static-shape mode that `torch.export`, ONNX and compiled graphs need.

    model = vs.create_model("videomae-b16", num_classes=400, reduction=[vs.RLTBudget(keep=0.5)])
    model = vs.create_model("videomae-b16", reduction=[vs.RLTBudget(tokens=784)])      # an exact count

Threshold RLT (`vidslim.tokenize.rlt`) keeps however many tubelets change by more than tau, so the number of
tokens, and with it every shape after the patch embedding, depends on the pixels: a traced graph would freeze the
count of the example it was traced on. Here the count is fixed and the *choice* follows RLT:

- the score of a tubelet in temporal slot t >= 1 is RLT's (`vidslim.tokenize.rlt_mask.slot_scores`: the mean
  absolute difference between the last frame of slot t and the first frame of slot t-1 over the patch, on
  ImageNet-normalised pixels); slot 0 scores +inf, so, as in RLT, the first slot is always kept;
- each clip keeps its k highest-scored tubelets (ties go to the earlier one), embedded in raster order;
- each kept tubelet stands for the run of dropped tubelets after it at its (h, w), as in RLT: that run length is
  the token's size (ToMe's proportional attention, `pool="length"`) and indexes the optional length embedding.

When threshold RLT keeps exactly k tubelets of a clip (and no two scores tie at the cut), the budget keeps the
same ones: a budget is RLT with tau chosen per clip so that k tokens remain.

Differences from the paper: the paper has no budget mode (it proposes thresholding only); the count here is an
engineering knob for static shapes. Run lengths are computed with a comparison over slots instead of a reverse
cumulative minimum (ONNX has no cumulative minimum); `tests/export` checks they equal `run_length_map`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.io.input_spec import InputSpec
from vidslim.tokenize.rlt import channels_first, length_table
from vidslim.tokenize.rlt_mask import slot_scores
from vidslim.tokens.selection import PoolMode, Selection, TokenSelector, check_pool


def budget_scores(x: Tensor, tubelet: int, patch: int) -> Tensor:
    """RLT's score of every tubelet, [B, T'·H'·W'] in raster order, +inf in slot 0, from a normalised
    [B, C, T, H, W] clip."""
    later = slot_scores(x, tubelet, patch)  # [B, T'-1, H', W']
    first = torch.full_like(later[:, :1], float("inf"))
    return torch.cat((first, later), dim=1).flatten(1)


def keep_top(scores: Tensor, k: int) -> Tensor:
    """[B, k] int64: the k highest scores of each row, as column indices in ascending order (ties: lower index)."""
    best = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    return torch.sort(best, dim=1).values


def run_lengths_static(mask: Tensor) -> Tensor:
    """Run length at every kept slot of a keep mask bool [B, T', H', W'] whose slot 0 is all kept, 0 elsewhere.

    A slot's run id is the number of kept slots up to it; a run's length is how many slots share its id. Static
    shapes and ONNX-exportable ops only (O(T'^2) per location, T' is small).
    """
    run = torch.cumsum(mask.long(), dim=1)  # [B, T', H', W']
    same = run[:, :, None] == run[:, None, :]  # [B, T', T', H', W']
    return torch.where(mask, same.sum(dim=2), torch.zeros_like(run))


class RLTBudget(TokenSelector):
    """RLT with a fixed token budget (see the module docstring).

    keep:         fraction of each clip's tubelets kept (rounded), when `tokens` is not given
    tokens:       exact number of tubelets kept per clip (overrides keep)
    length_embed: add a learned embedding of the run length (as vs.RLT)
    pool:         'mean' over tokens or 'length', weighted by run length
    """

    def __init__(
        self,
        keep: float = 0.5,
        tokens: int | None = None,
        length_embed: bool = False,
        pool: PoolMode = "mean",
    ) -> None:
        super().__init__()
        if not 0.0 < float(keep) <= 1.0:
            raise ConfigError(f"RLTBudget(keep={keep}): keep is the fraction of tubelets kept, in (0, 1]")
        if tokens is not None and int(tokens) < 1:
            raise ConfigError(f"RLTBudget(tokens={tokens}): keep at least one tubelet per clip")
        self.keep = float(keep)
        self.tokens = None if tokens is None else int(tokens)
        self.use_length_embed = bool(length_embed)
        self.pool = check_pool(pool)
        self.length_embed: nn.Parameter | None = None

    def check_spec(self, spec: InputSpec) -> None:
        if spec.per_frame:
            raise ConfigError(
                "RLTBudget keeps k tubelets of a video model's clip; a per-frame model such as CLIP has no static "
                "per-clip budget: use a video ViT ('videomae-b16'), or vs.ToMe / vs.TempMe on CLIP"
            )

    def attach(self, model: nn.Module) -> None:
        """Check the model and create the length table [T', D] (std 0.02) when asked for."""
        spec: InputSpec = model.input_spec  # type: ignore[assignment]
        self.check_spec(spec)
        if self.use_length_embed and self.length_embed is None:
            self.length_embed = length_table(spec, int(model.token_dim))  # type: ignore[arg-type]

    def count(self, grid: tuple[int, int, int]) -> int:
        """Tubelets kept per clip on a (T', H', W') grid; a ConfigError when it cannot keep RLT's first slot."""
        slots, first = grid[0] * grid[1] * grid[2], grid[1] * grid[2]
        k = self.tokens if self.tokens is not None else round(self.keep * slots)
        if not first <= k <= slots:
            raise ConfigError(
                f"RLTBudget keeps {k} of the {slots} tubelets of a {grid} grid, but RLT always keeps the first slot's "
                f"{first}: ask for between {first} and {slots} (tokens=) or a keep fraction of at least "
                f"{first / slots:.3f}"
            )
        return k

    def select(self, video: Tensor, spec: InputSpec, token_mask: Tensor | None = None) -> Selection:
        """The k best tubelets of every clip: keep mask, their index [B, k], run lengths, length embeddings."""
        frames, height, width = spec.check(video)
        grid = spec.grid(frames, height, width)
        k = self.count(grid)
        with torch.no_grad():
            if token_mask is None:
                index = keep_top(budget_scores(channels_first(video, spec), spec.tubelet_size, spec.patch_size), k)
            else:  # a mask built earlier (select_frames in a data loader): it must hold the budget
                flat = token_mask.to(video.device).bool().flatten(1)
                if tuple(token_mask.shape) != (video.shape[0], *grid) or not bool((flat.sum(1) == k).all()):
                    raise ConfigError(f"RLTBudget: token_mask must be [B, {', '.join(map(str, grid))}] with exactly "
                                      f"{k} True per clip; build it with the same RLTBudget (select_frames)")
                index = keep_top(flat.float(), k)
            flat_mask = torch.zeros(video.shape[0], grid[0] * grid[1] * grid[2], dtype=torch.bool, device=index.device)
            mask = flat_mask.scatter(1, index, True).view(video.shape[0], *grid)
            lengths = run_lengths_static(mask)
        extra = None
        if self.length_embed is not None:
            extra = self.length_embed[lengths.flatten(1).gather(1, index).reshape(-1) - 1]
        return Selection(mask, size=lengths, extra=extra, index=index)

    def select_frames(self, frames: Tensor, spec: InputSpec) -> Tensor:
        """The budget's keep mask of decoded uint8 frames [B, T, H, W, C] (prepared with the model's spec)."""
        return self.select(spec.prepare(frames, device=frames.device), spec).keep

    def extra_repr(self) -> str:
        what = f"tokens={self.tokens}" if self.tokens is not None else f"keep={self.keep}"
        return f"{what}, length_embed={self.use_length_embed}, pool={self.pool!r}"
