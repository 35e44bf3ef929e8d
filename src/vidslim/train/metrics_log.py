"""Run metrics on disk: every record in `metrics.jsonl`, and one CSV table per kind (`train.csv`, `eval.csv`).

Records are flat dicts with a `kind` ("train", "eval", "stage", ...) and a `step`. The CSV of a kind takes the
columns of the first record of that kind and is rewritten with the union of columns when a later record
brings a new one, so it always opens cleanly in a spreadsheet. On resume the log is cut back to the
checkpoint's step and stage (records written after it, by the run that was killed, are dropped), and a run
that starts from step 0 clears it (a run killed before its first checkpoint is redone from the start), so no
step appears twice.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

JSONL_NAME = "metrics.jsonl"


def _clean(value: Any) -> Any:
    """JSON-safe scalar: floats stay floats (NaN/inf become strings), tensors and numpy scalars become numbers."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class MetricsLog:
    """Appends records to the run folder's JSON lines and CSV files (a no-op object when disabled)."""

    def __init__(self, run_dir: str | Path, enabled: bool = True) -> None:
        self.dir = Path(run_dir)
        self.enabled = enabled
        self._columns: dict[str, list[str]] = {}
        if enabled:
            self.dir.mkdir(parents=True, exist_ok=True)
            for record in self.records():
                self._note_columns(record)

    @property
    def jsonl(self) -> Path:
        return self.dir / JSONL_NAME

    def csv_path(self, kind: str) -> Path:
        return self.dir / f"{kind}.csv"

    def records(self) -> list[dict[str, Any]]:
        """Every record logged so far (a half-written last line, from a crash, is ignored)."""
        if not self.jsonl.is_file():
            return []
        out = []
        for line in self.jsonl.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def _note_columns(self, record: dict[str, Any]) -> bool:
        """Add the record's new keys to its kind's columns; True when the columns grew."""
        columns = self._columns.setdefault(str(record.get("kind", "train")), [])
        new = [k for k in record if k not in columns]
        columns.extend(new)
        return bool(new)

    def log(self, record: dict[str, Any]) -> None:
        """Append one record (to the JSON lines and to its kind's CSV)."""
        if not self.enabled:
            return
        record = {k: _clean(v) for k, v in record.items()}
        with open(self.jsonl, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        kind = str(record.get("kind", "train"))
        path = self.csv_path(kind)
        if self._note_columns(record) or not path.is_file():
            self._rewrite_csv(kind)
            return
        with open(path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=self._columns[kind]).writerow(record)

    def _rewrite_csv(self, kind: str) -> None:
        rows = [r for r in self.records() if str(r.get("kind", "train")) == kind]
        with open(self.csv_path(kind), "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=self._columns.get(kind, []))
            writer.writeheader()
            writer.writerows(rows)

    def truncate_after(self, step: int, stage: int | None = None) -> None:
        """Drop records with a step beyond `step`, or (given `stage`) of a later stage: resuming from the
        checkpoint at `step` written in `stage` (a later stage's start record at the same step is redone)."""
        if not self.enabled or not self.jsonl.is_file():
            return
        records = self.records()
        kinds = {str(r.get("kind", "train")) for r in records}
        kept = [r for r in records if int(r.get("step", 0)) <= step
                and (stage is None or int(r.get("stage", 0)) <= stage)]
        tmp = self.jsonl.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        tmp.replace(self.jsonl)
        self._columns = {}
        for record in kept:
            self._note_columns(record)
        for kind in kinds:
            self.csv_path(kind).unlink(missing_ok=True)
        for kind in self._columns:
            self._rewrite_csv(kind)

    def clear(self) -> None:
        """Drop every record (a run starting from step 0 redoes whatever a killed earlier start logged)."""
        self.truncate_after(-1)


__all__ = ["JSONL_NAME", "MetricsLog"]
