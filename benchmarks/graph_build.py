"""Speed of the Ano-Graph object graph: vectorised vs per-pair Python loops; window vs rebuild.

A crowded synthetic window (default 30 frames x 40 objects in a 360x240 image, 256-d features,
seeded) is built by :class:`stgraph.graphs.ObjectGraphBuilder` and by :func:`reference_graph`, a
straightforward implementation written here with per-pair Python loops (IoU of each pair in
Python, softmax per row, cosine per pair). The two graphs are checked to agree before timing.
Then a stream is pushed through :class:`stgraph.graphs.SlidingWindowGraph` and each steady-state
push is timed against rebuilding the same window from scratch.

Usage::

    python benchmarks/graph_build.py --frames 30 --objects 40 --dim 256 --repeats 20
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from detectors.base import Detections
from stgraph.fileio import atomic_write_text
from stgraph.graphs import ObjectGraphBuilder, SlidingWindowGraph

IMAGE_SIZE = (240, 360)  # (H, W)


def synthetic_frames(num_frames: int, num_objects: int, dim: int, seed: int,
                     first_index: int = 0) -> list[Detections]:
    """Random boxes (10-60 px wide, 20-100 px tall) inside a 360x240 image and N(0, 1) features."""
    rng = np.random.default_rng(seed)
    height, width = IMAGE_SIZE
    frames = []
    for t in range(num_frames):
        wh = np.column_stack([rng.uniform(10, 60, num_objects), rng.uniform(20, 100, num_objects)])
        xy = rng.uniform(0, 1, (num_objects, 2)) * (np.array([width, height]) - wh)
        features = rng.normal(size=(num_objects, dim))
        frames.append(Detections(np.hstack([xy, xy + wh]), rng.uniform(0.3, 1.0, num_objects),
                                 np.zeros(num_objects, np.int64), frame_index=first_index + t,
                                 image_size=IMAGE_SIZE, features=features))
    return frames


# ------------------------------------------------------------------------------ loop reference
def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(float(np.linalg.norm(a)) * float(np.linalg.norm(b)), 1e-12))


def _softmax(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def reference_graph(frames: Sequence[Detections]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ano-Graph G_st (complete spatial blocks with self loops, consecutive-frame temporal blocks).

    Returns edge_index int64 [2, E], edge_weight float64 [E] and edge_type int64 [E], sorted by
    (src, dst).
    """
    edges: list[tuple[int, int, float, int]] = []
    start = 0
    for t, det in enumerate(frames):
        boxes = det.boxes.astype(np.float64).tolist()
        n = len(boxes)
        following = frames[t + 1] if t + 1 < len(frames) else None
        for i in range(n):
            ious = [1.0 if i == j else _iou(boxes[i], boxes[j]) for j in range(n)]
            edges += [(start + i, start + j, w, 0) for j, w in enumerate(_softmax(ious))]
            if following is not None and len(following):
                cosines = [_cosine(det.features[i].astype(np.float64), x.astype(np.float64))
                           for x in following.features]
                edges += [(start + i, start + n + j, w, 1) for j, w in enumerate(_softmax(cosines))]
        start += n
    edges.sort(key=lambda e: (e[0], e[1]))
    table = np.array(edges, dtype=np.float64).reshape(-1, 4)
    return table[:, :2].T.astype(np.int64), table[:, 2], table[:, 3].astype(np.int64)


# ------------------------------------------------------------------------------------- timing
def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def check_agreement(graph, reference: tuple[np.ndarray, np.ndarray, np.ndarray]) -> float:
    """Raise if the builder's graph differs from the loop reference; return the max weight error."""
    edge_index, edge_weight, edge_type = reference
    if not np.array_equal(graph.edge_index.numpy(), edge_index):
        raise AssertionError("builder and reference disagree on the edges")
    if not np.array_equal(graph.edge_type.numpy(), edge_type):
        raise AssertionError("builder and reference disagree on the edge types")
    if not np.allclose(graph.edge_weight.numpy(), edge_weight, rtol=1e-5, atol=1e-7):
        raise AssertionError("builder and reference disagree on the edge weights")
    return float(np.abs(graph.edge_weight.numpy() - edge_weight).max(initial=0.0))


