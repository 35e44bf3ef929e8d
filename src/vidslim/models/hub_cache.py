"""Find a Hugging Face hub id ("org/name") in the local hub cache, offline, without importing any network code.

`huggingface_hub` lays a downloaded model out as

    <cache>/models--org--name/blobs/<sha>                   the files' contents
    <cache>/models--org--name/snapshots/<commit>/<file>     symbolic links into blobs/ (copies on Windows)
    <cache>/models--org--name/refs/main                     the commit the branch "main" pointed at

and the cache folder is $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
~/.cache/huggingface/hub. `snapshot_folder("org/name")` returns the snapshot `refs/main` names (or the one snapshot
there is); "org/name@REV" picks another branch, tag or commit. Nothing is ever fetched: a model that is not there
is a `CheckpointError` that says where vidslim looked and which command downloads it (`hf download`, the
command-line tool of huggingface_hub 1.0 and later; earlier versions call it `huggingface-cli download`). A
snapshot cut short (a link to a blob that is gone, a config.json with no weights or a shard missing beside it, as
`hf download --include config.json` leaves it) is refused the same way, before anything is read.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vidslim.errors import CheckpointError, printable

#: the weight files a snapshot's config holds beside it: a Hugging Face, open_clip or vidslim folder
_CONFIG_WEIGHTS = {
    "config.json": ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                    "pytorch_model.bin.index.json"),
    "open_clip_config.json": ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"),
    "vidslim.json": ("model.safetensors",),
}

#: "org/name" or "org/name@revision", as the hub spells repository ids
_HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<rev>[\w./-]+))?$")


def hub_cache_dir() -> Path:
    """The folder `huggingface_hub` caches models in, from the same environment variables it reads."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):  # the second is the older name huggingface_hub still reads
        if os.environ.get(name):
            return Path(os.environ[name]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    base = Path(os.environ["XDG_CACHE_HOME"]).expanduser() if os.environ.get("XDG_CACHE_HOME") else (
        Path.home() / ".cache")
    return base / "huggingface" / "hub"


def looks_like_hub_id(text: str) -> bool:
    """True for "org/name" (optionally "@rev") that is not a path on disk: one slash, no leading "." or "/"."""
    return bool(_HUB_ID.match(text)) and not text.startswith((".", "~")) and not Path(text).exists()


def _refuse_special(path: Path, hub_id: str) -> None:
    """A CheckpointError when a cache entry is a FIFO, socket or device (reading a FIFO waits forever): the lookup
    reads only regular files and folders, as `io.paths.special_kind` tells them apart."""
    from vidslim.io.paths import special_kind

    try:
        kind = special_kind(path.stat().st_mode)
    except OSError:  # missing or unreadable: the caller's own message says what it looked for
        return
    if kind is not None:
        raise CheckpointError(f"{hub_id}: {printable(path)} is {kind}, not a file or folder of the Hugging Face "
                              "cache; remove it and fetch the model again")


def snapshot_folder(hub_id: str, cache: Path | None = None) -> Path:
    """The local snapshot folder of `hub_id` ("org/name" or "org/name@rev"); a CheckpointError when absent."""
    match = _HUB_ID.match(hub_id)
    if match is None:
        raise CheckpointError(f"{hub_id!r} is not a hub id of the form org/name")
    repo, rev = match.group("repo"), match.group("rev") or "main"
    cache = hub_cache_dir() if cache is None else cache
    root = cache / ("models--" + repo.replace("/", "--"))
    get = download_command(repo, rev)
    _refuse_special(root, hub_id)
    if not root.is_dir():
        raise CheckpointError(
            f"{hub_id}: not a local path and not in the Hugging Face cache (looked for {root}; the cache is "
            f"$HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub). vidslim never downloads: fetch it "
            f"with {get}, or pass a local folder"
        )
    snapshots = root / "snapshots"
    ref = root / "refs" / rev
    _refuse_special(ref, hub_id)
    if ref.is_file():
        commit = ref.read_text().strip()
    elif (snapshots / rev).is_dir():  # a commit hash given directly
        commit = rev
    else:
        found = sorted(p.name for p in snapshots.iterdir()) if snapshots.is_dir() else []
        if rev != "main" or len(found) != 1:
            raise CheckpointError(
                f"{hub_id}: {root} has no refs/{rev} (snapshots: {', '.join(found) or 'none'}); pass "
                f"{repo}@<commit> or fetch it again with {get}"
            )
        commit = found[0]
    folder = snapshots / commit
    _refuse_special(folder, hub_id)
    if not folder.is_dir():
        raise CheckpointError(f"{hub_id}: {ref} names snapshot {commit}, which {snapshots} lacks; fetch it again "
                              f"with {get}")
    check_complete(folder, hub_id, get)
    return folder


def download_command(repo: str, rev: str = "main") -> str:
    """The command that fetches `repo` at `rev` into the cache, quoted for a message."""
    return f"`hf download {repo}" + (f" --revision {rev}`" if rev != "main" else "`")


def check_complete(folder: Path, hub_id: str, get: str) -> None:
    """A one-line CheckpointError when the snapshot `folder` was cut short: a file links to a blob that is gone,
    or a config has none of its weight files (or a shard its index names) beside it."""
    import json

    gone = sorted(p.name for p in folder.iterdir() if p.is_symlink() and not p.exists())
    if gone:
        raise CheckpointError(f"{hub_id}: the cached snapshot {folder} is incomplete ({', '.join(gone[:5])} "
                              f"link to blobs that are gone); fetch it again with {get}")
    for config, weights in _CONFIG_WEIGHTS.items():
        if (folder / config).is_file() and not any((folder / w).is_file() for w in weights):
            raise CheckpointError(f"{hub_id}: the cached snapshot {folder} has {config} but no weights "
                                  f"({' or '.join(weights[:2])}); the download was partial: fetch it with {get}")
    for index in sorted(folder.glob("*.index.json")):
        try:
            shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
        except (OSError, ValueError, AttributeError):
            continue  # a broken index: reading it says what is wrong with it
        absent = sorted(str(s) for s in shards if isinstance(s, str) and "/" not in s and not (folder / s).is_file())
        if absent:
            raise CheckpointError(f"{hub_id}: the cached snapshot {folder} lacks {', '.join(absent[:5])}, which "
                                  f"{index.name} names; the download was partial: fetch it again with {get}")


__all__ = ["check_complete", "download_command", "hub_cache_dir", "looks_like_hub_id", "snapshot_folder"]
