"""Frame-level metrics: AUC (micro/macro) vs scikit-learn, EER and Youden by hand, input errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from stgraph.metrics import (align_frame_labels, equal_error_rate, evaluate_frames, frame_auc,
                             macro_auc, micro_auc, roc_curve_points, youden)
from stgraph.scores import FrameScores


@pytest.fixture
def videos() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Three seeded videos (50, 80, 30 frames), both classes in each, noisy informative scores."""
    rng = np.random.default_rng(0)
    scores, labels = {}, {}
    for name, n in (("01", 50), ("02", 80), ("03", 30)):
        lab = (rng.random(n) < 0.4).astype(np.uint8)
        lab[:2] = (0, 1)
        labels[name] = lab
        scores[name] = lab * 0.8 + rng.normal(size=n) + (0.5 if name == "02" else 0.0)
    return scores, labels


def test_auc_matches_sklearn(videos):
    scores, labels = videos
    expected_micro = roc_auc_score(np.concatenate(list(labels.values())),
                                   np.concatenate(list(scores.values())))
    expected_per_video = {v: roc_auc_score(labels[v], scores[v]) for v in scores}
    assert micro_auc(scores, labels) == pytest.approx(expected_micro)
    assert macro_auc(scores, labels) == pytest.approx(np.mean(list(expected_per_video.values())))
    assert frame_auc(scores["02"], labels["02"]) == pytest.approx(expected_per_video["02"])
    report = evaluate_frames(scores, labels)
    assert report["micro_auc"] == pytest.approx(expected_micro)
    per_video = {v: r["auc"] for v, r in report["per_video"].items()}
    assert per_video == pytest.approx(expected_per_video)
    assert report["n_videos"] == 3 and report["n_frames"] == 160
    assert report["n_anomalous"] == sum(int(lab.sum()) for lab in labels.values())
    assert report["n_normal"] == 160 - report["n_anomalous"]
    json.dumps(report, allow_nan=False)  # plain Python types only


def test_roc_points_start_at_nothing_flagged():
    fpr, tpr, thresholds = roc_curve_points(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 1, 0, 1]))
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    assert np.isinf(thresholds[0])


@pytest.mark.parametrize("scores, labels, eer, threshold", [
    # perfectly separable: FPR = FNR = 0 at the lowest anomalous score
    ([0.1, 0.2, 0.7, 0.9], [0, 0, 1, 1], 0.0, 0.7),
    # perfectly inverted: ROC (0,0) (.5,0) (1,0) (1,.5) (1,1); FPR = FNR = 1 at threshold 0.3
    ([0.1, 0.2, 0.3, 0.4], [1, 1, 0, 0], 1.0, 0.3),
    # ROC vertex (.5,.5) at threshold 0.3 lies on FPR = 1 - TPR
    ([0.1, 0.2, 0.3, 0.4], [0, 1, 0, 1], 0.5, 0.3),
    # tie at 0.5 (one normal, one anomalous): the segment (0,.5)@0.9 -> (.5,1)@0.5 crosses
    # FPR = 1 - TPR halfway, at (.25,.75); threshold halfway too: 0.7
    ([0.2, 0.5, 0.5, 0.9], [0, 0, 1, 1], 0.25, 0.7),
])
def test_equal_error_rate_hand_cases(scores, labels, eer, threshold):
    got_eer, got_threshold = equal_error_rate(np.array(scores), np.array(labels))
    assert got_eer == pytest.approx(eer) and got_threshold == pytest.approx(threshold)


def test_youden_hand_case():
    # J = TPR - FPR per threshold: 0.8 -> 1/2 - 0, 0.4 -> 1/2 - 1/3, 0.35 -> 1 - 1/3 (best),
    # 0.3 -> 1 - 2/3, 0.1 -> 1 - 1
    point = youden(np.array([0.1, 0.3, 0.35, 0.4, 0.8]), np.array([0, 0, 1, 0, 1]))
    assert point == pytest.approx({"threshold": 0.35, "tpr": 1.0, "fpr": 1 / 3, "tp": 2, "fp": 1,
                                   "tn": 2, "fn": 0, "accuracy": 0.8})
    assert isinstance(point["tp"], int)


