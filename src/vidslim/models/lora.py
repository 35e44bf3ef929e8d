"""LoRA on the fused QKV projection of every attention layer, TempMe's parameter-efficient fine-tuning (spec §2).

    n = add_lora(model, rank=8)     # adapters in both CLIP towers (or the video ViT); everything else frozen
    print(describe_trainable(model))  # "507,648 trainable of 151,... parameters: lora 491,520, reducers 16,128"
    ... train ...
    merge_lora(model)               # fold B·A into the QKV weights: inference costs nothing extra

Each adapter holds A [rank, D] (Kaiming-uniform with a = √5, i.e. U(-1/√D, 1/√D)) and B [3D, rank] (zeros), and
adds scale · x Aᵀ Bᵀ to the fused q, k, v projection, before q is scaled by 1/√d; split into q, k and v like the
projection itself. TempMe uses no α/r factor, so `scale` is 1 unless `alpha` is given (then alpha / rank). With
B = 0 the model at step 0 is exactly the frozen one. The keys TempMe merges on include the LoRA delta.

Trainable after `add_lora(freeze=True)`: the adapters and the parameters of the attached reducers (TempMe's
temporal position embeddings); every backbone parameter, `logit_scale` included, is frozen (TempMe trains
exactly these, 507,648 parameters for CLIP ViT-B with rank 8).

Checkpoints: `save_model` writes the adapters as `...attn.lora.A` / `.B`; merge them first (`merge_lora`) to get
a plain checkpoint, or call `add_lora(model, rank)` on a fresh model before loading an unmerged state dict
(`lora_rank(state_dict)` reads the rank back).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.models.blocks import Attention


class LoRA(nn.Module):
    """A rank-r update of a [out, in] projection: forward(x) = scale · x Aᵀ Bᵀ, A [r, in], B [out, r]."""

    def __init__(self, in_features: int, out_features: int, rank: int, scale: float = 1.0) -> None:
        super().__init__()
        if rank < 1:
            raise ConfigError(f"LoRA rank must be >= 1, got {rank}")
        self.rank, self.scale = rank, float(scale)
        self.A = nn.Parameter(torch.empty(rank, in_features))
        self.B = nn.Parameter(torch.zeros(out_features, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))

    def forward(self, x: Tensor, rows: slice | None = None) -> Tensor:
        """The delta of the projection's outputs (only `rows` of them when given): [.., in] -> [.., out]."""
        b = self.B if rows is None else self.B[rows]
        out = F.linear(F.linear(x, self.A.to(x.dtype)), b.to(x.dtype))
        return out if self.scale == 1.0 else out * self.scale

    def delta_weight(self) -> Tensor:
        """scale · B A, the [out, in] update merged into the weight."""
        return (self.B @ self.A) * self.scale

    def extra_repr(self) -> str:
        return f"in={self.A.shape[1]}, out={self.B.shape[0]}, rank={self.rank}, scale={self.scale}"


def attention_layers(model: nn.Module) -> Iterator[tuple[str, Attention]]:
    """Every attention layer of the model (both CLIP towers, or every block of a video ViT), with its name."""
    for name, module in model.named_modules():
        if isinstance(module, Attention):
            yield name, module


def add_lora(model: nn.Module, rank: int = 8, alpha: float | None = None, freeze: bool = True) -> int:
    """Put a fresh rank-`rank` adapter on the QKV projection of every attention layer; with `freeze`, freeze
    everything but the adapters and the attached reducers' parameters. Returns the trainable parameter count."""
    layers = list(attention_layers(model))
    if not layers:
        raise ConfigError(f"add_lora: {type(model).__name__} has no vidslim attention layer to adapt")
    scale = 1.0 if alpha is None else float(alpha) / rank
    for name, attn in layers:
        if attn.lora is not None:
            raise ConfigError(f"add_lora: {name or 'the model'} already has a LoRA adapter; merge_lora(model) first")
        weight, _ = attn.qkv_weight_bias()
        adapter = LoRA(weight.shape[1], weight.shape[0], rank, scale)
        attn.lora = adapter.to(device=weight.device, dtype=weight.dtype)
    if freeze:
        for param in model.parameters():
            param.requires_grad_(False)
        for param in lora_parameters(model):
            param.requires_grad_(True)
        reducers = getattr(model, "reduction_modules", None)
        if isinstance(reducers, nn.Module):
            for param in reducers.parameters():
                param.requires_grad_(True)
    return count_trainable(model)


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The A and B matrices of every adapter in the model."""
    return [p for _, attn in attention_layers(model) if attn.lora is not None for p in attn.lora.parameters()]


@torch.no_grad()
def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its QKV weight (W ← W + scale·B A) and remove it: the same outputs, no extra cost.
    The merged weights keep their requires_grad. Returns the model."""
    for _, attn in attention_layers(model):
        if attn.lora is None:
            continue
        weight, _ = attn.qkv_weight_bias()
        weight.add_(attn.lora.delta_weight().to(weight.dtype))  # type: ignore[operator]
        attn.lora = None
    return model


def count_trainable(model: nn.Module) -> int:
    """Parameters with requires_grad (each shared tensor once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters() if p.requires_grad}.values())


def describe_trainable(model: nn.Module) -> str:
    """One line: trainable count out of the total, split into adapters, reducers and the rest."""
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    lora = sum(p.numel() for p in lora_parameters(model) if id(p) in trainable)
    reducers = getattr(model, "reduction_modules", None)
    reduce = 0
    if isinstance(reducers, nn.Module):
        reduce = sum(p.numel() for p in reducers.parameters() if id(p) in trainable)
    total = sum(p.numel() for p in model.parameters())
    count = count_trainable(model)
    return (
        f"{count:,} trainable of {total:,} parameters ({100 * count / max(total, 1):.2f} %): lora {lora:,}, "
        f"reducers {reduce:,}, other {count - lora - reduce:,}"
    )


def lora_rank(state_dict: Mapping[str, Tensor]) -> int | None:
    """The rank of the LoRA adapters saved in a state dict (None when it holds none)."""
    for key, value in state_dict.items():
        if key.endswith(".lora.A"):
            return int(value.shape[0])
    return None
