"""The ``stgraph`` commands end to end on a tiny synthetic dataset of video files."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from dataset_fakes import write_synthetic_dataset
from stgraph.cli import main
from stgraph.scores import ScoreTable

SIZE = (96, 128)  # (H, W)
N_FRAMES = 24


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """ROOT/training/videos/*.avi, ROOT/testing/videos/*.avi, ROOT/ground_truth/frame_labels.npz."""
    return write_synthetic_dataset(tmp_path_factory.mktemp("dataset"), 2, 2, N_FRAMES, SIZE,
                                   labels=True)


@pytest.fixture(scope="module")
def model_dir(dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fit") / "model"
    code = main(["--quiet", "fit", "--train", str(dataset), "--method", "anograph",
                 "--detector", "motion", "--features", "geometry", "--epochs", "2", "--cache", str(out.parent / "cache"),
                 "--out", str(out)])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def scores_csv(dataset, model_dir) -> Path:
    out = model_dir.parent / "scores.csv"
    assert main(["--quiet", "score", "--model", str(model_dir), "--video", str(dataset),
                 "--cache", str(model_dir.parent / "cache"), "--out", str(out)]) == 0
    return out


def test_fit_writes_a_loadable_pipeline(model_dir):
    spec = json.loads((model_dir / "pipeline.json").read_text())
    assert spec["detector"] == {"kind": "detector", "class": "MotionRegionDetector",
                                "params": spec["detector"]["params"]}
    assert spec["version"] == 2
    assert spec["features"]["class"].endswith("GeometryFeatures")
    assert (model_dir / "model").is_dir()


def test_score_covers_every_test_frame(scores_csv):
    table = ScoreTable.read_csv(scores_csv)
    assert table.videos == ["test-00-fast", "test-01-wrong_direction"]
    assert all(list(f) == list(range(N_FRAMES)) for f in table.video_frames.values())
    assert len(table) > 0 and np.isfinite(table["score"]).all()


def test_eval_writes_metrics(dataset, scores_csv, tmp_path: Path, capsys):
    out = tmp_path / "metrics.json"
    assert main(["eval", "--scores", str(scores_csv),
                 "--labels", str(dataset / "ground_truth" / "frame_labels.npz"), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert 0.0 <= report["micro_auc"] <= 1.0 and report["n_frames"] == 2 * N_FRAMES
    assert "frame AUC micro" in capsys.readouterr().out


def test_plot_curve_and_overlay(dataset, scores_csv, tmp_path: Path):
    video = dataset / "testing" / "videos" / "test-00-fast.avi"
    curve, overlay = tmp_path / "curve.png", tmp_path / "overlay.png"
    assert main(["plot", "--scores", str(scores_csv), "--video", "test-00-fast",
                 "--labels", str(dataset / "ground_truth" / "frame_labels.npz"),
                 "--out", str(curve), "--overlay", str(video), "--overlay-out", str(overlay)]) == 0
    assert cv2.imread(str(curve)) is not None
    assert cv2.imread(str(overlay)).shape == (*SIZE, 3)
    mp4 = tmp_path / "overlay.mp4"
    assert main(["plot", "--scores", str(scores_csv), "--video", "test-00-fast",
                 "--out", str(curve), "--overlay", str(video), "--overlay-out", str(mp4)]) == 0
    assert int(cv2.VideoCapture(str(mp4)).get(cv2.CAP_PROP_FRAME_COUNT)) == N_FRAMES


def test_graph_with_the_motion_detector(dataset, tmp_path: Path, capsys):
    video = dataset / "testing" / "videos" / "test-00-fast.avi"
    out, plot = tmp_path / "graph.pt", tmp_path / "graph.png"
    assert main(["--quiet", "graph", "--video", str(video), "--detector", "motion",
                 "--features", "geometry", "--start", "8", "--frames", "6",
                 "--out", str(out), "--plot", str(plot)]) == 0
    data = Data.from_dict(torch.load(out, weights_only=True))  # no pickled classes
    assert data.num_nodes > 0 and data.x.shape[1] == 8
    assert set(data.frame.tolist()) <= set(range(8, 14))
    assert cv2.imread(str(plot)) is not None
    assert f"{data.num_nodes} objects/nodes" in capsys.readouterr().out


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_bad_inputs_exit_2_with_one_line_naming_the_path(dataset, model_dir, scores_csv,
                                                        tmp_path: Path, capsys):
    missing = tmp_path / "nowhere"
    cases = [
        (["fit", "--train", str(missing), "--detector", "motion", "--out", str(tmp_path / "m")], "nowhere"),
        (["score", "--model", str(missing), "--video", str(dataset)], "nowhere"),
        (["score", "--model", str(model_dir), "--video", str(missing / "clip.avi")], "clip.avi"),
        (["eval", "--scores", str(scores_csv), "--labels", str(tmp_path / "labels.npz")], "labels.npz"),
        (["eval", "--scores", str(tmp_path / "none.csv"), "--labels", str(dataset / "ground_truth" / "frame_labels.npz")], "none.csv"),
        (["plot", "--scores", str(scores_csv), "--video", "test-00-fast", "--out", str(tmp_path / "c.png"),
          "--overlay", str(dataset / "testing" / "videos" / "test-00-fast.avi"),
          "--overlay-out", str(tmp_path / "overlay.gif")], "overlay.gif"),
        (["plot", "--scores", str(scores_csv), "--out", str(tmp_path / "c.png"),
          "--overlay", str(tmp_path / "gone.avi"), "--overlay-out", str(tmp_path / "o.png")], "gone.avi"),
        (["graph", "--video", str(tmp_path / "gone.mp4"), "--detector", "motion"], "gone.mp4"),
    ]
    for argv, name in cases:
        assert main(argv) == 2, argv
        err = one_line_error(capsys)
        assert err.startswith(f"stgraph {argv[0]}: error:") and name in err, err


def test_labels_and_videos_from_a_dataset_root(tmp_path: Path):
    """`--labels` and `--video` accept a dataset root in a known layout, not only label files."""
    from stgraph.cli import read_labels, resolve_videos

    root = tmp_path / "cams"
    for split, names in (("training", ["a"]), ("testing", ["b", "c"])):
        for name in names:
            folder = root / split / "frames" / name
            folder.mkdir(parents=True)
            for i in range(3):
                cv2.imwrite(str(folder / f"{i:03d}.jpg"), np.full((16, 16, 3), 40 * i, np.uint8))
    (root / "ground_truth").mkdir()
    np.savez(root / "ground_truth" / "frame_labels.npz", b=np.array([0, 1, 1], np.uint8),
             c=np.array([0, 0, 1], np.uint8))
    labels = read_labels(root)
    assert sorted(labels) == ["b", "c"] and labels["b"].tolist() == [0, 1, 1]
    assert [v.name for v in resolve_videos(root, "test")] == ["b", "c"]
    assert [v.name for v in resolve_videos(root, "train")] == ["a"]
    np.testing.assert_array_equal(read_labels(root / "ground_truth" / "frame_labels.npz")["c"], [0, 0, 1])


def test_make_features_joins_groups_and_rejects_unknown_ones():
    from stgraph.cli import make_features

    assert type(make_features("geometry")).__name__ == "GeometryFeatures"
    combined = make_features("geometry+class")
    assert [type(p).__name__ for p in combined.producers] == ["GeometryFeatures", "ClassFeatures"]
    assert combined.dim == 8 + 81
    for bad in ("colour", "geometry+geometry", "geometry+"):
        with pytest.raises(ValueError, match="join groups of geometry, class, roi"):
            make_features(bad)


def test_fuse_an_object_and_a_frame_level_method_on_their_training_scales(
        dataset, model_dir, scores_csv, tmp_path: Path, capsys):
    from stgraph.models.base import load_model
    from stgraph.scores import fuse

    fd_dir, fd_csv = tmp_path / "fd", tmp_path / "fd.csv"
    assert main(["--quiet", "fit", "--train", str(dataset), "--method", "frame_difference",
                 "--detector", "none", "--out", str(fd_dir)]) == 0
    assert main(["--quiet", "score", "--model", str(fd_dir), "--video", str(dataset),
                 "--out", str(fd_csv)]) == 0
    out = tmp_path / "fused.csv"
    assert main(["fuse", "--scores", str(scores_csv), "--model", str(model_dir),
                 "--scores", str(fd_csv), "--model", str(fd_dir), "--out", str(out)]) == 0
    fused = ScoreTable.read_csv(out)
    tables = [ScoreTable.read_csv(scores_csv), ScoreTable.read_csv(fd_csv)]
    expected = fuse(tables, train_scores=[load_model(model_dir / "model").train_scores_,
                                          load_model(fd_dir / "model").train_scores_])
    assert fused.videos == expected.videos == tables[0].videos
    for video in fused.videos:
        np.testing.assert_allclose(fused.frame_scores()[video].scores,
                                   expected.frame_scores()[video].scores, rtol=1e-5)
    # every frame of every video has a fused score
    labels = np.load(dataset / "ground_truth" / "frame_labels.npz")
    assert {v: len(s.scores) for v, s in fused.frame_scores().items()} == {
        v: len(labels[v]) for v in fused.videos}
    capsys.readouterr()
    assert main(["fuse", "--scores", str(scores_csv), "--scores", str(fd_csv),
                 "--model", str(model_dir), "--out", str(tmp_path / "x.csv")]) == 2
    assert "one --model per --scores" in one_line_error(capsys)
    assert not (tmp_path / "x.csv").exists()
