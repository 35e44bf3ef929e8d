"""`draw_token_mask` and `save_frames`, checked pixel by pixel on a clip whose RLT mask is known by construction.

The clip: 8 frames of 64 x 64 (tubelets of 2 frames, so T' = 4 slots; 16 x 16 patches, so a 4 x 4 grid), a static
random-noise background and a 16 x 16 red square in grid row 1 that sits in column k during tubelet k. Slot k >= 1
compares frame 2k+1 (square in column k) with frame 2k-2 (column k-1): exactly cells (1, k-1) and (1, k) change,
so they are kept; slot 0 is always kept; everything else is dropped.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from vidslim.errors import ConfigError, TokenLayoutError
from vidslim.tokenize.rlt_mask import keep_mask_uint8
from vidslim.tokenize.run_length import run_length_map
from vidslim.viz import contact_sheet, draw_token_mask, grey_out, save_frames

P = 16  # patch
OUTLINE = (255, 214, 0)


def square_clip() -> np.ndarray:
    """uint8 [8, 64, 64, 3]: fixed noise background, red square at cell (1, t // 2)."""
    rng = np.random.default_rng(0)
    background = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    frames = np.repeat(background[None], 8, axis=0)
    for t in range(8):
        k = t // 2
        frames[t, P : 2 * P, k * P : (k + 1) * P] = (230, 30, 30)
    return frames


def hand_mask() -> np.ndarray:
    mask = np.zeros((4, 4, 4), dtype=bool)
    mask[0] = True
    for k in range(1, 4):
        mask[k, 1, k - 1] = mask[k, 1, k] = True
    return mask


def hand_grey(pixels: np.ndarray) -> np.ndarray:
    """The documented formula, written out independently: 32 + ((77 R + 150 G + 29 B + 128) >> 8) // 2."""
    p = pixels.astype(np.int64)
    luma = (77 * p[..., 0] + 150 * p[..., 1] + 29 * p[..., 2] + 128) >> 8
    return np.repeat((32 + luma // 2)[..., None], 3, axis=-1).astype(np.uint8)


@pytest.fixture(scope="module")
def drawn() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(source frames, mask, run lengths, drawing) of the square clip."""
    frames = square_clip()
    mask = keep_mask_uint8(torch.from_numpy(frames)[None], tau=0.1, tubelet=2, patch=P)[0]
    lengths = run_length_map(mask[None])[0]
    out = draw_token_mask(torch.from_numpy(frames), mask, lengths, tubelet=2, patch=P)
    return frames, mask.numpy(), lengths.numpy(), out.numpy()


def test_mask_is_the_construction(drawn: tuple[np.ndarray, ...]) -> None:
    _, mask, lengths, _ = drawn
    assert (mask == hand_mask()).all()
    # (0, 0) is never revisited: one run of 4; (1, 0): kept at slots 0 and 1, so runs of 1 and 3
    assert lengths[0, 0, 0] == 4 and lengths[0, 1, 0] == 1 and lengths[1, 1, 0] == 3


def test_grey_formula_on_known_colours() -> None:
    pixels = torch.tensor([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=torch.uint8)
    # red: (77 * 255 + 128) >> 8 = 77 -> 32 + 38; green: 149 -> 32 + 74; blue: 29 -> 32 + 14
    assert grey_out(pixels)[:, 0].tolist() == [32, 159, 70, 106, 46]
    assert (grey_out(pixels) == grey_out(pixels)[:, :1]).all()


def label_region(lengths: np.ndarray) -> np.ndarray:
    """bool [8, 64, 64]: the label boxes, rows 1..12 x cols 1..8 of each kept cell whose run is > 1 (one digit,
    3x5 font at 2x, plus a 1 px margin, just inside the 1 px border)."""
    stamp = np.zeros((P, P), dtype=bool)
    stamp[1:13, 1:9] = True
    cells = np.kron(lengths > 1, stamp)  # [4, 64, 64]
    return np.repeat(cells, 2, axis=0)


def test_pixels_are_source_grey_outline_or_label(drawn: tuple[np.ndarray, ...]) -> None:
    frames, mask, lengths, out = drawn
    kept = np.repeat(np.kron(mask, np.ones((P, P), dtype=bool)), 2, axis=0)  # [8, 64, 64]
    edge = np.zeros((P, P), dtype=bool)
    edge[[0, -1], :] = edge[:, [0, -1]] = True
    border = kept & np.tile(edge, (4, 4))[None]
    label = label_region(lengths)
    plain = kept & ~border & ~label
    assert (out[~kept] == hand_grey(frames)[~kept]).all()  # dropped tubelets: the greying formula
    assert (out[plain] == frames[plain]).all()  # kept tubelets: the source, outside outline and labels
    assert (out[border] == OUTLINE).all()
    assert plain.sum() > 0 and (~kept).sum() > 0 and label.sum() == 2 * 96 * (lengths > 1).sum()


def test_run_length_digit(drawn: tuple[np.ndarray, ...]) -> None:
    """Cell (0, 0) of slot 0 (frames 0 and 1) reads '4': a black box, the 3x5 glyph at 2x in white."""
    _, _, _, out = drawn
    four = np.array([[1, 0, 1], [1, 0, 1], [1, 1, 1], [0, 0, 1], [0, 0, 1]], dtype=bool)
    glyph = four.repeat(2, axis=0).repeat(2, axis=1)  # 10 x 6 at rows 2..11, cols 2..7
    for t in (0, 1):
        box = out[t, 1:13, 1:9]
        inner = box[1:11, 1:7]
        assert (inner[glyph] == 255).all() and (inner[~glyph] == 0).all()
        assert (box[0] == 0).all() and (box[-1] == 0).all() and (box[:, 0] == 0).all() and (box[:, -1] == 0).all()
    # a run of 1 has no label: cell (1, 0) at slot 0 is the red square up to its outline
    assert (out[0, P + 1 : 2 * P - 1, 1 : P - 1] == (230, 30, 30)).all()


def test_no_lengths_no_labels_and_all_dropped_is_all_grey() -> None:
    frames = torch.from_numpy(square_clip())
    mask = torch.from_numpy(hand_mask())
    plain = draw_token_mask(frames, mask, None, tubelet=2, patch=P)
    assert (plain[0, 1:15, 1:15] == frames[0, 1:15, 1:15]).all()
    nothing = draw_token_mask(frames, torch.zeros(4, 4, 4, dtype=torch.bool), None, tubelet=2, patch=P)
    assert (nothing.numpy() == hand_grey(frames.numpy())).all()


def test_shape_errors_name_the_argument() -> None:
    frames = torch.from_numpy(square_clip())
    with pytest.raises(TokenLayoutError, match="pass the frames"):
        draw_token_mask(frames, torch.ones(4, 4, 3, dtype=torch.bool), tubelet=2, patch=P)
    with pytest.raises(TokenLayoutError, match="lengths"):
        draw_token_mask(frames, torch.ones(4, 4, 4, dtype=torch.bool), torch.ones(4, 4), tubelet=2, patch=P)


def test_png_contact_sheet_holds_the_exact_frames(drawn: tuple[np.ndarray, ...], tmp_path: Path) -> None:
    _, _, _, out = drawn
    path = save_frames(out, tmp_path / "sub" / "sheet.png", title="a title line", columns=3)
    with Image.open(path) as image:
        sheet = np.asarray(image.convert("RGB"))
    rows, gap = 3, 2  # 8 frames, 3 per row
    assert sheet.shape[1] == 3 * (64 + gap) + gap
    title_h = sheet.shape[0] - (rows * (64 + gap) + gap)
    assert title_h > 0  # a title band above the tiles
    for i in range(8):
        top, left = title_h + gap + (i // 3) * (64 + gap), gap + (i % 3) * (64 + gap)
        assert (sheet[top : top + 64, left : left + 64] == out[i]).all()
    assert contact_sheet(out).shape == (64 + 2 * gap, 8 * (64 + gap) + gap, 3)  # no title: one row of 8


def test_gif_and_mp4_read_back(drawn: tuple[np.ndarray, ...], tmp_path: Path) -> None:
    _, _, _, out = drawn
    moving = out[::2]  # one frame per tubelet: consecutive frames differ, so the GIF keeps every one
    gif = save_frames(moving, tmp_path / "a.gif", fps=10)
    with Image.open(gif) as image:
        assert image.size == (64, 64) and image.n_frames == 4 and image.info["duration"] == 100
        image.seek(2)
        assert np.abs(np.asarray(image.convert("RGB")).astype(int) - moving[2]).mean() < 8  # palette rounding
    mp4 = save_frames(out[:, :63, :61], tmp_path / "a.mp4", fps=4)  # odd size: padded to 64 x 62
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name in ("h264", "mpeg4") and stream.codec_context.pix_fmt == "yuv420p"
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == 8 and decoded[0].shape == (64, 62, 3)
    assert np.abs(decoded[5][:63, :61].astype(int) - out[5, :63, :61]).mean() < 12


def test_save_rejects_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\*\.png"):
        save_frames(np.zeros((1, 8, 8, 3), dtype=np.uint8), tmp_path / "a.jpg")
