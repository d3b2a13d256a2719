"""ScoreTable files: CSV / JSON round trips for every kind, version 1 files, the pixel-map
sidecar, the per-frame CSV (stgraph/scores/io.py)."""
from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest

from _score_helpers import HAND, dets, object_table, patch_table
from stgraph.scores import (COLUMNS, V1_COLUMNS, ScoreTable, ScoreTableError, object_csv_rows)
from stgraph.scores.io import pixel_sidecar_path


@pytest.fixture
def rich_table() -> ScoreTable:
    """Two videos (unicode and comma in names), empty frames, a video without objects, extras."""
    a = ScoreTable.from_detections(
        "Straße, 北京", [dets(0, 2), dets(1, 0), dets(2, 1)], [[0.125, 1 / 3], [], [2.0]],
        extra={"track_id": [[4, 5], [], [4]], "term": [[0.1, np.nan], [], [1e-12]],
               "note": [["ok", 'say "hi"'], [], [""]], "flag": [[True, False], [], [True]]})
    b = ScoreTable.from_detections("b", [dets(0, 1)], [[-1.5]], extra={
        "track_id": [[1]], "term": [[2.0]], "note": [["x"]], "flag": [[False]]})
    quiet = ScoreTable({name: b[name][:0] for name in b.columns}, video_frames={"quiet": [0, 1, 2]})
    return ScoreTable.concat([a, b, quiet])


def _extras(n: int) -> dict:
    return {"track_id": np.full(n, -1), "term": np.zeros(n), "note": np.full(n, ""),
            "flag": np.zeros(n, bool)}


@pytest.fixture
def kinds_table(rich_table) -> ScoreTable:
    """``rich_table`` plus frame rows (one video with boxes and maps, one with NaN boxes and no
    history for its first frames) and patch rows."""
    rng = np.random.default_rng(3)
    framed = ScoreTable.from_frames("b", [0, 1], [0.7, 0.1], image_hw=(120, 160),
                                    pixel_maps=rng.random((2, 3, 4)) * 5, extra=_extras(2))
    history = ScoreTable.from_frames("f", [2, 3], [-30.5, -28.25], n_frames=4,
                                     pixel_maps=rng.random((2, 6, 8)), extra=_extras(2))
    patches = patch_table("Straße, 北京", n_frames=3)
    patches = ScoreTable({**{n: patches[n] for n in patches.columns}, **_extras(len(patches))})
    return ScoreTable.concat([rich_table, framed, history, patches])


@pytest.mark.parametrize("fixture", ["rich_table", "kinds_table"])
def test_csv_round_trip_is_exact(tmp_path, fixture, request):
    table = request.getfixturevalue(fixture)
    back = ScoreTable.read_csv(table.to_csv(tmp_path / "scores.csv"))
    assert back == table
    assert {c: back[c].dtype.name for c in ("track_id", "term", "flag", "x1", "score")} == {
        "track_id": "int64", "term": "float64", "flag": "bool", "x1": "float32", "score": "float64"}
    assert list(back.video_frames["quiet"]) == [0, 1, 2]
    assert pixel_sidecar_path(tmp_path / "scores.csv").is_file() == bool(table.pixel_maps)


def test_csv_layout_kinds_and_placeholder_rows_for_frames_without_rows(tmp_path, kinds_table):
    with open(kinds_table.to_csv(tmp_path / "s.csv"), newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames[:len(COLUMNS)]) == COLUMNS
    placeholders = [(r["video"], r["frame"]) for r in rows if r["object_id"] == "-1"]
    assert placeholders == [("f", "0"), ("f", "1"), ("quiet", "0"), ("quiet", "1"),
                            ("quiet", "2")]  # frame 1 of the first video has patch rows now
    assert all(set(v for k, v in r.items() if k not in ("video", "frame", "object_id")) == {""}
               for r in rows if r["object_id"] == "-1")
    frame_rows = [r for r in rows if r["kind"] == "frame"]
    assert [(r["video"], r["x2"], r["label"], r["class_name"], r["det_score"])
            for r in frame_rows][:1] == [("b", "160.0", "-1", "", "nan")]
    assert frame_rows[-1]["x1"] == "nan"
    b_rows = [(r["kind"], r["frame"], r["object_id"]) for r in rows if r["video"] == "b"]
    assert b_rows == [("object", "0", "0"), ("frame", "0", "0"), ("frame", "1", "0")]
    assert len(rows) == len(kinds_table) + 5


