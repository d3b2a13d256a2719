"""Detections on disk: JSON lines and npz round trips, malformed files, records from other tools."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import detectors.files as files
from detectors.base import DetectionError, Detections
from detectors.files import (detections_from_records, read_detections, read_header, require_file,
                             write_detections)

NAMES = ("person", "bicycle")


def _frames(with_features: bool) -> list[Detections]:
    """Frames with 2, 0, 1 (no image size) and 3 objects; values exact in JSON's precision."""
    rng = np.random.default_rng(0)
    out = []
    for frame, n in enumerate((2, 0, 1, 3)):
        corner = rng.integers(0, 100, (n, 2)).astype(np.float32) + 0.25
        features = rng.normal(size=(n, 6)).astype(np.float32) if with_features else None
        out.append(Detections(np.concatenate([corner, corner + 10.5], axis=1),
                              rng.integers(1, 99, n) / 100, rng.integers(0, 2, n),
                              frame_index=frame * 5, image_size=None if frame == 2 else (240, 360),
                              class_names=NAMES, features=features,
                              track_ids=None if with_features else np.arange(n) + 10 * frame))
    return out


def _assert_same(read: list[Detections], written: list[Detections]) -> None:
    assert len(read) == len(written)
    for a, b in zip(read, written):
        assert (a.frame_index, a.image_size) == (b.frame_index, b.image_size)
        assert a.class_names == b.class_names
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)
        for name in ("features", "track_ids"):
            if getattr(b, name) is None:
                assert getattr(a, name) is None
            else:
                np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("suffix", [".jsonl", ".npz"])
@pytest.mark.parametrize("with_features", [True, False])
def test_round_trip(tmp_path, suffix, with_features):
    written = _frames(with_features)
    path = write_detections(tmp_path / "sub" / f"dets{suffix}", written, video="01.avi")
    _assert_same(read_detections(path), written)
    header = read_header(path)
    assert header["format"] == "stgraph-detections"
    assert header["video"] == "01.avi" and header["num_frames"] == 4
    assert [p.name for p in path.parent.iterdir()] == [path.name]   # no temporary file left


@pytest.mark.parametrize("suffix", [".jsonl", ".npz"])
def test_empty_sequence_and_empty_frames(tmp_path, suffix):
    assert read_detections(write_detections(tmp_path / f"none{suffix}", [])) == []
    empties = [Detections.empty(i, (10, 20), NAMES, feature_dim=3) for i in range(3)]
    back = read_detections(write_detections(tmp_path / f"empty{suffix}", empties))
    assert [len(d) for d in back] == [0, 0, 0] and back[2].frame_index == 2
    assert back[0].features.shape == (0, 3)


def test_jsonl_without_header_from_another_tool(tmp_path):
    path = tmp_path / "tool.jsonl"
    first = {"frame_index": 3, "boxes": [[1, 2, 3, 4]], "scores": [0.5], "labels": [0]}
    second = {"frame_index": 4, "boxes": [], "scores": [], "labels": []}
    path.write_text(json.dumps(first) + "\n\n" + json.dumps(second) + "\n")   # blank line skipped
    back = read_detections(path)
    assert [d.frame_index for d in back] == [3, 4] and [len(d) for d in back] == [1, 0]
    assert read_header(path) == {}


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = write_detections(tmp_path / "dets.jsonl", _frames(False))
    before = path.read_bytes()
    calls = iter(range(100))

    def dumps_failing_on_third_line(obj):
        if next(calls) == 2:
            raise OSError("disk full")
        return json.dumps(obj)

    monkeypatch.setattr(files.json, "dumps", dumps_failing_on_third_line)
    with pytest.raises(OSError, match="disk full"):
        write_detections(path, _frames(True))
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["dets.jsonl"]


GOOD_LINE = '{"boxes": [[0, 0, 1, 1]], "scores": [1], "labels": [0]}'


@pytest.mark.parametrize("lines, where, match", [
    (['{"format": "stgraph-detections"}', GOOD_LINE, '{"boxes": [[0'], ":3:", "not valid JSON"),
    ([GOOD_LINE, '{"scores": [], "labels": []}'], ":2:", "lacks keys"),
    (['{"boxes": [[5, 0, 1, 1]], "scores": [1], "labels": [0]}'], ":1:", "x2 >= x1"),
    ([GOOD_LINE, "[1, 2]"], ":2:", "expected a JSON object"),
])
def test_malformed_jsonl_names_file_and_line(tmp_path, lines, where, match):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DetectionError, match=f"bad.jsonl{where} .*{match}"):
        read_detections(path)


