"""RBDC / TBDC and pixel AUC against cases worked out by hand (stgraph/region_metrics.py)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from stgraph.metrics import rbdc_tbdc  # re-exported
from stgraph.region_metrics import (GroundTruthRegions, PixelAUC, area_under_fp_curve, box_iou,
                                    evaluate_masks, find_mask_folder, link_tracks, mask_files,
                                    masks_to_regions, paint_score_map, pixel_auc, read_mask,
                                    region_candidates, region_curves, score_maps)
from stgraph.scores import ScoreTable


def make_table(rows, video_frames):
    """ScoreTable from (video, frame, [x1, y1, x2, y2], score) rows."""
    n = len(rows)
    boxes = np.array([r[2] for r in rows], np.float32).reshape(n, 4)
    frames = np.array([r[1] for r in rows], np.int64)
    videos = np.array([r[0] for r in rows], dtype=np.str_)
    object_id = np.zeros(n, np.int64)
    for i in range(n):  # running count within (video, frame)
        object_id[i] = sum(1 for j in range(i) if rows[j][:2] == rows[i][:2])
    columns = {"video": videos, "kind": np.full(n, "object"), "frame": frames,
               "object_id": object_id,
               "x1": boxes[:, 0], "y1": boxes[:, 1], "x2": boxes[:, 2], "y2": boxes[:, 3],
               "label": np.zeros(n, np.int64), "class_name": np.full(n, "obj"),
               "det_score": np.ones(n, np.float32),
               "score": np.array([r[3] for r in rows], np.float64)}
    return ScoreTable(columns, video_frames)


def make_gt(rows):
    """GroundTruthRegions from (video, frame, [x1, y1, x2, y2], track) rows."""
    return GroundTruthRegions(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                              np.array([r[2] for r in rows], np.float64),
                              np.array([r[3] for r in rows]))


# Two frames of video "v". Ground truth: track 0 = region A (frame 0) + region B (frame 1),
# track 1 = region C (frame 1). Detections by decreasing score:
#   0.9 hits A;  0.8 hits nothing (FP);  0.7 hits C;  0.6 hits nothing (FP).
# Points (FP per frame, RBDR, TBDR): (0,0,0) (0,1/3,1/2) (.5,1/3,1/2) (.5,2/3,1) (1,2/3,1)
# RBDC = .5 * 1/3 + .5 * 2/3 = 0.5 ;  TBDC = .5 * 1/2 + .5 * 1 = 0.75
GT = [("v", 0, [0, 0, 10, 10], 0), ("v", 1, [0, 0, 10, 10], 0), ("v", 1, [50, 50, 60, 60], 1)]
DETS = [("v", 0, [0, 0, 10, 10], 0.9), ("v", 1, [100, 100, 110, 110], 0.8),
        ("v", 1, [50, 50, 60, 60], 0.7), ("v", 0, [30, 30, 40, 40], 0.6)]


def test_worked_example_curves_and_areas():
    table, gt = make_table(DETS, {"v": [0, 1]}), make_gt(GT)
    curves = region_curves(table, gt)
    np.testing.assert_allclose(curves.fp_per_frame, [0, 0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(curves.rbdr, [0, 1 / 3, 1 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(curves.tbdr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(curves.thresholds, [np.inf, 0.9, 0.8, 0.7, 0.6])
    result = rbdc_tbdc(table, gt)
    assert result["rbdc"] == pytest.approx(0.5)
    assert result["tbdc"] == pytest.approx(0.75)
    assert (result["n_regions"], result["n_tracks"], result["n_frames"]) == (3, 2, 2)


def test_alpha_requires_a_fraction_of_the_track():
    # alpha = 0.6: track 0 (2 regions, only A ever detected: 1/2 < 0.6) is never detected;
    # track 1 from the 0.7 detection on, at FP/frame 0.5 -> TBDC = 0.5 * 1/2 = 0.25.
    result = rbdc_tbdc(make_table(DETS, {"v": [0, 1]}), make_gt(GT), alpha=0.6)
    assert result["tbdc"] == pytest.approx(0.25)
    assert result["rbdc"] == pytest.approx(0.5)  # RBDC does not depend on alpha


def test_second_detection_of_a_region_is_not_a_false_positive():
    extra = DETS + [("v", 0, [1, 1, 11, 11], 0.95)]  # IoU 81/119 with A, above the 0.9 box
    result = rbdc_tbdc(make_table(extra, {"v": [0, 1]}), make_gt(GT))
    assert result["rbdc"] == pytest.approx(0.5)
    assert result["tbdc"] == pytest.approx(0.75)


def test_iou_threshold_is_inclusive():
    gt = make_gt([("v", 0, [0, 0, 10, 10], 0)])
    table = make_table([("v", 0, [0, 0, 10, 1], 0.5)], {"v": [0]})  # IoU = 10 / 100 = 0.1
    assert box_iou([[0, 0, 10, 1]], [[0, 0, 10, 10]])[0, 0] == pytest.approx(0.1)
    assert rbdc_tbdc(table, gt, iou_threshold=0.1)["rbdc"] == pytest.approx(1.0)
    # at 0.11 the box is a false positive (1 per frame) and the region is never found
    assert rbdc_tbdc(table, gt, iou_threshold=0.11)["rbdc"] == pytest.approx(0.0)


def test_perfect_detector_scores_one_and_no_detection_zero():
    gt = make_gt(GT)
    perfect = make_table([(v, f, b, 1.0) for v, f, b, _ in GT], {"v": [0, 1]})
    result = rbdc_tbdc(perfect, gt)
    assert result["rbdc"] == pytest.approx(1.0) and result["tbdc"] == pytest.approx(1.0)
    nothing = make_table([], {"v": [0, 1]})
    result = rbdc_tbdc(nothing, gt)
    assert result["rbdc"] == 0.0 and result["tbdc"] == 0.0


def test_false_positives_beyond_the_limit_are_cut():
    # one frame, two FPs (0.9, 0.8) before the hit (0.7): FP/frame reaches 2 before any region
    # is found, so nothing is found within 1 FP per frame. With the limit at 3, the rate is 1
    # from 2 to 3 FP/frame: area 1, normalised by 3.
    gt = make_gt([("v", 0, [0, 0, 10, 10], 0)])
    table = make_table([("v", 0, [20, 20, 30, 30], 0.9), ("v", 0, [40, 40, 50, 50], 0.8),
                        ("v", 0, [0, 0, 10, 10], 0.7)], {"v": [0]})
    assert rbdc_tbdc(table, gt)["rbdc"] == pytest.approx(0.0)
    assert rbdc_tbdc(table, gt, max_fp_per_frame=3.0)["rbdc"] == pytest.approx(1 / 3)


def test_tied_scores_enter_together_and_the_cut_interpolates():
    # two FPs and the hit share one score: the curve jumps from (0, 0) to (2, 1); cut at
    # FP/frame 1 by linear interpolation -> (1, 0.5); area = 0.5 * 1 * 0.5 = 0.25.
    gt = make_gt([("v", 0, [0, 0, 10, 10], 0)])
    table = make_table([("v", 0, [20, 20, 30, 30], 0.5), ("v", 0, [40, 40, 50, 50], 0.5),
                        ("v", 0, [0, 0, 10, 10], 0.5)], {"v": [0]})
    curves = region_curves(table, gt)
    np.testing.assert_allclose(curves.fp_per_frame, [0, 2])
    assert rbdc_tbdc(table, gt)["rbdc"] == pytest.approx(0.25)


def test_frames_without_detections_count_and_videos_are_separate():
    # Same boxes in two videos: a detection in video "w" cannot hit a region of video "v".
    gt = make_gt([("v", 0, [0, 0, 10, 10], 0)])
    table = make_table([("w", 0, [0, 0, 10, 10], 0.9), ("v", 0, [0, 0, 10, 10], 0.5)],
                       {"v": [0, 1, 2, 3], "w": [0, 1, 2, 3]})
    curves = region_curves(table, gt)
    np.testing.assert_allclose(curves.fp_per_frame, [0, 1 / 8, 1 / 8])  # 8 frames in all
    np.testing.assert_allclose(curves.rbdr, [0, 0, 1])
    assert rbdc_tbdc(table, gt)["rbdc"] == pytest.approx(7 / 8)


def test_area_under_fp_curve_extends_flat():
    assert area_under_fp_curve([0, 0, 0.25], [0, 0.5, 1.0]) == pytest.approx(
        0.25 * 0.75 + 0.75 * 1.0)
    with pytest.raises(ValueError, match="non-decreasing"):
        area_under_fp_curve([0, 1, 0.5], [0, 1, 1])


def test_bad_inputs_name_the_problem():
    table = make_table(DETS, {"v": [0, 1]})
    with pytest.raises(ValueError, match="lacks: \\['x'\\]"):
        rbdc_tbdc(table, make_gt([("x", 0, [0, 0, 1, 1], 0)]))
    with pytest.raises(ValueError, match="no.*ground-truth region|none"):
        rbdc_tbdc(table, GroundTruthRegions.empty())
    with pytest.raises(ValueError, match="alpha"):
        rbdc_tbdc(table, make_gt(GT), alpha=0.0)
    with pytest.raises(ValueError, match="x2 >= x1"):
        make_gt([("v", 0, [5, 0, 1, 1], 0)])


# ---------------------------------------------------------------------------- masks and tracks
def test_masks_to_regions_components_and_box_convention():
    mask = np.zeros((8, 10), np.uint8)
    mask[1:3, 1:4] = 255  # rows 1-2, cols 1-3
    mask[5, 7] = 1
    mask[6, 8] = 1        # diagonal neighbour: one component with 8-connectivity
    np.testing.assert_array_equal(masks_to_regions(mask), [[1, 1, 4, 3], [7, 5, 9, 7]])
    assert masks_to_regions(mask, connectivity=4).shape == (3, 4)
    assert masks_to_regions(mask, min_area=3).tolist() == [[1, 1, 4, 3]]
    assert masks_to_regions(np.zeros((4, 4))).shape == (0, 4)


def test_link_tracks_follows_overlaps_and_breaks_on_gaps():
    # object 1 moves right over frames 0-2, object 2 appears in frame 1; frame 3 is empty, so the
    # region of frame 4 starts a new track even though it overlaps object 1's last box.
    frames = [0, 1, 1, 2, 2, 4]
    boxes = [[0, 0, 10, 10], [50, 0, 60, 10], [4, 0, 14, 10], [8, 0, 18, 10], [52, 0, 62, 10],
             [8, 0, 18, 10]]
    assert link_tracks(frames, boxes).tolist() == [0, 1, 0, 0, 1, 2]
    # a region overlapping two previous ones continues only the best overlap
    boxes = [[0, 0, 10, 10], [9, 0, 19, 10], [1, 0, 11, 10]]
    assert link_tracks([0, 0, 1], boxes).tolist() == [0, 1, 0]


def test_ground_truth_from_masks():
    blob = np.zeros((20, 20), bool)
    blob[2:6, 2:6] = True
    moved = np.roll(blob, 2, axis=1)
    gt = GroundTruthRegions.from_masks({"01": {0: blob, 1: moved, 3: blob}})
    assert gt.frame.tolist() == [0, 1, 3]
    assert gt.track.tolist() == [0, 0, 1]
    assert gt.n_tracks == 2 and gt.videos == ["01"]


# ---------------------------------------------------------------------------- pixel level
def test_paint_score_map_takes_the_max():
    boxes = [[0, 0, 3, 2], [1.5, 1, 4, 3]]
    score_map = paint_score_map(boxes, [0.9, 0.2], (4, 5), background=0.0)
    expected = np.zeros((4, 5))
    expected[1:3, 1:4] = 0.2   # second box covers columns floor(1.5)=1 .. 3, rows 1..2
    expected[0:2, 0:3] = 0.9   # the higher score wins where they overlap
    np.testing.assert_array_equal(score_map, expected)


def test_pixel_auc_hand_example_and_sklearn():
    # positives {0.9, 0.5}, negatives {0.1, 0.5}: pairs won 1 + 1 + 1 + 0.5 (tie) = 3.5 of 4
    assert pixel_auc([np.array([[0.9, 0.1], [0.5, 0.5]])], [np.array([[1, 0], [0, 1]])]) == 0.875
    rng = np.random.default_rng(0)
    maps = [np.round(rng.random((6, 7)), 1) for _ in range(3)]  # rounded: many ties
    masks = [rng.random((6, 7)) < 0.3 for _ in range(3)]
    expected = roc_auc_score(np.concatenate([m.ravel() for m in masks]),
                             np.concatenate([s.ravel() for s in maps]))
    assert pixel_auc(maps, masks) == pytest.approx(expected)
    with pytest.raises(ValueError, match="anomalous and normal"):
        pixel_auc([np.ones((2, 2))], [np.zeros((2, 2))])
    with pytest.raises(ValueError, match="shape"):
        PixelAUC().update(np.ones((2, 2)), np.ones((3, 2)))


def test_score_maps_from_table_and_background_ranks_lowest():
    table = make_table([("v", 0, [0, 0, 2, 2], 0.3)], {"v": [0, 1]})
    maps = dict(score_maps(table, "v", (3, 3)))
    assert sorted(maps) == [0, 1]
    assert maps[0][0, 0] == 0.3 and maps[0][2, 2] == -np.inf
    assert np.all(maps[1] == -np.inf)
    mask = np.zeros((3, 3), bool)
    mask[0, 0] = True
    assert pixel_auc([maps[0]], [mask]) == pytest.approx(1 - 0.5 * 3 / 8)  # 3 of 8 normal tie


# ---------------------------------------------------------------------------- mask folders
def write_masks(folder, masks, first=1):
    import cv2

    folder.mkdir(parents=True)
    for i, mask in enumerate(masks):
        cv2.imwrite(str(folder / f"{i + first:03d}.png"), mask.astype(np.uint8) * 255)


def test_mask_folders_one_based_names_and_evaluate(tmp_path):
    blob = np.zeros((12, 16), bool)
    blob[2:6, 3:8] = True
    write_masks(tmp_path / "Test001", [np.zeros_like(blob), blob, blob])
    assert find_mask_folder(tmp_path, "01").name == "Test001"
    files = mask_files(tmp_path / "Test001")
    assert sorted(files) == [0, 1, 2] and files[0].name == "001.png"
    # frame 1: the box on the blob (hit, 0.8); frame 0: a box on empty ground (FP, 0.9)
    table = make_table([("01", 0, [3, 2, 8, 6], 0.9), ("01", 1, [3, 2, 8, 6], 0.8)],
                       {"01": [0, 1, 2]})
    result = evaluate_masks(table, tmp_path)
    # curve: (0,0) -> (1/3, 0) -> (1/3, 1/2); flat to 1 -> RBDC = 2/3 * 1/2
    assert result["rbdc"] == pytest.approx(1 / 3)
    assert result["tbdc"] == pytest.approx(2 / 3)  # 1 track of 2 regions, alpha 0.1
    assert result["n_regions"] == 2 and result["n_tracks"] == 1
    # pixels: frame 2 anomalous pixels are unscored (-inf) like most normal pixels
    maps = [paint_score_map([[3, 2, 8, 6]], [s], blob.shape) for s in (0.9, 0.8)]
    maps.append(np.full(blob.shape, -np.inf))
    truth = np.concatenate([np.zeros_like(blob).ravel(), blob.ravel(), blob.ravel()])
    expected = roc_auc_score(truth,
                             np.maximum(np.concatenate([m.ravel() for m in maps]), -1.0))  # finite
    assert result["pixel_auc"] == pytest.approx(expected)


def test_mask_folder_errors(tmp_path):
    write_masks(tmp_path / "Test002", [np.zeros((4, 4), bool)] * 2)
    with pytest.raises(FileNotFoundError, match="no unique mask folder for video '01'"):
        find_mask_folder(tmp_path, "01")
    table = make_table([], {"02": [0, 1, 2]})
    with pytest.raises(ValueError, match="no mask file for scored frames \\[2\\]"):
        evaluate_masks(table, tmp_path)


@pytest.mark.slow
def test_ped2_masks_align_with_frame_labels(shared_data):
    """Masks ``TestNNN/KKK.png`` (1-based) are frames KKK-1: their non-empty frames are the
    anomalous frames of frame_labels.npz."""
    root = shared_data / "ucsd_ped2" / "ground_truth"
    labels = np.load(root / "frame_labels.npz")["01"]
    files = mask_files(find_mask_folder(root / "pixel_masks", "01"))
    assert sorted(files) == list(range(labels.shape[0]))
    for frame in (59, 60, 61):  # Test001 is anomalous from 1-based frame 61 = index 60
        assert read_mask(files[frame]).any() == bool(labels[frame])


# ---------------------------------------------------------------------------- pixel maps
def test_pixel_auc_uses_pixel_maps_exactly(tmp_path):
    """Frame rows with pixel maps: maps of the mask size count as they are; a 2x2 map on a 4x4
    mask is resized bilinearly (pixel centres aligned: columns 0, .25, .75, 1); a frame without
    a map takes the video's lowest pixel score."""
    rng = np.random.default_rng(1)
    same = np.round(rng.random((2, 4, 4)) * 8) / 8        # exact in float16
    masks = [rng.random((4, 4)) < 0.4 for _ in range(4)]
    masks[0][0, 0], masks[0][0, 1] = True, False           # both classes for sure
    small = np.array([[[0.0, 1.0], [0.0, 1.0]]])
    table = ScoreTable.concat([
        ScoreTable.from_frames("01", [0, 1], [0.5, 0.6], n_frames=3, pixel_maps=same),
        ScoreTable.from_frames("02", [0], [0.2], pixel_maps=small)])
    write_masks(tmp_path / "Test001", masks[:3])
    write_masks(tmp_path / "Test002", masks[3:])
    result = evaluate_masks(table, tmp_path)
    resized = np.tile([0.0, 0.25, 0.75, 1.0], (4, 1))
    maps = [same[0], same[1], np.full((4, 4), same.min()), resized]
    expected = roc_auc_score(np.concatenate([m.ravel() for m in masks]),
                             np.concatenate([m.ravel() for m in maps]))
    assert result["pixel_auc"] == pytest.approx(expected, abs=1e-12)
    assert result["pixel_scores"] == {"01": "maps", "02": "maps"} and result["kind"] == "frame"
    np.testing.assert_array_equal(dict(score_maps(table, "02", (4, 4)))[0], resized)


