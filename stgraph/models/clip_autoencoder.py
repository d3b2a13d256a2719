"""What the pixel autoencoders (STM-AE, dissociation) share: a frame-level estimator that scores
frame t from the clip of frames ``t - n_input .. t`` (the last one is the target).

A subclass writes ``__init__`` (with at least ``resolution``, ``width``, ``batch_size``, ``lr``,
``seed``, ``device``, ``progress``, ``flow_cache``), ``_build_net()``, ``_train(net, data,
generator) -> (losses, extra fitted config)`` and ``_analyse(net, clips, flows, extra) ->
ClipAnalysis``. This module does the rest: frame preprocessing (BGR uint8 -> RGB in [-1, 1] at
``resolution`` x ``resolution``), DIS flow when ``uses_flow`` (through
:mod:`stgraph.features.flow`, cached for training videos with a path), clip batches, the
streaming step ``score_next_frame`` that :meth:`score` also runs (so streaming equals batch),
frame rows + pixel maps + object rows (mean error map inside each detector box),
persistence (``config.json`` + the network's ``state_dict``) and data-parallel training.

Data-parallel training (``torchrun``, :mod:`stgraph.distributed`): each process fits on its own
share of the videos; :meth:`ClipAutoencoder.fit` broadcasts rank 0's network, the trainers walk
:meth:`ClipData.train_batches` (the same number of steps on every process) and call
:meth:`ClipData.average_gradients` (one all-reduce) before each optimiser step, and the flow
scale, the epoch losses and the training-score quantiles are computed over every process's
clips, so every process ends with the same network and scores identically.

The first ``n_input`` frames of a video have no history: they get no row (the table still knows
them).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Mapping, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from detectors.base import Detections
from stgraph.distributed import Distributed
from stgraph.features.flow import OpticalFlow, video_flow
from stgraph.io.frames import as_frame_source
from stgraph.models.base import (BaseEstimator, ScoreQuantiles, check_int, normal_training_videos,
                                 check_seed, make_generator, resolve_device, seeded)
from stgraph.models.frame_difference import box_means
from stgraph.scores import ScoreTable
from stgraph.stream import FrameOutput, StepwiseFrameScoring

__all__ = ["ClipAutoencoder", "ClipAnalysis", "ClipData", "ClipState"]


@dataclass
class ClipAnalysis:
    """What a pixel autoencoder says about a batch of B clips (each scoring its last frame).

    Attributes:
        scores: float64 [B] frame scores (higher = more abnormal).
        pixel_maps: float32 [B, R, R] per-pixel scores.
        errors: float32 [B, 2, R, R] appearance and motion error maps (node features).
        latents: float32 [B, C, R/8, R/8] latent maps pooled into node features.
    """

    scores: np.ndarray
    pixel_maps: np.ndarray
    errors: np.ndarray
    latents: np.ndarray


@dataclass
class ClipData:
    """Training clips in memory: per video, RGB frames uint8 [T, R, R, 3] and (for flow models)
    scaled flow float16 [T, R, R, 2]; ``index`` lists (video, t) of every clip's last frame.

    ``world``: under data-parallel training, the processes sharing the training (each holds
    its own clips); the methods below then make the collective calls a trainer needs.
    """

    frames: list[np.ndarray]
    flows: list[np.ndarray] | None
    index: np.ndarray
    world: Distributed | None = None

    def steps_per_epoch(self, batch_size: int) -> int:
        """Optimiser steps of an epoch of :meth:`train_batches` (the most any process has)."""
        steps = -(-len(self.index) // batch_size)
        return steps if self.world is None else self.world.max_int(steps)

    def train_batches(self, batch_size: int, n_input: int, generator: torch.Generator
                      ) -> Iterator[tuple[Tensor, Tensor | None]]:
        """One training epoch: :meth:`batches`, shuffled. Under ``world`` every process yields
        :meth:`steps_per_epoch` batches: one with fewer clips goes round its clips again (in a
        new shuffled order), so that every step is one all-reduce on every process."""
        if self.world is None:
            yield from self.batches(batch_size, n_input, generator)
            return
        n, steps = len(self.index), self.steps_per_epoch(batch_size)
        need = steps * batch_size if steps > -(-n // batch_size) else n
        order = np.concatenate([torch.randperm(n, generator=generator).numpy()
                                for _ in range(-(-need // n))])[:need]
        for start in range(0, need, batch_size):
            yield self.batch(order[start:start + batch_size], n_input)

    def average_gradients(self, module: nn.Module) -> None:
        """Under ``world``: each gradient of ``module`` becomes its mean over the processes (one
        all-reduce; call between ``backward`` and the optimiser step). Else nothing."""
        if self.world is not None:
            self.world.average_gradients(module)

    def epoch_loss(self, losses: list[float]) -> float:
        """Mean of the batch losses of an epoch (over every process under ``world``)."""
        if self.world is None:
            return mean_or_nan(losses)
        both = self.world.sum_tensor(torch.tensor([float(np.sum(losses)), float(len(losses))],
                                                  dtype=torch.float64))
        return float(both[0] / both[1]) if both[1] > 0 else math.nan

    def average_batch_norm(self, net: nn.Module) -> None:
        """Under ``world``: every BatchNorm layer's running statistics become their mean over
        the processes (see :class:`ClipAutoencoder`). Else nothing."""
        if self.world is not None:
            self.world.average_batch_norm(net)

    def gathered(self, values: Tensor) -> Tensor:
        """``values`` [M, ...] of every process concatenated in rank order (itself when not
        data-parallel)."""
        return values if self.world is None else self.world.cat_tensors(values)

    def batch(self, rows: np.ndarray, n_input: int) -> tuple[Tensor, Tensor | None]:
        """Clips [B, n+1, 3, R, R] in [-1, 1] and flows [B, n+1, 2, R, R] (or None)."""
        clips = np.stack([self.frames[v][t - n_input:t + 1] for v, t in self.index[rows]])
        clip_t = torch.from_numpy(clips).permute(0, 1, 4, 2, 3).contiguous().float().div_(127.5).sub_(1.0)
        if self.flows is None:
            return clip_t, None
        flows = np.stack([self.flows[v][t - n_input:t + 1] for v, t in self.index[rows]])
        return clip_t, torch.from_numpy(flows.astype(np.float32)).permute(0, 1, 4, 2, 3).contiguous()

    def batches(self, batch_size: int, n_input: int, generator: torch.Generator | None
                ) -> Iterator[tuple[Tensor, Tensor | None]]:
        """All clips once, shuffled with ``generator`` (in order when None)."""
        n = len(self.index)
        order = (torch.randperm(n, generator=generator).numpy() if generator is not None
                 else np.arange(n))
        for start in range(0, n, batch_size):
            yield self.batch(order[start:start + batch_size], n_input)


class ClipState:
    """A stream's history: the last ``n_input + 1`` preprocessed frames (and flows)."""

    def __init__(self, n_input: int, image_hw: tuple[int, int]) -> None:
        self.frames: deque[np.ndarray] = deque(maxlen=n_input + 1)
        self.flows: deque[np.ndarray] = deque(maxlen=n_input + 1)
        self.gray: np.ndarray | None = None
        self.image_hw = image_hw