def run(num_frames: int, num_objects: int, dim: int, repeats: int, seed: int) -> dict:
    frames = synthetic_frames(num_frames, num_objects, dim, seed)
    builder = ObjectGraphBuilder()
    graph = builder.build(frames)
    max_error = check_agreement(graph, reference_graph(frames))
    num_nodes, num_edges = graph.num_nodes, graph.edge_index.shape[1]

    vectorised_s = median_seconds(lambda: builder.build(frames), repeats, warmup=3)
    reference_s = median_seconds(lambda: reference_graph(frames), max(1, min(repeats, 3)), warmup=0)

    # stream: fill the window, then time each steady-state push vs a rebuild of the same window
    stream = frames + synthetic_frames(repeats, num_objects, dim, seed + 1, first_index=num_frames)
    window = SlidingWindowGraph(builder, size=num_frames)
    for det in stream[:num_frames]:
        window.push(det)
    push_times, rebuild_times = [], []
    for t in range(num_frames, len(stream)):
        start = time.perf_counter()
        pushed = window.push(stream[t])
        push_times.append(time.perf_counter() - start)
        held = stream[t + 1 - num_frames:t + 1]
        start = time.perf_counter()
        rebuilt = builder.build(held)
        rebuild_times.append(time.perf_counter() - start)
        if not all(torch.equal(pushed[k], rebuilt[k]) for k in ("edge_index", "edge_weight", "x")):
            raise AssertionError(f"window and rebuild disagree at frame {stream[t].frame_index}")
    push_s, rebuild_s = statistics.median(push_times), statistics.median(rebuild_times)

    return {
        "config": {"frames": num_frames, "objects": num_objects, "dim": dim, "repeats": repeats,
                   "seed": seed, "image_size_hw": list(IMAGE_SIZE),
                   "builder": builder.get_params()},
        "machine": {"processor": platform.processor(), "platform": platform.platform(),
                    "python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "graph": {"nodes": num_nodes, "edges": num_edges, "max_abs_weight_error": max_error},
        "build": {
            "vectorised_s_per_window": vectorised_s,
            "reference_s_per_window": reference_s,
            "vectorised_us_per_object": vectorised_s / num_nodes * 1e6,
            "vectorised_us_per_edge": vectorised_s / num_edges * 1e6,
            "reference_us_per_object": reference_s / num_nodes * 1e6,
            "reference_us_per_edge": reference_s / num_edges * 1e6,
            "speedup": reference_s / vectorised_s,
        },
        "window": {"size": num_frames, "pushes_timed": len(push_times),
                   "push_s_per_frame": push_s, "rebuild_s_per_frame": rebuild_s,
                   "speedup": rebuild_s / push_s},
    }


def format_table(result: dict) -> str:
    build, window, graph = result["build"], result["window"], result["graph"]
    cfg, machine = result["config"], result["machine"]
    lines = [f"window: {cfg['frames']} frames x {cfg['objects']} objects, {cfg['dim']}-d features "
             f"-> {graph['nodes']} nodes, {graph['edges']} edges (max |weight error| "
             f"{graph['max_abs_weight_error']:.1e})",
             f"{'method':<26}{'s / window':>12}{'us / object':>14}{'us / edge':>12}"]
    methods = (("builder (vectorised)", "vectorised"), ("reference (Python loops)", "reference"))
    for name, key in methods:
        lines.append(f"{name:<26}{build[key + '_s_per_window']:>12.5f}"
                     f"{build[key + '_us_per_object']:>14.2f}{build[key + '_us_per_edge']:>12.3f}")
    lines += [f"speed-up: {build['speedup']:.1f}x",
              f"sliding window (size {window['size']}): push "
              f"{window['push_s_per_frame'] * 1e3:.2f} ms per frame vs rebuild "
              f"{window['rebuild_s_per_frame'] * 1e3:.2f} ms ({window['speedup']:.1f}x)",
              f"torch {machine['torch']}, {machine['torch_threads']} threads, "
              f"{machine['cpu_count']} CPUs ({machine['processor'] or 'unknown cpu'})"]
    return "\n".join(lines)


def write_json(result: dict, path: Path) -> None:
    """Write atomically (see :mod:`stgraph.fileio`)."""
    atomic_write_text(path, json.dumps(result, indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30, help="frames per window")
    parser.add_argument("--objects", type=int, default=40, help="objects per frame")
    parser.add_argument("--dim", type=int, default=256, help="feature width D")
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's own choice)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "graph_build.json")
    args = parser.parse_args(argv)
    if min(args.frames, args.objects, args.dim, args.repeats) < 1:
        parser.error("--frames, --objects, --dim and --repeats must be >= 1")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    result = run(args.frames, args.objects, args.dim, args.repeats, args.seed)
    print(format_table(result))
    write_json(result, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
