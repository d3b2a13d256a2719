"""SSRL network parts, losses, weak training on synthetic videos, the Ped2 weak split."""
import numpy as np
import pytest
import torch

from stgraph.features.snippets import SnippetFeatures
from stgraph.models.ssrl import SSRL, LinearMIL, topk_magnitude_loss, topk_mean_magnitude
from stgraph.nn.ssrl import MultiScalePatchAggregation, NonLocalBlock, RelationNet, SSRLNet

GRIDS = [(1, 1), (2, 3), (3, 5)]


def test_network_shapes():
    torch.manual_seed(0)
    net = SSRLNet(in_dim=12, grids=GRIDS, dim=16).eval()
    x = [torch.randn(7, r * c, 12) for r, c in GRIDS]
    out = net(x)
    assert out["features"].shape == (7, 16) and out["scores"].shape == (7,)
    assert [a.shape for a in out["attention"]] == [(7, 1, 1), (7, 6, 6), (7, 15, 15)]
    assert ((out["scores"] > 0) & (out["scores"] < 1)).all()
    assert RelationNet(16)(torch.randn(2, 9, 16))[0].shape == (2, 9, 16)
    with pytest.raises(ValueError, match="divisible by 4"):
        RelationNet(10)


def test_non_local_attention_rows_sum_to_one():
    block = NonLocalBlock(16)
    out, attention = block(torch.randn(3, 8, 16))
    assert out.shape == (3, 8, 4)
    torch.testing.assert_close(attention.sum(-1), torch.ones(3, 8))


def test_mpa_sums_over_scales():
    torch.manual_seed(0)
    mpa = MultiScalePatchAggregation(8, [(1, 1), (4, 7)])
    assert mpa.convs[1].stride == (2, 2) and mpa.fcs[1].in_features == 8 * 2 * 4
    x = [torch.randn(5, 1, 8), torch.randn(5, 28, 8)]
    single = [MultiScalePatchAggregation(8, [g]) for g in mpa.grids]
    for k, part in enumerate(single):
        part.convs[0].load_state_dict(mpa.convs[k].state_dict())
        part.fcs[0].load_state_dict(mpa.fcs[k].state_dict())
    total = mpa(x)
    torch.testing.assert_close(total, single[0]([x[0]]) + single[1]([x[1]]))
    with pytest.raises(ValueError, match="grid 4x7"):
        mpa([x[0], torch.randn(5, 27, 8)])


def test_topk_magnitude_loss_by_hand():
    feats = torch.tensor([[3.0, 4.0], [0.0, 1.0], [6.0, 8.0], [0.0, 2.0]])  # norms 5, 1, 10, 2
    g, index = topk_mean_magnitude(feats, k=2)
    assert float(g) == pytest.approx(7.5) and sorted(index.tolist()) == [0, 2]
    assert float(topk_mean_magnitude(feats[:1], k=3)[0]) == pytest.approx(5.0)  # k > T
    loss = topk_magnitude_loss(torch.tensor([7.5, 20.0]), torch.tensor([1.5, 2.0]), margin=10.0)
    # pairs: max(0, 10-7.5+1.5)=4, 10-7.5+2=4.5, 10-20+1.5<0 -> 0, 10-20+2 <0 -> 0
    assert float(loss) == pytest.approx((4 + 4.5) / 4)


