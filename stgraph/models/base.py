"""Estimator plumbing shared by every stgraph model (Ano-Graph, STRL, SSRL, the autoencoders).

What lives here, so that no model file writes it again:

- :class:`NotFittedError` and :func:`check_is_fitted` (scikit-learn semantics, with a message
  that says what to call);
- :func:`seeded` (seeds torch's RNG for one block and restores the caller's RNG state after),
  :func:`make_generator`, :func:`check_seed`, and :func:`resolve_device` (a clear error for an
  accelerator that is not there);
- :class:`EarlyStopping` on a monitored training loss, keeping a copy of the best weights;
- :class:`ScoreQuantiles`, a compact summary of the training score distribution (alarm
  thresholds);
- :class:`BaseModel`: ``get_params`` from the ``__init__`` signature, a one-line ``__repr__``,
  and a model directory (``config.json`` + ``state_dict.pt``) written atomically and read back
  with ``torch.load(..., weights_only=True)``.

A subclass writes ``__init__`` (store the arguments, nothing else), ``fit`` (set attributes ending
in ``_``, listed in ``fitted_attributes``) and three persistence hooks: ``_fitted_config``,
``_fitted_state`` and ``_restore``.
"""
from __future__ import annotations

import contextlib
import copy
import inspect
import json
import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator, Mapping, Sequence, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from stgraph import __version__ as STGRAPH_VERSION
from stgraph.fileio import atomic_path, atomic_write_text

__all__ = [
    "NotFittedError", "ModelFileError", "check_is_fitted", "check_seed", "seeded",
    "make_generator", "resolve_device", "EarlyStopping", "ScoreQuantiles", "BaseModel",
    "CONFIG_FILE", "STATE_FILE",
]

CONFIG_FILE = "config.json"
STATE_FILE = "state_dict.pt"

ModelT = TypeVar("ModelT", bound="BaseModel")


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before ``fit`` (or ``load``); the message says what to call."""


class ModelFileError(ValueError):
    """A saved model directory is incomplete, corrupt, or holds another model class."""


def check_is_fitted(estimator: Any, attributes: Sequence[str], action: str = "this call") -> None:
    """Raise :class:`NotFittedError` unless ``estimator`` has every attribute in ``attributes``.

    Args:
        estimator: the estimator instance.
        attributes: the learned attributes (ending in ``_``) that ``fit`` sets.
        action: what the caller was about to do, for the message (e.g. ``"score"``).
    """
    missing = [name for name in attributes if not hasattr(estimator, name)]
    if missing:
        name = type(estimator).__name__
        raise NotFittedError(
            f"This {name} is not fitted yet: call {name}.fit(...) or {name}.load(directory) "
            f"before {action} (missing {', '.join(missing)})"
        )


def check_seed(seed: int) -> int:
    """``seed`` as an int; ValueError unless it is a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's CPU RNG seeded to ``seed``; the caller's RNG state comes back after.

    Use it around code that draws from the global RNG and takes no generator (e.g. the default
    initialisation of ``nn.Linear``), so that one seed always gives the same weights::

        with seeded(0):
            net = MyNet()
    """
    seed = check_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def make_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (draw on CPU, then move to the device)."""
    return torch.Generator().manual_seed(check_seed(seed))


def resolve_device(device: str | torch.device) -> torch.device:
    """``torch.device`` for ``device``; ValueError for a bad name or a missing accelerator."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"invalid device {device!r}: {exc}") from exc
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}
    if resolved.type in available and not available[resolved.type]():
        raise ValueError(f"device {str(device)!r} requested but {resolved.type.upper()} is not "
                         "available; use device='cpu'")
    return resolved


class EarlyStopping:
    """Stop training when the loss has not improved for ``patience`` epochs; keep the best weights.

    An epoch improves when ``loss < best_loss - min_delta``. :meth:`restore` loads the best weights
    seen back into the module.

    Example:
        >>> stopper = EarlyStopping(patience=2)
        >>> net = nn.Linear(1, 1)
        >>> [stopper.step(loss, net) for loss in (1.0, 0.5, 0.6, 0.7)]
        [False, False, False, True]
        >>> stopper.best_epoch, stopper.best_loss
        (1, 0.5)
    """

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be an int >= 1, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta!r}")
        self.patience = patience
        self.min_delta = float(min_delta)
        self.best_loss = math.inf
        self.best_epoch = -1
        self._epoch = -1
        self._best_state: dict[str, Tensor] | None = None

    def step(self, loss: float, module: nn.Module) -> bool:
        """Record one epoch's ``loss``; returns True when training should stop."""
        self._epoch += 1
        if loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch = float(loss), self._epoch
            self._best_state = copy.deepcopy(module.state_dict())
        return self._epoch - self.best_epoch >= self.patience

    def restore(self, module: nn.Module) -> None:
        """Load the best weights seen by :meth:`step` into ``module``."""
        if self._best_state is None:
            raise RuntimeError("EarlyStopping.restore called before any improving step()")
        module.load_state_dict(self._best_state)

    def __repr__(self) -> str:
        return f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta})"


