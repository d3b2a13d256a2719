"""Frame sources: video file, image folder (natural order), array, camera; errors name the path."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from stgraph.io import (ArraySource, CameraSource, Frame, ImageFolderSource, SourceError,
                        VideoFileSource, natural_key, open_source)


def _frames(n: int = 6, h: int = 24, w: int = 32) -> np.ndarray:
    """n frames whose mean brightness encodes the frame number (robust to lossy codecs)."""
    return np.stack([np.full((h, w, 3), 10 + 20 * i, np.uint8) for i in range(n)])


def test_natural_sort_key_orders_numbers_numerically():
    names = ["10.jpg", "2.jpg", "1.jpg", "img_100.png", "img_20.png"]
    assert sorted(names, key=natural_key) == ["1.jpg", "2.jpg", "10.jpg", "img_20.png", "img_100.png"]


def test_image_folder_is_read_in_natural_order(tmp_path):
    frames = _frames(12)
    for i, im in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"{i}.png"), im)
    (tmp_path / "notes.txt").write_text("not an image")
    src = ImageFolderSource(tmp_path, fps=10)
    assert len(src) == 12
    got = list(src)
    assert [f.index for f in got] == list(range(12))
    assert [int(f.image.mean()) for f in got] == [10 + 20 * i for i in range(12)]
    assert got[3].time_s == pytest.approx(0.3)


def test_stride_and_resize_keep_original_indices():
    src = ArraySource(_frames(7), stride=3, resize=(16, 8), fps=5)
    got = list(src)
    assert len(src) == len(got) == 3
    assert [f.index for f in got] == [0, 3, 6]
    assert got[1].image.shape == (8, 16, 3) and got[1].time_s == pytest.approx(0.6)


def test_array_source_accepts_grayscale_float_and_iterators():
    gray = np.linspace(0, 1, 4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    got = list(ArraySource(gray))
    assert got[0].image.shape == (5, 6, 3) and got[0].image.dtype == np.uint8
    assert got[-1].image.max() == 255
    it = ArraySource(iter(_frames(3)))
    assert [f.index for f in it] == [0, 1, 2]
    with pytest.raises(TypeError):
        len(ArraySource(iter(_frames(3))))


def test_array_source_rejects_bad_shapes_and_nans():
    with pytest.raises(SourceError, match="expected an array"):
        ArraySource(np.zeros((3, 3)))
    bad = np.full((2, 4, 4, 3), np.nan, np.float32)
    with pytest.raises(SourceError, match="NaN"):
        list(ArraySource(bad))


def test_video_file_round_trip(tmp_path):
    path = tmp_path / "clip.avi"
    frames = _frames(8, 48, 64)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 8, (64, 48))
    for im in frames:
        writer.write(im)
    writer.release()
    src = open_source(path)
    assert isinstance(src, VideoFileSource) and src.fps == pytest.approx(8)
    got = list(src)
    assert len(got) == 8 == len(src)
    assert all(isinstance(f, Frame) and f.image.shape == (48, 64, 3) for f in got)
    np.testing.assert_allclose([f.image.mean() for f in got], frames.reshape(8, -1).mean(1), atol=3)


def test_missing_and_unreadable_inputs_name_the_path(tmp_path):
    with pytest.raises(SourceError, match="nothere.mp4"):
        open_source(tmp_path / "nothere.mp4")
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"this is not a video")
    with pytest.raises(SourceError, match="junk.avi"):
        VideoFileSource(junk)
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(SourceError, match="no images"):
        ImageFolderSource(empty)
    (empty / "broken.jpg").write_bytes(b"xx")
    with pytest.raises(SourceError, match="broken.jpg"):
        list(ImageFolderSource(empty))


def test_open_source_dispatch(tmp_path):
    assert isinstance(open_source(0), CameraSource)
    assert isinstance(open_source("1"), CameraSource)
    assert isinstance(open_source(_frames(2)), ArraySource)
    cv2.imwrite(str(tmp_path / "0.png"), _frames(1)[0])
    assert isinstance(open_source(str(tmp_path)), ImageFolderSource)
    with pytest.raises(ValueError, match="stride"):
        ArraySource(_frames(2), stride=0)


def test_camera_that_cannot_open_raises_clearly():
    with pytest.raises(SourceError, match="camera 97"):
        list(CameraSource(97, max_frames=1))
