"""Which device a user named, checked once: `usable_device("cuda")` on a machine without CUDA is a one-line
ConfigError that says so, not a torch assertion from deep inside the first `.to(device)`."""

from __future__ import annotations

import torch

from vidslim.errors import ConfigError


def usable_device(name: str | torch.device, where: str = "--device") -> torch.device:
    """`name` as a torch.device that this machine has (cpu, cuda, cuda:N, mps); ConfigError otherwise."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise ConfigError(f"{where} {str(name)!r} is not a device torch knows ({error}); use cpu, cuda or cuda:N") \
            from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{where} {str(name)!r}: this machine has no usable CUDA device (torch "
                              f"{torch.__version__}{'' if torch.version.cuda else ', a CPU-only build'}); use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{where} {str(name)!r}: there are {torch.cuda.device_count()} CUDA devices "
                              f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{where} {str(name)!r}: MPS is not available on this machine; use cpu")
    return device


__all__ = ["usable_device"]
