"""Batching windows by token budget: gather windows until their tokens reach a budget, then run them together.

RLT and pruning keep a different number of tokens in every window. A fixed number of windows per batch then
gives batches whose memory and latency swing with the content; a token budget bounds both, and the model's
packed (variable-length) attention runs the batch without padding. With a dense model every window holds the
same tokens and a budget of B windows' tokens is a fixed batch of B.

`TokenBudget(budget)` is fed windows one at a time and hands back full batches; `flush()` returns the rest.
A window larger than the whole budget is a batch of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from vidslim.errors import ConfigError

T = TypeVar("T")


@dataclass
class TokenBudget(Generic[T]):
    """Windows (any payload with its token count) -> batches of at most `budget` tokens, or of `max_items`
    windows when `budget` is None (fixed batch size)."""

    budget: int | None
    max_items: int | None = None
    _items: list[T] = field(default_factory=list)
    _tokens: int = 0

    def __post_init__(self) -> None:
        if self.budget is None and self.max_items is None:
            raise ConfigError("give a token budget or a number of windows per batch")
        if (self.budget is not None and self.budget < 1) or (self.max_items is not None and self.max_items < 1):
            raise ConfigError(f"budget and max_items must be >= 1, got {self.budget} and {self.max_items}")

    def add(self, item: T, tokens: int) -> list[list[T]]:
        """Take one window; return the batches it completes (zero or one)."""
        out = []
        if self._items and self.budget is not None and self._tokens + tokens > self.budget:
            out.append(self.flush())
        self._items.append(item)
        self._tokens += tokens
        full = self.max_items is not None and len(self._items) >= self.max_items
        if full or (self.budget is not None and self._tokens >= self.budget):
            out.append(self.flush())
        return out

    def flush(self) -> list[T]:
        """The windows gathered so far (possibly none), and start afresh."""
        items, self._items, self._tokens = self._items, [], 0
        return items

    @property
    def pending(self) -> int:
        return len(self._items)
