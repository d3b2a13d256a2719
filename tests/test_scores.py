"""ScoreTable: construction from detections, validation, frame scores, CSV/JSON round trips."""
from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest

from detectors.base import Detections
from stgraph.scores import FrameScores, ScoreTable, ScoreTableError

CLASSES = ("person", "bicycle")


def _dets(frame: int, n: int) -> Detections:
    """``n`` objects in ``frame``: box i is [10i, 20, 10i + 5, 40], labels alternate 0, 1."""
    x = 10.0 * np.arange(n)
    boxes = np.stack([x, np.full(n, 20.0), x + 5, np.full(n, 40.0)], axis=1)
    return Detections(boxes, np.linspace(0.9, 0.6, n), np.arange(n) % 2, frame_index=frame,
                      image_size=(120, 160), class_names=CLASSES)


def _table(video: str, objects_per_frame: dict[int, list[float]], **extra) -> ScoreTable:
    """Table of one video: frame -> object scores (an empty list = a frame without objects)."""
    frames = sorted(objects_per_frame)
    dets = [_dets(f, len(objects_per_frame[f])) for f in frames]
    scores = [np.array(objects_per_frame[f], float) for f in frames]
    return ScoreTable.from_detections(video, dets, scores, extra=extra or None)


# Hand-checkable video: frames 0..4, frames 1 and 4 have no objects.
#   max  per frame with objects: f0 3, f2 4, f3 6  -> empty frames get min = 3
#   mean per frame with objects: f0 2, f2 4, f3 3  -> empty frames get min = 2
HAND = {0: [1.0, 3.0], 1: [], 2: [4.0], 3: [1.0, 2.0, 6.0], 4: []}


# ---------------------------------------------------------------------------- construction
def test_from_detections_keeps_every_object_and_registers_empty_frames():
    table = ScoreTable.from_detections("cam", [_dets(0, 2), _dets(1, 0), _dets(2, 1)],
                                       [np.array([0.5, 0.7]), np.zeros(0), np.array([0.9])])
    assert len(table) == 3 and table.videos == ["cam"]
    np.testing.assert_array_equal(table.video_frames["cam"], [0, 1, 2])
    np.testing.assert_array_equal(table["frame"], [0, 0, 2])
    np.testing.assert_array_equal(table["object_id"], [0, 1, 0])
    np.testing.assert_array_equal(table["class_name"], ["person", "bicycle", "person"])
    np.testing.assert_array_equal(table["x1"], [0, 10, 0])
    np.testing.assert_allclose(table["det_score"], [0.9, 0.6, 0.9], rtol=1e-6)
    np.testing.assert_array_equal(table["score"], [0.5, 0.7, 0.9])
    assert table.extra_columns == () and table["score"].dtype == np.float64
    assert repr(table) == "ScoreTable(videos=1, frames=3, objects=3)"


def test_from_detections_extra_columns_and_track_ids():
    two = _dets(1, 2)
    tracked = Detections(two.boxes, two.scores, two.labels, frame_index=1, track_ids=[7, 8])
    table = ScoreTable.from_detections("v", [_dets(0, 1), tracked], [[0.1], [0.2, 0.3]],
                                       extra={"appearance": [[1.5], [2.5, 3.5]]})
    assert table.extra_columns == ("track_id", "appearance")
    np.testing.assert_array_equal(table["track_id"], [-1, 7, 8])
    np.testing.assert_array_equal(table.column("appearance"), [1.5, 2.5, 3.5])


@pytest.mark.parametrize("scores, extra, match", [
    ([[0.1], [0.2, 0.3]], None, r"scores of video 'v' frame 3: got shape \(2,\) for 1 objects"),
    ([[0.1]], None, "2 frames of detections but 1 score arrays"),
    ([[0.1], [0.2]], {"x": [[1.0], []]}, "extra column 'x' of video 'v' frame 3"),
    ([[0.1], [0.2]], {"score": [[1.0], [2.0]]}, "clashes with a required column"),
])
def test_from_detections_length_mismatch_names_the_frame(scores, extra, match):
    with pytest.raises(ScoreTableError, match=match):
        ScoreTable.from_detections("v", [_dets(0, 1), _dets(3, 1)], scores, extra=extra)


