"""``LateFusion``: several fitted methods as one estimator, their frame scores fused on the
training scale (``consumes = "frames+detections"``).

An object-level method (Ano-Graph) sees what the detector boxes; a frame-level autoencoder
(STM-AE) sees every pixel, boxed or not. Their errors differ, so their sum is better than either
(``benchmarks/fusion.py``). This estimator fits its members on the same training videos, each on
what it consumes, and scores a video by :func:`stgraph.scores.fusion.fuse` with ``scale="train"``:

    z_i = (s_i - q50_i) / (q99_i - q50_i)      (q: quantiles of member i's held-out
                                                 training scores, below)
    fused frame score = sum_i weights[i] * z_i  (default weights: equal, summing to 1)

**Held-out training scores** (``heldout_folds=2``, the default): the training videos are split
into folds (alternate videos); each member is also fitted on all folds but one and scores the
videos of the fold it did not see. Those scores set each member's scale and, fused, the alarm
threshold (``train_scores_``). A member scoring the videos it was trained on (an autoencoder
reconstructs them well) would look tighter than it is on new footage: its scale would be too
small, and the threshold too low (on Avenue, in-sample training scores put the threshold below
98% of the normal test frames: ``benchmarks/heldout_scale.py``). Cross-fitting costs one more
fit of every member on half the data per fold (a member with a ``fit_heldout(videos, folds)``
method, PatchKNN, cross-fits itself in its own fit, more cheaply). With one training video (or
``heldout_folds=0``) the members' own ``train_scores_`` and an in-sample scoring pass are used.

Nothing is tuned on labels, and the scale is fixed before a test video starts, so live scoring
(:class:`FusionStreamScorer`) gives the batch scores exactly. A frame a member did not score (no
object detected, no history yet) counts as ``z = 0`` for it. With ``smooth`` > 1 each frame's
fused score is the mean over the last ``smooth`` frames of its video
(:func:`~stgraph.scores.fusion.trailing_mean`: past frames only, so live scoring still equals
batch scoring, with no added delay).

One video is a :class:`FramesAndDetections`: the frames (path, frame folder, ``FrameSource`` or
uint8 ``[T, H, W, 3]`` BGR) and the detector's ``list[Detections]`` of the same frames, with node
features. :class:`~stgraph.pipeline.Pipeline` builds it from a detector and a feature producer::

    pipe = Pipeline(YoloxOnnxDetector("yolox_nano.onnx"), ConcatFeatures([...]),
                    LateFusion(members=("anograph", "stm_ae")))
    pipe.fit(train_videos).score("test/01")   # fused frame rows + Ano-Graph's object rows
                                              # + STM-AE's pixel maps

or, from the command line, ``stgraph fit --method anograph+stm_ae ...``. ``LateFusion()`` and
``stgraph fit`` without ``--method`` fuse :data:`DEFAULT_MEMBERS`.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar, Mapping, NamedTuple, Sequence

import numpy as np
from torch import Tensor

from detectors.base import Detections
from stgraph.models.base import (BaseEstimator, ModelFileError, ScoreQuantiles, check_int,
                                 check_seed)
from stgraph.registry import RegistryError, lookup
from stgraph.scores import ScoreTable
from stgraph.scores.fusion import (FrameFuser, _check_weights, fuse, scored_frame_scores,
                                   trailing_mean)

__all__ = ["LateFusion", "FramesAndDetections", "FusionStreamScorer", "DEFAULT_MEMBERS",
           "object_member"]

#: What a member may consume (the two halves of one ``FramesAndDetections`` video).
MEMBER_KINDS = ("detections", "frames")
#: The default members, chosen on training videos only (``benchmarks/default_choice.py``: the
#: highest mean AUC on speed-up and foreign-object pseudo-anomalies among Ano-Graph and its
#: fusions with STM-AE, dissociation, frame difference and PatchKNN).
DEFAULT_MEMBERS = ("anograph", "stm_ae", "frame_difference", "patch_knn")


class FramesAndDetections(NamedTuple):
    """One video for :class:`LateFusion`: its frames and the detections of those frames.

    Attributes:
        frames: a path (video file or frame folder), a ``FrameSource`` or uint8 [T, H, W, 3] BGR.
        detections: ``list[Detections]`` in time order, one per frame, each with ``features``
            [N_t, D] (frames without objects may have ``[0, D]`` or none).
    """

    frames: Any
    detections: Sequence[Detections]


def object_member(model: Any) -> Any | None:
    """The member whose object rows a fitted late fusion keeps (its first member that scores
    detections, e.g. Ano-Graph); None for a model that is not a fusion or has no such member.
    Boxes, explanations and object-graph tools of a fusion go through this member."""
    return next((m for m in getattr(model, "members_", ())
                 if getattr(m, "consumes", None) == "detections"), None)


def _scored_frames(tables: Sequence[ScoreTable]) -> np.ndarray:
    """float64 [n]: one member's held-out training frame scores (frames with rows only)."""
    values = scored_frame_scores(tables)
    if values.size == 0:
        raise ValueError("LateFusion: a member scored no frame of the held-out training videos "
                         "(nothing detected?); give more training video or heldout_folds=0")
    return values


