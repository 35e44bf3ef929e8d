"""Parsers for the video classification annotation formats: each returns `list[Record]` and decodes nothing.

Formats:

Video lists (Kinetics, and SSv2 as VideoMAE / RLT ship it): one video per line, `<path> <label>` or
  `<path>,<label>`, the label an integer class index. The label is split off the end of the line, so paths
  with spaces work (the RLT release splits on every space and breaks on them). A first line whose label is
  not an integer is taken as a header and skipped.
Kinetics official CSV (`kinetics400/train.csv` ...): header `label,youtube_id,time_start,time_end,split`;
  the clip file is `<label>/<youtube_id>_<start:06d>_<end:06d>.mp4` (a flat folder also works). Classes are
  the sorted label names unless `classes` fixes them (pass the train classes when reading val).
Something-Something v2: `something-something-v2-labels.json` maps each template to its class id as text,
  `{"Holding something next to something": "30", ...}`; `something-something-v2-{train,validation}.json` are
  lists of `{"id": "78687", "label": "holding potato next to vicks vaporub bottle", "template": "Holding
  [something] next to [something]", "placeholders": [...]}`; the test list has ids only. The class of an
  entry is its template with the brackets removed (what the standard loaders do); videos are `<id>.webm`.
Generic: JSONL / JSON list / CSV / TSV rows with `video` (or `path`) and `label`, an integer or a class name
  (names are numbered in sorted order unless `classes` is given), optional `start`, `end`, `split`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from vidslim.data.records import (
    PathLike,
    Record,
    check_class_list,
    check_window,
    load_json,
    pick,
    read_lines,
    read_table,
    to_label,
    to_seconds,
    where,
)
from vidslim.data.retrieval_formats import VIDEO_KEYS
from vidslim.errors import AnnotationError

LABEL_KEYS = ("label", "class", "label_id")


def parse_video_list(path: PathLike) -> list[Record]:
    """Records of a `<path> <label>` / `<path>,<label>` list (Kinetics / VideoMAE style)."""
    records = []
    for line, text in read_lines(path, "video list"):
        parts = text.rsplit(",", 1) if "," in text else text.rsplit(None, 1)
        if len(parts) != 2 or not parts[0].strip():
            raise AnnotationError(f"{where(path, line)}: expected '<video path> <label>', got {text!r}")
        video, label = parts[0].strip(), parts[1].strip()
        if not records and not _is_int(label):
            continue  # a header row
        records.append(Record(video=video, label=to_label(label, path, line), extra={"source": where(path, line)}))
    return records


def parse_kinetics_csv(path: PathLike, classes: Sequence[str] | None = None) -> list[Record]:
    """Records of an official Kinetics CSV (label, youtube_id, time_start, time_end, split)."""
    rows = read_table(path, "Kinetics csv")
    names = [str(row.get("label", "")) for _, row in rows]
    index = _class_index(names, classes, path)
    records = []
    for (line, row), name in zip(rows, names, strict=True):
        if not row.get("youtube_id"):
            raise AnnotationError(f"{where(path, line)}: no youtube_id; expected the official Kinetics csv columns "
                                  "label,youtube_id,time_start,time_end,split")
        start, end = (int(float(row.get(k) or 0)) for k in ("time_start", "time_end"))
        stem = f"{row['youtube_id']}_{start:06d}_{end:06d}"
        records.append(Record(video=f"{name}/{stem}" if name else stem, video_id=stem,
                              label=index.get(name) if name else None, label_name=name or None))
    return records


def parse_ssv2(
    split_json: PathLike, labels_json: PathLike, caption: Literal["label", "template"] = "label"
) -> list[Record]:
    """Records of a Something-Something v2 split; the class is the template without brackets.

    caption: "label" keeps the filled-in sentence ("holding potato next to vicks vaporub bottle"),
    "template" the bracket-free template ("Holding something next to something"), for SSv2-label and
    SSv2-template retrieval. Entries without a template (the test list) get label None.
    """
    classes = load_json(labels_json, "SSv2 labels")
    if not isinstance(classes, dict):
        raise AnnotationError(f"{where(labels_json)}: expected an object mapping templates to class ids")
    class_ids = {_strip_brackets(str(t)): to_label(i, labels_json, n) for n, (t, i) in enumerate(classes.items(), 1)}
    entries = load_json(split_json, "SSv2 split")
    if not isinstance(entries, list):
        raise AnnotationError(f"{where(split_json)}: expected a list of {{id, label, template, placeholders}}")
    records = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or "id" not in entry:
            raise AnnotationError(f"{where(split_json)}: entry {number} has no 'id'")
        video_id = str(entry["id"])
        template = entry.get("template")
        label = name = None
        if template is not None:
            name = _strip_brackets(str(template))
            if name not in class_ids:
                raise AnnotationError(f"{where(split_json)}: entry {number} ({video_id}): template {template!r} is "
                                      f"not in {labels_json} (are both files from the same release?)")
            label = class_ids[name]
        text = entry.get("label") if caption == "label" else name
        records.append(Record(video=video_id, label=label, label_name=name,
                              caption=str(text).strip() if text else None))
    return records


def parse_labels(path: PathLike, classes: Sequence[str] | None = None, split: str | None = None) -> list[Record]:
    """Records of a generic label file: `video`/`path` and `label` (index or name); optional start, end, split."""
    check_class_list(classes, where(path))
    rows = [(line, row) for line, row in read_table(path, "label") if split is None or row.get("split") == split]
    values = []
    for line, row in rows:
        if pick(row, VIDEO_KEYS) is None:
            raise AnnotationError(f"{where(path, line)}: no video column; name it one of {VIDEO_KEYS}")
        value = pick(row, LABEL_KEYS)
        if value is None:
            raise AnnotationError(f"{where(path, line)}: no label; name the column one of {LABEL_KEYS}")
        values.append(value)
    named = not all(_is_int(v) for v in values)
    index = _class_index([str(v) for v in values], classes, path) if named else {}
    records = []
    for (line, row), value in zip(rows, values, strict=True):
        start = to_seconds(row.get("start"), path, line, "start")
        end = to_seconds(row.get("end"), path, line, "end")
        check_window(start, end, path, line)
        label = index[str(value)] if named else to_label(value, path, line)
        name = str(value) if named else row.get("label_name")
        records.append(Record(video=str(pick(row, VIDEO_KEYS)), video_id=str(row.get("video_id") or ""),
                              label=label, label_name=name, start=start, end=end,
                              extra={"source": where(path, line)}))
    return records


def _class_index(names: list[str], classes: Sequence[str] | None, path: PathLike) -> dict[str, int]:
    """Class name -> index: positions in `classes`, else the sorted names found."""
    if classes is None:
        return {name: i for i, name in enumerate(sorted({n for n in names if n}))}
    index = {str(name): i for i, name in enumerate(classes)}
    unknown = sorted({n for n in names if n and n not in index})
    if unknown:
        raise AnnotationError(f"{where(path)}: {len(unknown)} class names are not in `classes` "
                              f"(first: {unknown[0]!r}); pass the full class list")
    return index


def _strip_brackets(template: str) -> str:
    return template.replace("[", "").replace("]", "")


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    try:
        int(str(value).strip())
    except ValueError:
        return False
    return True
