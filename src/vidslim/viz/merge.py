"""The ToMe / TempMe figure: which original patches ended up in one token, as colour regions over the frames.

A merging reducer built with `trace_source=True` keeps a `vidslim.reduce.sources.SourceMap`: for every original
token (in the packed order the first block saw) the final token that covers it. `group_map` turns that into a
map over one video's patch grid, and `draw_merge_groups` paints it:

- every final token that covers two or more original patches is a *group* and gets one colour of
  `vidslim.viz.draw.palette`, alpha-blended over the frame (`draw.blend`), so the content stays visible. Groups are
  numbered in raster order of the first patch they cover, so the colours do not depend on token order;
- a token TempMe's ClipMe merged across frames covers patches of several frames: it has the same colour in each;
- singletons (a patch whose token covers it alone) are left unpainted: their pixels are the frame's. Tinting them
  would only add noise; the unpainted area is exactly what was not merged;
- with `outlines`, a `GROUP_EDGE` line on the inside edge of a painted patch wherever its neighbour in the same
  frame belongs to another group (or to none), so neighbouring groups of similar colour stay apart;
- CLS tokens (CLIP has one per frame in the packed sequences) are never on the pixel grid: they are skipped;
- patches that never became tokens (dropped before the model by RLT, `vs.RLT` on CLIP or the video ViT) are
  greyed with `vidslim.viz.draw.grey_out`, as `vidslim.viz.rlt` draws a keep mask, so one picture shows what was
  dropped (grey) and what was merged (colours); kept patches that stayed alone keep the frame's pixels.

Where the original tokens sat comes from the source map (`SourceMap.pos0`, recorded by TempMe from the first
block's token positions), from `positions=`, or, for the dense layouts, from the sequence lengths alone.

    model = vs.create_model("clip-b16", reduction=[vs.TempMe.paper("clip-b16")])
    drawn = draw_model_merges(model, frames)          # frames uint8 [T, 224, 224, 3] -> drawn uint8 [T, 224, 224, 3]
    save_frames(drawn, "tempme.png", title="TempMe merge groups")
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vidslim.errors import ConfigError, TokenLayoutError
from vidslim.reduce.sources import SourceMap
from vidslim.tokens import NO_POSITION
from vidslim.viz.draw import GROUP_EDGE, alpha_256, blend, cell_edges, grey_out, paint, palette
from vidslim.viz.rlt import to_pixels


def as_frames(frames: Tensor | np.ndarray, where: str) -> Tensor:
    """frames as a uint8 [T, H, W, 3] tensor; a TokenLayoutError naming `where` otherwise."""
    frames = frames if isinstance(frames, Tensor) else torch.from_numpy(np.asarray(frames))
    if frames.dim() != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
        raise TokenLayoutError(f"{where}: frames must be uint8 [T, H, W, 3], got {frames.dtype} {tuple(frames.shape)}")
    return frames


def frame_grid(frames: Tensor, patch: int, tubelet: int, where: str) -> tuple[int, int, int]:
    """The (t, h, w) token grid of frames [T, H, W, 3] cut into tubelet x patch x patch cells (an error if uneven)."""
    t, height, width = frames.shape[:3]
    if patch < 1 or tubelet < 1 or t % tubelet or height % patch or width % patch:
        raise TokenLayoutError(
            f"{where}: frames of {t} x {height} x {width} do not split into cells of tubelet={tubelet} x "
            f"patch={patch} x {patch}; pass the frames the model ran on and its patch and tubelet sizes"
        )
    return t // tubelet, height // patch, width // patch


def original_positions(seqlens0: tuple[int, ...], grid: tuple[int, int, int], cls_tokens: int) -> tuple[Tensor, int]:
    """(pos [total0, 3], sequences per video) of the dense layouts: one sequence per frame [CLS, h·w patches]
    (CLIP) or one per video [CLS, t·h·w patches] (the video ViT, cls_tokens=0); patches in raster order."""
    t, h, w = grid
    per_frame, per_video = cls_tokens + h * w, cls_tokens + t * h * w
    if seqlens0 and all(n == per_frame for n in seqlens0) and len(seqlens0) % t == 0:
        cells = torch.stack(torch.meshgrid(*(torch.arange(n) for n in (h, w)), indexing="ij"), -1).reshape(-1, 2)
        frame = torch.arange(len(seqlens0)) % t
        grid_pos = torch.cat((frame[:, None, None].expand(-1, h * w, 1), cells.expand(len(seqlens0), -1, -1)), -1)
        spv = t
    elif seqlens0 and all(n == per_video for n in seqlens0):
        axes = torch.meshgrid(*(torch.arange(n) for n in (t, h, w)), indexing="ij")
        grid_pos = torch.stack(axes, -1).reshape(1, -1, 3).expand(len(seqlens0), -1, -1)
        spv = 1
    else:
        raise TokenLayoutError(
            f"the source map's original layout {seqlens0[:6]}{'...' if len(seqlens0) > 6 else ''} is neither "
            f"{per_frame} tokens per frame nor {per_video} per video for a {t}x{h}x{w} grid with {cls_tokens} CLS; "
            "pass the frames, patch, tubelet and cls_tokens the model ran with, or positions= for other layouts"
        )
    cls = torch.full((grid_pos.shape[0], cls_tokens, 3), NO_POSITION, dtype=torch.int64)
    return torch.cat((cls, grid_pos.long()), 1).reshape(-1, 3), spv


def token_layout(
    sources: SourceMap,
    grid: tuple[int, int, int],
    cls_tokens: int = 1,
    positions: Tensor | None = None,
    sequences_per_video: int | None = None,
) -> tuple[Tensor, int]:
    """(positions [total0, 3] int64 on the CPU, original sequences per video) of a source map's original tokens:
    `positions` when given, else the recorded `sources.pos0` (its `videos` splitting the sequences; one video when
    unknown), else the dense layouts derived from the lengths (`original_positions`)."""
    if positions is None and sources.pos0 is not None:
        positions = sources.pos0
        if sequences_per_video is None:
            videos, sequences = sources.videos or 1, len(sources.seqlens0)
            if sequences % videos:
                raise TokenLayoutError(f"the source map holds {sequences} sequences for {videos} videos")
            sequences_per_video = sequences // videos
    if positions is None:
        return original_positions(sources.seqlens0, grid, cls_tokens)
    if tuple(positions.shape) != (sources.index.shape[0], 3):
        raise TokenLayoutError(f"positions must be [{sources.index.shape[0]}, 3], got {tuple(positions.shape)}")
    return positions.cpu().long(), int(sequences_per_video or 1)


def _video_tokens(
    sources: SourceMap,
    grid: tuple[int, int, int],
    cls_tokens: int,
    video: int,
    positions: Tensor | None,
    sequences_per_video: int | None,
) -> tuple[Tensor, Tensor]:
    """(flat cell index [K], final token [K]) of the K original patch tokens of video `video` (CLS left out)."""
    positions, spv = token_layout(sources, grid, cls_tokens, positions, sequences_per_video)
    index = sources.index.cpu()
    lengths = torch.tensor(sources.seqlens0)
    seq = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
    videos = max(len(lengths) // max(spv, 1), 1)
    if not 0 <= video < videos:
        raise ConfigError(f"video={video}: the source map holds {videos} video(s); pick one of 0..{videos - 1}")
    _, h, w = grid
    chosen = (seq // spv == video) & ~(positions == NO_POSITION).any(-1)
    pos = positions[chosen]
    return pos[:, 0] * (h * w) + pos[:, 1] * w + pos[:, 2], index[chosen]


def group_map(
    sources: SourceMap,
    grid: tuple[int, int, int],
    cls_tokens: int = 1,
    video: int = 0,
    positions: Tensor | None = None,
    sequences_per_video: int | None = None,
) -> Tensor:
    """int64 [t, h, w]: the merge group of every patch of video `video` (0..G-1), -1 for unmerged patches (and
    patches that never became tokens: see `covered_map`).

    A group is a final token covering two or more of the video's original patches; groups are numbered in
    raster order of their first patch. positions: [total0, 3] (t, h, w) of the original tokens (NO_POSITION
    for CLS) with `sequences_per_video` original sequences per video, for layouts other than the dense ones;
    by default the positions the reducer recorded (`sources.pos0`), if any (`token_layout`).
    """
    flat, group = _video_tokens(sources, grid, cls_tokens, video, positions, sequences_per_video)
    t, h, w = grid
    groups, inverse, counts = torch.unique(group, return_inverse=True, return_counts=True)
    first = torch.full((groups.shape[0],), t * h * w, dtype=torch.int64).scatter_reduce(0, inverse, flat, "amin")
    multi = counts > 1
    order = torch.argsort(torch.where(multi, first, first + t * h * w))  # multi-patch groups first, by first cell
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.shape[0])
    label = torch.where(multi[inverse], rank[inverse], torch.full_like(flat, -1))
    cells = torch.full((t * h * w,), -1, dtype=torch.int64)
    cells[flat] = label
    return cells.view(t, h, w)


def covered_map(
    sources: SourceMap,
    grid: tuple[int, int, int],
    cls_tokens: int = 1,
    video: int = 0,
    positions: Tensor | None = None,
    sequences_per_video: int | None = None,
) -> Tensor:
    """bool [t, h, w]: True on the cells where one of video `video`'s original tokens sat, False on the patches
    dropped before the model (RLT). Every cell is covered in the dense layouts. Arguments as in `group_map`."""
    flat, _ = _video_tokens(sources, grid, cls_tokens, video, positions, sequences_per_video)
    covered = torch.zeros(grid[0] * grid[1] * grid[2], dtype=torch.bool)
    covered[flat] = True
    return covered.view(grid)


def draw_merge_groups(
    frames: Tensor | np.ndarray,
    sources: SourceMap,
    patch: int = 16,
    tubelet: int = 1,
    cls_tokens: int = 1,
    video: int = 0,
    alpha: float = 0.5,
    outlines: bool = True,
    positions: Tensor | None = None,
    sequences_per_video: int | None = None,
) -> Tensor:
    """Paint the merge groups of one video over its frames: uint8 [T, H, W, 3] -> a new uint8 [T, H, W, 3].

    frames: the clip the model ran on (one video). sources: the reducer's `SourceMap` after the forward.
    patch, tubelet, cls_tokens: the model's token layout (CLIP: patch size, 1, 1; video ViT: patch size,
    tubelet size, 0). alpha: weight of the group colour (0: frame, 1: solid colour). Group g gets `palette(G)[g]`
    blended at `alpha_256(alpha)`; patches that never became tokens (RLT) are greyed (`grey_out`); see the module
    docstring for singletons and outlines. positions, sequences_per_video: as in `group_map`.
    """
    frames = as_frames(frames, "draw_merge_groups")
    grid = frame_grid(frames, patch, tubelet, "draw_merge_groups")
    positions, spv = token_layout(sources, grid, cls_tokens, positions, sequences_per_video)
    cells = group_map(sources, grid, cls_tokens, video, positions, spv).to(frames.device)
    dropped = ~to_pixels(covered_map(sources, grid, cls_tokens, video, positions, spv), tubelet, patch)
    groups = int(cells.max()) + 1
    pixels = to_pixels(cells, tubelet, patch)  # [T, H, W]
    painted = pixels >= 0
    colors = palette(groups).to(frames.device)
    out = frames.clone()
    dropped = dropped.to(frames.device)
    out[dropped] = grey_out(frames[dropped])
    out[painted] = blend(frames[painted], colors[pixels[painted]], alpha_256(alpha))
    if outlines and groups:
        edges = cell_edges(cells, patch).repeat_interleave(tubelet, 0)
        paint(out, edges & painted, GROUP_EDGE)
    return out


# ---------------------------------------------------------------------------------------------- running a model
def model_layout(model: nn.Module) -> tuple[int, int, int]:
    """(patch, tubelet, cls_tokens) of a vidslim CLIP or video ViT."""
    spec = getattr(model, "input_spec", None)
    if spec is None:
        raise ConfigError(f"{type(model).__name__} is not a vidslim model (vs.create_model / vs.load_model)")
    return spec.patch_size, spec.tubelet_size, 1 if spec.per_frame else 0  # a per-frame model has a CLS per frame


def model_input(model: nn.Module, frames: Tensor) -> Tensor:
    """uint8 frames [T, H, W, 3] -> the batch of one video the model takes (`model.prepare_input`: its input spec),
    in the model's dtype."""
    return model.prepare_input(frames).to(next(model.parameters()).dtype)  # type: ignore[operator]