def test_nan_score_error_names_video_and_frame():
    with pytest.raises(ScoreTableError, match="NaN or inf .* video 'cam' frame 4"):
        ScoreTable.from_detections("cam", [_dets(2, 1), _dets(4, 2)], [[0.1], [0.3, np.nan]])


def test_constructor_validation():
    good = {name: [0] for name in ScoreTable.REQUIRED} | {"video": ["a"], "class_name": ["p"]}
    with pytest.raises(ScoreTableError, match=r"lack \['score'\]"):
        ScoreTable({k: v for k, v in good.items() if k != "score"})
    with pytest.raises(ScoreTableError, match="one length"):
        ScoreTable(good | {"score": [0.1, 0.2]})
    with pytest.raises(ScoreTableError, match="duplicate row: video 'a' frame 0"):
        ScoreTable({k: v * 2 for k, v in good.items()})
    with pytest.raises(ScoreTableError, match="'frame' must hold int64"):
        ScoreTable(good | {"frame": [0.5]})
    with pytest.raises(ScoreTableError, match="'video' must hold str"):
        ScoreTable(good | {"video": [3]})
    with pytest.raises(ScoreTableError, match="video 'b' has no frames"):
        ScoreTable(good, video_frames={"b": []})


def test_rows_are_sorted_and_row_frames_join_video_frames():
    cols = {name: [0, 0] for name in ScoreTable.REQUIRED} | {
        "video": ["b", "a"], "class_name": ["p", "p"], "frame": [5, 2], "score": [0.2, 0.1]}
    table = ScoreTable(cols, video_frames={"a": [0, 1], "b": [0]})
    assert table.videos == ["a", "b"]
    np.testing.assert_array_equal(table["video"], ["a", "b"])
    np.testing.assert_array_equal(table.video_frames["a"], [0, 1, 2])
    np.testing.assert_array_equal(table.video_frames["b"], [0, 5])
    with pytest.raises(ValueError, match="read-only"):
        table["score"][0] = 1.0


# ---------------------------------------------------------------------------- access
def test_concat_select_and_objects_in_frame():
    a, b = _table("a", {0: [0.1], 1: []}), _table("b", {3: [0.5, 0.6]})
    both = ScoreTable.concat([b, a])
    assert both.videos == ["a", "b"] and len(both) == 3
    assert both.select("b") == b and both.select(["a"]) == a
    in_frame = both.objects_in_frame("b", 3)
    np.testing.assert_array_equal(in_frame["score"], [0.5, 0.6])
    assert len(both.objects_in_frame("a", 1)) == 0
    with pytest.raises(KeyError, match="no video 'c'"):
        both.select("c")
    with pytest.raises(KeyError, match="has no frame 2"):
        both.objects_in_frame("a", 2)
    with pytest.raises(ScoreTableError, match="duplicate row"):
        ScoreTable.concat([a, a])
    with pytest.raises(ScoreTableError, match="columns"):
        ScoreTable.concat([a, _table("c", {0: [1.0]}, extra_col=[[1]])])


def test_concat_merges_chunks_of_one_video():
    whole = ScoreTable.concat([_table("v", {0: [1.0], 1: []}), _table("v", {2: [], 3: [2.0]})])
    np.testing.assert_array_equal(whole.video_frames["v"], [0, 1, 2, 3])
    assert len(whole) == 2


# ---------------------------------------------------------------------------- frame scores
@pytest.mark.parametrize("reduce, expected", [
    ("max", [3, 3, 4, 6, 3]),
    ("mean", [2, 2, 4, 3, 2]),
    ("sum", [4, 4, 4, 9, 4]),
    (np.median, [2, 2, 4, 2, 2]),
])
def test_frame_scores_reduce_with_empty_min(reduce, expected):
    fs = _table("v", HAND).frame_scores(reduce=reduce)["v"]
    np.testing.assert_array_equal(fs.frames, [0, 1, 2, 3, 4])
    np.testing.assert_allclose(fs.scores, expected)
    assert fs.frames.dtype == np.int64 and fs.scores.dtype == np.float64 and len(fs) == 5


def test_frame_scores_empty_constant_and_video_without_objects():
    fs = _table("v", HAND).frame_scores(empty=0.5)["v"]
    np.testing.assert_allclose(fs.scores, [3, 0.5, 4, 6, 0.5])
    quiet = _table("q", {0: [], 1: []}).frame_scores()["q"]
    np.testing.assert_array_equal(quiet.scores, [0, 0])


