"""Autoencoder node-feature producers: one row per detection, [0, D] without objects, state."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from contract_data import contract_inputs
from detectors.base import Detections
from stgraph.features.autoencoder import DissociationFeatures, STMAEFeatures, pool_boxes
from stgraph.features.base import FeatureError, annotate_features
from stgraph.io.frames import as_frame_source
from stgraph.models.dissociation import DissociationAE
from stgraph.models.stm_ae import STMAE
from stgraph.registry import build_component, component_spec

PRODUCERS = [(STMAEFeatures, STMAE), (DissociationFeatures, DissociationAE)]


def _detections(video: np.ndarray) -> list[Detections]:
    out = []
    for t in range(len(video)):
        if t == 6:
            out.append(Detections.empty(t, (32, 32), ("person",)))
            continue
        boxes = np.array([[2, 2, 12, 12], [10, 8, 30, 24], [5, 5, 5.5, 5.5]], np.float32)
        out.append(Detections(boxes, np.ones(3, np.float32), np.zeros(3, np.int64), frame_index=t,
                              image_size=(32, 32), class_names=("person",)))
    return out


def test_pool_boxes_means_per_channel():
    maps = np.stack([np.ones((4, 4)), np.arange(16.0).reshape(4, 4)])
    pooled = pool_boxes(maps, np.array([[0, 0, 2, 2], [2, 2, 4, 4]], np.float64))
    np.testing.assert_allclose(pooled, [[1, 2.5], [1, 12.5]])
    assert pool_boxes(maps, np.zeros((0, 4))).shape == (0, 2)


@pytest.mark.parametrize("producer_cls,model_cls", PRODUCERS)
def test_one_row_per_detection_and_empty_frames(producer_cls, model_cls):
    train, _, test = contract_inputs("frames", 0)
    producer = producer_cls(params=model_cls.contract_params()).fit(train)
    assert producer.dim == 2 + 8 * model_cls.contract_params()["width"]
    dets = _detections(test)
    annotated = annotate_features(producer, as_frame_source(test), dets, progress=False)
    for t, d in enumerate(annotated):
        assert d.features.shape == (len(dets[t]), producer.dim)
        assert d.features.dtype == np.float32
    assert annotated[6].features.shape == (0, producer.dim)
    assert np.all(annotated[0].features == 0)  # no history yet
    assert np.any(annotated[8].features != 0)


@pytest.mark.parametrize("producer_cls,model_cls", PRODUCERS)
def test_state_round_trip_and_spec(producer_cls, model_cls):
    train, _, test = contract_inputs("frames", 0)
    producer = producer_cls(params=model_cls.contract_params(), latent=False).fit(train)
    assert producer.dim == 2
    state = producer.fitted_state()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    rebuilt = build_component(component_spec(producer, "features"), "features")
    rebuilt.restore(state)
    dets = _detections(test)
    a = annotate_features(producer, as_frame_source(test), dets, progress=False)
    b = annotate_features(rebuilt, as_frame_source(test), dets, progress=False)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.features, y.features)


def test_from_model_reuses_weights_and_unfitted_raises():
    train, _, test = contract_inputs("frames", 0)
    model = STMAE(**STMAE.contract_params()).fit(train)
    producer = STMAEFeatures.from_model(model)
    assert producer.model_ is model
    with pytest.raises(FeatureError, match="wraps"):
        DissociationFeatures.from_model(model)
    with pytest.raises(FeatureError, match="not fitted"):
        STMAEFeatures().extract(test[0], _detections(test)[0])