def test_youden_tie_takes_the_higher_threshold():
    # thresholds 0.8 (tp 1, fp 0) and 0.35 (tp 2, fp 1) both give J = 1/2
    point = youden(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    assert point["threshold"] == 0.8
    assert (point["tp"], point["fp"], point["tn"], point["fn"]) == (1, 0, 2, 1)


def test_macro_skips_single_class_videos_with_a_warning(videos):
    scores, labels = videos
    scores = {"01": scores["01"], "normal_only": np.arange(5.0)}
    labels = {"01": labels["01"], "normal_only": np.zeros(5)}
    with pytest.warns(UserWarning, match="single class: \\['normal_only'\\]"):
        assert macro_auc(scores, labels) == pytest.approx(roc_auc_score(labels["01"], scores["01"]))
    with pytest.warns(UserWarning, match="normal_only"):
        report = evaluate_frames(scores, labels)
    assert np.isnan(report["per_video"]["normal_only"]["auc"])
    with pytest.warns(UserWarning, match="macro AUC is NaN"):
        assert np.isnan(macro_auc({"a": np.ones(3)}, {"a": np.ones(3)}))


def test_single_class_errors_where_auc_is_undefined():
    with pytest.raises(ValueError, match="frame_auc: .*only \\[0\\]"):
        frame_auc(np.arange(4.0), np.zeros(4))
    with pytest.raises(ValueError, match="pooled"):
        evaluate_frames({"a": np.arange(3.0)}, {"a": np.ones(3)})


@pytest.mark.parametrize("scores, labels, match", [
    ({"a": np.zeros(3), "b": np.zeros(3)}, {"a": [0, 1, 0], "c": [0, 1, 0]},
     r"videos without labels \['b'\], videos without scores \['c'\]"),
    ({"cam 1": np.zeros(4)}, {"cam 1": [0, 1, 0]},
     "video 'cam 1': 4 frame scores but 3 frame labels"),
    ({"a": np.array([0.1, np.nan, 0.3])}, {"a": [0, 1, 0]}, "video 'a': frame scores contain NaN"),
    ({"a": np.zeros(3)}, {"a": [0, 2, 0]}, "video 'a': labels must be 0/1"),
    ({"a": FrameScores(np.array([0, 5]), np.zeros(2))}, {"a": [0, 1, 0]},
     "video 'a': scored frame 5 is beyond the 3 frame labels"),
])
def test_mismatched_inputs_raise_naming_the_video(scores, labels, match):
    with pytest.raises(ValueError, match=match):
        evaluate_frames(scores, {k: np.array(v) for k, v in labels.items()})


def test_frame_scores_select_their_labels():
    labels = {"v": np.array([0, 1, 1, 0, 0, 1])}
    strided = FrameScores(np.array([0, 2, 4, 5]), np.array([0.1, 0.9, 0.7, 0.3]))
    scores, selected = align_frame_labels({"v": strided}, labels)["v"]
    np.testing.assert_array_equal(selected, [0, 1, 0, 1])
    # threshold pairs (anomalous, normal): (0.9 > 0.1), (0.9 > 0.7), (0.3 > 0.1), (0.3 < 0.7) -> 3/4
    assert micro_auc({"v": strided}, labels) == pytest.approx(0.75)
    dense = {"v": strided.as_dense(6)}  # frames 1, 3 take frames 0, 2 (nearest, earlier on ties)
    np.testing.assert_allclose(dense["v"], [0.1, 0.1, 0.9, 0.9, 0.7, 0.3])
    assert micro_auc(dense, labels) == pytest.approx(roc_auc_score(labels["v"], dense["v"]))


@pytest.mark.slow
def test_ped2_labels_end_to_end(shared_data):
    """Real Ped2 frame labels: counts, strided FrameScores, and the all-anomalous videos skipped."""
    with np.load(shared_data / "ucsd_ped2" / "ground_truth" / "frame_labels.npz") as npz:
        labels = {name: npz[name] for name in npz.files}
    rng = np.random.default_rng(0)
    strided = {}  # every 2nd frame scored: label + noise
    for name, lab in labels.items():
        strided[name] = FrameScores(np.arange(0, len(lab), 2), lab[::2] + rng.normal(0, 0.5, len(lab[::2])))
    dense = {name: fs.as_dense(len(labels[name])) for name, fs in strided.items()}
    with pytest.warns(UserWarning, match=r"\['08', '09', '10', '11'\]"):
        report = evaluate_frames(dense, labels)
    assert (report["n_frames"], report["n_anomalous"], report["n_videos"]) == (2010, 1648, 12)
    assert report["micro_auc"] > 0.8 and report["per_video"]["01"]["frames"] == 180
    with pytest.warns(UserWarning):
        report = evaluate_frames(strided, labels)
    assert report["n_frames"] == sum(len(lab[::2]) for lab in labels.values())