def _video(rng, abnormal, n_snippets=8, dim=6, grids=GRIDS):
    """Noise patches; in abnormal videos one patch of snippets 3-4 carries a shifted feature."""
    features = []
    for rows, cols in grids:
        x = rng.normal(0, 1, (n_snippets, rows * cols, dim)).astype(np.float32)
        if abnormal:
            x[3:5, (rows * cols) // 2, :3] += 4.0
            if rows * cols == 1:
                x[3:5, 0, :3] -= 2.0  # weaker in the whole-frame view
        features.append(x)
    ranges = np.array([[16 * k, 16 * (k + 1)] for k in range(n_snippets)], np.int64)
    return SnippetFeatures(features, grids, ranges, 16 * n_snippets, (60, 100))


def test_weak_training_separates_anomalous_snippets():
    rng = np.random.default_rng(0)
    train = [_video(rng, k % 2 == 1) for k in range(8)]
    y = np.array([k % 2 for k in range(8)])
    model = SSRL(dim=16, steps=20, batch_size=2, margin=10.0, lambda_fm=1e-2, lr=3e-3,
                 dropout=0.0, progress=False, seed=0).fit(train, y)
    test = _video(rng, True)
    s = model.snippet_scores(test)
    normal = model.snippet_scores(_video(rng, False))
    assert s[3:5].min() > max(np.delete(s, [3, 4]).max(), normal.max())
    table = model.score(test, video="t")
    frames = table.frame_scores()["t"]
    assert len(frames.scores) == 128
    kinds = set(np.unique(table["kind"]))
    assert kinds == {"frame", "patch"}
    n_patch_rows = (np.asarray(table["kind"]) == "patch").sum()
    assert n_patch_rows == 128 * (6 + 15)  # the 1x1 grid is the frame row
    maps = table.pixel_maps["t"]  # patch heatmap, [frames, H / 8, W / 8]
    assert maps.maps.shape == (128, 7, 12) and np.isfinite(maps.maps.astype(float)).all()


def test_ablation_switches_and_single_scale():
    rng = np.random.default_rng(1)
    train = [_video(rng, k % 2 == 1, n_snippets=5) for k in range(4)]
    y = [0, 1, 0, 1]
    for params in ({"use_psr": False}, {"use_vtr": False}, {"grids": [(1, 1)]}):
        model = SSRL(dim=8, steps=2, batch_size=1, progress=False, **params).fit(train, y)
        assert np.isfinite(model.snippet_scores(train[1])).all()
    single = SSRL(dim=8, steps=2, grids=[(1, 1)], progress=False).fit(train, y)
    assert single.grids_ == [(1, 1)]
    assert LinearMIL(steps=3, progress=False).fit(train, y).n_parameters_ == 6 + 1


def test_fit_needs_both_classes_and_snippets():
    rng = np.random.default_rng(2)
    train = [_video(rng, False, n_snippets=4) for _ in range(2)]
    with pytest.raises(ValueError, match="labels"):
        SSRL(steps=1, progress=False).fit(train)
    with pytest.raises(ValueError, match="normal \\(0\\) and abnormal"):
        SSRL(steps=1, progress=False).fit(train, [0, 0])
    with pytest.raises(ValueError, match="SnippetFeatures"):
        SSRL(steps=1, progress=False).fit([np.zeros((4, 3)), np.zeros((4, 3))], [0, 1])


def test_ped2_weak_split_keeps_test_videos_apart(tmp_path):
    from stgraph.datasets.ucsd import weak_split
    from stgraph.datasets.folders import VideoDataset, VideoItem

    train = [VideoItem(f"{k:02d}", tmp_path, "train") for k in range(1, 17)]
    test = [VideoItem(f"{k:02d}", tmp_path, "test", labels=np.ones(3, np.uint8))
            for k in range(1, 13)]
    split = weak_split(VideoDataset("ped2", tmp_path, train, test))
    y = [v.meta["video_label"] for v in split.train]
    assert len(split.train) == 22 and sum(y) == 6
    assert [v.name for v in split.test] == ["02", "04", "06", "08", "10", "12"]
    assert {v.name for v in split.train if v.meta["video_label"]} == {
        f"weak_{k:02d}" for k in (1, 3, 5, 7, 9, 11)}
    assert all(v.labels is None for v in split.train)


def test_pipeline_fits_scores_saves_and_loads_with_the_snippet_extractor(tmp_path):
    from stgraph.features.snippets import SnippetExtractor
    from stgraph.pipeline import Pipeline

    rng = np.random.default_rng(3)
    videos = [rng.integers(0, 255, (12, 32, 32, 3), dtype=np.uint8) for _ in range(4)]
    ext = SnippetExtractor(grids=[(1, 1), (2, 2)], snippet_len=4, layer=3)
    pipe = Pipeline(features=ext, model=SSRL(dim=8, steps=2, batch_size=1, progress=False),
                    progress=False)
    pipe.fit(videos, y=[0, 1, 0, 1])
    table = pipe.score(videos[1], name="v")
    assert set(np.unique(table["kind"])) == {"frame", "patch"}
    loaded = Pipeline.load(pipe.save(tmp_path / "pipe"))
    np.testing.assert_array_equal(loaded.score(videos[1], name="v")["score"], table["score"])


def test_cli_resolves_the_weak_split_of_a_ped2_layout(tmp_path):
    import cv2

    from stgraph.cli import resolve_videos

    image = np.zeros((8, 8, 3), np.uint8)
    for split, count in (("training", 16), ("testing", 12)):
        for k in range(1, count + 1):
            folder = tmp_path / split / "frames" / f"{k:02d}"
            folder.mkdir(parents=True)
            for i in range(2):
                cv2.imwrite(str(folder / f"{i:03d}.png"), image)
    (tmp_path / "ground_truth" / "pixel_masks").mkdir(parents=True)  # marks the UCSD layout
    np.savez(tmp_path / "ground_truth" / "frame_labels.npz",
             **{f"{k:02d}": np.array([0, 1], np.uint8) for k in range(1, 13)})
    train = resolve_videos(tmp_path, split="weak")
    test = resolve_videos(tmp_path, split="weak", weak_side="test")
    assert len(train) == 22 and sum(v.meta["video_label"] for v in train) == 6
    assert [v.name for v in test] == ["02", "04", "06", "08", "10", "12"]
    assert not {v.path for v in test} & {v.path for v in train}
    # stgraph fit --split weak (labels from the split) and score --split weak, end to end
    from stgraph.cli import main
    from stgraph.scores import ScoreTable

    assert main(["--quiet", "fit", "--train", str(tmp_path), "--split", "weak", "--method", "ssrl",
                 "--detector", "none", "--param", "steps=1", "--param", "dim=8",
                 "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "model")]) == 0
    assert main(["--quiet", "score", "--model", str(tmp_path / "model"), "--video", str(tmp_path),
                 "--split", "weak", "--cache", str(tmp_path / "cache"),
                 "--out", str(tmp_path / "s.csv")]) == 0
    assert ScoreTable.read_csv(tmp_path / "s.csv").videos == [v.name for v in test]
