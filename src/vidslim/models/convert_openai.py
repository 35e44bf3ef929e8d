"""OpenAI CLIP checkpoints (`ViT-B-32.pt`, `ViT-B-16.pt`, ...) -> a vidslim ClipConfig and state dict.

The released files are TorchScript archives. Their tensors are read as data by
`vidslim.models.safe_unpickle` (the zip opened by hand, `data.pkl` through a restricted unpickler), never with
`torch.jit.load`, which runs the archive's code; a plain state-dict file is read with
`torch.load(weights_only=True)`. vidslim's CLIP uses OpenAI's parameter names, so the
state dict needs no renaming: only the three non-tensor entries the archives carry (`input_resolution`,
`context_length`, `vocab_size`) are dropped, and the config is inferred from tensor shapes as OpenAI's
`build_model` does.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from torch import Tensor

from vidslim.errors import CheckpointError
from vidslim.models.clip import ClipConfig
from vidslim.models.safe_unpickle import read_torchscript_tensors

#: entries of OpenAI's archives that are not parameters
OPENAI_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size")


def is_torchscript(path: str | Path) -> bool:
    """True when `path` is a TorchScript archive (a zip holding compiled code and constants)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("constants.pkl") or "/code/" in n for n in names)


def read_torchscript(path: str | Path) -> dict[str, Tensor]:
    """The tensors of a TorchScript archive, on the CPU, read as data (its code is never run)."""
    return read_torchscript_tensors(path)


def is_openai_clip(state: dict[str, Tensor]) -> bool:
    """True for a state dict with OpenAI CLIP's names."""
    return "visual.class_embedding" in state or "visual.conv1.weight" in state


def _count(state: dict[str, Tensor], pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for k in state if (m := regex.match(k))})


#: tensors whose shapes give the config -> the number of dimensions each must have
_SHAPED = {
    "visual.conv1.weight": 4,
    "visual.positional_embedding": 2,
    "ln_final.weight": 1,
    "visual.transformer.resblocks.0.mlp.c_fc.weight": 2,
    "transformer.resblocks.0.mlp.c_fc.weight": 2,
    "text_projection": 2,
    "positional_embedding": 2,
    "token_embedding.weight": 2,
}


def _check_shapes(state: dict[str, Tensor], where: str) -> None:
    """Refuse tensors whose shapes cannot describe a CLIP (a wrong rank, an empty dimension) in one line."""
    for key, ndim in _SHAPED.items():
        value = state.get(key)
        if value is not None and (value.dim() != ndim or 0 in value.shape):
            raise CheckpointError(
                f"{where}: {key} has shape {tuple(value.shape)}; an OpenAI CLIP's is {ndim}-D and non-empty"
            )


def clip_config_from_openai(state: dict[str, Tensor], where: str = "checkpoint") -> ClipConfig:
    """Infer the ClipConfig of an OpenAI-named CLIP ViT state dict from its tensor shapes."""
    if "visual.proj" not in state or "visual.conv1.weight" not in state:
        if any(k.startswith("visual.layer1.") for k in state):
            raise CheckpointError(
                f"{where}: a ResNet CLIP; vidslim supports the ViT CLIPs (ViT-B/32, ViT-B/16, ViT-L/14)"
            )
        raise CheckpointError(f"{where}: not an OpenAI CLIP ViT state dict (visual.conv1.weight / visual.proj missing)")
    _check_shapes(state, where)
    try:
        conv = state["visual.conv1.weight"]
        vision_width, patch = conv.shape[0], conv.shape[-1]
        grid = round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        text_width = state["ln_final.weight"].shape[0]
        vision_fc = state["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0]
        text_fc = state["transformer.resblocks.0.mlp.c_fc.weight"].shape[0]
        return ClipConfig(
            embed_dim=state["text_projection"].shape[1],
            image_size=patch * grid,
            patch_size=patch,
            vision_width=vision_width,
            vision_layers=_count(state, r"^visual\.transformer\.resblocks\.(\d+)\.attn\.in_proj_weight$"),
            vision_heads=vision_width // 64,
            vision_mlp_dim=vision_fc,
            context_length=state["positional_embedding"].shape[0],
            vocab_size=state["token_embedding.weight"].shape[0],
            text_width=text_width,
            text_heads=text_width // 64,
            text_layers=_count(state, r"^transformer\.resblocks\.(\d+)\.attn\.in_proj_weight$"),
            text_mlp_dim=text_fc,
            eot_token_id=None,  # OpenAI pools at argmax(ids): the end-of-text id is the largest
            in_chans=conv.shape[1],
        )
    except KeyError as error:
        raise CheckpointError(f"{where}: OpenAI CLIP state dict lacks {error.args[0]!r}") from error


def clip_state_dict_from_openai(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Drop the archive's non-parameter entries; everything else already has vidslim's names."""
    return {k: v for k, v in state.items() if k not in OPENAI_EXTRA_KEYS}
