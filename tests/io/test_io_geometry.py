"""Output geometry planning (resize-on-decode sizes, crop boxes, rotation), checked by hand."""

from __future__ import annotations

import pytest
import torch

from vidslim.errors import SamplingError
from vidslim.io.geometry import plan_geometry


def test_short_side_and_center_crop():
    g = plan_geometry(640, 360, 0, 224, "center")
    # 640 x 360 -> short side 224: 398 x 224 (640 * 224 / 360 = 398.2); centre crop left (398 - 224) // 2 = 87
    assert g.scaled == (398, 224) and g.quarter == 0 and g.box == (0, 87, 224, 224)
    assert g.out_shape == (224, 224, 3)


def test_resize_only_exact_and_native():
    assert plan_geometry(640, 360, 0, 224, None).box == (0, 0, 224, 398)
    g = plan_geometry(175, 143, 0, (100, 50), "center")  # exact (H, W); crop does not apply
    assert g.scaled == (50, 100) and g.box == (0, 0, 100, 50)
    assert plan_geometry(175, 143, 0, None, "center").box == (0, 0, 143, 175)


@pytest.mark.parametrize(("rotation", "quarter"), [(90, 1), (-90, 3), (180, 2)])
def test_rotation_plans_the_upright_size(rotation, quarter):
    g = plan_geometry(640, 360, rotation, 224, None)
    assert g.quarter == quarter
    if rotation == 180:
        assert g.scaled == (398, 224) and g.box == (0, 0, 224, 398)
    else:  # upright is portrait 360 wide, 640 tall -> 224 x 398; swscale scales the stored landscape frame
        assert g.scaled == (398, 224) and g.box == (0, 0, 398, 224)


def test_random_crop_box_is_seeded_and_inside():
    boxes = {plan_geometry(640, 360, 0, 224, "random", generator=torch.Generator().manual_seed(s)).box
             for s in range(20)}
    assert all(top == 0 and 0 <= left <= 174 and (h, w) == (224, 224) for top, left, h, w in boxes)
    assert len(boxes) > 5
    a = plan_geometry(640, 360, 0, 224, "random", generator=torch.Generator().manual_seed(1))
    b = plan_geometry(640, 360, 0, 224, "random", generator=torch.Generator().manual_seed(1))
    assert a.box == b.box


@pytest.mark.parametrize("kwargs", [{"size": -1}, {"size": (1, 2, 3)}, {"size": True}, {"crop": "top"},
                                    {"interpolation": "nearest-ish"}])
def test_bad_geometry_arguments(kwargs):
    args = {"size": 224, "crop": "center", "interpolation": "bilinear", **kwargs}
    with pytest.raises(SamplingError, match=next(iter(kwargs))):
        plan_geometry(640, 360, 0, args["size"], args["crop"], args["interpolation"])