@dataclass(frozen=True)
class ScoreQuantiles:
    """Compact summary of a score distribution: its quantiles at evenly spaced levels.

    Attributes:
        values: float64 [K], the scores at quantile levels ``linspace(0, 1, K)`` (non-decreasing).
        count: the number of scores summarised.

    Example:
        >>> q = ScoreQuantiles.from_scores(np.arange(101.0))
        >>> q.quantile(0.99)
        99.0
    """

    values: np.ndarray
    count: int

    @classmethod
    def from_scores(cls, scores: np.ndarray | Tensor, n_levels: int = 101) -> "ScoreQuantiles":
        """Summarise finite ``scores`` (any shape) by ``n_levels`` quantiles (default: 101)."""
        flat = np.asarray(scores, dtype=np.float64).reshape(-1)
        if flat.size == 0:
            raise ValueError("cannot summarise an empty set of scores")
        if not np.all(np.isfinite(flat)):
            raise ValueError("scores contain NaN or inf")
        return cls(np.quantile(flat, np.linspace(0.0, 1.0, n_levels)), int(flat.size))

    @property
    def levels(self) -> np.ndarray:
        """float64 [K]: the quantile levels of :attr:`values`, ``linspace(0, 1, K)``."""
        return np.linspace(0.0, 1.0, len(self.values))

    def quantile(self, q: float) -> float:
        """Score below which a fraction ``q`` of the summarised scores lie (interpolated)."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile level must be in [0, 1], got {q!r}")
        return float(np.interp(q, self.levels, self.values))

    def __repr__(self) -> str:
        return (f"ScoreQuantiles(count={self.count}, min={self.values[0]:.4g}, "
                f"median={self.quantile(0.5):.4g}, max={self.values[-1]:.4g})")


def _component_spec(value: Any) -> Any:
    """JSON form of a constructor argument: a component becomes a ``{"class", "params"}`` spec."""
    if hasattr(value, "get_params"):
        cls = type(value)
        return {"class": f"{cls.__module__}.{cls.__qualname__}", "params": value.get_params()}
    return value


def _same(value: Any, default: Any) -> bool:
    """Whether a parameter value equals its default (identity first: objects may lack ``==``)."""
    return value is default or (type(value) is type(default) and value == default)


class BaseModel:
    """Base of the stgraph estimators: parameters, repr, fitted check, saved model directory.

    Subclasses follow the scikit-learn contract: ``__init__`` stores each named argument unchanged
    under its own name; ``fit`` validates, sets the learned attributes ending in ``_`` listed in
    ``fitted_attributes``, and returns ``self``.

    Persistence: :meth:`save` writes ``state_dict.pt`` (tensors only), then ``config.json`` (class,
    format version, constructor parameters, JSON facts learned by ``fit``), each atomically.
    :meth:`load` reads them back with ``torch.load(..., weights_only=True)``.
    """

    #: Learned attributes that ``fit`` sets (checked by :meth:`_check_is_fitted`).
    fitted_attributes: ClassVar[tuple[str, ...]] = ()
    #: Version of the saved-directory layout; bump it when the layout changes incompatibly.
    format_version: ClassVar[int] = 1

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_defaults(cls) -> dict[str, Any]:
        """Constructor argument name -> default value, in signature order."""
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # drop self
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
            raise TypeError(f"{cls.__name__}.__init__ must take named arguments only "
                            "(no *args or **kwargs)")
        return {p.name: p.default for p in params}

    def get_params(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments (components as ``{"class", "params"}`` specs)."""
        return {name: _component_spec(getattr(self, name)) for name in self._param_defaults()}

    def __repr__(self) -> str:
        """``Class(arg=value, ...)`` on one line, with the arguments that differ from defaults."""
        defaults = self._param_defaults()
        changed = [f"{name}={getattr(self, name)!r}" for name in defaults
                   if not _same(getattr(self, name), defaults[name])]
        return f"{type(self).__name__}({', '.join(changed)})"

    def _check_is_fitted(self, action: str) -> None:
        check_is_fitted(self, self.fitted_attributes, action)

    # ------------------------------------------------------------------ persistence hooks
    def _fitted_config(self) -> dict[str, Any]:
        """JSON-serialisable facts learned by ``fit`` (e.g. the feature width), for config.json."""
        raise NotImplementedError

    def _fitted_state(self) -> dict[str, Tensor]:
        """Tensors learned by ``fit``, for state_dict.pt (loadable with ``weights_only=True``)."""
        raise NotImplementedError

    def _restore(self, fitted_config: Mapping[str, Any], state: Mapping[str, Tensor]) -> None:
        """Set the learned attributes from what ``_fitted_config``/``_fitted_state`` saved."""
        raise NotImplementedError

    @classmethod
    def _from_params(cls: type[ModelT], params: Mapping[str, Any]) -> ModelT:
        """An unfitted estimator from :meth:`get_params` output (override to rebuild components)."""
        return cls(**params)

    # ------------------------------------------------------------------ save / load
    def save(self, directory: str | Path) -> Path:
        """Write the fitted model to ``directory`` (created if needed); returns the directory.

        ``state_dict.pt`` is written first and ``config.json`` last, each through a temporary file
        and ``os.replace``, so a directory with a ``config.json`` always holds a complete model.
        """
        self._check_is_fitted("save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / STATE_FILE) as tmp:
            torch.save(self._fitted_state(), tmp)
        cls = type(self)
        config = {
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "format_version": self.format_version,
            "stgraph_version": STGRAPH_VERSION,
            "params": self.get_params(),
            "fitted": self._fitted_config(),
        }
        atomic_write_text(directory / CONFIG_FILE, json.dumps(config, indent=2))
        return directory

    @classmethod
    def load(cls: type[ModelT], directory: str | Path, device: str | None = None) -> ModelT:
        """Read a model written by :meth:`save`.

        Args:
            directory: the model directory.
            device: run the loaded model on this device instead of the saved ``device``
                parameter (e.g. ``"cpu"`` for a model trained on a GPU).

        Raises:
            FileNotFoundError: the directory, its config.json or its state_dict.pt is missing.
            ModelFileError: the files are unreadable, incomplete, or hold another model class or a
                newer format.
        """
        directory = Path(directory)
        config_path, state_path = directory / CONFIG_FILE, directory / STATE_FILE
        if not directory.is_dir():
            raise FileNotFoundError(f"model directory not found: {directory}")
        for path in (config_path, state_path):
            if not path.is_file():
                raise FileNotFoundError(f"{directory} is not a saved {cls.__name__}: "
                                        f"{path.name} is missing")
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"{config_path} is not valid JSON: {exc}") from exc
        expected = f"{cls.__module__}.{cls.__qualname__}"
        if not isinstance(config, dict) or config.get("class") != expected:
            found = config.get("class") if isinstance(config, dict) else type(config).__name__
            raise ModelFileError(f"{config_path} holds a {found!r}, not a {expected!r}")
        if config.get("format_version", 0) > cls.format_version:
            raise ModelFileError(
                f"{config_path} has format version {config.get('format_version')}; this stgraph "
                f"reads up to {cls.format_version} "
                f"(saved by stgraph {config.get('stgraph_version')})"
            )
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
        except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as exc:
            raise ModelFileError(f"cannot read {state_path}: {exc}") from exc
        try:
            params = dict(config["params"])
            if device is not None:
                if "device" not in params:
                    raise TypeError(f"{cls.__name__} has no device parameter; "
                                    "load it without device=")
                params["device"] = device
            model = cls._from_params(params)
            model._restore(config["fitted"], state)
        except KeyError as exc:
            raise ModelFileError(f"{directory} is incomplete: it lacks the entry {exc}") from exc
        return model
