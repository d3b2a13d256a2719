"""The estimator contract every stgraph method follows, and the plumbing they share.

The contract (after scikit-learn and PyOD; see :class:`BaseEstimator`)::

    model = Method(param=..., seed=0)          # stores the parameters, nothing else
    model.fit(X, y=None)                        # -> self; learned attributes end in "_"
    table = model.score(x, video="01")          # one video -> ScoreTable (raw scores, higher =
                                                #   more abnormal), object / frame / patch rows
    model.decision_function(x)                  # the table's "score" column, one value per row
    model.train_scores_, model.threshold_       # training-score quantiles; default alarm level
    scorer = model.stream_scorer(fps=10)        # live: push(frame) -> results, flush()
    model.save("dir/");  load_model("dir/")

What a model consumes is a class attribute, :attr:`BaseEstimator.consumes`. Per video:

==============  ==========================================================================
``consumes``    one video is ...
==============  ==========================================================================
"detections"    ``list[Detections]`` in time order, each with ``features`` [N_t, D]
                (frames without objects may have ``[0, D]`` or none) — Ano-Graph
"frames"        a :class:`~stgraph.io.FrameSource`, a path (video file or frame folder), or a
                uint8 array ``[T, H, W, 3]`` in BGR (:func:`stgraph.io.as_frame_source` accepts
                all three) — FrameDifference, STRL, STM-AE, dissociation
"snippets"      :class:`stgraph.features.snippets.SnippetFeatures`: per patch grid, snippet
                features ``[n_snippets, n_patches, D]``, plus each snippet's frame range — SSRL
"frames+detec-  :class:`stgraph.models.late_fusion.FramesAndDetections`: the frames and their
tions"          ``list[Detections]`` — LateFusion (an object-level and a frame-level method)
==============  ==========================================================================

``fit(X, y)`` takes a list of videos; ``y`` is ``None`` (normal videos only) or ``[n_videos]``
with values 0/1 (video-level labels, for ``supervision = "weak"`` methods).
``score(x, ...)`` takes one video. **Every score: higher = more abnormal.** A paper score that
means "normal" is flipped (``-PSNR``, ``1 - psi``). ``score`` returns raw scores, scaled only by
statistics learned in ``fit``, so that streaming equals batch; per-video min-max and temporal
smoothing are evaluation options (``ScoreTable.frame_scores(normalize=, smooth=)``, ``stgraph
eval --normalize --smooth N``). A method that predicts frame t from earlier frames scores frame t;
the first frames, which have no history, get no row (the table still knows them, and
``frame_scores`` gives them the video's lowest score).

What lives here, so that no model file writes it again:

- :class:`NotFittedError` and :func:`check_is_fitted` (scikit-learn semantics, with a message
  that says what to call);
- :func:`seeded` (seeds torch's RNG for one block and restores the caller's RNG state after),
  :func:`make_generator`, :func:`check_seed`, and :func:`resolve_device` (a clear error for an
  accelerator that is not there);
- :class:`EarlyStopping` on a monitored training loss, keeping a copy of the best weights;
- :class:`ScoreQuantiles`, a compact summary of the training score distribution (alarm
  thresholds);
- :class:`BaseEstimator` (alias ``BaseModel``): ``get_params`` from the ``__init__`` signature, a
  one-line ``__repr__``, ``threshold_``, ``decision_function``, and a model directory
  (``config.json`` + ``state_dict.pt``) written atomically as a whole and read back with
  ``torch.load(..., weights_only=True)``; :func:`load_model` reads any registered model.

A subclass writes ``__init__`` (store the arguments, nothing else), ``fit`` (set attributes ending
in ``_``, listed in ``fitted_attributes``, all at the end so that a failed refit leaves the
previous fitted state untouched), ``score``, ``stream_scorer``, ``contract_params`` (tiny settings
for the contract test battery) and three persistence hooks: ``_fitted_config``, ``_fitted_state``
and ``_restore``.
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
from stgraph.fileio import atomic_dir
from stgraph.registry import RegistryError, build_component, component_spec, is_spec, lookup, name_of

__all__ = [
    "NotFittedError", "ModelFileError", "check_is_fitted", "check_int", "check_seed", "seeded",
    "make_generator", "resolve_device", "EarlyStopping", "ScoreQuantiles", "BaseEstimator",
    "BaseModel", "load_model", "check_labels", "normal_training_videos", "CONFIG_FILE", "STATE_FILE", "CONSUMES",
    "DEFAULT_ALARM_QUANTILE",
]

CONFIG_FILE = "config.json"
STATE_FILE = "state_dict.pt"
#: What an estimator can consume, per video (see the module docstring).
CONSUMES = ("detections", "frames", "snippets", "frames+detections")
#: Quantile of the training scores that ``threshold_`` (the default alarm threshold) sits at.
DEFAULT_ALARM_QUANTILE = 0.99

ModelT = TypeVar("ModelT", bound="BaseEstimator")


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


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int; ValueError naming ``name`` unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


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


def _jsonable(value: Any, where: str) -> Any:
    """``value`` as plain JSON types: numpy scalars become Python numbers, tuples lists, and
    registered components their specs. Raises ``TypeError`` naming ``where`` otherwise."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, where) for k, v in value.items()}
    if hasattr(value, "get_params"):
        spec = component_spec(value)
        return {**spec, "params": _jsonable(spec["params"], where)}
    raise TypeError(f"{where} = {value!r} cannot be saved: parameters must be numbers, strings, "
                    "lists, dicts or registered components")