def test_frame_scores_normalize_and_constant_video():
    table = ScoreTable.concat([_table("v", HAND), _table("c", {0: [2.0], 1: [2.0]})])
    fs = table.frame_scores(normalize=True)
    np.testing.assert_allclose(fs["v"].scores, [0, 0, 1 / 3, 1, 0])  # max scores [3,3,4,6,3]
    np.testing.assert_array_equal(fs["c"].scores, [0, 0])


def test_frame_scores_smooth_then_normalize_by_hand():
    # max scores [3, 3, 4, 6, 3], edge-padded to [3, 3,3,4,6,3, 3]; width-3 means:
    smoothed = [3, 10 / 3, 13 / 3, 13 / 3, 4]
    table = _table("v", HAND)
    np.testing.assert_allclose(table.frame_scores(smooth=3)["v"].scores, smoothed)
    np.testing.assert_allclose(table.frame_scores(smooth=3, normalize=True)["v"].scores,
                               [0, 0.25, 1, 1, 0.75])


@pytest.mark.parametrize("kwargs, match", [
    (dict(smooth=2), "odd int"), (dict(smooth=0), "odd int"),
    (dict(reduce="median"), "reduce must be"), (dict(empty="zero"), "empty must be"),
    (dict(empty=float("nan")), "empty must be"),
    (dict(reduce=lambda s: np.nan), "NaN or inf frame score in video 'v'"),
])
def test_frame_scores_bad_options(kwargs, match):
    with pytest.raises(ScoreTableError, match=match):
        _table("v", HAND).frame_scores(**kwargs)


def test_frame_scores_as_dense_nearest_and_fill():
    fs = FrameScores(np.array([0, 4, 8]), np.array([1.0, 2.0, 3.0]))
    # frames 2 and 6 are equally far from two scored frames: the earlier one wins
    np.testing.assert_array_equal(fs.as_dense(10), [1, 1, 1, 2, 2, 2, 2, 3, 3, 3])
    np.testing.assert_array_equal(fs.as_dense(10, fill=0.0), [1, 0, 0, 0, 2, 0, 0, 0, 3, 0])
    with pytest.raises(ScoreTableError, match="frame 8, beyond n_frames=5"):
        fs.as_dense(5)
    with pytest.raises(ScoreTableError, match="strictly increasing"):
        FrameScores(np.array([2, 1]), np.array([0.0, 0.0]))
    with pytest.raises(ScoreTableError, match="frame 4"):
        FrameScores(np.array([0, 4]), np.array([0.0, np.inf]))


# ---------------------------------------------------------------------------- files
@pytest.fixture
def rich_table() -> ScoreTable:
    """Two videos (unicode and comma in names), empty frames, a video without objects, extras."""
    a = ScoreTable.from_detections(
        "Straße, 北京", [_dets(0, 2), _dets(1, 0), _dets(2, 1)], [[0.125, 1 / 3], [], [2.0]],
        extra={"track_id": [[4, 5], [], [4]], "term": [[0.1, np.nan], [], [1e-12]],
               "note": [["ok", 'say "hi"'], [], [""]], "flag": [[True, False], [], [True]]})
    b = ScoreTable.from_detections("b", [_dets(0, 1)], [[-1.5]], extra={
        "track_id": [[1]], "term": [[2.0]], "note": [["x"]], "flag": [[False]]})
    quiet = ScoreTable({name: b[name][:0] for name in b.columns}, video_frames={"quiet": [0, 1, 2]})
    return ScoreTable.concat([a, b, quiet])


def test_csv_round_trip_is_exact(tmp_path, rich_table):
    path = rich_table.to_csv(tmp_path / "scores.csv")
    back = ScoreTable.read_csv(path)
    assert back == rich_table
    assert {c: back[c].dtype.name for c in ("track_id", "term", "flag", "x1", "score")} == {
        "track_id": "int64", "term": "float64", "flag": "bool", "x1": "float32", "score": "float64"}
    assert list(back.video_frames["quiet"]) == [0, 1, 2]


