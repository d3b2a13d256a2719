"""ScoreTable: object, frame and patch rows, validation, access, frame scores (stgraph/scores/table.py)."""
from __future__ import annotations

import numpy as np
import pytest

from _score_helpers import HAND, dets, object_table, patch_table
from detectors.base import Detections
from stgraph.scores import PixelMaps, ScoreTable, ScoreTableError


def _row_columns(n: int = 1, **overrides) -> dict:
    """Required columns of ``n`` object rows of video "a", frame 0 (ids 0..n-1)."""
    columns = {name: [0] * n for name in ScoreTable.REQUIRED} | {
        "video": ["a"] * n, "kind": ["object"] * n, "class_name": ["p"] * n,
        "object_id": list(range(n))}
    return columns | overrides


# ---------------------------------------------------------------------------- object rows
def test_from_detections_keeps_every_object_and_registers_empty_frames():
    table = ScoreTable.from_detections("cam", [dets(0, 2), dets(1, 0), dets(2, 1)],
                                       [np.array([0.5, 0.7]), np.zeros(0), np.array([0.9])])
    assert len(table) == 3 and table.videos == ["cam"] and table.kinds == ("object",)
    np.testing.assert_array_equal(table.video_frames["cam"], [0, 1, 2])
    np.testing.assert_array_equal(table["kind"], ["object"] * 3)
    np.testing.assert_array_equal(table["frame"], [0, 0, 2])
    np.testing.assert_array_equal(table["object_id"], [0, 1, 0])
    np.testing.assert_array_equal(table["class_name"], ["person", "bicycle", "person"])
    np.testing.assert_array_equal(table["x1"], [0, 10, 0])
    np.testing.assert_allclose(table["det_score"], [0.9, 0.6, 0.9], rtol=1e-6)
    np.testing.assert_array_equal(table["score"], [0.5, 0.7, 0.9])
    assert table.extra_columns == () and table["score"].dtype == np.float64
    assert table.columns[:4] == ("video", "kind", "frame", "object_id")
    assert repr(table) == "ScoreTable(videos=1, frames=3, objects=3)"