def run_model(model: nn.Module, frames: Tensor) -> None:
    """One forward of `model` on a uint8 clip [T, H, W, 3], without gradients."""
    with torch.no_grad():
        model.encode_video(model_input(model, frames))  # type: ignore[operator]


def merging_reducer(model: nn.Module) -> Any:
    """The first reducer of `model.reduction` that can trace sources (ToMe, TempMe)."""
    found = next((r for r in getattr(model, "reduction", ()) if hasattr(r, "trace_source")), None)
    if found is None:
        raise ConfigError(
            "draw_model_merges: the model has no merging reducer; create it with reduction=[vs.TempMe(...)] or "
            "reduction=[vs.ToMe(r=...)]"
        )
    return found


def draw_model_merges(
    model: nn.Module,
    frames: Tensor | np.ndarray,
    reducer: Any = None,
    alpha: float = 0.5,
    outlines: bool = True,
    after_layer: int | None = None,
) -> Tensor:
    """Run `model` on one uint8 clip [T, H, W, 3] with its ToMe / TempMe traced and draw the merge groups.

    reducer: which attached reducer to trace (default: the first ToMe / TempMe); its `trace_source` is switched
    on for this forward and restored after. after_layer: draw the groups as they stood after this block (0-based,
    in the order the blocks ran) instead of after the last one; late layers of TempMe leave a handful of tokens
    per video, so an earlier layer often shows more. Returns uint8 [T, H, W, 3].

    With RLT before the merging (`reduction=[vs.RLT(), vs.TempMe(...)]`), the patches RLT dropped are drawn grey
    and the merge groups of the kept ones in colour: the picture shows both reductions. This needs the original
    token positions in the source map (TempMe records them; ToMe's map has none, so [RLT, ToMe] is not drawable).
    """
    from vidslim.models.blocks import Block

    frames = as_frames(frames, "draw_model_merges")
    reducer = merging_reducer(model) if reducer is None else reducer
    patch, tubelet, cls_tokens = model_layout(model)
    before = reducer.trace_source
    snapshots: list[SourceMap | None] = []

    def snapshot(module: nn.Module, args: Any, output: Any) -> None:
        snapshots.append(reducer.sources)

    handles = [m.register_forward_hook(snapshot) for m in model.modules() if isinstance(m, Block)]
    reducer.trace_source = True
    try:
        run_model(model, frames)
    finally:
        reducer.trace_source = before
        for handle in handles:
            handle.remove()
    sources = reducer.sources
    if after_layer is not None:
        if not 0 <= after_layer < len(snapshots):
            raise ConfigError(f"draw_model_merges: after_layer={after_layer}, but the forward ran {len(snapshots)} "
                              f"blocks; pass 0 to {len(snapshots) - 1}")
        sources = snapshots[after_layer]
    if sources is None:
        raise ConfigError(f"{type(reducer).__name__} recorded no source map: is it attached to this model?")
    return draw_merge_groups(frames, sources, patch, tubelet, cls_tokens, 0, alpha, outlines)
