"""Parsers for the text-video retrieval annotation formats: each returns `list[Record]` and decodes nothing.

Formats (the CLIP4Clip releases, which TempMe, DiCoSA and most retrieval code read):

MSRVTT (`msrvtt_data.zip`):
  - `MSRVTT_data.json`: `{"videos": [...], "sentences": [{"caption": str, "video_id": "video7010",
    "sen_id": int}, ...]}`, 20 captions per video.
  - `MSRVTT_train.9k.csv` (or `MSRVTT_train.7k.csv`): a header `video_id`, then one id per line.
  - `MSRVTT_JSFUSION_test.csv` (the 1k-A test): header `key,vid_key,video_id,sentence`, rows like
    `ret0,msr9770,video9770,a person is connecting something to system` (one caption per video).
  - videos: `{video_id}.mp4`.
DiDeMo: `{train,val,test}_data.json`, a list of `{"video": "<flickr name>.mov", "description": str,
  "times": [[s, e], ...] (one pair per annotator, in 5-second segments: [s, e] covers 5*s to 5*(e+1) s),
  "annotation_id": ..., ...}`; `{split}_list.txt` lists the split's video names, one per line. Retrieval is
  paragraph-to-video: all descriptions of a video joined with spaces, over the whole video.
ActivityNet Captions: `train.json` / `val_1.json` map `v_<youtube id>` to `{"duration": s, "timestamps":
  [[s, e], ...], "sentences": [str, ...]}`; `train_ids.json` / `val_ids.json` list the ids. Paragraph-to-video
  as for DiDeMo; videos are `v_<id>.mp4` (or `<id>.mp4`). Evaluation uses `val_1`.
LSMDC (2016 challenge): tab-separated, no header, 6 columns: `clip_id`, start and end (aligned), start and
  end (extracted), sentence; files `LSMDC16_annos_training.csv`, `LSMDC16_annos_val.csv`,
  `LSMDC16_challenge_1000_publictect.csv` (test, 1,000 clips). Clip files are `<movie>/<clip_id>.avi` with
  `<movie>` the clip id up to its last underscore (a flat folder of clips also works).
Generic: JSONL / JSON list / CSV / TSV rows with `video` (or `path`), `caption` (or `text`, `sentence`), and
  optional `video_id`, `start`, `end` (seconds), `split` (see `vidslim.data.records.read_table`).
"""

from __future__ import annotations

import logging
from typing import Any

from vidslim.data.records import (
    PathLike,
    Record,
    check_window,
    load_json,
    pick,
    read_lines,
    read_table,
    to_seconds,
    where,
)
from vidslim.errors import AnnotationError

log = logging.getLogger(__name__)

VIDEO_KEYS = ("video", "path", "video_path", "file")
CAPTION_KEYS = ("caption", "text", "sentence", "description")
DIDEMO_SEGMENT_SECONDS = 5.0


def parse_msrvtt(split_csv: PathLike, data_json: PathLike | None = None, all_captions: bool = False) -> list[Record]:
    """Records of an MSRVTT split, grouped by video in the order of `split_csv`.

    A split file with a `sentence` column (the 1k-A test) gives its own (video, sentence) pairs; one with only
    `video_id` (the 9k / 7k train lists) takes every caption of its videos from `data_json`, each its own record
    (about 180k for 9k). `all_captions=True` takes the `data_json` captions in both cases (the 20-captions-per-
    video test protocol).
    """
    rows = read_table(split_csv, "MSRVTT split")
    if rows and "video_id" not in rows[0][1]:
        raise AnnotationError(f"{where(split_csv)}: no 'video_id' column; expected an MSRVTT split csv "
                              "(MSRVTT_train.9k.csv or MSRVTT_JSFUSION_test.csv)")
    has_sentences = bool(rows) and "sentence" in rows[0][1]
    if has_sentences and not all_captions:
        return [Record(video=row["video_id"], caption=_caption(row.get("sentence"), split_csv, line))
                for line, row in rows]
    if data_json is None:
        raise AnnotationError(f"{where(split_csv)}: this split lists videos only; pass data_json "
                              "(MSRVTT_data.json) to take their captions from")
    captions = _msrvtt_captions(data_json)
    records: list[Record] = []
    seen: set[str] = set()
    for line, row in rows:
        video_id = row["video_id"]
        if video_id in seen:
            continue
        seen.add(video_id)
        if video_id not in captions:
            raise AnnotationError(f"{where(split_csv, line)}: video {video_id!r} has no caption in {data_json} "
                                  "(do the split file and MSRVTT_data.json come from the same release?)")
        records.extend(Record(video=video_id, caption=caption) for caption in captions[video_id])
    return records


