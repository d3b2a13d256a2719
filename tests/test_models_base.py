"""Tests of the shared estimator plumbing in stgraph.models.base."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from stgraph.models.base import (
    CONFIG_FILE, STATE_FILE, BaseModel, EarlyStopping, ModelFileError, NotFittedError,
    ScoreQuantiles, check_is_fitted, check_labels, check_seed, load_model, make_generator,
    resolve_device, seeded,
)
from stgraph.registry import register


@register("builder", "test_knob")
class Knob:
    """A component with settings, as builders and feature producers are."""

    def __init__(self, k: int = 1) -> None:
        self.k = k

    def get_params(self) -> dict:
        return {"k": self.k}


@register("model", "test_shift_scorer")
class ShiftScorer(BaseModel):
    """Smallest possible model: score = |x - mean of the training data| * scale."""

    fitted_attributes = ("mean_",)

    def __init__(self, scale: float = 1.0, knob: Knob | None = None, device: str = "cpu") -> None:
        self.scale = scale
        self.knob = knob
        self.device = device

    def fit(self, x: np.ndarray) -> "ShiftScorer":
        self.mean_ = torch.as_tensor(np.mean(x, axis=0), dtype=torch.float32)
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        self.check_is_fitted("score")
        return (torch.as_tensor(x, dtype=torch.float32) - self.mean_).abs().sum(-1).numpy() * self.scale

    def _fitted_config(self) -> dict:
        return {"dim": int(self.mean_.numel())}

    def _fitted_state(self) -> dict:
        return {"mean": self.mean_}

    def _restore(self, fitted_config, state) -> None:
        self.mean_ = state["mean"]
        assert self.mean_.numel() == fitted_config["dim"]



# ---------------------------------------------------------------------- fitted checks
def test_check_is_fitted_names_what_to_call():
    model = ShiftScorer()
    with pytest.raises(NotFittedError, match=r"call ShiftScorer.fit\(...\) or ShiftScorer.load"):
        model.score(np.zeros((1, 2)))
    with pytest.raises(NotFittedError, match="before predict .*missing a_, b_"):
        check_is_fitted(object(), ["a_", "b_"], "predict")
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)
    check_is_fitted(ShiftScorer().fit(np.zeros((2, 2))), ["mean_"])  # fitted: no error


# ---------------------------------------------------------------------- seeds and devices
def test_seeded_is_reproducible_and_restores_the_callers_rng():
    with seeded(3):
        first = torch.rand(4)
    with seeded(3):
        second = torch.rand(4)
    assert torch.equal(first, second)
    torch.manual_seed(11)
    expected = torch.rand(2)
    torch.manual_seed(11)
    with seeded(5):
        torch.rand(100)
    assert torch.equal(torch.rand(2), expected)  # the block did not advance the outer RNG


def test_make_generator_and_check_seed():
    assert torch.equal(torch.rand(3, generator=make_generator(7)), torch.rand(3, generator=make_generator(7)))
    assert check_seed(np.int64(4)) == 4
    for bad in (-1, 1.5, True, "0"):
        with pytest.raises(ValueError, match="seed must be a non-negative int"):
            check_seed(bad)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="invalid device 'toaster'"):
        resolve_device("toaster")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available; use device='cpu'"):
            resolve_device("cuda:0")


# ---------------------------------------------------------------------- early stopping
def test_early_stopping_stops_after_patience_and_restores_best_weights():
    net = nn.Linear(1, 1, bias=False)
    stopper = EarlyStopping(patience=2)
    decisions = []
    for loss, weight in [(3.0, 1.0), (2.0, 2.0), (2.5, 3.0), (2.0, 4.0), (1.9, 5.0)]:
        with torch.no_grad():
            net.weight.fill_(weight)
        decisions.append(stopper.step(loss, net))
        if decisions[-1]:
            break
    # epoch 3 ties the best (2.0) without improving on it: two epochs without improvement -> stop
    assert decisions == [False, False, False, True]
    assert (stopper.best_epoch, stopper.best_loss) == (1, 2.0)
    stopper.restore(net)
    assert net.weight.item() == 2.0


def test_early_stopping_min_delta_and_bad_settings():
    net = nn.Linear(1, 1)
    stopper = EarlyStopping(patience=1, min_delta=0.5)
    assert stopper.step(1.0, net) is False
    assert stopper.step(0.6, net) is True  # improves by 0.4 < min_delta
    with pytest.raises(ValueError, match="patience must be an int >= 1"):
        EarlyStopping(patience=0)
    with pytest.raises(RuntimeError, match="before any improving step"):
        EarlyStopping(patience=1).restore(net)


# ---------------------------------------------------------------------- score quantiles
def test_score_quantiles_interpolate_hand_computed_values():
    q = ScoreQuantiles.from_scores(np.array([[0.0, 10.0], [5.0, 5.0]]), n_levels=3)
    np.testing.assert_allclose(q.values, [0.0, 5.0, 10.0])
    assert q.count == 4
    np.testing.assert_allclose(q.levels, [0.0, 0.5, 1.0])
    assert q.quantile(0.25) == pytest.approx(2.5)
    assert q.quantile(1.0) == 10.0
    assert "count=4" in repr(q)


def test_score_quantiles_reject_bad_input():
    with pytest.raises(ValueError, match="empty"):
        ScoreQuantiles.from_scores(np.zeros(0))
    with pytest.raises(ValueError, match="NaN or inf"):
        ScoreQuantiles.from_scores(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match=r"quantile level must be in \[0, 1\]"):
        ScoreQuantiles.from_scores(np.arange(3.0)).quantile(1.5)


# ---------------------------------------------------------------------- parameters
def test_get_params_and_repr():
    model = ShiftScorer(scale=2.0, knob=Knob(3))
    params = model.get_params()
    assert params == {"scale": 2.0, "device": "cpu",
                      "knob": {"kind": "builder", "class": "test_knob", "params": {"k": 3}}}
    json.dumps(params)  # JSON-serialisable
    assert repr(ShiftScorer()) == "ShiftScorer()"
    assert repr(ShiftScorer(scale=2.0)) == "ShiftScorer(scale=2.0)"


def test_var_keyword_init_is_refused():
    class Loose(BaseModel):
        def __init__(self, **kwargs) -> None:
            self.kwargs = kwargs

    with pytest.raises(TypeError, match="named arguments only"):
        Loose().get_params()


# ---------------------------------------------------------------------- save / load
def test_save_load_round_trip(tmp_path: Path):
    x = np.array([[0.0, 1.0], [2.0, 3.0]])
    model = ShiftScorer(scale=2.0, knob=Knob(5)).fit(x)
    directory = model.save(tmp_path / "model")
    assert sorted(p.name for p in directory.iterdir()) == [CONFIG_FILE, STATE_FILE]  # no temp files
    config = json.loads((directory / CONFIG_FILE).read_text())
    assert config["class"] == "test_shift_scorer"
    assert config["params"]["scale"] == 2.0 and config["fitted"] == {"dim": 2}
    loaded = ShiftScorer.load(directory)
    assert loaded.knob.k == 5 and loaded.scale == 2.0
    np.testing.assert_array_equal(loaded.score(x + 1), model.score(x + 1))
    assert ShiftScorer.load(directory, device="cpu").device == "cpu"
    assert isinstance(load_model(directory), ShiftScorer)  # any registered model, by name


def test_save_before_fit_raises(tmp_path: Path):
    with pytest.raises(NotFittedError, match="before save"):
        ShiftScorer().save(tmp_path / "m")


def test_load_errors_name_the_problem(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="model directory not found"):
        ShiftScorer.load(tmp_path / "nowhere")
    directory = ShiftScorer().fit(np.zeros((1, 2))).save(tmp_path / "m")
    config = json.loads((directory / CONFIG_FILE).read_text())

    (directory / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        ShiftScorer.load(directory)

    (directory / CONFIG_FILE).write_text(json.dumps({**config, "class": "x.Other"}))
    with pytest.raises(ModelFileError, match="holds a 'x.Other': unknown model"):
        ShiftScorer.load(directory)
    (directory / CONFIG_FILE).write_text(json.dumps({**config, "class": "anograph"}))
    with pytest.raises(ModelFileError, match="holds a 'anograph' .AnoGraph., not a ShiftScorer"):
        ShiftScorer.load(directory)

    (directory / CONFIG_FILE).write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(ModelFileError, match="format version 99.*upgrade stgraph"):
        ShiftScorer.load(directory)
    (directory / CONFIG_FILE).write_text(json.dumps({**config, "format_version": 0}))
    with pytest.raises(ModelFileError, match="format version 0.*fit the model again"):
        ShiftScorer.load(directory)

    (directory / CONFIG_FILE).write_text(json.dumps({k: v for k, v in config.items() if k != "fitted"}))
    with pytest.raises(ModelFileError, match="lacks the entry 'fitted'"):
        ShiftScorer.load(directory)

    (directory / CONFIG_FILE).write_text(json.dumps(config))
    (directory / STATE_FILE).write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="cannot read"):
        ShiftScorer.load(directory)

    (directory / CONFIG_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        ShiftScorer.load(directory)


def test_failed_save_keeps_the_previous_model(tmp_path: Path):
    directory = ShiftScorer().fit(np.ones((1, 2))).save(tmp_path / "m")
    before = (directory / STATE_FILE).read_bytes()

    class Broken(ShiftScorer):
        def _fitted_state(self) -> dict:
            raise RuntimeError("disk full")

    register("model", "test_broken")(Broken)
    with pytest.raises(RuntimeError, match="disk full"):
        Broken().fit(np.zeros((1, 2))).save(directory)
    assert (directory / STATE_FILE).read_bytes() == before
    assert sorted(p.name for p in directory.iterdir()) == [CONFIG_FILE, STATE_FILE]
    # a config that cannot be serialised (a numpy value is converted; an object is not) fails
    # before anything is written: weights and config never disagree
    assert json.loads((ShiftScorer(scale=np.float64(3.0)).fit(np.ones((1, 2)))
                       .save(tmp_path / "np") / CONFIG_FILE).read_text())["params"]["scale"] == 3.0
    with pytest.raises(TypeError, match="cannot be saved"):
        ShiftScorer(scale=object()).fit(np.zeros((1, 2))).save(directory)
    assert (directory / STATE_FILE).read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary dirs left


def test_save_gives_normal_permissions(tmp_path: Path):
    import os
    old = os.umask(0o022)
    try:
        directory = ShiftScorer().fit(np.ones((1, 2))).save(tmp_path / "m")
    finally:
        os.umask(old)
    assert directory.stat().st_mode & 0o777 == 0o755


def test_check_labels():
    assert check_labels(None, 3) is None
    np.testing.assert_array_equal(check_labels([0, 1, 1], 3), [0, 1, 1])
    with pytest.raises(ValueError, match="pass y"):
        check_labels(None, 3, required=True)
    with pytest.raises(ValueError, match="one label per training video"):
        check_labels([0, 1], 3)
    with pytest.raises(ValueError, match="0 .normal. or 1"):
        check_labels([0, 2, 1], 3)
