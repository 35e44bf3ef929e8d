"""Test-session settings shared by every test folder."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

# Kernels compiled during tests (vidslim.attention.cpu) go to a temporary folder, not the user's
# ~/.cache/vidslim; it is kept between sessions so that the kernel is compiled once per machine.
_user = getattr(os, "getuid", lambda: 0)()
os.environ.setdefault("VIDSLIM_CACHE_DIR", str(Path(tempfile.gettempdir()) / f"vidslim-test-cache-{_user}"))

# Helpers shared by every test folder (video_files.py) are imported by module name: pytest's default
# "prepend" import mode puts tests/ on sys.path for this conftest already; say so, for other import modes.
_tests = str(Path(__file__).resolve().parent)
if _tests not in sys.path:
    sys.path.insert(0, _tests)