def test_malformed_npz_names_file(tmp_path):
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(DetectionError, match="text.npz: not a readable .npz"):
        read_detections(text)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, boxes=np.zeros((0, 4)))
    with pytest.raises(DetectionError, match="foreign.npz: not a detections .npz file"):
        read_detections(foreign)
    path = write_detections(tmp_path / "cut.npz", _frames(True))
    with np.load(path) as data:
        arrays = dict(data)
    arrays["offsets"] = arrays["offsets"][:-1]
    np.savez(path, **arrays)
    with pytest.raises(DetectionError, match="cut.npz: offsets do not delimit 6 rows into 4"):
        read_detections(path)


def test_write_errors(tmp_path):
    with pytest.raises(ValueError, match="use one of"):
        write_detections(tmp_path / "dets.csv", _frames(False))
    with pytest.raises(TypeError, match="item 1 is dict"):
        write_detections(tmp_path / "dets.jsonl", [_frames(False)[0], {}])
    mixed = _frames(True)
    mixed[1] = Detections.empty(5, (240, 360), NAMES)              # no features in frame 5
    with pytest.raises(DetectionError, match="frame 5 has none"):
        write_detections(tmp_path / "dets.npz", mixed)
    with pytest.raises(FileNotFoundError, match="detections file not found: .*missing.npz"):
        read_detections(tmp_path / "missing.npz")
    with pytest.raises(FileNotFoundError, match="weights not found"):
        require_file(tmp_path, "weights")                          # a folder is not a file


# ------------------------------------------------------------------------------ records
ROWS = np.array([[2, 10, 10, 20, 30, 0.9, 0],
                 [0, 0, 0, 5, 5, 0.5, 1],
                 [2, 30, 30, 40, 50, 0.8, 1]])


def test_records_grouped_by_frame():
    dets = detections_from_records(ROWS, image_size=(100, 100), class_names=NAMES)
    assert [d.frame_index for d in dets] == [0, 2] and [len(d) for d in dets] == [1, 2]
    np.testing.assert_array_equal(dets[1].boxes, [[10, 10, 20, 30], [30, 30, 40, 50]])  # row order
    np.testing.assert_allclose(dets[1].scores, [0.9, 0.8])
    assert dets[1].names == ["person", "bicycle"] and dets[0].image_size == (100, 100)


def test_records_fill_missing_frames():
    dets = detections_from_records(ROWS, num_frames=4)
    assert [d.frame_index for d in dets] == [0, 1, 2, 3] and [len(d) for d in dets] == [1, 0, 2, 0]
    assert [len(d) for d in detections_from_records(np.zeros((0, 7)), num_frames=2)] == [0, 0]
    with pytest.raises(DetectionError, match=r"frames 0..2 outside 0..1"):
        detections_from_records(ROWS, num_frames=2)


def test_records_from_csv_rows_and_columns(tmp_path):
    path = tmp_path / "boxes.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(files.RECORD_COLUMNS)
        writer.writerows(ROWS.tolist())
    with open(path, newline="") as handle:
        from_rows = detections_from_records(list(csv.DictReader(handle)), num_frames=3)
    columns = {name: ROWS[:, i] for i, name in enumerate(files.RECORD_COLUMNS)}
    _assert_same(from_rows, detections_from_records(columns, num_frames=3))
    assert [len(d) for d in from_rows] == [1, 0, 2]


@pytest.mark.parametrize("records, match", [
    (ROWS[:, :6], r"rows of \('frame'"),
    ({"frame": [0], "x1": [0]}, r"lack columns \['y1'"),
    (np.array([[0.5, 0, 0, 1, 1, 0.5, 0]]), "'frame' column must hold integers"),
    (np.array([[0, 0, 0, 1, 1, 0.5, 1.5]]), "'label' column must hold integers"),
    (np.array([[0, 0, 0, np.nan, 1, 0.5, 0]]), "NaN"),
])
def test_bad_records_raise(records, match):
    with pytest.raises(DetectionError, match=match):
        detections_from_records(records)
