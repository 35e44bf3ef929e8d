"""Test-session settings shared by every test folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Kernels compiled during tests (vidslim.attention.cpu) go to a temporary folder, not the user's
# ~/.cache/vidslim; it is kept between sessions so that the kernel is compiled once per machine.
_user = getattr(os, "getuid", lambda: 0)()
os.environ.setdefault("VIDSLIM_CACHE_DIR", str(Path(tempfile.gettempdir()) / f"vidslim-test-cache-{_user}"))
