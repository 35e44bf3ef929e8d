"""`Record`, one annotated video (or time window of one), and the readers annotation parsers share.

Every parser in `vidslim.data` turns its dataset's files into a `list[Record]` without touching a video,
so the formats can be tested on small hand-written files. Datasets then group and decode the records.

The shared readers give each row its line number, so a malformed entry is reported as
`file:line: what is wrong (how to fix it)` (`AnnotationError`).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidslim.errors import AnnotationError, printable

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Record:
    """One annotated sample.

    video: the file, relative to the dataset's video root (or absolute); the extension may be left out, the
    dataset tries the usual ones. video_id: the dataset's name for the video (groups the captions of one video;
    defaults to `video`). caption / label / label_name: what the sample is annotated with (None when absent).
    start / end: the window in seconds (None: from the start / to the end of the file).
    """

    video: str
    video_id: str = ""
    caption: str | None = None
    label: int | None = None
    label_name: str | None = None
    start: float | None = None
    end: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        if not self.video_id:
            object.__setattr__(self, "video_id", self.video)

    @property
    def video_key(self) -> tuple[str, str, float | None, float | None]:
        """What makes two records show the same video: id, file and window."""
        return self.video_id, self.video, self.start, self.end


def where(path: PathLike, line: int | None = None) -> str:
    """'file:line' (or 'file') for error messages."""
    name = printable(os.fspath(path))
    return f"{name}:{line}" if line is not None else name


def check_class_list(classes: Any, source: str) -> None:
    """An AnnotationError unless `classes` is None or a list of names: a single string (a file name, say) would
    otherwise be read as one class per character."""
    if isinstance(classes, (str, bytes, os.PathLike)):
        raise AnnotationError(f"{source}: classes={printable(os.fsdecode(classes))!r} is one string; give the class "
                              "names as a list, in label order (in a run config: options: {classes: [walk, run]})")


def check_exists(path: PathLike, what: str) -> Path:
    """The path as a Path; an `AnnotationError` naming `what` the file is for when it is missing."""
    p = Path(path)
    if not p.is_file():
        raise AnnotationError(f"{where(path)}: no such {what} file (check the annotation path)")
    return p


def read_text(path: PathLike, what: str) -> str:
    """The file as UTF-8 text (a BOM dropped); bytes that are not UTF-8 are an `AnnotationError` naming the line."""
    p = check_exists(path, what)
    data = p.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise AnnotationError(f"{where(p, line)}: byte {data[error.start]:#04x} is not UTF-8 text; is this the {what} "
                              "file? Save it as UTF-8") from None


def read_lines(path: PathLike, what: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, stripped line) for every non-blank line of a text file."""
    for number, line in enumerate(read_text(path, what).splitlines(), start=1):
        text = line.strip()
        if text:
            yield number, text


def load_json(path: PathLike, what: str) -> Any:
    """The parsed content of a JSON file; malformed JSON becomes an `AnnotationError` with line and column."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise AnnotationError(
            f"{where(path, error.lineno)}: not valid JSON ({error.msg} at column {error.colno})"
        ) from error


def read_table(path: PathLike, what: str = "annotation") -> list[tuple[int, dict[str, Any]]]:
    """Rows of a JSONL, JSON (a list of objects), CSV or TSV file as (line number, dict) pairs.

    The format follows the extension: `.jsonl` one object per line; `.json` a list of objects (the line number
    is then the entry's position, 1-based); `.csv` / `.tsv` a header row naming the columns. Fields missing from
    a CSV row are absent from its dict; surplus fields (an unquoted comma in the last column, as in
    MSRVTT_JSFUSION_test.csv) are joined back into the last column.
    """
    p = check_exists(path, what)
    suffix = p.suffix.lower()
    if suffix == ".jsonl":
        rows = []
        for number, line in read_lines(p, what):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise AnnotationError(f"{where(p, number)}: not a JSON object ({error.msg})") from error
            if not isinstance(row, dict):
                raise AnnotationError(f"{where(p, number)}: expected a JSON object per line, got {type(row).__name__}")
            rows.append((number, row))
        return rows
    if suffix == ".json":
        data = load_json(p, what)
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise AnnotationError(f"{where(p)}: expected a JSON list of objects (or use .jsonl, one per line)")
        return list(enumerate(data, start=1))
    if suffix in (".csv", ".tsv"):
        return _read_delimited(p, "\t" if suffix == ".tsv" else ",", what)
    raise AnnotationError(f"{where(p)}: unknown annotation format {suffix!r}; use .jsonl, .json, .csv or .tsv")


def _read_delimited(path: Path, delimiter: str, what: str) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a delimited file with a header; surplus fields go back into the last column."""
    with io.StringIO(read_text(path, what), newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if not header:
            raise AnnotationError(f"{where(path)}: the file is empty; expected a header row naming the columns")
        header = [name.strip() for name in header]
        rows = []
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue
            if len(fields) > len(header):
                fields = [*fields[: len(header) - 1], delimiter.join(fields[len(header) - 1 :])]
            rows.append((reader.line_num, {name: value.strip() for name, value in zip(header, fields, strict=False)}))
        return rows


def pick(row: dict[str, Any], names: Iterable[str]) -> Any:
    """The value of the first of `names` present (and not empty) in `row`, else None."""
    for name in names:
        value = row.get(name)
        if value is not None and value != "":
            return value
    return None


def to_seconds(value: Any, path: PathLike, line: int, name: str) -> float | None:
    """A time in seconds from a field (number or numeric text); None for a missing field."""
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError) as error:
        raise AnnotationError(f"{where(path, line)}: {name} must be a number of seconds, got {value!r}") from error
    if seconds < 0 or seconds != seconds:
        raise AnnotationError(f"{where(path, line)}: {name} must be >= 0 seconds, got {value!r}")
    return seconds


def to_label(value: Any, path: PathLike, line: int) -> int:
    """An integer class label from a field (int or integer text)."""
    try:
        label = int(str(value).strip())
    except (TypeError, ValueError) as error:
        raise AnnotationError(
            f"{where(path, line)}: the label must be an integer class index, got {value!r}"
        ) from error
    if label < 0:
        raise AnnotationError(f"{where(path, line)}: the label must be >= 0, got {label}")
    return label


def check_window(start: float | None, end: float | None, path: PathLike, line: int) -> None:
    """An `AnnotationError` when a window ends before it starts."""
    if start is not None and end is not None and end <= start:
        raise AnnotationError(f"{where(path, line)}: end ({end} s) must be after start ({start} s)")
