"""Annotation parsers on small files written in the exact real formats; no video is decoded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidslim.data.classification_formats import parse_kinetics_csv, parse_labels, parse_ssv2, parse_video_list
from vidslim.data.records import Record, read_table
from vidslim.data.retrieval_formats import (
    parse_activitynet,
    parse_captions,
    parse_didemo,
    parse_lsmdc,
    parse_msrvtt,
)
from vidslim.errors import AnnotationError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_json(path: Path, data: object) -> Path:
    return write(path, json.dumps(data))


@pytest.fixture
def msrvtt_dir(tmp_path: Path) -> Path:
    write_json(tmp_path / "MSRVTT_data.json", {
        "info": {"year": 2016},
        "videos": [{"video_id": f"video{i}", "category": 0, "start time": 0.0, "end time": 10.0, "split": "train"}
                   for i in range(3)],
        "sentences": [
            {"caption": "a man is singing", "video_id": "video0", "sen_id": 0},
            {"caption": "a cartoon plays", "video_id": "video1", "sen_id": 1},
            {"caption": " someone sings on stage ", "video_id": "video0", "sen_id": 2},
            {"caption": "a dog runs", "video_id": "video2", "sen_id": 3},
            {"caption": "cartoon characters talk", "video_id": "video1", "sen_id": 4},
        ],
    })
    write(tmp_path / "MSRVTT_train.9k.csv", "video_id\nvideo1\nvideo0\n")
    write(tmp_path / "MSRVTT_JSFUSION_test.csv",
          "key,vid_key,video_id,sentence\n"
          "ret0,msr2,video2,a dog runs\n"
          "ret1,msr0,video0,a man sings, loudly\n")  # unquoted comma, as some copies of the file have
    return tmp_path


def test_msrvtt_train_takes_every_caption_of_the_split_videos(msrvtt_dir: Path) -> None:
    records = parse_msrvtt(msrvtt_dir / "MSRVTT_train.9k.csv", msrvtt_dir / "MSRVTT_data.json")
    assert [(r.video_id, r.caption) for r in records] == [
        ("video1", "a cartoon plays"), ("video1", "cartoon characters talk"),
        ("video0", "a man is singing"), ("video0", "someone sings on stage"),
    ]
    assert all(r.video == r.video_id and r.start is None and r.end is None for r in records)


def test_msrvtt_test_uses_the_csv_sentences(msrvtt_dir: Path) -> None:
    records = parse_msrvtt(msrvtt_dir / "MSRVTT_JSFUSION_test.csv")
    assert [(r.video_id, r.caption) for r in records] == [("video2", "a dog runs"), ("video0", "a man sings, loudly")]
    every = parse_msrvtt(msrvtt_dir / "MSRVTT_JSFUSION_test.csv", msrvtt_dir / "MSRVTT_data.json", all_captions=True)
    assert [r.caption for r in every] == ["a dog runs", "a man is singing", "someone sings on stage"]


def test_msrvtt_errors_name_the_file(msrvtt_dir: Path) -> None:
    with pytest.raises(AnnotationError, match="pass data_json"):
        parse_msrvtt(msrvtt_dir / "MSRVTT_train.9k.csv")
    write(msrvtt_dir / "other.csv", "video_id\nvideo9\n")
    with pytest.raises(AnnotationError, match=r"other.csv:2: video 'video9' has no caption"):
        parse_msrvtt(msrvtt_dir / "other.csv", msrvtt_dir / "MSRVTT_data.json")
    with pytest.raises(AnnotationError, match="no such MSRVTT split file"):
        parse_msrvtt(msrvtt_dir / "missing.csv")


def test_didemo_paragraphs_and_moments(tmp_path: Path) -> None:
    data = [
        {"video": "a@N00_1_x.mov", "description": "a girl waves.", "times": [[0, 0], [0, 1], [0, 0], [0, 1]],
         "annotation_id": 1, "dl_link": "http://example"},
        {"video": "b@N00_2_y.mov", "description": "a car drives by", "times": [[2, 3], [2, 3], [3, 3], [3, 3]],
         "annotation_id": 2},
        {"video": "a@N00_1_x.mov", "description": "she sits down", "times": [[4, 5], [4, 5], [4, 5], [4, 5]],
         "annotation_id": 3},
    ]
    write_json(tmp_path / "test_data.json", data)
    paragraphs = parse_didemo(tmp_path / "test_data.json")
    assert [(r.video, r.caption, r.start, r.end) for r in paragraphs] == [
        ("a@N00_1_x.mov", "a girl waves. she sits down", None, None),
        ("b@N00_2_y.mov", "a car drives by", None, None),
    ]
    write(tmp_path / "test_list.txt", "b@N00_2_y.mov\n")
    assert [r.video for r in parse_didemo(tmp_path / "test_data.json", tmp_path / "test_list.txt")] == ["b@N00_2_y.mov"]
    moments = parse_didemo(tmp_path / "test_data.json", paragraph=False)
    # mean segment [0, 0.5] -> 0 s to 7.5 s; [2.5, 3] -> 12.5 s to 20 s; [4, 5] -> 20 s to 30 s
    assert [(r.caption, r.start, r.end) for r in moments] == [
        ("a girl waves.", 0.0, 7.5), ("she sits down", 20.0, 30.0), ("a car drives by", 12.5, 20.0)]


def test_activitynet_paragraphs_with_id_list(tmp_path: Path) -> None:
    write_json(tmp_path / "val_1.json", {
        "v_abc": {"duration": 30.0, "timestamps": [[0.0, 10.5], [9.0, 30.0]],
                  "sentences": ["A man ties a rope. ", " He climbs the wall."]},
        "v_def": {"duration": 12.0, "timestamps": [[3.0, 2.0]], "sentences": ["Kids play."]},
    })
    write_json(tmp_path / "val_ids.json", ["v_def", "v_abc", "v_missing"])
    records = parse_activitynet(tmp_path / "val_1.json", tmp_path / "val_ids.json")
    assert [(r.video, r.caption) for r in records] == [
        ("v_def", "Kids play."), ("v_abc", "A man ties a rope. He climbs the wall.")]
    sentences = parse_activitynet(tmp_path / "val_1.json", paragraph=False)
    # v_def's window ends before it starts and is dropped
    assert [(r.caption, r.start, r.end) for r in sentences] == [
        ("A man ties a rope.", 0.0, 10.5), ("He climbs the wall.", 9.0, 30.0)]


def test_lsmdc_tab_separated_clips(tmp_path: Path) -> None:
    write(tmp_path / "LSMDC16_annos_val.csv",
          "1010_TITANIC_00.00.12.437-00.00.15.124\t00.00.12.437\t00.00.15.124\t00.00.12.200\t00.00.15.300\t"
          "SOMEONE looks out\tat the sea.\n"
          "\n"
          "3001_21_JUMP_STREET_00.01.02.003-00.01.04.000\t00.01.02.003\t00.01.04.000\t00.01.02.003\t00.01.04.000\t"
          "They run.\n")
    records = parse_lsmdc(tmp_path / "LSMDC16_annos_val.csv")
    assert [(r.video, r.video_id, r.caption) for r in records] == [
        ("1010_TITANIC/1010_TITANIC_00.00.12.437-00.00.15.124", "1010_TITANIC_00.00.12.437-00.00.15.124",
         "SOMEONE looks out\tat the sea."),
        ("3001_21_JUMP_STREET/3001_21_JUMP_STREET_00.01.02.003-00.01.04.000",
         "3001_21_JUMP_STREET_00.01.02.003-00.01.04.000", "They run."),
    ]
    write(tmp_path / "bad.csv", "clip\t1\t2\n")
    with pytest.raises(AnnotationError, match=r"bad.csv:1: expected 6 tab-separated columns"):
        parse_lsmdc(tmp_path / "bad.csv")


def test_generic_captions_jsonl_and_csv(tmp_path: Path) -> None:
    write(tmp_path / "caps.jsonl",
          '{"video": "a.mp4", "caption": "one", "start": 1.5, "end": 3, "split": "train"}\n\n'
          '{"path": "b.mp4", "text": "two", "video_id": "B", "split": "val"}\n')
    records = parse_captions(tmp_path / "caps.jsonl")
    assert records == [Record("a.mp4", "a.mp4", "one", start=1.5, end=3.0), Record("b.mp4", "B", "two")]
    assert [r.caption for r in parse_captions(tmp_path / "caps.jsonl", split="val")] == ["two"]
    write(tmp_path / "caps.csv", 'video,caption,start,end\nc.mp4,"three, with a comma",,4\n')
    assert parse_captions(tmp_path / "caps.csv") == [Record("c.mp4", caption="three, with a comma", end=4.0)]
    write(tmp_path / "bad.jsonl", '{"video": "a.mp4", "caption": "x"}\n{"video": "b.mp4"}\n')
    with pytest.raises(AnnotationError, match=r"bad.jsonl:2: no caption"):
        parse_captions(tmp_path / "bad.jsonl")
    write(tmp_path / "window.csv", "video,caption,start,end\nd.mp4,x,5,2\n")
    with pytest.raises(AnnotationError, match=r"window.csv:2: end \(2.0 s\) must be after start"):
        parse_captions(tmp_path / "window.csv")


def test_read_table_reports_bad_lines(tmp_path: Path) -> None:
    write(tmp_path / "broken.jsonl", '{"a": 1}\n{"a": \n')
    with pytest.raises(AnnotationError, match=r"broken.jsonl:2: not a JSON object"):
        read_table(tmp_path / "broken.jsonl")
    with pytest.raises(AnnotationError, match=r"unknown annotation format '\.txt'"):
        read_table(write(tmp_path / "x.txt", "a"))


def test_kinetics_style_lists(tmp_path: Path) -> None:
    write(tmp_path / "k400_val.txt",
          "path label\n"
          "abseiling/0347ZoDXyP0_000095_000105.mp4 0\n"
          "air drumming/-VtLx-mcPds_000012_000022.mp4 1\n"   # a path with a space: split off the last field
          "/data/k400/zumba/xyz.mp4,399\n")
    records = parse_video_list(tmp_path / "k400_val.txt")
    assert [(r.video, r.label) for r in records] == [
        ("abseiling/0347ZoDXyP0_000095_000105.mp4", 0), ("air drumming/-VtLx-mcPds_000012_000022.mp4", 1),
        ("/data/k400/zumba/xyz.mp4", 399)]
    write(tmp_path / "bad.txt", "a.mp4 0\nb.mp4 dog\n")
    with pytest.raises(AnnotationError, match=r"bad.txt:2: the label must be an integer"):
        parse_video_list(tmp_path / "bad.txt")


def test_kinetics_official_csv(tmp_path: Path) -> None:
    write(tmp_path / "validate.csv",
          "label,youtube_id,time_start,time_end,split\n"
          "zumba,abc,10,20,val\n"
          "abseiling,3Kx,0,10,val\n")
    records = parse_kinetics_csv(tmp_path / "validate.csv")
    assert [(r.video, r.label, r.label_name) for r in records] == [
        ("zumba/abc_000010_000020", 1, "zumba"), ("abseiling/3Kx_000000_000010", 0, "abseiling")]
    fixed = parse_kinetics_csv(tmp_path / "validate.csv", classes=["zumba", "abseiling", "yoga"])
    assert [r.label for r in fixed] == [0, 1]


def test_ssv2_templates_without_brackets(tmp_path: Path) -> None:
    write_json(tmp_path / "something-something-v2-labels.json",
               {"Holding something next to something": "30", "Pushing something from left to right": "93"})
    write_json(tmp_path / "something-something-v2-validation.json", [
        {"id": "74225", "label": "pushing a cup from left to right",
         "template": "Pushing [something] from left to right", "placeholders": ["a cup"]},
        {"id": "116154", "label": "holding potato next to vicks vaporub bottle",
         "template": "Holding [something] next to [something]", "placeholders": ["potato", "vicks vaporub bottle"]},
    ])
    records = parse_ssv2(tmp_path / "something-something-v2-validation.json",
                         tmp_path / "something-something-v2-labels.json")
    assert [(r.video, r.label, r.label_name, r.caption) for r in records] == [
        ("74225", 93, "Pushing something from left to right", "pushing a cup from left to right"),
        ("116154", 30, "Holding something next to something", "holding potato next to vicks vaporub bottle")]
    template = parse_ssv2(tmp_path / "something-something-v2-validation.json",
                          tmp_path / "something-something-v2-labels.json", caption="template")
    assert template[0].caption == "Pushing something from left to right"
    write_json(tmp_path / "test.json", [{"id": "1"}])
    assert parse_ssv2(tmp_path / "test.json", tmp_path / "something-something-v2-labels.json")[0].label is None
    write_json(tmp_path / "odd.json", [{"id": "2", "label": "x", "template": "Juggling [something]"}])
    with pytest.raises(AnnotationError, match="not in"):
        parse_ssv2(tmp_path / "odd.json", tmp_path / "something-something-v2-labels.json")


def test_generic_labels_by_index_or_name(tmp_path: Path) -> None:
    write(tmp_path / "train.csv", "path,label\nx/1.mp4,2\nx/2.mp4,0\n")
    assert [(r.video, r.label) for r in parse_labels(tmp_path / "train.csv")] == [("x/1.mp4", 2), ("x/2.mp4", 0)]
    write(tmp_path / "names.csv", "path,label\na.mp4,dog\nb.mp4,cat\nc.mp4,dog\n")
    assert [(r.label, r.label_name) for r in parse_labels(tmp_path / "names.csv")] == [
        (1, "dog"), (0, "cat"), (1, "dog")]
    assert [r.label for r in parse_labels(tmp_path / "names.csv", classes=["dog", "cat"])] == [0, 1, 0]
    with pytest.raises(AnnotationError, match="not in `classes`"):
        parse_labels(tmp_path / "names.csv", classes=["dog"])


@pytest.mark.parametrize("name", ["list.txt", "labels.csv", "labels.jsonl", "labels.json"])
def test_bytes_that_are_not_text_name_the_file_and_line(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"video,label\n" + b"a.mp4,1\n" + bytes(range(128, 160)) + b",2\n")
    reader = parse_video_list if name.endswith(".txt") else parse_labels
    with pytest.raises(AnnotationError, match=rf"{name}:3: byte 0x80 is not UTF-8 text") as caught:
        reader(path)
    assert "\n" not in str(caught.value)


def test_a_label_past_the_class_list_names_its_file_and_line(tmp_path: Path) -> None:
    from vidslim.data.dataset import ClassificationDataset

    path = tmp_path / "train.txt"
    path.write_text("a.mp4 0\nb.mp4 1\nc.mp4 99\n")
    with pytest.raises(AnnotationError) as caught:
        ClassificationDataset(parse_video_list(path), tmp_path, classes=["walk", "run"])
    message = str(caught.value)
    assert message.startswith(f"{path}:3: label 99 (video c.mp4) is out of range for 2 classes (labels 0 to 1)")


def test_classes_given_as_one_string_are_refused_not_split_into_characters(tmp_path: Path) -> None:
    from vidslim.data.dataset import ClassificationDataset

    write(tmp_path / "names.csv", "path,label\na.mp4,walk\nb.mp4,run\n")
    named = str(tmp_path / "classes.txt")  # 30-odd characters: once read as that many one-letter classes
    with pytest.raises(AnnotationError, match=r"names.csv: classes='.*classes.txt' is one string; give the class"):
        parse_labels(tmp_path / "names.csv", classes=named)
    records = parse_labels(tmp_path / "names.csv")
    with pytest.raises(AnnotationError, match="is one string"):
        ClassificationDataset(records, tmp_path, classes=tmp_path / "classes.txt")
