"""The estimator contract battery: every registered model must pass every check here.

Like scikit-learn's ``parametrize_with_checks``: one parametrised battery over all methods, each
fitted with its own small ``contract_params()`` on tiny synthetic inputs of the kind it consumes
(tests/contract_data.py). A new method joins by being registered (``stgraph.registry.BUILTIN``
or ``@register("model", name)``).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from contract_data import contract_inputs, copy_inputs, same_inputs
from stgraph.models.base import CONSUMES, BaseEstimator, NotFittedError, ScoreQuantiles, load_model
from stgraph.registry import BUILTIN, lookup
from stgraph.scores import ScoreTable
from stgraph.stream import AnalysedFrame

METHODS = sorted(BUILTIN["model"])


def make(name: str, **overrides) -> BaseEstimator:
    cls = lookup("model", name)
    return cls(**{**cls.contract_params(), **overrides})


def inputs(name: str, seed: int = 0):
    kind = lookup("model", name).consumes
    try:
        return contract_inputs(kind, seed)
    except ImportError as exc:  # pragma: no cover - a kind whose inputs are not built yet
        pytest.skip(f"no contract inputs for {kind!r}: {exc}")


_FITTED: dict[str, BaseEstimator] = {}


def fitted(name: str) -> BaseEstimator:
    """One fitted estimator per method, shared by the read-only checks."""
    if name not in _FITTED:
        train, y, _ = inputs(name)
        _FITTED[name] = make(name).fit(train, y)
    return _FITTED[name]


def scores_of(model: BaseEstimator, video) -> np.ndarray:
    return np.asarray(model.decision_function(video, video="test"), np.float64)


@pytest.mark.parametrize("name", METHODS)
def test_declares_what_it_consumes(name):
    cls = lookup("model", name)
    assert issubclass(cls, BaseEstimator)
    assert cls.consumes in CONSUMES
    assert cls.supervision in ("none", "weak")
    assert isinstance(cls.streams_exactly, bool)
    assert cls.fitted_attributes and "train_scores_" in cls.fitted_attributes


@pytest.mark.parametrize("name", METHODS)
def test_params_round_trip(name):
    model = make(name)
    params = model.get_params()
    assert json.loads(json.dumps(params)) == params
    rebuilt = type(model)._from_params(json.loads(json.dumps(params)))
    assert rebuilt.get_params() == params
    assert "\n" not in repr(model)
    assert set(type(model).defaults()) == set(params)


@pytest.mark.parametrize("name", METHODS)
def test_score_before_fit_raises_not_fitted(name, tmp_path: Path):
    _, _, test = inputs(name)
    model = make(name)
    with pytest.raises(NotFittedError, match="fit"):
        model.score(test, video="test")
    with pytest.raises(NotFittedError):
        model.save(tmp_path / "m")


@pytest.mark.parametrize("name", METHODS)
def test_fit_returns_self_and_sets_the_learned_state(name):
    train, y, test = inputs(name)
    model = make(name)
    assert model.fit(train, y) is model
    for attribute in type(model).fitted_attributes:
        assert hasattr(model, attribute), attribute
    assert isinstance(model.train_scores_, ScoreQuantiles)
    assert math.isfinite(model.threshold_)
    table = model.score(test, video="test")
    assert isinstance(table, ScoreTable) and table.videos == ["test"]
    assert len(table) > 0 and np.isfinite(table["score"]).all()
    assert set(np.unique(table["kind"])) <= {"object", "frame", "patch"}
    values = model.decision_function(test, video="test")
    assert values.shape == (len(table),)
    np.testing.assert_array_equal(values, table["score"])


@pytest.mark.parametrize("name", METHODS)
def test_save_then_load_gives_identical_scores(name, tmp_path: Path):
    model = fitted(name)
    _, _, test = inputs(name)
    directory = model.save(tmp_path / "model")
    loaded = load_model(directory)
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(scores_of(loaded, test), scores_of(model, test))
    np.testing.assert_array_equal(loaded.train_scores_.values, model.train_scores_.values)


@pytest.mark.parametrize("name", METHODS)
def test_a_failed_refit_leaves_the_fitted_state_untouched(name):
    train, y, test = inputs(name)
    model = make(name).fit(train, y)
    before = {a: getattr(model, a) for a in type(model).fitted_attributes}
    expected = scores_of(model, test)
    other_train, other_y, _ = inputs(name, seed=1)
    # fail at the very end of fit, after any training, when train_scores_ is summarised
    with mock.patch.object(ScoreQuantiles, "from_scores", side_effect=RuntimeError("boom")):
        with pytest.raises(RuntimeError, match="boom"):
            model.fit(other_train, other_y)
    for attribute, value in before.items():
        assert getattr(model, attribute) is value, f"{attribute} changed by a failed fit"
    np.testing.assert_array_equal(scores_of(model, test), expected)


@pytest.mark.parametrize("name", METHODS)
def test_inputs_are_never_modified(name):
    train, y, test = inputs(name)
    train_copy, test_copy, y_copy = copy_inputs(train), copy_inputs(test), np.array(y)
    model = make(name).fit(train, y)
    model.score(test, video="test")
    assert same_inputs(train, train_copy)
    assert same_inputs(test, test_copy)
    np.testing.assert_array_equal(y, y_copy)


@pytest.mark.parametrize("name", METHODS)
def test_same_seed_gives_the_same_scores(name):
    train, y, test = inputs(name)
    if "seed" not in type(make(name)).defaults():
        first, second = make(name).fit(train, y), make(name).fit(train, y)
    else:
        first, second = make(name, seed=3).fit(train, y), make(name, seed=3).fit(train, y)
    np.testing.assert_array_equal(scores_of(first, test), scores_of(second, test))


def _analysed(model: BaseEstimator, video) -> list[AnalysedFrame]:
    """The test video as the pipeline's front stages would hand it to a stream scorer."""
    from detectors.base import Detections

    if model.consumes == "detections":
        return [AnalysedFrame(d, d.frame_index / 10.0) for d in video]
    if model.consumes == "frames+detections":
        return [AnalysedFrame(d, t / 10.0, image)
                for t, (image, d) in enumerate(zip(video.frames, video.detections))]
    return [AnalysedFrame(Detections.empty(t, image.shape[:2]), t / 10.0, image)
            for t, image in enumerate(video)]


@pytest.mark.parametrize("name", METHODS)
def test_streaming_equals_batch_when_the_model_says_so(name):
    model = fitted(name)
    _, _, test = inputs(name)
    if not type(model).streams_exactly:
        with pytest.raises(NotImplementedError):
            model.stream_scorer()
        return
    table = model.score(test, video="test")
    scorer = model.stream_scorer()
    results = [r for frame in _analysed(model, test) for r in scorer.push(frame)]
    results += scorer.flush()
    assert [r.frame_index for r in results] == list(table.video_frames["test"])
    batch = table.frame_scores()["test"]
    streamed = np.array([r.frame_score for r in results])
    scored = np.isfinite(streamed)
    assert scored.any()
    np.testing.assert_allclose(streamed[scored], batch.scores[scored], rtol=1e-5, atol=1e-6)
    for r in results:
        rows = table.objects_in_frame("test", r.frame_index)
        objects = rows["score"][rows["kind"] == "object"] if len(rows) else np.zeros(0)
        if len(objects):
            np.testing.assert_allclose(r.scores, objects, rtol=1e-5, atol=1e-6)