class ClipAutoencoder(StepwiseFrameScoring, BaseEstimator):
    """Base of the frame-level pixel autoencoders (see the module docstring).

    Data-parallel (``data_parallel = True``): under ``torchrun`` :meth:`fit` trains on this
    process's videos together with the other processes (module docstring). BatchNorm layers
    stay per-process BatchNorm while training (``SyncBatchNorm`` refuses CPU tensors): each
    process normalises its batches with their own statistics, as ``DistributedDataParallel``
    does with plain BatchNorm, and the running statistics are averaged over the processes at
    the end of each training phase (before they are used in eval mode) rather than taken from
    rank 0, so they describe every process's clips, not a 1 / world_size sample of them.
    """

    consumes: ClassVar[str] = "frames"
    supervision: ClassVar[str] = "none"
    streams_exactly: ClassVar[bool] = True
    fitted_attributes = ("net_", "train_scores_", "n_train_frames_", "train_losses_",
                         "flow_scale_")
    #: Frames of history per clip (the clip is n_input + 1 frames, the last one the target).
    n_input: ClassVar[int] = 4
    #: Whether the network takes DIS optical flow.
    uses_flow: ClassVar[bool] = False
    #: Trains data-parallel under torchrun (module docstring).
    data_parallel: ClassVar[bool] = True

    # ------------------------------------------------------------------ subclass hooks
    def _build_net(self) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def _train(self, net: nn.Module, data: ClipData, generator: torch.Generator
               ) -> tuple[list[float], dict[str, Any]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _analyse(self, net: nn.Module, clips: Tensor, flows: Tensor | None,
                 extra: Mapping[str, Any]) -> ClipAnalysis:  # pragma: no cover - abstract
        """Analyse clips [B, n+1, 3, R, R] (+ flows [B, n+1, 2, R, R]); ``extra`` is what
        ``_train`` returned (or :meth:`_extra_state` once fitted)."""
        raise NotImplementedError

    def _extra_state(self) -> dict[str, Any]:
        """Subclass facts learned by fit (JSON), saved in config.json."""
        return {}

    def _set_extra_state(self, extra: Mapping[str, Any]) -> None:
        """Set what :meth:`_extra_state` saved."""

    # ------------------------------------------------------------------ checks and inputs
    def _check_params(self) -> None:
        check_int("resolution", self.resolution, 8)
        if self.resolution % 8:
            raise ValueError(f"resolution must be a multiple of 8, got {self.resolution}")
        check_int("width", self.width, 1)
        check_int("batch_size", self.batch_size, 1)
        check_seed(self.seed)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")

    @property
    def _flow(self) -> OpticalFlow:
        return OpticalFlow("dis", "fast", size=(self.resolution, self.resolution))

    def _prep(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 [R, R, 3] of a BGR uint8 frame [H, W, 3]."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"{type(self).__name__} needs H x W x 3 uint8 BGR frames, got "
                             f"{image.dtype} {image.shape}")
        r = int(self.resolution)
        return cv2.cvtColor(cv2.resize(image, (r, r), interpolation=cv2.INTER_AREA),
                            cv2.COLOR_BGR2RGB)

    @staticmethod
    def _videos(X: Any) -> list[Any]:
        return list(X) if not isinstance(X, np.ndarray) or X.ndim == 5 else [X]

    def _load(self, videos: Sequence[Any]) -> tuple[ClipData, int]:
        """Preprocessed training clips (and unscaled flows) of ``videos``; returns the data and
        the number of frames read."""
        frames, flows, index, total = [], [], [], 0
        for v, video in enumerate(tqdm(videos, desc=f"{type(self).__name__} read", unit="video",
                                       disable=not self.progress, leave=False)):
            source = as_frame_source(video)
            arr = np.stack([self._prep(f.image) for f in source])
            total += len(arr)
            frames.append(arr)
            if self.uses_flow:
                fl = video_flow(video, self._flow, cache_dir=self.flow_cache)
                if len(fl) != len(arr):
                    raise ValueError(f"flow of video #{v} has {len(fl)} frames, video {len(arr)}")
                flows.append(fl.astype(np.float16))
            index += [(v, t) for t in range(self.n_input, len(arr))]
        if not index:
            raise ValueError(f"{type(self).__name__} needs training videos of at least "
                             f"{self.n_input + 1} frames each")
        return ClipData(frames, flows if self.uses_flow else None, np.asarray(index)), total

    # ------------------------------------------------------------------ estimator
    def fit(self, X: Sequence[Any], y: Any = None) -> "ClipAutoencoder":
        """Train on normal videos (paths, frame folders, ``FrameSource`` s or uint8 arrays
        [T, H, W, 3]); returns self."""
        self._check_params()
        videos = normal_training_videos(X, y, type(self).__name__)
        device = resolve_device(self.device)
        world = Distributed.current()
        data, total = self._load(videos)
        data.world = world
        flow_scale = 1.0
        if data.flows is not None:
            sample = np.concatenate([f[::max(1, len(f) // 20)].reshape(-1) for f in data.flows])
            if world is not None:  # the same scale on every process: over every video
                sample = np.concatenate(world.gather_objects(sample))
            flow_scale = float(np.percentile(np.abs(sample.astype(np.float32)), 99)) + 1e-3
            data.flows = [(f.astype(np.float32) / flow_scale).astype(np.float16)
                          for f in data.flows]
        with seeded(self.seed):
            net = self._build_net().to(device)
        if world is not None:
            world.broadcast_parameters(net)
        rank = 0 if world is None else world.rank
        losses, extra = self._train(net, data, make_generator(self.seed + rank))
        data.average_batch_norm(net)
        net.eval()
        with torch.no_grad():
            scores = np.concatenate([
                self._analyse(net, c.to(device), None if f is None else f.to(device),
                              extra).scores
                for c, f in data.batches(self.batch_size, self.n_input, None)])
        if world is not None:  # quantiles of every process's clips
            scores = np.concatenate(world.gather_objects(scores))
            total = world.sum_int(total)
        train_scores = ScoreQuantiles.from_scores(scores)
        self.net_, self.train_scores_, self.n_train_frames_ = net, train_scores, total
        self.train_losses_, self.flow_scale_ = [float(v) for v in losses], flow_scale
        self._set_extra_state(extra)
        return self

    def _analyse_state(self, state: ClipState) -> ClipAnalysis:
        device = next(self.net_.parameters()).device
        clip = torch.from_numpy(np.stack(state.frames)).permute(0, 3, 1, 2).contiguous()[None]
        clip = clip.float().div_(127.5).sub_(1.0).to(device)
        flows = None
        if self.uses_flow:
            flows = torch.from_numpy(np.stack(state.flows)).permute(0, 3, 1, 2).contiguous()[None].to(device)
        with torch.no_grad():
            return self._analyse(self.net_, clip, flows, self._extra_state())

    def push_frame(self, state: ClipState | None, image: np.ndarray
                   ) -> tuple[ClipState, ClipAnalysis | None]:
        """Add a BGR frame to the history; the analysis of the clip ending at it (None while the
        history is shorter than ``n_input`` frames)."""
        self.check_is_fitted("score")
        image = np.asarray(image)
        if state is None:
            state = ClipState(self.n_input, image.shape[:2])
        elif tuple(image.shape[:2]) != tuple(state.image_hw):
            raise ValueError(f"frame size changed within a video: {state.image_hw} -> "
                             f"{image.shape[:2]}")
        state.frames.append(self._prep(image))
        if self.uses_flow:
            flow = self._flow
            gray = flow.gray(image)
            field = (np.zeros((*gray.shape, 2), np.float32) if state.gray is None
                     else flow.compute_gray(state.gray, gray))
            state.gray = gray
            scaled = field.astype(np.float16).astype(np.float32) / self.flow_scale_
            state.flows.append(scaled.astype(np.float16).astype(np.float32))
        if len(state.frames) <= self.n_input:
            return state, None
        return state, self._analyse_state(state)

    def score_next_frame(self, state: ClipState | None, image: np.ndarray,
                         detections: Detections | None = None
                         ) -> tuple[ClipState, FrameOutput | None]:
        """One step of the stream: ``(new state, output)``; None for the first ``n_input``
        frames. Object scores: mean of the pixel map inside each box."""
        state, analysis = self.push_frame(state, image)
        if analysis is None:
            return state, None
        pixel_map = analysis.pixel_maps[0]
        objects = np.zeros(0)
        if detections is not None and len(detections):
            objects = box_means(pixel_map, self.scale_boxes(detections.boxes, state.image_hw))
        return state, FrameOutput(float(analysis.scores[0]), objects, pixel_map)

    def scale_boxes(self, boxes: np.ndarray, image_hw: tuple[int, int], stride: int = 1
                    ) -> np.ndarray:
        """Boxes [N, 4] xyxy in image pixels -> the same boxes on a map of R / stride pixels."""
        h, w = image_hw
        r = self.resolution / stride
        return np.asarray(boxes, np.float64) * np.array([r / w, r / h, r / w, r / h])

    # score() and stream_scorer() come from StepwiseFrameScoring (one frame at a time)

    # ------------------------------------------------------------------ persistence
    def _fitted_config(self) -> dict[str, Any]:
        return {"n_train_frames": self.n_train_frames_,
                "train_score_count": self.train_scores_.count,
                "train_losses": self.train_losses_, "flow_scale": self.flow_scale_,
                "extra": self._extra_state()}

    def _fitted_state(self) -> dict[str, Tensor]:
        state = {f"net.{k}": v.detach().cpu() for k, v in self.net_.state_dict().items()}
        state["train_score_quantiles"] = torch.from_numpy(self.train_scores_.values)
        return state

    def _restore(self, fitted_config: Mapping[str, Any], state: Mapping[str, Tensor]) -> None:
        with seeded(self.seed):
            net = self._build_net()
        net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
        self.net_ = net.to(resolve_device(self.device)).eval()
        self.train_scores_ = ScoreQuantiles(state["train_score_quantiles"].numpy(),
                                            int(fitted_config["train_score_count"]))
        self.n_train_frames_ = int(fitted_config["n_train_frames"])
        self.train_losses_ = [float(v) for v in fitted_config["train_losses"]]
        self.flow_scale_ = float(fitted_config["flow_scale"])
        self._set_extra_state(fitted_config.get("extra", {}))


def epoch_bar(estimator: Any, n_epochs: int, desc: str) -> Any:
    """tqdm over epochs (silent unless ``estimator.progress``)."""
    return tqdm(range(n_epochs), desc=desc, unit="epoch", disable=not estimator.progress,
                leave=False)


def mean_or_nan(values: list[float]) -> float:
    """Mean of a list of losses (NaN when empty)."""
    return float(np.mean(values)) if values else math.nan
