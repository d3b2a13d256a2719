"""STRL: spatio-temporal auto-encoder + object-scene relation learning, as a frame-level estimator.

Paper: ``papers/strl_spatio_temporal_relation_learning.txt``. The networks are
:class:`stgraph.nn.stae.STAE` (encoder, appearance decoder with skips, motion decoder + warping;
Eq. 1-7) and :class:`stgraph.nn.relation.RelationModule` (relation map ``R``, Eq. 8-9); moving
regions come from :class:`detectors.motion.MotionRegionDetector` (the paper's Algorithm 1).

Per video, frames are turned grey (or kept BGR with ``gray=False``), resized to
``resolution`` x ``resolution`` and scaled to [-1, 1]. A clip is ``clip_length`` frames
``I_{t-k+1} .. I_t``; the model predicts ``I_{t+1}``, so frame ``t+1`` is the frame it scores
(the first ``clip_length`` frames of a video get no row). The moving regions of the clip are the
motion detector's boxes at frame ``t``.

Training (``fit``): ``L = L_ae + λ_rl L_rl`` (Eq. 10) with the paper's ``λ_grd = λ_mot = 1``,
``λ_rl = 0.5``; negatives per clip: one random-speed clip (skips of 1-4 frames from the same first
frame) and one random-order clip (the clip's frames shuffled), masked by the same regions.
Adam with a cosine-decayed learning rate; the paper's recipe (1,000 epochs at 256², lr 1e-5)
does not fit a CPU budget, so the defaults are 128², lr 2e-3, 8 epochs over half the clips
each (``train_stride=2``): 4 passes over the data, about 11 minutes for Ped2 on one CPU core.

Scoring (Eq. 11-12), per scored frame::

    S_app = L_app(I_{t+1}, Î_{t+1})            (Eq. 3, per frame)
    S_mot = L_mot(I_{t+1}, Ĩ_{t+1})            (Eq. 6, per frame)
    S_rl  = max over regions of mean(-log ψ) inside the region  (Eq. 11 turned: higher = worse;
                                                                  0 when nothing moves)
    score = z(S_app) + λ_mot z(S_mot) + λ_rl z(S_rl)

where ``z`` standardises a term by its mean and standard deviation over the training frames
(learned in ``fit``). The paper min-max normalises each term per test video instead; that needs
the whole video, so here it is an evaluation option: the three raw terms are extra columns
(``s_app``, ``s_mot``, ``s_rl``) of the frame rows, and :func:`paper_combination` combines them
the paper's way. Object rows: one per moving region (class ``"moving"``) when no detections are
given, else one per detector box, each scored mean ``-log ψ`` over the box (column ``psi``: mean ψ).

Why ``-log ψ`` and not ``1 - ψ``: Eq. 9 only constrains the ratio of ψ for a clip to ψ for its
negatives, so after training ψ of normal objects on Ped2 is often ~1e-3 and ``1 - ψ`` is 1 for
nearly every object (it saturates, and float32 ψ underflows to 0); ``-log ψ`` (computed from the
logits) has the same order for equal ψ and keeps the ranking. On 6 Ped2 test videos with a
3-epoch model, the relation term alone gave micro AUC 76.6 with ``-log ψ`` vs 75.4 with ``1 - ψ``
(min-max + 15-frame filter).
Pixel maps: the per-pixel appearance + λ_mot motion error at ``resolution / map_stride``.

Example:
    >>> model = STRL(epochs=5).fit(train_videos)                              # doctest: +SKIP
    >>> table = model.score("testing/frames/01", video="01")                  # doctest: +SKIP
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from detectors.base import Detections
from detectors.motion import MotionRegionDetector
from stgraph.io.frames import as_frame_source
from stgraph.models.base import (BaseEstimator, ScoreQuantiles, check_int, normal_training_videos,
                                 check_seed, resolve_device, seeded)
from stgraph.nn.relation import (RelationModule, box_masks, masked_average, order_clip_indices,
                                 relation_loss, speed_clip_indices)
from stgraph.nn.stae import STAE, count_parameters, pixel_error, stae_loss
from stgraph.scores import ScoreTable
from stgraph.stream import FrameOutput

__all__ = ["STRL", "STRLNet", "paper_combination", "TERMS"]

#: Names of the raw score terms (extra columns of the frame rows).
TERMS = ("s_app", "s_mot", "s_rl")


class STRLNet(torch.nn.Module):
    """STAE + relation module (the whole trainable model; see the module docstring).

    Args:
        clip_length, channels, width: see :class:`~stgraph.nn.stae.STAE`.
        grid_hw: encoder grid ``(H/8, W/8)``.
    """

    def __init__(self, clip_length: int, channels: int, width: int,
                 grid_hw: tuple[int, int]) -> None:
        super().__init__()
        self.stae = STAE(clip_length, channels, width)
        self.relation = RelationModule(self.stae.embedding_dim, grid_hw)


@dataclass
class _StepResult:
    """One scored frame: terms, pixel map, region boxes/ψ, and ψ of the given detections."""

    terms: np.ndarray                      # [3] s_app, s_mot, s_rl
    pixel_map: np.ndarray                  # [h', w']
    regions: Detections                    # moving regions of the clip (frame t)
    region_psi: np.ndarray                 # [R] mean ψ per region
    object_psi: np.ndarray                 # [N] mean ψ per given detection
    region_nll: np.ndarray                 # [R] mean -log ψ per region
    object_nll: np.ndarray                 # [N] mean -log ψ per given detection
    psi_maps: np.ndarray | None = None     # [R + N, h, w] when asked for


@dataclass
class _StreamState:
    """Per-video stream state: preprocessed frames, the motion detector, the last regions."""

    frames: deque = field(default_factory=deque)
    detector: MotionRegionDetector | None = None
    regions: Detections | None = None
    image_hw: tuple[int, int] | None = None


def paper_combination(terms: Mapping[str, np.ndarray], lambda_mot: float = 1.0,
                      lambda_rl: float = 0.5, lambda_app: float = 1.0) -> np.ndarray:
    """The paper's Eq. 12 on one video: each term min-max scaled over the video, then
    ``λ_app S_app + λ_mot S_mot + λ_rl S_rl`` (float64 [T']; the paper's ``λ_app = 1``; 0 gives
    the ablation rows). Offline: it needs the whole video."""
    def minmax(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        span = x.max() - x.min() if x.size else 0.0
        return (x - x.min()) / span if span > 0 else np.zeros_like(x)

    return (lambda_app * minmax(terms["s_app"]) + lambda_mot * minmax(terms["s_mot"])
            + lambda_rl * minmax(terms["s_rl"]))


class STRL(BaseEstimator):
    """STRL (STAE + relation learning) as a frame-level estimator; see the module docstring.

    Args:
        resolution: frames are resized to ``resolution`` x ``resolution`` (divisible by 8;
            the paper's 256, 128 by default for CPU budgets).
        clip_length: input frames ``k`` per clip.
        width: STAE width (encoder channels ``w, 2w, 4w, 4w``; ``d = 4w``). 14 gives about the
            paper's 0.18M parameters at 128².
        gray: use grey frames (1 channel; UCSD is grey) instead of 3 BGR channels.
        epochs: training epochs.
        lr: Adam learning rate at the start (cosine decay to 5 % of it).
        batch_size: clips per step.
        lambda_grd, lambda_mot, lambda_rl: loss and score weights (paper: 1, 1, 0.5).
        max_skip: the random-speed negatives skip 1..``max_skip`` frames (paper: 4).
        train_stride: train on every ``train_stride``-th clip (in a random order) per epoch
            (1 = all); the offset changes each epoch, so all clips are seen over the epochs.
        region_size: working size of the motion-region detector (the paper's 256).
        region_rows: add one object row per moving region when no detections are given.
        map_stride: pixel maps are block-averaged over ``map_stride`` model pixels.
        seed: seeds initialisation, shuffling and negatives.
        device: torch device.
        progress: progress bars.

    Learned attributes: ``net_`` (:class:`STRLNet`), ``term_stats_`` float64 [3, 2] (mean, std
    of ``s_app, s_mot, s_rl`` on the training frames), ``train_scores_``, ``n_train_frames_``,
    ``loss_history_`` (per-epoch mean ``L_ae`` and ``L_rl``), ``n_parameters_``.
    """

    consumes: ClassVar[str] = "frames"
    supervision: ClassVar[str] = "none"
    streams_exactly: ClassVar[bool] = True
    fitted_attributes = ("net_", "term_stats_", "train_scores_", "n_train_frames_",
                         "loss_history_", "n_parameters_")
    format_version = 1

    def __init__(self, resolution: int = 128, clip_length: int = 4, width: int = 14,
                 gray: bool = True, epochs: int = 8, lr: float = 2e-3, batch_size: int = 8,
                 lambda_grd: float = 1.0, lambda_mot: float = 1.0, lambda_rl: float = 0.5,
                 max_skip: int = 4, train_stride: int = 2,
                 region_size: int = 256,
                 region_rows: bool = True, map_stride: int = 4, seed: int = 0,
                 device: str = "cpu", progress: bool = True) -> None:
        self.resolution = resolution
        self.clip_length = clip_length
        self.width = width
        self.gray = gray
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.lambda_grd = lambda_grd
        self.lambda_mot = lambda_mot
        self.lambda_rl = lambda_rl
        self.max_skip = max_skip
        self.train_stride = train_stride
        self.region_size = region_size
        self.region_rows = region_rows
        self.map_stride = map_stride
        self.seed = seed
        self.device = device
        self.progress = progress

    @classmethod
    def contract_params(cls) -> dict[str, Any]:
        return {"resolution": 32, "clip_length": 3, "width": 4, "epochs": 1, "batch_size": 4,
                "region_size": 64, "region_rows": False, "map_stride": 2, "progress": False}

    # ------------------------------------------------------------------ checks and input
    def _check_params(self) -> None:
        check_int("resolution", self.resolution, 8)
        if self.resolution % 8:
            raise ValueError(f"resolution must be divisible by 8, got {self.resolution}")
        check_int("clip_length", self.clip_length, 2)
        check_int("width", self.width, 2)
        if self.width % 2:
            raise ValueError(f"width must be even, got {self.width}")
        check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 1)
        check_int("max_skip", self.max_skip, 2)
        check_int("train_stride", self.train_stride, 1)
        check_int("region_size", self.region_size, 16)
        check_int("map_stride", self.map_stride, 1)
        check_seed(self.seed)
        for name in ("lr", "lambda_grd", "lambda_mot", "lambda_rl"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 \
                    or (name == "lr" and value == 0):
                raise ValueError(f"{name} must be a finite number >= 0 (lr > 0), got {value!r}")

    @property
    def _channels(self) -> int:
        return 1 if self.gray else 3

    @property
    def _grid_hw(self) -> tuple[int, int]:
        return self.resolution // 8, self.resolution // 8

    def _preprocess(self, image: np.ndarray) -> Tensor:
        """BGR uint8 [H, W, 3] -> float32 [C, S, S] in [-1, 1]."""
        size = (int(self.resolution), int(self.resolution))
        if self.gray:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        small = small[None] if small.ndim == 2 else small.transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(small / 127.5 - 1.0))

    def _new_detector(self) -> MotionRegionDetector:
        return MotionRegionDetector(work_size=int(self.region_size))

    def _load_video(self, video: Any) -> tuple[Tensor, list[Detections], tuple[int, int]]:
        """All frames [T, C, S, S] of a video and the motion detector's regions per frame."""
        detector, frames, regions, hw = self._new_detector(), [], [], None
        for frame in as_frame_source(video):
            frames.append(self._preprocess(frame.image))
            regions.append(detector.detect(frame.image, frame.index))
            hw = frame.image.shape[:2]
        if not frames:
            raise ValueError("a training video has no frames")
        return torch.stack(frames), regions, hw

    # ------------------------------------------------------------------ training
    def _masks(self, detections: Detections, image_hw: tuple[int, int]) -> np.ndarray:
        return box_masks(detections.boxes, image_hw, self._grid_hw)

    def _train(self, videos: list[tuple[Tensor, list[Detections], tuple[int, int]]],
               device: torch.device) -> tuple[STRLNet, list[dict[str, float]]]:
        k = int(self.clip_length)
        rng = np.random.default_rng(self.seed)
        with seeded(self.seed):
            net = STRLNet(k, self._channels, int(self.width), self._grid_hw).to(device)
        samples = [(v, t) for v, (frames, _, _) in enumerate(videos)
                   for t in range(k - 1, len(frames) - 1)]
        if not samples:
            raise ValueError(f"the training videos need at least {k + 1} frames each "
                             f"(clip_length {k} + the predicted frame)")
        masks = [[self._masks(d, hw) for d in regions] for _, regions, hw in videos]
        optimizer = torch.optim.Adam(net.parameters(), lr=float(self.lr))
        stride = int(self.train_stride)
        steps_per_epoch = math.ceil(math.ceil(len(samples) / stride) / int(self.batch_size))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, steps_per_epoch * int(self.epochs)), eta_min=0.05 * self.lr)
        history = []
        net.train()
        for epoch in range(int(self.epochs)):
            order = rng.permutation(np.arange(len(samples))[(epoch % stride)::stride])
            sums, count = np.zeros(2), 0
            bar = tqdm(range(0, len(order), int(self.batch_size)), desc=f"STRL epoch {epoch + 1}",
                       unit="batch", disable=not self.progress, leave=False)
            for start in bar:
                batch = [samples[i] for i in order[start:start + int(self.batch_size)]]
                l_ae, l_rl = self._train_step(net, videos, masks, batch, rng, device)
                loss = l_ae + float(self.lambda_rl) * l_rl
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                sums += [l_ae.item(), l_rl.item()]
                count += 1
                bar.set_postfix(ae=f"{sums[0] / count:.4f}", rl=f"{sums[1] / count:.4f}")
            history.append({"epoch": epoch + 1, "l_ae": sums[0] / count, "l_rl": sums[1] / count})
        net.eval()
        return net, history

    def _train_step(self, net: STRLNet, videos, masks, batch, rng: np.random.Generator,
                    device: torch.device) -> tuple[Tensor, Tensor]:
        """``(L_ae, L_rl)`` of one batch of (video, t) samples."""
        k = int(self.clip_length)
        pos, speed, shuffled, targets, obj_masks, obj_batch = [], [], [], [], [], []
        for b, (v, t) in enumerate(batch):
            frames = videos[v][0]
            first = t - k + 1
            pos.append(frames[first:t + 1].flatten(0, 1))
            targets.append(frames[t + 1])
            offsets = speed_clip_indices(k, rng, int(self.max_skip))
            start = max(0, min(first, len(frames) - 1 - int(offsets[-1])))
            speed.append(frames[np.minimum(start + offsets, len(frames) - 1)].flatten(0, 1))
            shuffled.append(frames[first + order_clip_indices(k, rng)].flatten(0, 1))
            m = masks[v][t]
            obj_masks.extend(m)
            obj_batch.extend([b] * len(m))
        n = len(batch)
        # one encoder pass over positives and negatives: they share the batch statistics
        clips = torch.stack(pos + speed + shuffled).to(device)
        maps = net.stae.encode(clips)
        out = net.stae.decode(clips[:n], tuple(x[:n] for x in maps))
        app, mot = stae_loss(out, torch.stack(targets).to(device), float(self.lambda_grd))
        l_ae = app + float(self.lambda_mot) * mot
        if not obj_masks:
            return l_ae, torch.zeros((), device=device)
        m = torch.from_numpy(np.stack(obj_masks)).to(device)
        idx = torch.as_tensor(obj_batch, device=device)
        embedding = maps[3]
        gamma = net.relation.gamma(embedding[:n])
        psi = [net.relation.psi(gamma, masked_average(embedding, m, idx + offset * n), idx)
               for offset in range(3)]
        return l_ae, relation_loss(psi[0], psi[1:], m)

    # ------------------------------------------------------------------ one frame
    @torch.no_grad()
    def _step(self, net: STRLNet, state: _StreamState | None, image: np.ndarray,
              detections: Detections | None, keep_psi: bool = False
              ) -> tuple[_StreamState, _StepResult | None]:
        """Push one frame; a result when the state holds a full clip before it."""
        if state is None:
            state = _StreamState(deque(maxlen=int(self.clip_length)), self._new_detector(),
                                 None, image.shape[:2])
        elif image.shape[:2] != state.image_hw:
            raise ValueError(f"frame size changed within a video: {state.image_hw} -> "
                             f"{image.shape[:2]}")
        x = self._preprocess(image)
        result = None
        if len(state.frames) == int(self.clip_length):
            result = self._score_clip(net, torch.cat(list(state.frames)), x, state.regions,
                                      detections, state.image_hw, keep_psi)
        state.frames.append(x)
        state.regions = state.detector.detect(image, 0)
        return state, result

    def _score_clip(self, net: STRLNet, clip: Tensor, target: Tensor, regions: Detections,
                    detections: Detections | None, image_hw: tuple[int, int],
                    keep_psi: bool) -> _StepResult:
        device = next(net.parameters()).device
        clip, target = clip[None].to(device), target[None].to(device)
        maps = net.stae.encode(clip)
        out = net.stae.decode(clip, maps)
        app, mot = stae_loss(out, target, float(self.lambda_grd), reduce=False)
        error = (pixel_error(target, out.frame, float(self.lambda_grd))
                 + float(self.lambda_mot) * pixel_error(target, out.warped, float(self.lambda_grd)))
        stride = int(self.map_stride)
        pixel_map = F.avg_pool2d(error[None], stride, stride)[0, 0] if stride > 1 else error[0]
        boxes = [regions.boxes if regions is not None else np.zeros((0, 4), np.float32)]
        if detections is not None and len(detections):
            boxes.append(detections.boxes)
        all_boxes = np.concatenate(boxes)
        psi_mean = np.zeros(0)
        psi_maps = None
        if len(all_boxes):
            m = torch.from_numpy(box_masks(all_boxes, image_hw, self._grid_hw)).to(device)
            idx = torch.zeros(len(all_boxes), dtype=torch.long, device=device)
            logits = net.relation.logits(net.relation.gamma(maps[3]),
                                         masked_average(maps[3], m, idx), idx)
            psi = torch.sigmoid(logits)
            area = m.flatten(1).sum(1)
            psi_mean = ((psi * m).flatten(1).sum(1) / area).double().cpu().numpy()
            # -log ψ, computed from the logits (ψ underflows to 0 in float32)
            nll = ((F.softplus(-logits) * m).flatten(1).sum(1) / area).double().cpu().numpy()
            psi_maps = psi.cpu().numpy() if keep_psi else None
        else:
            nll = np.zeros(0)
        n_regions = len(boxes[0])
        region_psi, object_psi = psi_mean[:n_regions], psi_mean[n_regions:]
        region_nll, object_nll = nll[:n_regions], nll[n_regions:]
        s_rl = float(region_nll.max()) if n_regions else 0.0
        terms = np.array([float(app[0]), float(mot[0]), s_rl], np.float64)
        empty = Detections.empty(0, image_hw, ("moving",))
        return _StepResult(terms, pixel_map.float().cpu().numpy(),
                           regions if regions is not None else empty, region_psi, object_psi,
                           region_nll, object_nll, psi_maps)

    def _combine(self, terms: np.ndarray, stats: np.ndarray) -> float:
        z = (terms - stats[:, 0]) / stats[:, 1]
        return float(z[0] + float(self.lambda_mot) * z[1] + float(self.lambda_rl) * z[2])

    def score_next_frame(self, state: _StreamState | None, image: np.ndarray,
                         detections: Detections | None = None
                         ) -> tuple[_StreamState, FrameOutput | None]:
        """One step of the stream (see :class:`~stgraph.stream.FrameStreamScorer`): the frame's
        combined score, mean ``-log ψ`` per given detection, and the pixel map; None for the first
        ``clip_length`` frames of a video."""
        self.check_is_fitted("score")
        state, result = self._step(self.net_, state, image, detections)
        if result is None:
            return state, None
        return state, FrameOutput(self._combine(result.terms, self.term_stats_),
                                  result.object_nll, result.pixel_map)

    # ------------------------------------------------------------------ estimator
    def fit(self, X: Sequence[Any], y: Any = None) -> "STRL":
        """Train STAE + relation module on normal videos; returns self.

        Args:
            X: normal training videos (paths, frame folders, ``FrameSource`` s or uint8 arrays
                [T, H, W, 3]).
            y: None, or all-zero labels.
        """
        self._check_params()
        device = resolve_device(self.device)
        videos = normal_training_videos(X, y, "STRL")
        t0 = time.perf_counter()
        loaded = [self._load_video(v) for v in tqdm(videos, desc="STRL load", unit="video",
                                                     disable=not self.progress, leave=False)]
        net, history = self._train(loaded, device)
        train_seconds = time.perf_counter() - t0
        terms = []
        for video in tqdm(videos, desc="STRL train scores", unit="video",
                          disable=not self.progress, leave=False):
            state = None
            for frame in as_frame_source(video):
                state, result = self._step(net, state, frame.image, None)
                if result is not None:
                    terms.append(result.terms)
        terms = np.asarray(terms, np.float64)
        stats = np.stack([terms.mean(0), np.maximum(terms.std(0), 1e-6)], 1)
        scores = np.array([self._combine(t, stats) for t in terms])
        train_scores = ScoreQuantiles.from_scores(scores)
        self.net_ = net
        self.term_stats_ = stats
        self.train_scores_ = train_scores
        self.n_train_frames_ = int(len(terms))
        self.loss_history_ = history
        self.n_parameters_ = count_parameters(net)
        self.train_seconds_ = train_seconds
        return self

    def score(self, X: Any, video: str = "video", *, fps: float | None = None,
              detections: Sequence[Detections] | None = None) -> ScoreTable:
        """Frame rows (extra columns ``s_app, s_mot, s_rl``), pixel maps and object rows of one
        video (see the module docstring).

        Args:
            X: the video (path, frame folder, ``FrameSource`` or uint8 array [T, H, W, 3]).
            video: its name in the table.
            fps: unused (common interface).
            detections: a detector's boxes per frame; each becomes an object row (instead of
                the moving regions).
        """
        self.check_is_fitted("score")
        self._check_params()
        return self._table(X, video, detections)[0]

    def _table(self, X: Any, video: str, detections: Sequence[Detections] | None,
               keep_psi: bool = False) -> tuple[ScoreTable, dict[int, _StepResult]]:
        by_frame = {d.frame_index: d for d in detections} if detections is not None else {}
        state, indices, results, hw = None, [], {}, None
        for frame in tqdm(as_frame_source(X), desc="STRL score", unit="frame",
                          disable=not self.progress, leave=False):
            state, result = self._step(self.net_, state, frame.image, by_frame.get(frame.index),
                                       keep_psi)
            indices.append(frame.index)
            hw = frame.image.shape[:2]
            if result is not None:
                results[frame.index] = result
        if not indices:
            raise ValueError(f"video {video!r} has no frames")
        frames = np.array(sorted(results), np.int64)
        terms = np.array([results[i].terms for i in frames]).reshape(-1, 3)
        scores = np.array([self._combine(t, self.term_stats_) for t in terms], np.float64)
        region_psi = [results[i].region_psi for i in frames]
        table = ScoreTable.from_frames(
            video, frames, scores, video_frames=np.asarray(indices, np.int64), image_hw=hw,
            pixel_maps=np.stack([results[i].pixel_map for i in frames]) if len(frames) else None,
            extra={**{name: terms[:, j] for j, name in enumerate(TERMS)},
                   "psi": np.array([p.min() if len(p) else np.nan for p in region_psi])})
        if detections is not None:
            scored = [d for d in detections if d.frame_index in results]
            psi = [results[d.frame_index].object_psi for d in scored]
            nll = [results[d.frame_index].object_nll for d in scored]
        elif self.region_rows:
            scored = [Detections(results[i].regions.boxes, results[i].regions.scores,
                                 results[i].regions.labels, frame_index=int(i), image_size=hw,
                                 class_names=("moving",)) for i in frames]
            psi = [results[d.frame_index].region_psi for d in scored]
            nll = [results[d.frame_index].region_nll for d in scored]
        else:
            scored, psi, nll = [], [], []
        if not sum(len(d) for d in scored):
            return table, results

        def per_object(values: dict, d: Detections) -> np.ndarray:
            return np.full(len(d), values[d.frame_index], np.float64)

        by_index = {name: dict(zip(frames.tolist(), terms[:, j])) for j, name in enumerate(TERMS)}
        extra = {"s_app": [per_object(by_index["s_app"], d) for d in scored],
                 "s_mot": [per_object(by_index["s_mot"], d) for d in scored],
                 "s_rl": nll, "psi": psi}
        objects = ScoreTable.from_detections(video, scored, nll, extra=extra)
        return ScoreTable.concat([table, objects]), results

    def relation_maps(self, X: Any, frame: int,
                      detections: Detections | None = None) -> dict[str, Any]:
        """ψ maps of one frame, for the knowledge-graph view (:mod:`stgraph.graphs.knowledge`).

        Args:
            X: the video.
            frame: the scored frame index (>= ``clip_length``).
            detections: the frame's detector boxes (scored after the moving regions).

        Returns:
            ``{"boxes": [N, 4], "class_names": [N], "psi": [N, h, w], "image": BGR [H, W, 3],
            "grid_hw": (h, w), "relation": R [d, h, w]}``: moving regions first, then detections.
        """
        self.check_is_fitted("relation_maps")
        source = as_frame_source(X)
        state, image = None, None
        for f in source:
            dets = detections if f.index == frame else None
            state, result = self._step(self.net_, state, f.image, dets, keep_psi=True)
            if f.index == frame:
                image = f.image
                break
        if image is None or result is None:
            raise ValueError(f"frame {frame} is not a scored frame of the video (the first "
                             f"{self.clip_length} frames have no clip before them)")
        names = ["moving"] * len(result.regions)
        boxes = [result.regions.boxes]
        if detections is not None and len(detections):
            boxes.append(detections.boxes)
            names += list(detections.names)
        n = sum(len(b) for b in boxes)
        h, w = self._grid_hw
        return {"boxes": np.concatenate(boxes).reshape(-1, 4), "class_names": names,
                "psi": result.psi_maps if result.psi_maps is not None else np.zeros((n, h, w)),
                "image": image.copy(), "grid_hw": (h, w),
                "relation": self.net_.relation.relation.detach().cpu().numpy()}

    def stream_scorer(self, fps: float | None = None, radius: int | None = None) -> Any:
        """A :class:`~stgraph.stream.FrameStreamScorer` (latency 0; equals :meth:`score`)."""
        from stgraph.stream import FrameStreamScorer

        return FrameStreamScorer(self, fps=fps)

    # ------------------------------------------------------------------ persistence
    def _fitted_config(self) -> dict[str, Any]:
        return {"n_train_frames": self.n_train_frames_,
                "train_score_count": self.train_scores_.count,
                "term_stats": self.term_stats_.tolist(),
                "loss_history": self.loss_history_, "n_parameters": self.n_parameters_}

    def _fitted_state(self) -> dict[str, Tensor]:
        state = {f"net.{k}": v.detach().cpu() for k, v in self.net_.state_dict().items()}
        state["train_score_quantiles"] = torch.from_numpy(self.train_scores_.values)
        return state

    def _restore(self, fitted_config: Mapping[str, Any], state: Mapping[str, Tensor]) -> None:
        self._check_params()
        with seeded(0):
            net = STRLNet(int(self.clip_length), self._channels, int(self.width), self._grid_hw)
        net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
        self.net_ = net.to(resolve_device(self.device)).eval()
        self.train_scores_ = ScoreQuantiles(state["train_score_quantiles"].numpy(),
                                            int(fitted_config["train_score_count"]))
        self.term_stats_ = np.asarray(fitted_config["term_stats"], np.float64)
        self.n_train_frames_ = int(fitted_config["n_train_frames"])
        self.loss_history_ = list(fitted_config["loss_history"])
        self.n_parameters_ = int(fitted_config["n_parameters"])
