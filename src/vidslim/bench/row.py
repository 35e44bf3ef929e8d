"""One row of a benchmark table: a method's tokens, FLOPs, time, paired speedup and realised share, with spread.

    row = BenchRow("rlt", tokens=..., gflops=..., flop_ratio=0.5)
    set_speedup(row, comparison.paired("rlt"))   # median per-round speedup, IQR, CI, verdict, the machine's load
    row.set_realised()                            # speedup x FLOP ratio, with the same rounds' spread
    row.speedup_text(), row.realised_text()       # "2.04x [1.98-2.10]", "1.02 [0.99-1.05]"; "~1.4x?" when unreliable
    row.cpu_speedup_text()                        # the same from the timed thread's CPU seconds, at one CPU thread

*Realised* is the share of the FLOP-ideal speedup that turned into time: speedup x FLOP ratio (1.0: time falls as
FLOPs do; below 1: the reduction's own work and what does not shrink with tokens eat the saving). The FLOP ratio is
an exact count, so its spread is the paired speedup's spread scaled by it (per-round speedups x FLOP ratio), and
the speedup's verdict carries over: an unreliable speedup gives an unreliable realised share.

The CPU speedup is the same paired comparison on the timed thread's CPU seconds, with quartiles and a verdict of
its own. With one torch thread on the CPU that thread does all the work, and its CPU seconds do not grow when
another process takes the core, so the figure holds on a busy machine; with more threads (or on a GPU) the timed
thread's seconds miss the work, so the figure is not shown (it stays in the JSON).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from vidslim.bench.spread import PairedRatio


@dataclasses.dataclass
class BenchRow:
    """One method at one setting (batch, precision, eager or compiled). Times in ms per batch unless named."""

    method: str
    mode: str = "eager"
    batch: int = 1
    precision: str = "fp32"
    device: str = "cpu"
    tokens: float | None = None
    token_fraction: float | None = None
    gflops: float | None = None
    flop_ratio: float | None = None
    time_ms: float | None = None
    videos_per_s: float | None = None
    speedup: float | None = None
    speedup_q25: float | None = None
    speedup_q75: float | None = None
    speedup_ci95: tuple[float, float] | None = None
    cpu_speedup: float | None = None
    cpu_speedup_q25: float | None = None
    cpu_speedup_q75: float | None = None
    cpu_reliable: bool | None = None
    threads: int | None = None
    rounds: int = 0
    reliable: bool | None = None
    verdict: str | None = None
    load_before: float | None = None
    load_after: float | None = None
    cores: int | None = None
    realised: float | None = None
    realised_q25: float | None = None
    realised_q75: float | None = None
    realised_ci95: tuple[float, float] | None = None
    overhead_ms: float | None = None
    overhead_pct: float | None = None
    overhead_by_label: dict[str, float] = dataclasses.field(default_factory=dict)
    compile_s: float | None = None
    decode_ms_per_video: float | None = None
    error: str | None = None
    reduction: tuple[str, ...] = ()

    @property
    def model_ms_per_video(self) -> float | None:
        """Model time per video at this batch."""
        return None if self.time_ms is None else self.time_ms / self.batch

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["reduction"] = list(self.reduction)
        out["speedup_ci95"] = None if self.speedup_ci95 is None else list(self.speedup_ci95)
        out["realised_ci95"] = None if self.realised_ci95 is None else list(self.realised_ci95)
        out["model_ms_per_video"] = self.model_ms_per_video
        return {k: _finite(v) for k, v in out.items()}

    def speedup_text(self) -> str:
        """The speedup with its interquartile range, or marked unreliable with the reason (never a bare figure)."""
        if self.speedup is None:
            return "-"
        if self.method == "dense":
            return "1.00x"
        if not self.reliable:
            return f"~{self.speedup:.2f}x?"
        return f"{self.speedup:.2f}x [{self.speedup_q25:.2f}-{self.speedup_q75:.2f}]"

    @property
    def cpu_speedup_shown(self) -> bool:
        """Whether the CPU-time speedup means the work: one torch thread on the CPU (see the module docstring)."""
        return self.device == "cpu" and self.threads == 1 and self.cpu_speedup is not None

    def cpu_speedup_text(self) -> str:
        """The CPU-time speedup with its interquartile range, "~1.4x?" when its rounds scatter, "-" when not shown."""
        if not self.cpu_speedup_shown or self.cpu_speedup is None or not math.isfinite(self.cpu_speedup):
            return "-"
        if self.method == "dense":
            return "1.00x"
        if not self.cpu_reliable:
            return f"~{self.cpu_speedup:.2f}x?"
        return f"{self.cpu_speedup:.2f}x [{self.cpu_speedup_q25:.2f}-{self.cpu_speedup_q75:.2f}]"

    def set_realised(self) -> None:
        """Realised share of the FLOP saving (speedup x FLOP ratio) and its spread, from the paired speedup."""
        if self.speedup is None or self.flop_ratio is None or not math.isfinite(self.flop_ratio):
            return
        scale = self.flop_ratio
        self.realised = self.speedup * scale
        if self.speedup_q25 is not None and self.speedup_q75 is not None:
            self.realised_q25, self.realised_q75 = self.speedup_q25 * scale, self.speedup_q75 * scale
        if self.speedup_ci95 is not None:
            self.realised_ci95 = (self.speedup_ci95[0] * scale, self.speedup_ci95[1] * scale)

    def realised_text(self) -> str:
        """The realised share with its interquartile range, or "~0.85?" when the speedup was not reliable."""
        if self.realised is None or not math.isfinite(self.realised):
            return "-"
        if self.method == "dense":
            return "1.00"
        if not self.reliable:
            return f"~{self.realised:.2f}?"
        if self.realised_q25 is None or self.realised_q75 is None:
            return f"{self.realised:.2f}"
        return f"{self.realised:.2f} [{self.realised_q25:.2f}-{self.realised_q75:.2f}]"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def set_speedup(row: BenchRow, paired: PairedRatio) -> None:
    """Copy a paired speedup, its spread, verdict and the machine's load into a row."""
    row.speedup, row.speedup_q25, row.speedup_q75 = paired.speedup, paired.low, paired.high
    row.speedup_ci95, row.cpu_speedup, row.rounds = paired.ci, paired.cpu_speedup, paired.n
    cpu = paired.cpu()
    if cpu.n:
        row.cpu_speedup_q25, row.cpu_speedup_q75 = cpu.low, cpu.high
        row.cpu_reliable = cpu.reliable or row.method == "dense"
    row.reliable = paired.reliable or row.method == "dense"
    row.verdict = "baseline" if row.method == "dense" else paired.verdict
    if paired.load is not None:
        row.load_before, row.load_after, row.cores = paired.load.before, paired.load.after, paired.load.cores


__all__ = ["BenchRow", "set_speedup"]