def _as_video(video: Any, where: str) -> FramesAndDetections:
    if isinstance(video, tuple) and len(video) == 2 and isinstance(video[1], (list, tuple)):
        video = FramesAndDetections(*video)
        # an array's length is exact (a video file's frame count is only the container's claim;
        # the members' fuse step names any mismatch there)
        n_frames = len(video.frames) if isinstance(video.frames, np.ndarray) else None
        if n_frames is not None and n_frames != len(video.detections):
            raise ValueError(f"{where} has {n_frames} frames but {len(video.detections)} "
                             "Detections; give one Detections per frame")
        return video
    raise ValueError(f"{where} must be FramesAndDetections(frames, detections) (a pair of the "
                     f"frames and their list[Detections]), got {type(video).__name__}; "
                     "stgraph.pipeline.Pipeline builds it from a detector and features")


class LateFusion(BaseEstimator):
    """Late fusion of registered methods (module docstring).

    Args:
        members: registered method names (``stgraph.registry``, kind ``"model"``), each
            consuming ``"detections"`` or ``"frames"``; at least two. Default
            (:data:`DEFAULT_MEMBERS`): Ano-Graph, STM-AE, frame difference and PatchKNN
            (give PatchKNN its ``weights`` in ``member_params``), chosen on training videos
            only (``benchmarks/default_choice.py``).
        member_params: ``{name: {parameter: value}}`` on top of each member's defaults.
        weights: float [n_members] >= 0 (None: equal, summing to 1).
        smooth: causal smoothing of the fused score: the mean over the last ``smooth``
            frames of the video (1 = none).
        heldout_folds: folds of the training videos for the members' held-out training scores
            (module docstring; at most one fold per video); 0 or 1 = in-sample (each member's
            own ``train_scores_``).
        seed: seed of every member that takes one.
        progress: show the members' training progress bars.

    Attributes (after ``fit``):
        members_: the fitted member estimators, in ``members`` order.
        member_scales_: one ``ScoreQuantiles`` per member, the training scores that put it on
            the fused scale (held-out, or the member's own ``train_scores_``).
        train_scores_: quantiles of the fused frame scores of the training videos (held-out
            when ``heldout_folds`` >= 2 and there are two or more training videos).
    """

    consumes: ClassVar[str] = "frames+detections"
    fitted_attributes = ("members_", "member_scales_", "train_scores_")

    def __init__(self, members: tuple[str, ...] = DEFAULT_MEMBERS,
                 member_params: dict[str, dict[str, Any]] | None = None,
                 weights: tuple[float, ...] | None = None, smooth: int = 1,
                 heldout_folds: int = 2, seed: int = 0, progress: bool = True) -> None:
        self.members = members
        self.member_params = member_params
        self.weights = weights
        self.smooth = smooth
        self.heldout_folds = heldout_folds
        self.seed = seed
        self.progress = progress

    @classmethod
    def contract_params(cls) -> dict[str, Any]:
        return {"member_params": {name: lookup("model", name).contract_params()
                                  for name in DEFAULT_MEMBERS},
                "progress": False}

    # ------------------------------------------------------------------ members
    def _member_classes(self) -> list[type]:
        names = list(self.members) if isinstance(self.members, (list, tuple)) else None
        if not names or len(names) < 2 or not all(isinstance(n, str) for n in names):
            raise ValueError(f"members must name at least two registered methods, e.g. "
                             f"('anograph', 'stm_ae'); got {self.members!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"members must be distinct, got {names}")
        classes = []
        for name in names:
            try:
                cls = lookup("model", name)
            except RegistryError as exc:
                raise ValueError(f"members: {exc}") from None
            if cls.consumes not in MEMBER_KINDS:
                raise ValueError(f"member {name!r} consumes {cls.consumes}; LateFusion fuses "
                                 f"methods that consume {' or '.join(MEMBER_KINDS)}")
            classes.append(cls)
        return classes

    def _new_members(self) -> list[BaseEstimator]:
        """Unfitted members with their defaults, ``member_params``, ``seed`` and ``progress``."""
        classes = self._member_classes()
        overrides = dict(self.member_params or {})
        unknown = sorted(set(overrides) - set(self.members))
        if unknown:
            raise ValueError(f"member_params names {unknown}, which are not members "
                             f"{list(self.members)}")
        seed = check_seed(self.seed)
        built = []
        for name, cls in zip(self.members, classes):
            defaults = cls.defaults()
            params = {k: v for k, v in (("seed", seed), ("progress", self.progress))
                      if k in defaults}
            params.update(overrides.get(name) or {})
            bad = sorted(set(params) - set(defaults))
            if bad:
                raise ValueError(f"member {name!r} has no parameter(s) {bad}; its parameters "
                                 f"are {list(defaults)}")
            built.append(cls(**params))
        return built

    @staticmethod
    def _member_input(member: BaseEstimator, video: FramesAndDetections) -> Any:
        return video.detections if member.consumes == "detections" else video.frames

    # ------------------------------------------------------------------ fit / score
    def fit(self, X: Sequence[Any], y: Any = None) -> "LateFusion":
        """Fit every member on the training videos (``FramesAndDetections`` each), then set the
        members' scales and the alarm threshold from held-out training scores (module
        docstring); returns self."""
        videos = [_as_video(v, f"training video {i}") for i, v in enumerate(X)]
        if not videos:
            raise ValueError("LateFusion.fit needs at least one training video")
        _check_weights(self.weights, len(self._member_classes()))
        check_int("smooth", self.smooth, 1)
        folds = self._folds(len(videos))
        members = self._new_members()
        own_heldout: list[list[np.ndarray] | None] = []   # from members that cross-fit themselves
        for member in members:
            inputs = [self._member_input(member, v) for v in videos]
            if folds and hasattr(member, "fit_heldout"):
                own_heldout.append(member.fit_heldout(inputs, folds))
            else:
                member.fit(inputs)
                own_heldout.append(None)
        if folds:
            tables = self._heldout_tables(videos, folds, own_heldout)
            scales = [ScoreQuantiles.from_scores(_scored_frames(t)) for t in zip(*tables)]
        else:   # in sample: each member scores the videos it was fitted on
            from tqdm.auto import tqdm

            bar = tqdm(videos, desc="LateFusion training scores", unit="video",
                       disable=not self.progress, leave=False)
            tables = [[m.score(self._member_input(m, v), video=f"train{i}") for m in members]
                      for i, v in enumerate(bar)]
            scales = [m.train_scores_ for m in members]
        fused = [self._fuse_tables(list(t), scales, f"train{i}")[1] for i, t in enumerate(tables)]
        self.members_, self.member_scales_ = members, scales
        self.train_scores_ = ScoreQuantiles.from_scores(np.concatenate(fused))
        return self

    def _folds(self, n_videos: int) -> list[list[int]]:
        """Video indices of each held-out fold (alternate videos); [] for in-sample scales."""
        n_folds = min(check_int("heldout_folds", self.heldout_folds, 0), n_videos)
        if n_folds < 2:
            if self.heldout_folds >= 2:
                warnings.warn("LateFusion: one training video, so the members' scales and the "
                              "alarm threshold come from in-sample training scores (they run "
                              "low: expect more false alarms); give two or more videos",
                              UserWarning, stacklevel=3)
            return []
        return [list(range(k, n_videos, n_folds)) for k in range(n_folds)]

    def _heldout_tables(self, videos: Sequence[FramesAndDetections],
                        folds: Sequence[Sequence[int]],
                        own_heldout: Sequence[Sequence[np.ndarray] | None]
                        ) -> list[list[ScoreTable]]:
        """[video][member] ScoreTable of every training video, scored by members fitted on the
        other folds. A member with ``own_heldout`` (float [T_i] frame scores per video, from its
        ``fit_heldout``) has cross-fitted itself; the others are fitted here once per fold."""
        from tqdm.auto import tqdm

        tables: list[list[ScoreTable]] = [[] for _ in videos]
        for fold in tqdm(folds, desc="LateFusion held-out training scores", unit="fold",
                         disable=not self.progress, leave=False):
            rest = [v for i, v in enumerate(videos) if i not in fold]
            for member, own in zip(self._new_members(), own_heldout):
                if own is None:
                    member.fit([self._member_input(member, v) for v in rest])
                for i in fold:
                    tables[i].append(
                        member.score(self._member_input(member, videos[i]), video=f"train{i}")
                        if own is None else
                        ScoreTable.from_frames(f"train{i}", np.arange(len(own[i])), own[i]))
        return tables

    def _fuse_tables(self, tables: Sequence[ScoreTable], scales: Sequence[ScoreQuantiles],
                     name: str) -> tuple[np.ndarray, np.ndarray]:
        """Frames int64 [T] of video ``name`` and their fused (and ``smooth``-ed) scores
        float64 [T]."""
        fused = fuse(tables, self.weights, train_scores=scales)
        return (fused.video_frames[name],
                trailing_mean(fused.frame_scores()[name].scores, self.smooth))

    def score(self, X: Any, video: str = "video", *, fps: float | None = None) -> ScoreTable:
        """One video's table: fused frame rows (with the first frame-level member's pixel maps)
        plus the object rows of :func:`object_member`."""
        self.check_is_fitted("score")
        item = _as_video(X, "the video")
        check_int("smooth", self.smooth, 1)
        tables = [m.score(self._member_input(m, item), video=video, fps=fps)
                  for m in self.members_]
        frames, scores = self._fuse_tables(tables, self.member_scales_, video)
        maps = next((t.pixel_maps[video] for t in tables if video in t.pixel_maps), None)
        size = item.detections[0].image_size if len(item.detections) else None
        hw = None if size is None else tuple(size)
        rows = ScoreTable.from_frames(video, frames, scores, video_frames=frames,
                                      pixel_maps=maps, image_hw=hw)
        main = object_member(self)
        objects = [t.select(kind="object") for m, t in zip(self.members_, tables)
                   if m is main and "object" in t.kinds]
        return ScoreTable.concat([rows, *objects])

    def stream_scorer(self, fps: float | None = None, radius: int | None = None,
                      explain_top_k: int = 0) -> "FusionStreamScorer":
        """A :class:`FusionStreamScorer` (its latency is the slowest member's)."""
        self.check_is_fitted("stream")
        return FusionStreamScorer(self, fps=fps, radius=radius, explain_top_k=explain_top_k)

    # ------------------------------------------------------------------ persistence
    def _fitted_config(self) -> dict[str, Any]:
        return {"members": [{"class": name, "format_version": m.format_version,
                             "params": m.get_params(), "fitted": m._fitted_config()}
                            for name, m in zip(self.members, self.members_)],
                "member_scale_counts": [q.count for q in self.member_scales_],
                "train_score_count": self.train_scores_.count}

    def _fitted_state(self) -> dict[str, Tensor]:
        import torch

        state = {f"member{i}.{key}": value for i, m in enumerate(self.members_)
                 for key, value in m._fitted_state().items()}
        for i, q in enumerate(self.member_scales_):
            state[f"member_scale{i}"] = torch.from_numpy(np.asarray(q.values, np.float64))
        state["train_score_quantiles"] = torch.from_numpy(self.train_scores_.values)
        return state

    def _restore(self, fitted_config: Mapping[str, Any], state: Mapping[str, Tensor]) -> None:
        saved = list(fitted_config["members"])
        if [m.get("class") for m in saved] != list(self.members):
            raise ModelFileError(f"the saved members {[m.get('class') for m in saved]} differ "
                                 f"from the parameters' members {list(self.members)}")
        members = []
        for i, (cls, config) in enumerate(zip(self._member_classes(), saved)):
            if config.get("format_version") != cls.format_version:
                raise ModelFileError(f"member {config['class']!r} was saved in format "
                                     f"{config.get('format_version')}; this stgraph reads "
                                     f"format {cls.format_version}: fit the model again")
            prefix = f"member{i}."
            member = cls._from_params(config["params"])
            member._restore(config["fitted"], {k[len(prefix):]: v for k, v in state.items()
                                               if k.startswith(prefix)})
            members.append(member)
        quantiles = state["train_score_quantiles"].numpy().astype(np.float64)
        counts = fitted_config.get("member_scale_counts")
        if counts is None:   # saved before held-out scales: the members' own training scores
            self.member_scales_ = [m.train_scores_ for m in members]
        else:
            self.member_scales_ = [
                ScoreQuantiles(state[f"member_scale{i}"].numpy().astype(np.float64), int(n))
                for i, n in enumerate(counts)]
        self.members_ = members
        self.train_scores_ = ScoreQuantiles(quantiles, int(fitted_config["train_score_count"]))


class FusionStreamScorer:
    """Live late fusion: every member's own stream scorer, their frame scores fused by a
    :class:`~stgraph.scores.fusion.FrameFuser` as soon as every member has reported the frame.

    Each result carries the object-level member's detections, object scores (and
    explanations), the fused ``frame_score`` and the first frame-level member's pixel map.
    Scores equal :meth:`LateFusion.score`'s. Latency: the largest member latency.
    """

    def __init__(self, model: LateFusion, fps: float | None = None, radius: int | None = None,
                 explain_top_k: int = 0) -> None:
        self.model = model
        self.scorers = []
        for member in model.members_:
            options: dict[str, Any] = {}
            if member.consumes == "detections":
                options = {"radius": radius, "explain_top_k": explain_top_k}
            self.scorers.append(member.stream_scorer(fps=fps, **options))
        self.fuser = FrameFuser(model.member_scales_, model.weights)
        main = object_member(model)
        self._main = next((i for i, m in enumerate(model.members_) if m is main), None)
        self._parts: dict[int, list[Any]] = {}
        self._recent: list[float] = []   # the last fused scores, for LateFusion.smooth

    @property
    def latency_frames(self) -> int:
        return max(int(s.latency_frames) for s in self.scorers)

    def reset(self) -> None:
        for scorer in self.scorers:
            scorer.reset()
        self.fuser.reset()
        self._parts = {}
        self._recent = []

    def push(self, frame: Any) -> list[Any]:
        """Add the next ``AnalysedFrame`` (image and detections); returns the fused results that
        became ready."""
        from stgraph.stream import AnalysedFrame

        if not isinstance(frame, AnalysedFrame) or frame.image is None:
            raise TypeError("LateFusion scores images and detections: push AnalysedFrame with "
                            "image and detections")
        out: list[Any] = []
        for i, (member, scorer) in enumerate(zip(self.model.members_, self.scorers)):
            if member.consumes == "detections":
                mine = frame
            else:  # frame-level members see the image alone (no object rows of their own)
                mine = AnalysedFrame(Detections.empty(frame.detections.frame_index,
                                                      frame.image.shape[:2]),
                                     frame.time_s, frame.image, frame.timings, frame.arrived)
            for result in scorer.push(mine):
                out += self._take(i, result)
        return out

    def flush(self) -> list[Any]:
        """End of stream: the members' last results, fused."""
        out: list[Any] = []
        for i, scorer in enumerate(self.scorers):
            for result in scorer.flush():
                out += self._take(i, result)
        out += [self._result(f, score) for f, score in self.fuser.flush()]
        self._recent = []
        return out

    def run(self, frames: Any):
        for frame in frames:
            yield from self.push(frame)
        yield from self.flush()

    def _take(self, member: int, result: Any) -> list[Any]:
        self._parts.setdefault(result.frame_index, [None] * len(self.scorers))[member] = result
        score = result.frame_score if math.isfinite(result.frame_score) else None
        return [self._result(f, fused) for f, fused in
                self.fuser.push(member, result.frame_index, score)]

    def _result(self, frame: int, fused: float) -> Any:
        from stgraph.stream import STAGES, FrameResult

        self._recent = (self._recent + [fused])[-int(self.model.smooth):]
        fused = float(np.mean(np.asarray(self._recent)))      # as trailing_mean in score()
        parts = self._parts.pop(frame)
        main = parts[self._main] if self._main is not None else None
        main = main or next(p for p in parts if p is not None)
        pixel_map = next((p.pixel_map for p in parts
                          if p is not None and p.pixel_map is not None), None)
        timings = {stage: max(p.timings.get(stage, 0.0) for p in parts if p is not None)
                   for stage in STAGES}
        timings["score"] = sum(p.timings.get("score", 0.0) for p in parts if p is not None)
        return FrameResult(frame, main.time_s, main.detections, main.scores, float(fused),
                           timings, main.image, main.explanations, pixel_map)