def _same(value: Any, default: Any) -> bool:
    """Whether a parameter value equals its default (identity first: objects may lack ``==``)."""
    return value is default or (type(value) is type(default) and value == default)


def check_labels(y: Any, n_videos: int, required: bool = False) -> np.ndarray | None:
    """Video-level labels as int64 ``[n_videos]`` of 0/1, or None.

    Raises:
        ValueError: ``y`` is required and missing, has another length, or holds other values.
    """
    if y is None:
        if required:
            raise ValueError("this method learns from video-level labels: pass y, one 0/1 label "
                             "per training video (1 = the video contains an anomaly)")
        return None
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.shape[0] != n_videos:
        raise ValueError(f"y must hold one label per training video: got shape {labels.shape} "
                         f"for {n_videos} videos")
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError(f"y must hold 0 (normal) or 1 (abnormal) per video, got values "
                         f"{sorted(set(labels.tolist()))}")
    return labels.astype(np.int64)



def normal_training_videos(X: Any, y: Any, method: str) -> list[Any]:
    """The training videos of a method that learns from normal videos only, as a list (one
    uint8 [T, H, W, 3] array counts as one video; a [N, T, H, W, 3] array as N).

    Raises:
        ValueError: no video, or ``y`` (see :func:`check_labels`) marks a video abnormal.
    """
    videos = list(X) if not isinstance(X, np.ndarray) or X.ndim == 5 else [X]
    if not videos:
        raise ValueError("fit needs at least one video")
    labels = check_labels(y, len(videos))
    if labels is not None and labels.any():
        raise ValueError(f"{method} learns from normal videos only")
    return videos

