"""STRL: STAE shapes and warping, relation module and loss, the estimator on synthetic scenes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stgraph.models.strl import STRL, TERMS, paper_combination
from stgraph.nn.relation import (RelationModule, box_masks, masked_average, order_clip_indices,
                                 relation_loss, speed_clip_indices)
from stgraph.nn.stae import STAE, count_parameters, gradient_loss, stae_loss, warp


def _video(rng: np.random.Generator, speed: int, n: int = 16, hw=(48, 48)) -> np.ndarray:
    """A textured 10x10 square moving right by ``speed`` px per frame over a fixed background."""
    background = rng.integers(40, 90, size=(*hw, 3), dtype=np.uint8)
    texture = rng.integers(150, 255, size=(10, 10, 3), dtype=np.uint8)
    video = np.repeat(background[None], n, axis=0)
    for t in range(n):
        x = (2 + speed * t) % (hw[1] - 10)
        video[t, 18:28, x:x + 10] = texture
    return video


SMALL = dict(resolution=32, clip_length=3, width=4, batch_size=8, region_size=48, progress=False)


@pytest.fixture(scope="module")
def trained() -> STRL:
    rng = np.random.default_rng(0)
    train = [_video(rng, 1) for _ in range(4)]
    return STRL(epochs=8, lr=5e-3, train_stride=1, **SMALL).fit(train)


def test_stae_shapes_and_parameter_count():
    net = STAE(clip_length=4, channels=1, width=14)
    out = net(torch.zeros(2, 4, 64, 96))
    assert out.frame.shape == (2, 1, 64, 96) and out.warped.shape == (2, 1, 64, 96)
    assert out.flow.shape == (2, 2, 64, 96)
    assert out.embedding.shape == (2, 56, 8, 12)
    assert out.frame.abs().max() <= 1
    assert 100_000 < count_parameters(net) < 300_000  # the paper: 0.18M for the whole model
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.zeros(1, 4, 60, 64))
    with pytest.raises(ValueError, match="clips"):
        net(torch.zeros(1, 3, 64, 64))


def test_warp_with_zero_flow_is_the_identity_and_shifts_by_the_flow():
    image = torch.rand(2, 3, 16, 20)
    torch.testing.assert_close(warp(image, torch.zeros(2, 2, 16, 20)), image)
    flow = torch.zeros(2, 2, 16, 20)
    flow[:, 0] = 2.0  # out(x) = image(x - 2): the content moves 2 px to the right
    shifted = warp(image, flow)
    torch.testing.assert_close(shifted[..., 2:], image[..., :-2])
    with pytest.raises(ValueError, match="flow"):
        warp(image, torch.zeros(2, 3, 16, 20))
    # an untrained STAE starts with zero flow: its warped frame is the current frame
    net = STAE(clip_length=2, channels=1, width=4).eval()
    clip = torch.rand(1, 2, 16, 16)
    torch.testing.assert_close(net(clip).warped, clip[:, -1:])


def test_losses_are_zero_for_a_perfect_prediction():
    target = torch.rand(2, 1, 8, 8)
    assert float(gradient_loss(target, target)) == 0
    net = STAE(clip_length=2, channels=1, width=4)
    out = net(torch.rand(2, 2, 16, 16))
    app, mot = stae_loss(out, torch.rand(2, 1, 16, 16), reduce=False)
    assert app.shape == (2,) and mot.shape == (2,) and (app > 0).all()


def test_relation_module_shapes_masks_and_negatives():
    rng = np.random.default_rng(0)
    for _ in range(20):
        offsets = speed_clip_indices(4, rng, 4)
        steps = np.diff(offsets)
        assert offsets[0] == 0 and (steps >= 1).all() and (steps <= 4).all() and steps.max() > 1
        order = order_clip_indices(4, rng)
        assert sorted(order) == [0, 1, 2, 3] and (order != np.arange(4)).any()
    masks = box_masks(np.array([[0, 0, 16, 16], [30, 30, 31, 31]]), (32, 32), (4, 4))
    assert masks.shape == (2, 4, 4) and masks[0].sum() == 4 and masks[1].sum() == 1
    module = RelationModule(8, (4, 4))
    scene = torch.randn(2, 8, 4, 4)
    m = torch.from_numpy(masks)
    idx = torch.tensor([0, 1])
    objects = masked_average(scene, m, idx)
    assert objects.shape == (2, 8)
    torch.testing.assert_close(objects[1], scene[1, :, 3, 3])
    psi = module(scene, objects, idx)
    assert psi.shape == (2, 4, 4) and ((psi > 0) & (psi < 1)).all()
    loss = relation_loss(psi, [psi, psi], m)
    torch.testing.assert_close(loss, torch.tensor(float(np.log(3))))


def test_relation_loss_decreases_and_separates_an_abnormal_speed(trained: STRL):
    history = [h["l_rl"] for h in trained.loss_history_]
    assert history[-1] < 0.5 * history[0]
    assert trained.loss_history_[-1]["l_ae"] < trained.loss_history_[0]["l_ae"]
    rl = {}
    for speed in (1, 4):
        table = trained.score(_video(np.random.default_rng(5), speed), video="v")
        frames = table.select(kind="frame")
        assert set(TERMS) <= set(frames.columns)
        rl[speed] = frames["s_rl"][frames["s_rl"] > 0].mean()
    assert rl[4] > rl[1] + 0.1


def test_score_table_rows_and_detections(trained: STRL):
    from detectors.base import Detections

    video = _video(np.random.default_rng(7), 2)
    table = trained.score(video, video="v")
    frames = table.select(kind="frame")
    assert frames["frame"].min() == trained.clip_length  # the first k frames have no clip
    assert len(table.video_frames["v"]) == len(video)
    assert "v" in table.pixel_maps
    objects = table.select(kind="object")
    assert len(objects) and set(objects["class_name"]) == {"moving"}
    assert (objects["score"] >= 0).all() and ((objects["psi"] > 0) & (objects["psi"] < 1)).all()
    dets = [Detections(np.array([[10, 15, 30, 30]], np.float32), np.ones(1, np.float32),
                       np.zeros(1, np.int64), frame_index=t, image_size=(48, 48),
                       class_names=("person",)) for t in range(len(video))]
    with_dets = trained.score(video, video="v", detections=dets)
    objects = with_dets.select(kind="object")
    assert set(objects["class_name"]) == {"person"}
    assert len(objects) == len(video) - trained.clip_length
    np.testing.assert_allclose(with_dets.select(kind="frame")["score"], frames["score"])


def test_paper_combination_and_bad_params():
    terms = {"s_app": np.array([1.0, 3.0]), "s_mot": np.array([2.0, 2.0]),
             "s_rl": np.array([0.5, 0.0])}
    np.testing.assert_allclose(paper_combination(terms), [0.5, 1.0])
    np.testing.assert_allclose(paper_combination(terms, lambda_app=0.0, lambda_rl=1.0), [1, 0])
    for bad in ({"resolution": 30}, {"width": 3}, {"lr": 0.0}, {"clip_length": 1}):
        with pytest.raises(ValueError):
            STRL(**{**SMALL, **bad}).fit([_video(np.random.default_rng(0), 1)])
    with pytest.raises(ValueError, match="at least"):
        STRL(**SMALL).fit([_video(np.random.default_rng(0), 1, n=3)])


def test_relation_maps_for_the_knowledge_graph(trained: STRL):
    video = _video(np.random.default_rng(3), 1)
    maps = trained.relation_maps(video, frame=8)
    n = len(maps["boxes"])
    assert n >= 1 and maps["psi"].shape == (n, 4, 4) and maps["relation"].shape == (16, 4, 4)
    assert maps["class_names"] == ["moving"] * n
    with pytest.raises(ValueError, match="scored frame"):
        trained.relation_maps(video, frame=1)


def test_stae_features_pool_the_encoder_per_box():
    from detectors.base import Detections
    from stgraph.features.stae import STAEFeatures
    from stgraph.registry import lookup

    assert lookup("features", "STAEFeatures") is STAEFeatures
    rng = np.random.default_rng(0)
    producer = STAEFeatures(resolution=32, clip_length=3, width=4, epochs=1, progress=False)
    producer.fit([_video(rng, 1)])
    video = _video(rng, 1)
    dets = Detections(np.array([[0, 0, 20, 20], [20, 20, 48, 48]], np.float32),
                      np.ones(2, np.float32), np.zeros(2, np.int64), frame_index=0,
                      image_size=(48, 48))
    features = producer.extract(video[0], dets)
    assert features.shape == (2, producer.dim) == (2, 16) and features.dtype == np.float32
    restored = STAEFeatures(resolution=32, clip_length=3, width=4, epochs=1)
    restored.restore(producer.fitted_state())
    producer.reset()
    np.testing.assert_allclose(restored.extract(video[0], dets), producer.extract(video[0], dets),
                               rtol=1e-5, atol=1e-6)
