"""Seeding for reproducible runs: python's, numpy's and torch's generators, and numpy in DataLoader workers."""

from __future__ import annotations

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators (CUDA included)."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def worker_init(_: int) -> None:
    """Seed numpy in a DataLoader worker from the worker's torch seed (torch seeds python and torch itself)."""
    np.random.seed(torch.initial_seed() % 2**32)