class BaseEstimator:
    """Base of the stgraph estimators: the contract of the module docstring.

    Subclasses follow the scikit-learn rules: ``__init__`` stores each named argument unchanged
    under its own name (defaults are declared there and nowhere else); ``fit`` validates, sets
    the learned attributes ending in ``_`` listed in :attr:`fitted_attributes`, and returns
    ``self``.

    Class attributes a subclass sets:

    - :attr:`consumes`: one of :data:`CONSUMES`; the pipeline feeds the model that.
    - :attr:`supervision`: ``"none"`` (normal videos only) or ``"weak"`` (video labels ``y``).
    - :attr:`streams_exactly`: whether :meth:`stream_scorer` gives exactly :meth:`score`'s
      scores (False for attention over a whole video); the contract battery checks it.

    Persistence: :meth:`save` writes the directory ``config.json`` (registered class name,
    format version, constructor parameters, JSON facts learned by ``fit``) + ``state_dict.pt``
    (tensors only) as a whole, atomically. :meth:`load` / :func:`load_model` read them back with
    ``torch.load(..., weights_only=True)`` and build only registered classes.
    """

    #: What the estimator consumes per video: "detections", "frames" or "snippets".
    consumes: ClassVar[str] = "detections"
    #: "none": trained on normal videos only; "weak": also takes video-level labels y.
    supervision: ClassVar[str] = "none"
    #: Whether streaming scores equal batch scores exactly.
    streams_exactly: ClassVar[bool] = True
    #: Learned attributes that ``fit`` sets (checked by :meth:`check_is_fitted`).
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

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The constructor's default parameters (the one place defaults are declared)."""
        return dict(cls._param_defaults())

    @classmethod
    def contract_params(cls) -> dict[str, Any]:
        """Small, fast parameters for the contract test battery (tests/test_contract.py)."""
        return {}

    def get_params(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments (components as registered specs)."""
        return {name: _jsonable(getattr(self, name), f"{type(self).__name__}.{name}")
                for name in self._param_defaults()}

    def set_params(self, **params: Any) -> "BaseEstimator":
        """Set constructor parameters by name; returns self. Unknown names raise ValueError."""
        known = self._param_defaults()
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no parameter(s) {unknown}; "
                             f"parameters are {list(known)}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        """``Class(arg=value, ...)`` on one line, with the arguments that differ from defaults."""
        defaults = self._param_defaults()
        changed = [f"{name}={getattr(self, name)!r}" for name in defaults
                   if not _same(getattr(self, name), defaults[name])]
        return f"{type(self).__name__}({', '.join(changed)})"

    # ------------------------------------------------------------------ fitted state
    def check_is_fitted(self, action: str = "this call") -> None:
        """Raise :class:`NotFittedError` (saying what to call) unless ``fit`` or ``load`` ran."""
        check_is_fitted(self, self.fitted_attributes, action)

    @property
    def threshold_(self) -> float:
        """Default alarm threshold: the :data:`DEFAULT_ALARM_QUANTILE` quantile of
        ``train_scores_`` (scores of normal training data, computed as test scores are)."""
        self.check_is_fitted("reading threshold_")
        return self.train_scores_.quantile(DEFAULT_ALARM_QUANTILE)

    # ------------------------------------------------------------------ the contract
    def fit(self, X: Any, y: Any = None) -> "BaseEstimator":  # pragma: no cover - abstract
        """Learn from a list of videos (what :attr:`consumes` says); returns self."""
        raise NotImplementedError

    def score(self, X: Any, **kwargs: Any):  # pragma: no cover - abstract
        """ScoreTable of one video: raw scores, higher = more abnormal."""
        raise NotImplementedError

    def decision_function(self, X: Any, **kwargs: Any) -> np.ndarray:
        """Raw score of every row :meth:`score` emits for one video: float64 [rows], in the
        table's row order (video, frame, kind, object_id)."""
        return np.asarray(self.score(X, **kwargs).column("score"), np.float64)

    def stream_scorer(self, fps: float | None = None, radius: int | None = None) -> Any:
        """A live scorer for this model (see :mod:`stgraph.stream`): ``push(frame)``, ``flush()``.

        Raises:
            NotImplementedError: the model cannot score a stream (see :attr:`streams_exactly`).
        """
        raise NotImplementedError(f"{type(self).__name__} does not score streams")

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
        """An unfitted estimator from :meth:`get_params` output; nested component specs are
        rebuilt through the registry (never by importing a name the file gives)."""
        known = cls._param_defaults()
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ModelFileError(f"saved parameters {unknown} are not parameters of "
                                 f"{cls.__name__}")
        kwargs = {}
        for name, value in params.items():
            if is_spec(value):
                value = build_component(value, value["kind"])
            elif isinstance(value, list) and known[name] is not None and isinstance(known[name], tuple):
                value = tuple(value)
            kwargs[name] = value
        return cls(**kwargs)

    # ------------------------------------------------------------------ save / load
    def save(self, directory: str | Path) -> Path:
        """Write the fitted model to ``directory``; returns the directory.

        The directory is written as a whole (:func:`stgraph.fileio.atomic_dir`): the config is
        serialised before anything is written, and a failure at any point leaves the previous
        directory, if any, untouched.
        """
        self.check_is_fitted("save")
        kind, name = name_of(self, "model")
        config = {
            "class": name,
            "format_version": self.format_version,
            "stgraph_version": STGRAPH_VERSION,
            "params": self.get_params(),
            "fitted": _jsonable(self._fitted_config(), f"{type(self).__name__} fitted config"),
        }
        text = json.dumps(config, indent=2, allow_nan=False)
        state = self._fitted_state()
        with atomic_dir(directory) as tmp:
            torch.save(state, tmp / STATE_FILE)
            (tmp / CONFIG_FILE).write_text(text, encoding="utf-8")
        return Path(directory)

    @classmethod
    def load(cls: type[ModelT], directory: str | Path, device: str | None = None) -> ModelT:
        """Read a model written by :meth:`save` (called on the base class: any registered model).

        Args:
            directory: the model directory.
            device: run the loaded model on this device instead of the saved ``device``
                parameter (e.g. ``"cpu"`` for a model trained on a GPU).

        Raises:
            FileNotFoundError: the directory, its config.json or its state_dict.pt is missing.
            ModelFileError: the files are unreadable or incomplete, hold another model class or
                an unknown one, or another format version (older directories are refused with
                what to do, never read the wrong way).
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
        if not isinstance(config, dict) or not isinstance(config.get("class"), str):
            raise ModelFileError(f"{config_path} does not name a model class")
        try:
            found = lookup("model", config["class"])
        except RegistryError as exc:
            raise ModelFileError(f"{config_path} holds a {config['class']!r}: {exc}") from exc
        if cls is not BaseEstimator and found is not cls:
            raise ModelFileError(f"{config_path} holds a {config['class']!r} "
                                 f"({found.__name__}), not a {cls.__name__}")
        version = config.get("format_version")
        if version != found.format_version:
            newer = isinstance(version, int) and version > found.format_version
            hint = ("upgrade stgraph to read it" if newer else
                    "it was saved by an older stgraph whose layout this version cannot read "
                    "safely; fit the model again (e.g. stgraph fit ...)")
            raise ModelFileError(f"{config_path} has format version {version}; this stgraph "
                                 f"reads {found.__name__} format {found.format_version} "
                                 f"(saved by stgraph {config.get('stgraph_version')}): {hint}")
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
        except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as exc:
            raise ModelFileError(f"cannot read {state_path}: {exc}") from exc
        try:
            params = dict(config["params"])
            if device is not None:
                if "device" not in params:
                    raise ModelFileError(f"{found.__name__} has no device parameter; "
                                         "load it without device=")
                params["device"] = device
            model = found._from_params(params)
            model._restore(config["fitted"], state)
        except KeyError as exc:
            raise ModelFileError(f"{directory} is incomplete: it lacks the entry {exc}") from exc
        except RegistryError as exc:
            raise ModelFileError(f"{directory}: {exc}") from exc
        return model


#: The name the estimators' base had before the contract (kept for user code).
BaseModel = BaseEstimator


def load_model(directory: str | Path, device: str | None = None) -> BaseEstimator:
    """Any registered model saved with :meth:`BaseEstimator.save` (see there)."""
    return BaseEstimator.load(directory, device=device)
