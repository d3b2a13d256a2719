"""EvidenceFusion and the kNN / GMM densities: calibration, groups, weights, persistence."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from detectors.base import Detections
from stgraph.models.density import DENSITIES, GMMDensity, KNNDensity, cross_fitted_scores
from stgraph.models.evidence import EvidenceFusion


def _video(rng, n_frames=10, shift=0.0, empty=None):
    frames = []
    for t in range(n_frames):
        if t == empty:
            frames.append(Detections.empty(t, (100, 100), ("person",), 4))
            continue
        f = np.concatenate([rng.normal(0, 1, (3, 2)), rng.normal(shift, 0.1, (3, 2))], axis=1)
        frames.append(Detections(np.tile([[0, 0, 10, 10]], (3, 1)), np.ones(3), np.zeros(3),
                                 t, (100, 100), ("person",), features=f.astype(np.float32)))
    return frames


def test_knn_and_gmm_densities():
    h = torch.randn(200, 3, dtype=torch.float64)
    for density in (KNNDensity(k=3), GMMDensity(components=2)):
        density.fit(h)
        near, far = density.score(torch.zeros(1, 3)), density.score(torch.full((1, 3), 6.0))
        assert far.item() > near.item()
        again = type(density).from_state(density.state_dict())
        torch.testing.assert_close(again.score(h[:5]), density.score(h[:5]))
    assert set(DENSITIES) >= {"mahalanobis", "knn", "gmm"}
    small = KNNDensity(k=2, max_bank=10).fit(h)
    assert small.bank_.shape == (10, 3)
    assert cross_fitted_scores([h[:100], h[100:]], lambda: KNNDensity(k=2)).shape == (200,)


def test_evidence_scores_the_shifted_group_and_calibrates():
    rng = np.random.default_rng(0)
    train = [_video(rng) for _ in range(4)]
    model = EvidenceFusion(groups=[2, 2], k=3).fit(train)
    assert model.calibration_.shape == (2, 2)
    assert abs(model.train_scores_.quantile(0.5)) < 0.5     # calibrated: median ~ 0
    normal = model.score(_video(rng, empty=3), video="n")
    odd = model.score(_video(rng, shift=3.0), video="o")
    assert odd.column("score").min() > normal.column("score").max()
    assert 3 in normal.video_frames["n"]
    z = model.group_scores(odd.column("score")[:0].reshape(0, 1).repeat(4, 1))
    assert z.shape == (0, 2)
    only_first = EvidenceFusion(groups=[2, 2], k=3, weights=[1, 0]).fit(train)
    assert only_first.score(_video(rng, shift=3.0), video="o").column("score").max() < 3


@pytest.mark.parametrize("scoring", ["gmm", "mahalanobis"])
def test_evidence_other_scorers_and_persistence(tmp_path, scoring):
    rng = np.random.default_rng(1)
    train = [_video(rng) for _ in range(3)]
    model = EvidenceFusion(groups=[4], scoring=scoring, components=2).fit(train)
    test = _video(rng, shift=2.0)
    model.save(tmp_path / "m")
    again = EvidenceFusion.load(tmp_path / "m")
    np.testing.assert_allclose(again.decision_function(test), model.decision_function(test))


def test_evidence_bad_settings():
    train = [_video(np.random.default_rng(2))]
    with pytest.raises(ValueError, match="cover 3 columns"):
        EvidenceFusion(groups=[1, 2]).fit(train)
    with pytest.raises(ValueError, match="weights"):
        EvidenceFusion(groups=[2, 2], weights=[1]).fit(train)
    with pytest.raises(ValueError, match="scoring"):
        EvidenceFusion(scoring="nope").fit(train)


def test_anograph_accepts_the_new_densities_as_scoring(tmp_path):
    from contract_data import contract_inputs
    from stgraph.models import AnoGraph

    train, _, test = contract_inputs("detections")
    model = AnoGraph(hidden=8, epochs=1, train_window=5, progress=False, scoring="knn").fit(train)
    model.save(tmp_path / "m")
    np.testing.assert_allclose(AnoGraph.load(tmp_path / "m").decision_function(test),
                               model.decision_function(test))
