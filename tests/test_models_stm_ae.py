"""STM-AE: memory pools, salt-and-pepper noise, training on synthetic clips, scores and maps."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from contract_data import contract_inputs
from detectors.base import Detections
from stgraph.models import load_model
from stgraph.models.stm_ae import STMAE
from stgraph.nn.autoencoder_layers import MemoryPool, psnr, salt_and_pepper
from stgraph.nn.pixel_autoencoders import STMAENet

TINY = STMAE.contract_params()


def test_memory_read_is_a_convex_combination_of_the_items():
    pool = MemoryPool(n_items=6, dim=4, top_k=2, seed=0)
    z = torch.randn(2, 4, 3, 3)
    weights = pool.weights(pool.queries(z))
    assert torch.all(weights >= 0)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(18))
    read = pool.read(z)
    assert read.shape == z.shape
    expected = (weights @ pool.items).reshape(2, 3, 3, 4).permute(0, 3, 1, 2)
    torch.testing.assert_close(read, expected)


def test_a_top_k_update_touches_only_k_items():
    pool = MemoryPool(n_items=10, dim=5, top_k=3, seed=1)
    before = pool.items.clone()
    pool.update(torch.randn(1, 5))  # one query
    changed = (pool.items - before).abs().sum(dim=1) > 0
    assert int(changed.sum()) == 3
    torch.testing.assert_close(pool.items.norm(dim=1), torch.ones(10))  # kept L2-normalised


def test_salt_and_pepper_sets_the_given_fraction_to_extremes():
    x = torch.zeros(4, 3, 32, 32)
    noisy = salt_and_pepper(x, 0.2, torch.Generator().manual_seed(0))
    changed = (noisy != 0).all(dim=1).float().mean().item()
    assert 0.15 < changed < 0.25
    assert set(noisy.unique().tolist()) <= {-1.0, 0.0, 1.0}


def test_network_shapes_and_psnr():
    net = STMAENet(n_input=4, width=2, n_items=4, top_k=2)
    clip, flows = torch.rand(2, 12, 16, 16) * 2 - 1, torch.randn(2, 8, 16, 16)
    rec_a, rec_m = net.reconstruct(clip, flows)
    assert rec_a.shape == clip.shape and rec_m.shape == flows.shape
    z_a, z_m = net.encode(clip, flows)
    assert z_a.shape == (2, 8, 2, 2) == z_m.shape
    assert net.predict(z_a, z_m, clip[:, -3:]).shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="last"):
        net.predict(z_a, z_m)
    same = torch.zeros(1, 3, 4, 4)
    assert psnr(same + 0.1, same).item() == pytest.approx(10 * np.log10(4 / 0.01), rel=1e-5)


def test_training_reduces_the_loss_and_scores_a_faster_object_higher():
    train, _, test = contract_inputs("frames", 0)
    model = STMAE(**{**TINY, "pretrain_epochs": 3, "epochs": 4}).fit(train)
    losses = model.train_losses_
    assert losses[2] < losses[0]  # pre-training
    assert losses[-1] < losses[3]  # prediction
    table = model.score(test, video="t")
    assert (table["kind"] == "frame").all() and len(table) == len(test) - 4
    maps = table.pixel_maps["t"]
    assert maps.maps.shape[1:] == (16, 16)


def test_object_rows_for_given_boxes_and_save_load(tmp_path):
    train, _, test = contract_inputs("frames", 0)
    model = STMAE(**TINY).fit(train)
    boxes = np.array([[0, 0, 16, 16], [10, 10, 30, 30]], np.float32)
    dets = [Detections(boxes, np.ones(2, np.float32), np.zeros(2, np.int64), frame_index=t,
                       image_size=(32, 32), class_names=("person",)) for t in range(len(test))]
    table = model.score(test, video="t", detections=dets)
    objects = table["kind"] == "object"
    assert objects.sum() == 2 * (len(test) - 4)
    loaded = load_model(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.decision_function(test, video="t", detections=dets),
                                  table["score"])


def test_bad_parameters_raise_one_line_value_errors():
    train, _, _ = contract_inputs("frames", 0)
    with pytest.raises(ValueError, match="multiple of 8"):
        STMAE(**{**TINY, "resolution": 20}).fit(train)
    with pytest.raises(ValueError, match="top_k"):
        STMAE(**{**TINY, "top_k": 9}).fit(train)
    with pytest.raises(ValueError, match="at least one video"):
        STMAE(**TINY).fit([])
    with pytest.raises(ValueError, match="at least 5 frames"):
        STMAE(**TINY).fit([train[0][:3]])