def test_frame_rows_without_maps_paint_the_whole_frame(tmp_path):
    blob = np.zeros((6, 8), bool)
    blob[1:5, 2:7] = True                                  # 20 of 48 pixels
    write_masks(tmp_path / "Test001", [np.zeros_like(blob), blob])
    table = ScoreTable.from_frames("01", [0, 1], [0.9, 0.4])  # NaN boxes: image size unknown
    result = evaluate_masks(table, tmp_path)
    assert result["kind"] == "frame" and result["pixel_scores"] == {"01": "boxes"}
    # every pixel of frame 0 (all normal) outscores every pixel of frame 1
    assert result["pixel_auc"] == pytest.approx(
        roc_auc_score(np.r_[np.zeros(48), blob.ravel()], np.r_[np.full(48, 0.9), np.full(48, 0.4)]))
    # the whole frame is one region: IoU 20/48 >= 0.1, so frame 1's row detects the region, and
    # frame 0's row (scored higher) is a false positive: RBDR 1 at 1/2 FP per frame
    assert result["rbdc"] == pytest.approx(0.5) and result["n_detections"] == 2
    with pytest.raises(ValueError, match=r"no patch rows \(it has \['frame'\] rows\)"):
        evaluate_masks(table, tmp_path, kind="patch")


def test_region_candidates_prefer_objects_then_patches_then_frames():
    objects = make_table([("v", 0, [0, 0, 2, 2], 0.3)], {"v": [0]})
    frames = ScoreTable.from_frames("v", [0], [0.5])
    rows, kind = region_candidates(ScoreTable.concat([objects, frames]))
    assert kind == "object" and rows.kinds == ("object",)
    rows, kind = region_candidates(frames, image_hw={"v": (10, 20)})
    assert kind == "frame"
    np.testing.assert_array_equal([rows[c][0] for c in ("x1", "y1", "x2", "y2")], [0, 0, 20, 10])


def test_pixel_auc_compaction_keeps_the_exact_auc(monkeypatch):
    rng = np.random.default_rng(2)
    maps = [np.round(rng.random((5, 6)), 2) for _ in range(6)]
    masks = [rng.random((5, 6)) < 0.3 for _ in range(6)]
    expected = pixel_auc(maps, masks)
    monkeypatch.setattr(PixelAUC, "COMPACT_AT", 40)
    accumulator = PixelAUC()
    for score_map, mask in zip(maps, masks):
        accumulator.update(score_map, mask)
        assert accumulator._pending <= 101 + 40           # merged as it goes
    assert accumulator.auc() == pytest.approx(expected, abs=1e-15)
