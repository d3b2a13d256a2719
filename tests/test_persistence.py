"""Files on disk: permissions of atomic writes, caches that survive damage, content-keyed caches,
``Detections`` that never write into the caller's arrays, compact JSON lines."""
from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from detectors.base import DetectionError, Detections
from detectors.files import atomic_directory, atomic_path, read_detections, write_detections
from stgraph.cache import (CACHE_FORMAT_VERSION, DetectionCache, callable_key, component_key,
                           file_digest, settings_key)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test; restores the previous one."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield os.umask
    os.umask(previous)


def _frames(n: int = 3) -> list[Detections]:
    return [Detections([[1, 2, 30, 40]] * (i % 2), [0.5] * (i % 2), [1] * (i % 2), frame_index=i,
                       image_size=(48, 64), class_names=("person", "car"),
                       features=np.full((i % 2, 3), i, np.float32)) for i in range(n)]


# ------------------------------------------------------------------------ permissions (defect 8)
@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_atomic_writes_get_the_mode_open_would_give(tmp_path, umask, mask):
    umask(mask)
    with open(tmp_path / "plain.txt", "w") as handle:  # the reference: a plain open()
        handle.write("x")
    with atomic_path(tmp_path / "atomic.txt") as tmp:
        tmp.write_text("x")
    written = write_detections(tmp_path / "dets.npz", _frames())
    assert _mode(tmp_path / "atomic.txt") == _mode(tmp_path / "plain.txt") == 0o666 & ~mask
    assert _mode(written) == 0o666 & ~mask


