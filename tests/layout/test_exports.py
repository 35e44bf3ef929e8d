"""Every package lists its public names once, as `if TYPE_CHECKING:` imports that IDEs read, and loads them lazily
from that same list at run time."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import vidslim
from vidslim._lazy import exports_of
from vidslim.models.base import VideoTextModel

PACKAGES = ["vidslim"] + [m.name for m in pkgutil.walk_packages(vidslim.__path__, "vidslim.") if m.ispkg]
LISTED = [p for p in PACKAGES if "TYPE_CHECKING" in Path(importlib.import_module(p).__file__).read_text()]


def test_every_library_package_lists_its_names() -> None:
    assert set(PACKAGES) - set(LISTED) == {"vidslim.cli"}  # the command line is not a library package


@pytest.mark.parametrize("package", LISTED)
def test_listed_names_load_and_are_the_objects_their_modules_define(package: str) -> None:
    module = importlib.import_module(package)
    exports = exports_of(module.__file__)
    assert exports and sorted(exports) == sorted(n for n in module.__all__ if n != "__version__")
    for name, source in exports.items():
        assert getattr(module, name) is getattr(importlib.import_module(source), name), f"{package}.{name}"
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        module.no_such_name  # noqa: B018


def test_import_stays_light() -> None:
    code = "import sys, vidslim; print(sorted(m for m in sys.modules if m.startswith('vidslim')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['vidslim', 'vidslim._lazy']"


def test_encode_text_is_declared_for_type_checkers_only() -> None:
    # load_model -> ReducibleModel offers encode_text to IDEs; a video-only model still has no such attribute,
    # so the run-time check of a video-text model keeps telling them apart
    video_only, video_text = vidslim.create_model("videomae-tiny"), vidslim.create_model("clip-tiny")
    assert not hasattr(video_only, "encode_text") and not isinstance(video_only, VideoTextModel)
    assert isinstance(video_text, VideoTextModel)