def test_from_detections_extra_columns_and_track_ids():
    two = dets(1, 2)
    tracked = Detections(two.boxes, two.scores, two.labels, frame_index=1, track_ids=[7, 8])
    table = ScoreTable.from_detections("v", [dets(0, 1), tracked], [[0.1], [0.2, 0.3]],
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
        ScoreTable.from_detections("v", [dets(0, 1), dets(3, 1)], scores, extra=extra)


def test_nan_score_error_names_video_and_frame():
    with pytest.raises(ScoreTableError, match="NaN or inf .* video 'cam' frame 4"):
        ScoreTable.from_detections("cam", [dets(2, 1), dets(4, 2)], [[0.1], [0.3, np.nan]])


def test_constructor_validation():
    good = _row_columns()
    with pytest.raises(ScoreTableError, match=r"lack \['score'\]"):
        ScoreTable({k: v for k, v in good.items() if k != "score"})
    with pytest.raises(ScoreTableError, match=r"lack \['kind'\]"):
        ScoreTable({k: v for k, v in good.items() if k != "kind"})
    with pytest.raises(ScoreTableError, match="one length"):
        ScoreTable(good | {"score": [0.1, 0.2]})
    with pytest.raises(ScoreTableError, match=r"duplicate row: video 'a' frame 0 \(object row"):
        ScoreTable({k: v * 2 for k, v in good.items()})
    with pytest.raises(ScoreTableError, match="'frame' must hold int64"):
        ScoreTable(good | {"frame": [0.5]})
    with pytest.raises(ScoreTableError, match="'video' must hold str"):
        ScoreTable(good | {"video": [3]})
    with pytest.raises(ScoreTableError, match="kind is not one of .* first in video 'a' frame 0"):
        ScoreTable(good | {"kind": ["box"]})
    with pytest.raises(ScoreTableError, match="a frame row needs object_id 0"):
        ScoreTable(good | {"kind": ["frame"], "object_id": [2]})
    with pytest.raises(ScoreTableError, match="video 'b' has no frames"):
        ScoreTable(good, video_frames={"b": []})


def test_rows_of_different_kinds_may_share_frame_and_id():
    table = ScoreTable(_row_columns(3, kind=["patch", "frame", "object"], object_id=[0, 0, 0],
                                    score=[0.3, 0.2, 0.1]))
    np.testing.assert_array_equal(table["kind"], ["object", "frame", "patch"])  # KINDS order
    np.testing.assert_array_equal(table["score"], [0.1, 0.2, 0.3])
    assert table.kinds == ("object", "frame", "patch")


def test_rows_are_sorted_and_row_frames_join_video_frames():
    cols = _row_columns(2, video=["b", "a"], frame=[5, 2], score=[0.2, 0.1], object_id=[0, 0])
    table = ScoreTable(cols, video_frames={"a": [0, 1], "b": [0]})
    assert table.videos == ["a", "b"]
    np.testing.assert_array_equal(table["video"], ["a", "b"])
    np.testing.assert_array_equal(table.video_frames["a"], [0, 1, 2])
    np.testing.assert_array_equal(table.video_frames["b"], [0, 5])
    with pytest.raises(ValueError, match="read-only"):
        table["score"][0] = 1.0


# ---------------------------------------------------------------------------- frame and patch rows
def test_from_frames_rows_and_unscored_frames():
    table = ScoreTable.from_frames("v", [2, 3, 4], [0.5, 0.9, 0.1], n_frames=6,
                                   image_hw=(120, 160), extra={"psnr": [30.0, 25.0, 33.0]})
    assert table.kinds == ("frame",) and len(table) == 3
    np.testing.assert_array_equal(table.video_frames["v"], np.arange(6))
    np.testing.assert_array_equal(table["object_id"], [0, 0, 0])
    np.testing.assert_array_equal(np.stack([table[c] for c in ("x1", "y1", "x2", "y2")], 1),
                                  [[0, 0, 160, 120]] * 3)
    np.testing.assert_array_equal(table["label"], [-1, -1, -1])
    np.testing.assert_array_equal(table["class_name"], ["", "", ""])
    assert np.isnan(table["det_score"]).all()
    np.testing.assert_array_equal(table["psnr"], [30.0, 25.0, 33.0])
    # frames 0, 1 (no history) and 5 get the video's lowest score (empty="min")
    np.testing.assert_array_equal(table.frame_scores()["v"].scores, [0.1, 0.1, 0.5, 0.9, 0.1, 0.1])
    unknown_size = ScoreTable.from_frames("v", [0], [1.0])
    assert np.isnan(unknown_size["x1"]).all() and list(unknown_size.video_frames["v"]) == [0]
    explicit = ScoreTable.from_frames("v", [10], [1.0], video_frames=[10, 20, 30])
    assert list(explicit.video_frames["v"]) == [10, 20, 30]


@pytest.mark.parametrize("kwargs, match", [
    (dict(frames=[0, 1], scores=[1.0]), "2 frames but 1 scores"),
    (dict(frames=[0, 0], scores=[1.0, 2.0]), "duplicate row"),
    (dict(frames=[0, 7], scores=[1.0, 2.0], n_frames=5), "frame 7 is beyond n_frames=5"),
    (dict(frames=[0], scores=[1.0], n_frames=0), "n_frames must be a positive int"),
    (dict(frames=[0], scores=[1.0], n_frames=2, video_frames=[0, 1]), "not both"),
    (dict(frames=[0, 1], scores=[1.0, 2.0], pixel_maps=np.zeros((3, 4, 4))),
     r"2 scored frames but pixel maps of shape \(3, 4, 4\)"),
    (dict(frames=[0], scores=[1.0], extra={"score": [1.0]}), "clashes"),
])
def test_from_frames_bad_input(kwargs, match):
    with pytest.raises(ScoreTableError, match=match):
        ScoreTable.from_frames("v", **kwargs)


def test_from_patches_rows_ids_and_grid_index():
    table = patch_table("p", n_frames=2)
    assert table.kinds == ("patch",) and len(table) == 12
    first = table.objects_in_frame("p", 0)
    np.testing.assert_array_equal(first["object_id"], np.arange(6))  # unique across grids
    np.testing.assert_array_equal(first["label"], [0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(first["class_name"], ["grid1x2"] * 2 + ["grid2x2"] * 4)
    np.testing.assert_array_equal(first["x2"], [30, 60, 30, 60, 30, 60])
    assert np.isnan(first["det_score"]).all()
    given = ScoreTable.from_patches("p", [0, 0], [[0, 0, 1, 1], [1, 0, 2, 1]], [0.1, 0.2],
                                    ["grid2x1", "grid2x1"], [5, 9], grid_index=[3, 3])
    np.testing.assert_array_equal(given["object_id"], [5, 9])
    np.testing.assert_array_equal(given["label"], [3, 3])
    with pytest.raises(ScoreTableError, match="boxes of shape"):
        ScoreTable.from_patches("p", [0], [[0, 0, 1]], [0.1], ["g"])
    with pytest.raises(ScoreTableError, match="duplicate row"):
        ScoreTable.from_patches("p", [0, 0], np.zeros((2, 4)), [0.1, 0.2], ["g", "g"], [1, 1])


# ---------------------------------------------------------------------------- access
def test_concat_select_and_objects_in_frame():
    a, b = object_table("a", {0: [0.1], 1: []}), object_table("b", {3: [0.5, 0.6]})
    both = ScoreTable.concat([b, a])
    assert both.videos == ["a", "b"] and len(both) == 3
    assert both.select("b") == b and both.select(["a"]) == a and both.select() == both
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
        ScoreTable.concat([a, object_table("c", {0: [1.0]}, extra_col=[[1]])])


def test_concat_merges_chunks_of_one_video():
    whole = ScoreTable.concat([object_table("v", {0: [1.0], 1: []}),
                               object_table("v", {2: [], 3: [2.0]})])
    np.testing.assert_array_equal(whole.video_frames["v"], [0, 1, 2, 3])
    assert len(whole) == 2


def test_concat_mixes_kinds_and_select_by_kind_keeps_frames_and_maps():
    objects = object_table("v", HAND)
    maps = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)
    frames = ScoreTable.from_frames("v", [3, 4], [0.5, 0.7], n_frames=5, pixel_maps=maps)
    patches = patch_table("v", n_frames=2)
    mixed = ScoreTable.concat([objects, frames, patches])
    assert mixed.kinds == ("object", "frame", "patch")
    assert len(mixed) == len(objects) + 2 + len(patches)
    assert repr(mixed) == ("ScoreTable(videos=1, frames=5, objects=6, frame rows=2, "
                           "patch rows=12, pixel maps=1 video(s))")
    only_frames = mixed.select(kind="frame")
    assert only_frames == frames and only_frames.pixel_maps["v"].equals(frames.pixel_maps["v"])
    just_objects = mixed.select("v", kind=["object"])
    assert just_objects.columns == objects.columns and len(just_objects) == len(objects)
    np.testing.assert_array_equal(just_objects["score"], objects["score"])
    np.testing.assert_array_equal(just_objects.video_frames["v"], np.arange(5))
    assert list(just_objects.pixel_maps) == ["v"]  # maps belong to the video, not to a kind
    frame_3 = mixed.objects_in_frame("v", 3)
    np.testing.assert_array_equal(frame_3["kind"], ["object"] * 3 + ["frame"])
    assert len(mixed.objects_in_frame("v", 3, kind="patch")) == 0
    np.testing.assert_array_equal(frame_3.pixel_maps["v"].frames, [3])
    with pytest.raises(ScoreTableError, match="kind must be one of"):
        mixed.select(kind="box")
    # two tables with maps of one video: merged; the same frame twice is an error
    more = ScoreTable.from_frames("v", [0], [0.1], pixel_maps=np.ones((1, 2, 3)))
    merged = ScoreTable.concat([frames, more])
    np.testing.assert_array_equal(merged.pixel_maps["v"].frames, [0, 3, 4])
    with pytest.raises(ScoreTableError, match="two pixel maps for frame 3"):
        ScoreTable.concat([frames, ScoreTable.from_frames(
            "v", [9], [0.2], pixel_maps=PixelMaps([3], np.ones((1, 2, 3))))])


# ---------------------------------------------------------------------------- frame scores
@pytest.mark.parametrize("reduce, expected", [
    ("max", [3, 3, 4, 6, 3]),
    ("mean", [2, 2, 4, 3, 2]),
    ("sum", [4, 4, 4, 9, 4]),
    (np.median, [2, 2, 4, 2, 2]),
])
def test_frame_scores_reduce_with_empty_min(reduce, expected):
    fs = object_table("v", HAND).frame_scores(reduce=reduce)["v"]
    np.testing.assert_array_equal(fs.frames, [0, 1, 2, 3, 4])
    np.testing.assert_allclose(fs.scores, expected)
    assert fs.frames.dtype == np.int64 and fs.scores.dtype == np.float64 and len(fs) == 5


def test_frame_scores_empty_constant_and_video_without_objects():
    fs = object_table("v", HAND).frame_scores(empty=0.5)["v"]
    np.testing.assert_allclose(fs.scores, [3, 0.5, 4, 6, 0.5])
    quiet = object_table("q", {0: [], 1: []}).frame_scores()["q"]
    np.testing.assert_array_equal(quiet.scores, [0, 0])
    np.testing.assert_array_equal(object_table("q", {0: []}).frame_scores(kind="patch")["q"]
                                  .scores, [0])  # no row at all: any kind gives the fill


def test_frame_scores_normalize_and_constant_video():
    table = ScoreTable.concat([object_table("v", HAND), object_table("c", {0: [2.0], 1: [2.0]})])
    fs = table.frame_scores(normalize=True)
    np.testing.assert_allclose(fs["v"].scores, [0, 0, 1 / 3, 1, 0])  # max scores [3,3,4,6,3]
    np.testing.assert_array_equal(fs["c"].scores, [0, 0])


def test_frame_scores_smooth_then_normalize_by_hand():
    # max scores [3, 3, 4, 6, 3], edge-padded to [3, 3,3,4,6,3, 3]; width-3 means:
    smoothed = [3, 10 / 3, 13 / 3, 13 / 3, 4]
    table = object_table("v", HAND)
    np.testing.assert_allclose(table.frame_scores(smooth=3)["v"].scores, smoothed)
    np.testing.assert_allclose(table.frame_scores(smooth=3, normalize=True)["v"].scores,
                               [0, 0.25, 1, 1, 0.75])


def test_frame_scores_kind_selection_per_video():
    objects = object_table("v", HAND)                                   # max [3, 3, 4, 6, 3]
    frames = ScoreTable.from_frames("v", [1, 2, 3], [10.0, 20.0, 30.0], n_frames=5)
    patches = patch_table("v", n_frames=5)
    only_patches = patch_table("p", n_frames=2)
    table = ScoreTable.concat([objects, frames, patches, only_patches])
    assert table.scored_kind("v") == "frame" and table.scored_kind("p") == "patch"
    default = table.frame_scores()
    np.testing.assert_array_equal(default["v"].scores, [10, 10, 20, 30, 10])  # frame rows
    np.testing.assert_array_equal(table.frame_scores(kind="object")["v"].scores, [3, 3, 4, 6, 3])
    patch_max = [patches.objects_in_frame("v", f)["score"].max() for f in range(5)]
    np.testing.assert_array_equal(table.frame_scores(kind="patch")["v"].scores, patch_max)
    np.testing.assert_array_equal(
        default["p"].scores, [only_patches.objects_in_frame("p", f)["score"].max()
                              for f in range(2)])
    assert ScoreTable.concat([objects, patches]).scored_kind("v") == "object"
    np.testing.assert_array_equal(table.frame_scores(kind="frame")["p"].scores, [0, 0])
    with pytest.raises(ScoreTableError, match=r"the table has no frame rows \(it has \['patch'\]"):
        only_patches.frame_scores(kind="frame")
    with pytest.raises(ScoreTableError, match="kind must be one of"):
        table.frame_scores(kind="frames")


@pytest.mark.parametrize("kwargs, match", [
    (dict(smooth=2), "odd int"), (dict(smooth=0), "odd int"),
    (dict(reduce="median"), "reduce must be"), (dict(empty="zero"), "empty must be"),
    (dict(empty=float("nan")), "empty must be"),
    (dict(reduce=lambda s: np.nan), "NaN or inf frame score in video 'v'"),
])
def test_frame_scores_bad_options(kwargs, match):
    with pytest.raises(ScoreTableError, match=match):
        object_table("v", HAND).frame_scores(**kwargs)


# ---------------------------------------------------------------------------- labels
def test_check_labels_lengths():
    table = ScoreTable.concat([object_table("v", HAND),                    # frames 0..4
                               ScoreTable.from_frames("s", [10, 20], [1.0, 2.0])])  # a subset
    table.check_labels({"v": np.zeros(5), "s": np.zeros(21), "other": np.zeros(3)})
    with pytest.raises(ScoreTableError, match=r"video 'v' has 5 frames \(0..4\) but 6 frame labels"):
        table.check_labels({"v": np.zeros(6)})
    with pytest.raises(ScoreTableError, match=r"video 'v' has 5 frames \(0..4\) but 4 frame labels"):
        table.check_labels({"v": np.zeros(4)})
    with pytest.raises(ScoreTableError, match="video 's': scored frame 20 is beyond the 20 frame"):
        table.check_labels({"s": np.zeros(20)})
    with pytest.raises(ScoreTableError, match="labels must be 1-D"):
        table.check_labels({"v": np.zeros((5, 1))})