def _msrvtt_captions(data_json: PathLike) -> dict[str, list[str]]:
    """video_id -> its captions, in file order, from MSRVTT_data.json."""
    data = load_json(data_json, "MSRVTT_data.json")
    sentences = data.get("sentences") if isinstance(data, dict) else None
    if not isinstance(sentences, list):
        raise AnnotationError(f"{where(data_json)}: expected an object with a 'sentences' list (MSRVTT_data.json)")
    captions: dict[str, list[str]] = {}
    for number, entry in enumerate(sentences, start=1):
        if not isinstance(entry, dict) or "video_id" not in entry or "caption" not in entry:
            raise AnnotationError(f"{where(data_json)}: sentences[{number - 1}] needs 'video_id' and 'caption'")
        captions.setdefault(str(entry["video_id"]), []).append(_caption(entry["caption"], data_json, None))
    return captions


def parse_didemo(data_json: PathLike, video_list: PathLike | None = None, paragraph: bool = True) -> list[Record]:
    """Records of a DiDeMo split: one paragraph per video (default), or one per description with its moment.

    paragraph=True joins the video's descriptions (file order) with spaces, over the whole video.
    paragraph=False gives each description the annotators' mean moment: `5 * mean(s)` to `5 * (mean(e) + 1)`
    seconds. `video_list` ({split}_list.txt) keeps only the videos it names.
    """
    data = load_json(data_json, "DiDeMo data")
    if not isinstance(data, list):
        raise AnnotationError(f"{where(data_json)}: expected a list of {{video, description, times}} objects")
    keep = {line for _, line in read_lines(video_list, "DiDeMo video list")} if video_list is not None else None
    grouped: dict[str, list[tuple[str, tuple[float, float] | None]]] = {}
    for number, entry in enumerate(data, start=1):
        if not isinstance(entry, dict) or "video" not in entry or "description" not in entry:
            raise AnnotationError(f"{where(data_json)}: entry {number} needs 'video' and 'description'")
        video = str(entry["video"])
        if keep is not None and video not in keep:
            continue
        moment = None if paragraph else _didemo_moment(entry.get("times"), data_json, number)
        grouped.setdefault(video, []).append((_caption(entry["description"], data_json, None), moment))
    if paragraph:
        return [Record(video=video, caption=" ".join(text for text, _ in items)) for video, items in grouped.items()]
    return [Record(video=video, caption=text, start=moment[0], end=moment[1])
            for video, items in grouped.items() for text, moment in items if moment is not None]


def _didemo_moment(times: Any, path: PathLike, number: int) -> tuple[float, float]:
    """Seconds covered by the annotators' mean [start, end] segment indices (5 s segments, end inclusive)."""
    if not isinstance(times, list) or not times or not all(isinstance(t, list | tuple) and len(t) == 2 for t in times):
        raise AnnotationError(f"{where(path)}: entry {number}: 'times' must be a list of [start, end] segment pairs")
    start = sum(float(t[0]) for t in times) / len(times)
    end = sum(float(t[1]) for t in times) / len(times)
    return start * DIDEMO_SEGMENT_SECONDS, (end + 1) * DIDEMO_SEGMENT_SECONDS