@pytest.mark.parametrize("fixture", ["rich_table", "kinds_table"])
def test_json_round_trip_is_exact(tmp_path, fixture, request):
    table = request.getfixturevalue(fixture)
    path = table.to_json(tmp_path / "scores.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format"] == "stgraph.ScoreTable" and doc["version"] == 2
    assert doc["videos"]["quiet"] == {"frames": [0, 1, 2]}
    assert doc["dtypes"]["kind"] == "str"
    assert ScoreTable.read_json(path) == table


def test_json_layout_nan_and_float32(tmp_path, rich_table):
    doc = json.loads(rich_table.to_json(tmp_path / "s.json").read_text(encoding="utf-8"))
    assert doc["columns"]["det_score"][0] == 0.9  # float32 written by its shortest repr
    assert doc["columns"]["term"] == [0.1, None, 1e-12, 2.0]  # NaN -> null (strict JSON)


def test_version_1_files_are_read_as_object_rows(tmp_path, rich_table):
    """Files written before the kind column: every row is an object row."""
    path = rich_table.to_csv(tmp_path / "new.csv")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    kind_at = rows[0].index("kind")
    old = tmp_path / "old.csv"
    with open(old, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([r[:kind_at] + r[kind_at + 1:] for r in rows])
    assert tuple(next(csv.reader(open(old, encoding="utf-8")))[:11]) == V1_COLUMNS
    assert ScoreTable.read_csv(old) == rich_table
    doc = json.loads(rich_table.to_json(tmp_path / "new.json").read_text(encoding="utf-8"))
    doc["version"] = 1
    del doc["columns"]["kind"], doc["dtypes"]["kind"]
    (tmp_path / "old.json").write_text(json.dumps(doc), encoding="utf-8")
    assert ScoreTable.read_json(tmp_path / "old.json") == rich_table
    doc["version"] = 2  # a version-2 file must have its kind column
    (tmp_path / "bad.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ScoreTableError, match=r"lack \['kind'\]"):
        ScoreTable.read_json(tmp_path / "bad.json")
    doc["version"] = 3
    (tmp_path / "future.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ScoreTableError, match="version 3 is not supported .*reads up to 2"):
        ScoreTable.read_json(tmp_path / "future.json")


def test_empty_table_round_trips(tmp_path):
    table = object_table("v", {0: []})
    assert ScoreTable.read_csv(table.to_csv(tmp_path / "e.csv")) == table
    assert ScoreTable.read_json(table.to_json(tmp_path / "e.json")) == table


# ---------------------------------------------------------------------------- pixel sidecar
def test_pixel_sidecar_is_shared_by_csv_and_json_of_one_table(tmp_path, kinds_table):
    kinds_table.to_csv(tmp_path / "scores.csv")
    kinds_table.to_json(tmp_path / "scores.json")  # same stem, same table: same sidecar
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv", "scores.json",
                                                          "scores.pixels.npz"]
    back = ScoreTable.read_csv(tmp_path / "scores.csv")
    assert list(back.pixel_maps) == ["b", "f"] and back == ScoreTable.read_json(
        tmp_path / "scores.json")
    assert back.pixel_maps["f"].maps.dtype == np.float16
    np.testing.assert_array_equal(back.pixel_maps["b"].maps, kinds_table.pixel_maps["b"].maps)


def test_sidecar_of_another_table_is_ignored_with_a_warning(tmp_path, kinds_table, caplog):
    kinds_table.to_json(tmp_path / "scores.json")
    plain = object_table("v", HAND)
    plain.to_csv(tmp_path / "scores.csv")  # another table, without maps: the sidecar stays
    assert pixel_sidecar_path(tmp_path / "scores.csv").is_file()
    with caplog.at_level("WARNING", logger="stgraph.scores.io"):
        assert ScoreTable.read_csv(tmp_path / "scores.csv") == plain
    assert "written for another table than" in caplog.text
    assert ScoreTable.read_json(tmp_path / "scores.json") == kinds_table  # still has its maps
    pixel_sidecar_path(tmp_path / "scores.csv").write_bytes(b"not a zip file")
    with pytest.raises(ScoreTableError, match="scores.pixels.npz is not readable"):
        ScoreTable.read_json(tmp_path / "scores.json")


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
        object_table("other", {0: [1.0]}).to_csv(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]


def test_failed_sidecar_write_leaves_both_previous_files(tmp_path, monkeypatch, kinds_table):
    path = kinds_table.to_csv(tmp_path / "scores.csv")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    maps = ScoreTable.from_frames("z", [0], [1.0], pixel_maps=np.ones((1, 2, 2)))

    def full_disk(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", full_disk)
    with pytest.raises(OSError, match="disk full"):
        maps.to_csv(path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert ScoreTable.read_csv(path) == kinds_table


# ---------------------------------------------------------------------------- bad files
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
    path.write_text(text.replace(",object,", ",thing,"), encoding="utf-8")
    with pytest.raises(ScoreTableError, match="kind is not one of"):
        ScoreTable.read_csv(path)


# ---------------------------------------------------------------------------- other CSVs
def test_frame_scores_to_csv_with_labels(tmp_path):
    table = object_table("v", HAND)
    labels = {"v": np.array([0, 0, 1, 1, 0])}
    path = table.frame_scores_to_csv(tmp_path / "frames.csv", labels=labels)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["video", "frame", "score", "label"]
    assert rows[1:] == [["v", str(f), str(float(s)), str(lab)]
                        for f, s, lab in zip(range(5), [3, 3, 4, 6, 3], [0, 0, 1, 1, 0])]
    with pytest.raises(ScoreTableError, match=r"no labels for videos \['v'\]"):
        table.frame_scores_to_csv(tmp_path / "x.csv", labels={})
    with pytest.raises(ScoreTableError, match=r"5 frames \(0..4\) but 6 frame labels"):
        table.frame_scores_to_csv(tmp_path / "x.csv", labels={"v": np.zeros(6)})
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("kind", [None, "object", "frame", "patch"])
def test_frame_scores_to_csv_for_every_kind(tmp_path, kinds_table, kind):
    path = kinds_table.frame_scores_to_csv(tmp_path / "frames.csv", kind=kind, smooth=3)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    expected = kinds_table.frame_scores(kind=kind, smooth=3)
    assert len(rows) == sum(len(fs) for fs in expected.values())
    for video, fs in expected.items():
        mine = [r for r in rows if r["video"] == video]
        assert [int(r["frame"]) for r in mine] == fs.frames.tolist()
        assert [float(r["score"]) for r in mine] == fs.scores.tolist()


def test_object_csv_rows_match_the_table_csv(tmp_path):
    """The streaming writer's lines (stgraph watch) are the lines of the table's own CSV."""
    detections, scores = [dets(0, 2), dets(1, 0), dets(2, 1)], [[0.5, 1 / 3], [], [2.0]]
    table = ScoreTable.from_detections("cam", detections, scores)
    with open(table.to_csv(tmp_path / "s.csv"), newline="", encoding="utf-8") as handle:
        lines = list(csv.reader(handle))
    streamed = [list(COLUMNS)] + [row for d, s in zip(detections, scores)
                                  for row in object_csv_rows("cam", d.frame_index, d, np.array(s))]
    assert streamed == lines


def test_to_pandas_without_pandas_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        object_table("v", HAND).to_pandas()


def test_to_pandas_columns(kinds_table):
    pytest.importorskip("pandas")
    frame = kinds_table.to_pandas()
    assert list(frame.columns) == list(kinds_table.columns) and len(frame) == len(kinds_table)