def test_atomic_overwrite_keeps_the_existing_mode(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "scores.csv"
    target.write_text("old")
    target.chmod(0o640)
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and _mode(target) == 0o640


def test_atomic_path_on_a_directory_names_it_and_leaves_nothing(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(IsADirectoryError, match=r"cannot write .*out: it is a directory"):
        with atomic_path(tmp_path / "out") as tmp:
            tmp.write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_atomic_directory_mode_replace_and_failure(tmp_path, umask, mask):
    umask(mask)
    target = tmp_path / "model"
    with atomic_directory(target) as tmp:
        (tmp / "config.json").write_text("{}")
        (tmp / "old_only.txt").write_text("x")
    (tmp_path / "reference").mkdir()
    assert _mode(target) == _mode(tmp_path / "reference") == 0o777 & ~mask
    with atomic_directory(target) as tmp:  # replaced as a whole: no file of the old one is left
        (tmp / "config.json").write_text('{"v": 2}')
    assert sorted(p.name for p in target.iterdir()) == ["config.json"]
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "config.json").write_text("half")
            raise RuntimeError("serialisation failed")
    assert (target / "config.json").read_text() == '{"v": 2}'   # the previous model is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "reference"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="a file of that name exists"):
        with atomic_directory(tmp_path / "file"):
            pass


# ------------------------------------------------------------- Detections and the caller's arrays
def test_detections_never_write_into_the_callers_arrays():
    boxes = np.array([[-5, -5, 500, 500]], np.float32)
    features = np.ones((1, 2), np.float32)
    det = Detections(boxes, np.array([0.9], np.float32), np.array([0]), image_size=(240, 360),
                     features=features)
    np.testing.assert_array_equal(det.boxes, [[0, 0, 360, 240]])
    np.testing.assert_array_equal(boxes, [[-5, -5, 500, 500]])      # the input is not clipped
    det.features[0, 0] = 7
    assert features[0, 0] == 1                                     # nor shared


def test_detections_accept_read_only_arrays():
    boxes = np.array([[-5, -5, 500, 500]], np.float32)
    scores, labels = np.array([0.9], np.float32), np.array([0], np.int64)
    for array in (boxes, scores, labels):
        array.flags.writeable = False
    det = Detections(boxes, scores, labels, image_size=(240, 360))
    np.testing.assert_array_equal(det.boxes, [[0, 0, 360, 240]])
    assert det.boxes.flags.writeable


# ------------------------------------------------------------------------------ damaged caches
def _damaged_copies(data: bytes):
    """Truncations and overwritten byte ranges of a file's content."""
    for cut in (0, 10, len(data) // 3, len(data) // 2, len(data) - 30, len(data) - 1):
        yield f"cut{cut}", data[:cut]
    for start in range(0, len(data), max(1, len(data) // 12)):
        damaged = bytearray(data)
        damaged[start:start + 40] = b"\xff" * len(damaged[start:start + 40])
        yield f"junk{start}", bytes(damaged)


def test_read_detections_turns_every_damage_into_a_detection_error(tmp_path):
    path = write_detections(tmp_path / "dets.npz", _frames(5))
    data = path.read_bytes()
    for name, content in _damaged_copies(data):
        damaged = tmp_path / f"{name}.npz"
        damaged.write_bytes(content)
        try:
            read_detections(damaged)
        except DetectionError as exc:
            assert str(damaged) in str(exc)
        # a damage that leaves valid content (e.g. inside compressed padding) may read fine


def test_cache_drops_a_damaged_entry_with_a_warning_and_recomputes(tmp_path, caplog):
    cache = DetectionCache(tmp_path)
    cache.save("k", _frames())
    entry = next(tmp_path.glob("k*.npz"))
    entry.write_bytes(entry.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="stgraph.cache"):
        assert cache.load("k") is None
    assert str(entry) in caplog.text and "recomputing" in caplog.text
    assert not entry.exists() and "k" not in cache
    cache.save("k", _frames())
    assert len(cache.load("k")) == 3


def test_cache_does_not_swallow_unexpected_errors(tmp_path, monkeypatch):
    cache = DetectionCache(tmp_path)
    cache.save("k", _frames())

    def broken(path):
        raise RuntimeError("a bug, not a damaged file")

    monkeypatch.setattr("stgraph.cache.read_detections", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        cache.load("k")
    assert "k" in cache                                         # the entry was not deleted


def test_cache_entries_carry_the_format_version(tmp_path):
    cache = DetectionCache(tmp_path)
    write_detections(tmp_path / "k.npz", _frames())         # an entry of the unversioned format
    assert cache.load("k") is None and "k" not in cache    # is never read
    cache.save("k", _frames(), {"video": "a"})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "k.npz", f"k.v{CACHE_FORMAT_VERSION}.json", f"k.v{CACHE_FORMAT_VERSION}.npz"]


# ------------------------------------------------------------------ keys from file content
def test_file_digest_is_sha256_and_follows_content(tmp_path):
    import hashlib

    weights = tmp_path / "w.onnx"
    weights.write_bytes(b"abc" * 1000)
    assert file_digest(weights) == hashlib.sha256(b"abc" * 1000).hexdigest()
    weights.write_bytes(b"other content")
    os.utime(weights, ns=(1, 1))    # even with an old mtime: the size changed, hashed again
    assert file_digest(weights) == hashlib.sha256(b"other content").hexdigest()
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        file_digest(tmp_path / "missing.pt")


def test_component_key_uses_content_not_the_path_as_typed(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    weights = tmp_path / "models" / "yolox.onnx"
    weights.write_bytes(b"weights v1")
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(b"weights v1")

    def spec(path):
        return {"detector": {"class": "YoloxOnnxDetector", "params": {
            "model_path": path, "conf_threshold": 0.3, "device": "cpu"}},
            "features": [{"class": "RoIAlignFeatures", "params": {"weights": None}}]}

    monkeypatch.chdir(tmp_path)
    typed = settings_key(component_key(spec("models/yolox.onnx")))
    assert typed == settings_key(component_key(spec(str(weights))))   # relative or absolute
    assert typed == settings_key(component_key(spec(str(copy))))      # same bytes elsewhere
    assert component_key(spec("models/yolox.onnx"))["detector"]["params"]["device"] == "cpu"
    weights.write_bytes(b"weights v2, retrained")
    assert settings_key(component_key(spec("models/yolox.onnx"))) != typed
    missing = component_key(spec("models/none.onnx"))                 # not a file: kept as typed
    assert missing["detector"]["params"]["model_path"] == "models/none.onnx"


def scale_by_two(data):
    return data


class Scale:
    def __init__(self, factor):
        self.factor = factor

    def __call__(self, data):
        return data


def test_callable_key_is_stable_and_sees_parameters():
    assert callable_key(None) is None
    assert callable_key(scale_by_two) == callable_key(scale_by_two)
    assert "0x" not in json.dumps(callable_key(Scale(2)))
    assert callable_key(Scale(2)) == callable_key(Scale(2))
    assert callable_key(Scale(2)) != callable_key(Scale(3))
    assert callable_key(lambda d: d) != callable_key(lambda d: d * 2)


# ------------------------------------------------------------------ JSON lines: names once
def test_jsonl_stores_class_names_once(tmp_path):
    names = tuple(f"class{i}" for i in range(80))
    frames = [Detections([[1, 2, 3, 4]], [0.5], [3], frame_index=i, class_names=names)
              for i in range(20)]
    frames.append(Detections([[1, 2, 3, 4]], [0.5], [0], frame_index=20, class_names=("odd",)))
    path = write_detections(tmp_path / "d.jsonl", frames)
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["class_names"] == list(names)
    assert sum("class79" in line for line in lines) == 1                  # header only
    assert json.loads(lines[-1])["class_names"] == ["odd"]               # a frame that differs
    read = read_detections(path)
    assert [d.class_names for d in read] == [names] * 20 + [("odd",)]
    assert read[3].names == ["class3"]


def test_jsonl_of_version_1_is_still_read(tmp_path):
    path = tmp_path / "old.jsonl"
    header = {"format": "stgraph-detections", "version": 1, "video": None, "num_frames": 1}
    frame = {"frame_index": 0, "image_size": [10, 10], "class_names": ["person"],
             "boxes": [[1, 1, 5, 5]], "scores": [0.5], "labels": [0]}
    path.write_text(json.dumps(header) + "\n" + json.dumps(frame) + "\n")
    (det,) = read_detections(path)
    assert det.names == ["person"]
    path.write_text(json.dumps({**header, "version": 99}) + "\n")
    with pytest.raises(DetectionError, match="version 99 is newer"):
        read_detections(path)