def parse_activitynet(
    captions_json: PathLike, ids_json: PathLike | None = None, paragraph: bool = True
) -> list[Record]:
    """Records of an ActivityNet Captions split: one paragraph per video (default), or one per sentence.

    paragraph=True joins the stripped sentences with spaces over the whole video; paragraph=False gives each
    sentence its timestamps (windows that end before they start are dropped, with a warning). `ids_json`
    (train_ids.json / val_ids.json) keeps its ids, in its order; ids without captions are skipped.
    """
    data = load_json(captions_json, "ActivityNet captions")
    if not isinstance(data, dict):
        raise AnnotationError(f"{where(captions_json)}: expected an object mapping video ids to "
                              "{duration, timestamps, sentences}")
    ids = list(data)
    if ids_json is not None:
        listed = load_json(ids_json, "ActivityNet ids")
        if not isinstance(listed, list):
            raise AnnotationError(f"{where(ids_json)}: expected a JSON list of video ids")
        missing = [v for v in listed if v not in data]
        if missing:
            log.warning("%s: %d ids have no captions in %s and are skipped (first: %s)", ids_json, len(missing),
                        captions_json, missing[0])
        ids = [v for v in listed if v in data]
    records: list[Record] = []
    for video_id in ids:
        entry = data[video_id]
        sentences = entry.get("sentences") if isinstance(entry, dict) else None
        if not isinstance(sentences, list) or not sentences:
            raise AnnotationError(f"{where(captions_json)}: {video_id!r} needs a non-empty 'sentences' list")
        texts = [_caption(s, captions_json, None) for s in sentences]
        if paragraph:
            records.append(Record(video=video_id, caption=" ".join(texts)))
            continue
        stamps = entry.get("timestamps")
        if not isinstance(stamps, list) or len(stamps) != len(texts):
            raise AnnotationError(f"{where(captions_json)}: {video_id!r} needs one [start, end] timestamp per sentence")
        for text, (start, end) in zip(texts, stamps, strict=True):
            start, end = max(float(start), 0.0), float(end)
            if end <= start:
                log.warning("%s: %s: sentence window [%s, %s] is empty; dropped", captions_json, video_id, start, end)
                continue
            records.append(Record(video=video_id, caption=text, start=start, end=end))
    return records


def parse_lsmdc(annotation_tsv: PathLike) -> list[Record]:
    """Records of an LSMDC annotation file (6 tab-separated columns, no header), one per clip."""
    records = []
    for line, text in read_lines(annotation_tsv, "LSMDC annotation"):
        fields = text.split("\t", 5)
        if len(fields) != 6:
            raise AnnotationError(f"{where(annotation_tsv, line)}: expected 6 tab-separated columns (clip_id, "
                                  "start/end aligned, start/end extracted, sentence), got {len(fields)}")
        clip_id = fields[0].strip()
        movie = clip_id.rsplit("_", 1)[0]
        records.append(Record(video=f"{movie}/{clip_id}", video_id=clip_id,
                              caption=_caption(fields[5], annotation_tsv, line),
                              extra={"aligned": (fields[1], fields[2]), "extracted": (fields[3], fields[4])}))
    return records


def parse_captions(path: PathLike, split: str | None = None) -> list[Record]:
    """Records of a generic caption file: `video`/`path`, `caption`/`text`/`sentence`, optional `video_id`,
    `start`, `end` (seconds) and `split` (keep only rows of `split` when given)."""
    records = []
    for line, row in read_table(path, "caption"):
        if split is not None and row.get("split") != split:
            continue
        video = pick(row, VIDEO_KEYS)
        if video is None:
            raise AnnotationError(f"{where(path, line)}: no video column; name it one of {VIDEO_KEYS}")
        caption = pick(row, CAPTION_KEYS)
        if caption is None:
            raise AnnotationError(f"{where(path, line)}: no caption; name the column one of {CAPTION_KEYS}")
        start = to_seconds(row.get("start"), path, line, "start")
        end = to_seconds(row.get("end"), path, line, "end")
        check_window(start, end, path, line)
        records.append(Record(video=str(video), video_id=str(row.get("video_id") or video),
                              caption=_caption(caption, path, line), start=start, end=end))
    return records


def _caption(value: Any, path: PathLike, line: int | None) -> str:
    """A caption as stripped text; an `AnnotationError` for a missing or empty one."""
    if not isinstance(value, str) or not value.strip():
        raise AnnotationError(f"{where(path, line)}: empty or missing caption ({value!r})")
    return value.strip()