def test_csv_layout_has_placeholder_rows_for_empty_frames(tmp_path, rich_table):
    with open(rich_table.to_csv(tmp_path / "s.csv"), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    placeholders = [(r["video"], r["frame"]) for r in rows if r["object_id"] == "-1"]
    assert placeholders == [("Straße, 北京", "1"), ("quiet", "0"), ("quiet", "1"), ("quiet", "2")]
    assert all(r["score"] == "" and r["x1"] == "" for r in rows if r["object_id"] == "-1")
    assert len(rows) == len(rich_table) + 4


def test_json_round_trip_is_exact(tmp_path, rich_table):
    path = rich_table.to_json(tmp_path / "scores.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format"] == "stgraph.ScoreTable" and doc["version"] == 1
    assert doc["videos"]["quiet"] == {"frames": [0, 1, 2]}
    assert doc["columns"]["det_score"][0] == 0.9  # float32 written by its shortest repr
    assert doc["columns"]["term"] == [0.1, None, 1e-12, 2.0]  # NaN -> null (strict JSON)
    assert ScoreTable.read_json(path) == rich_table


def test_empty_table_round_trips(tmp_path):
    table = _table("v", {0: []})
    assert ScoreTable.read_csv(table.to_csv(tmp_path / "e.csv")) == table
    assert ScoreTable.read_json(table.to_json(tmp_path / "e.json")) == table


def test_failed_write_leaves_previous_file_intact(tmp_path, monkeypatch, rich_table):
    path = rich_table.to_csv(tmp_path / "scores.csv")
    before = path.read_bytes()
    real_writer = csv.writer

    class FailingWriter:
        def __init__(self, handle):
            self.inner = real_writer(handle)

        def writerow(self, row):
            self.inner.writerow(row)  # the header reaches the temporary file...

        def writerows(self, rows):
            raise OSError("disk full")  # ...then writing fails mid-file

    monkeypatch.setattr(csv, "writer", FailingWriter)
    with pytest.raises(OSError, match="disk full"):
        _table("other", {0: [1.0]}).to_csv(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]


def test_reading_files_that_are_not_score_tables(tmp_path):
    other_csv = tmp_path / "other.csv"
    other_csv.write_text("video,frame,score\na,0,0.5\n", encoding="utf-8")
    with pytest.raises(ScoreTableError,
                       match=r"other.csv is not a ScoreTable CSV .*lacks columns \['object_id'"):
        ScoreTable.read_csv(other_csv)
    other_json = tmp_path / "other.json"
    other_json.write_text('{"format": "coco"}', encoding="utf-8")
    with pytest.raises(ScoreTableError, match="other.json is not a ScoreTable JSON .*'coco'"):
        ScoreTable.read_json(other_json)
    other_json.write_text('{"format": "stgraph.ScoreTable", "version": 1, "videos": {}}',
                          encoding="utf-8")
    with pytest.raises(ScoreTableError, match=r"lacks the \['columns'\]"):
        ScoreTable.read_json(other_json)
    with pytest.raises(ScoreTableError, match="other.csv is not a ScoreTable JSON"):
        ScoreTable.read_json(other_csv)
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        ScoreTable.read_csv(tmp_path / "missing.csv")


def test_reading_bad_values_names_the_file(tmp_path, rich_table):
    path = rich_table.to_csv(tmp_path / "s.csv")
    text = path.read_text(encoding="utf-8").replace(",0.125,", ",nan,")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScoreTableError, match="s.csv: score is NaN .*frame 0"):
        ScoreTable.read_csv(path)


def test_frame_scores_to_csv_with_labels(tmp_path):
    table = _table("v", HAND)
    labels = {"v": np.array([0, 0, 1, 1, 0, 0])}
    path = table.frame_scores_to_csv(tmp_path / "frames.csv", labels=labels)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["video", "frame", "score", "label"]
    assert rows[1:] == [["v", str(f), str(float(s)), str(lab)]
                        for f, s, lab in zip(range(5), [3, 3, 4, 6, 3], [0, 0, 1, 1, 0])]
    with pytest.raises(ScoreTableError, match=r"no labels for videos \['v'\]"):
        table.frame_scores_to_csv(tmp_path / "x.csv", labels={})
    with pytest.raises(ScoreTableError, match="scored frame 4 is beyond the 3 frame labels"):
        table.frame_scores_to_csv(tmp_path / "x.csv", labels={"v": np.zeros(3)})


def test_to_pandas_without_pandas_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        _table("v", HAND).to_pandas()


def test_to_pandas_columns(rich_table):
    pytest.importorskip("pandas")
    frame = rich_table.to_pandas()
    assert list(frame.columns) == list(rich_table.columns) and len(frame) == len(rich_table)
