"""DGI at scale: one training epoch on 100,000 nodes / 1,000,000 edges, before and after.

Synthetic windows (issue 15): ``--windows`` graphs of ``--nodes`` nodes and ``--edges`` random
weighted edges each (default 100 x 1,000 nodes x 10,000 edges = 100,000 nodes, 1,000,000
edges), 64-d features, hidden 256, mini-batches of 64 windows (AnoGraph's default). Times:

- ``reference``: the loop before the sparse path (PyG ``DataLoader`` batches, ``GCNConv``
  scatter, ``h W s`` logits), one epoch;
- ``sparse``: :func:`stgraph.models.dgi_training.train_dgi`'s epoch (CSR product on the input
  width, corruption and real nodes in one dense product, batches gathered by index), with the
  one-time packing (``PackedGraphs``: normalisation + ``Â x``) timed apart.

Both start from the same weights and seed; the first epoch's losses are compared. Results are
merged into ``benchmarks/results/scale.json`` under ``dgi_epoch.threads_<n>``::

    OMP_NUM_THREADS=1 python benchmarks/scale.py --threads 1
    OMP_NUM_THREADS=2 python benchmarks/scale.py --threads 2

How cost grows (``--growth``): time and peak memory of building the object graph
(:class:`~stgraph.graphs.ObjectGraphBuilder`, AnoGraph's default sparse settings, the whole input
as one graph) and of :meth:`AnoGraph.score <stgraph.models.anograph.AnoGraph.score>` (chunked
whole-video pass, ScoreTable included) on random synthetic detections (:func:`random_detections`:
boxes of about 12x28 px walking across a 240x360 frame, 64-d N(0, 1) features), (a) against video
length at 10 objects per frame, (b) against objects per frame at a fixed length. A tiny AnoGraph
(hidden 256, 2 epochs, 105 frames x 10 objects) is fitted once and saved; every measurement runs in
a fresh process (one per phase and size) on one thread, and its peak memory is the rise of the
process's resident-set high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs``) over
its resident set just before the phase (the input detections already built). Merged into
``scale.json`` under ``growth``, plotted to ``results/scale_growth.png``::

    taskset -c 1 python benchmarks/scale.py --growth
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import stgraph._pyg  # noqa: F401
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from stgraph.models.base import make_generator
from stgraph.models.dgi_training import PackedGraphs, _train_epoch, graph_inputs
from stgraph.nn.dgi import AnoGraphDGI

RESULTS = Path(__file__).resolve().parent / "results" / "scale.json"


def synthetic_windows(windows: int, nodes: int, edges: int, width: int, seed: int = 0
                      ) -> list[Data]:
    """``windows`` graphs: features N(0, 1) [nodes, width], ``edges`` random weighted edges."""
    g = torch.Generator().manual_seed(seed)
    return [Data(x=torch.randn(nodes, width, generator=g),
                 edge_index=torch.randint(0, nodes, (2, edges), generator=g),
                 edge_weight=torch.rand(edges, generator=g) + 0.01,
                 edge_type=torch.randint(0, 2, (edges,), generator=g))
            for _ in range(windows)]


def network(width: int, hidden: int) -> AnoGraphDGI:
    torch.manual_seed(0)
    return AnoGraphDGI(width, hidden)


def reference_epoch(model: AnoGraphDGI, graphs: list[Data], batch_size: int, seed: int) -> float:
    """One epoch of the training loop before the sparse path (stgraph 0.2's ``_train_epoch``)."""
    generator = make_generator(seed)
    loader = DataLoader(graphs, batch_size=batch_size, shuffle=True, generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        pos_h, neg_h, summary = model(*graph_inputs(batch), batch=batch.batch, generator=generator)
        reference_logits = lambda h: ((h @ model.weight) * summary[batch.batch]).sum(-1)  # noqa: E731
        pos, neg = reference_logits(pos_h), reference_logits(neg_h)
        loss = (torch.nn.functional.softplus(-pos).sum() + torch.nn.functional.softplus(neg).sum()
                ) / (pos.numel() + neg.numel())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * batch.num_nodes
        count += batch.num_nodes
    return total / count


def sparse_epoch(model: AnoGraphDGI, graphs: list[Data], batch_size: int, seed: int
                 ) -> tuple[float, float, float, float]:
    """(pack seconds, epoch seconds, epoch CPU seconds of this process, loss) of train_dgi's
    path."""
    generator = make_generator(seed)
    start = time.perf_counter()
    packed = PackedGraphs(model, graphs, torch.device("cpu"))
    packed_s = time.perf_counter() - start
    loader = torch.utils.data.DataLoader(range(len(graphs)), batch_size=batch_size, shuffle=True,
                                         generator=generator, collate_fn=torch.as_tensor)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    start, cpu = time.perf_counter(), time.process_time()
    loss = _train_epoch(model, packed, loader, optimizer, generator)
    return packed_s, time.perf_counter() - start, time.process_time() - cpu, loss


def main() -> None:
    if "--growth" in sys.argv[1:] or "--growth-point" in sys.argv[1:]:
        return growth_main()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--windows", type=int, default=100)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--edges", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-repeats", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    graphs = synthetic_windows(args.windows, args.nodes, args.edges, args.width)
    load_at_start = os.getloadavg()
    reference, reference_cpu = [], []
    for _ in range(args.reference_repeats):
        model = network(args.width, args.hidden)
        start, cpu = time.perf_counter(), time.process_time()
        ref_loss = reference_epoch(model, graphs, args.batch_size, seed=0)
        reference.append(time.perf_counter() - start)
        reference_cpu.append(time.process_time() - cpu)
    sparse, sparse_cpu, packs = [], [], []
    for _ in range(args.repeats):
        model = network(args.width, args.hidden)
        pack_s, epoch_s, epoch_cpu, loss = sparse_epoch(model, graphs, args.batch_size, seed=0)
        sparse.append(epoch_s)
        sparse_cpu.append(epoch_cpu)
        packs.append(pack_s)
    result = {
        "command": f"OMP_NUM_THREADS={args.threads} python benchmarks/scale.py "
                   f"--threads {args.threads}",
        "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs shared with other jobs "
                   "(see the load averages)",
        "threads": args.threads,
        "graph": {"windows": args.windows, "nodes": args.windows * args.nodes,
                  "edges": args.windows * args.edges, "features": args.width,
                  "hidden": args.hidden, "batch_size_windows": args.batch_size},
        "reference_epoch_s": min(reference), "reference_epoch_all_s": reference,
        "sparse_epoch_s": min(sparse), "sparse_epoch_all_s": sparse,
        "sparse_pack_once_s": min(packs),
        # CPU seconds of this process (all its threads): with 1 thread, the wall time the epoch
        # would take on an idle core; the wall times above include waiting for a shared core.
        "reference_epoch_cpu_s": min(reference_cpu), "sparse_epoch_cpu_s": min(sparse_cpu),
        "load_average_at_start": load_at_start,
        "speedup": min(reference) / min(sparse),
        "windows_per_s": args.windows / min(sparse),
        "reference_windows_per_s": args.windows / min(reference),
        "loss_reference": ref_loss, "loss_sparse": loss,
        "loss_abs_diff": abs(ref_loss - loss),
        "measured_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "load_average_at_end": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    existing.setdefault("dgi_epoch", {})[f"threads_{args.threads}"] = result
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")


# ============================================================================ how cost grows
GROWTH_PNG = RESULTS.parent / "scale_growth.png"
GROWTH_WIDTH = 64
GROWTH_IMAGE_HW = (240, 360)


def random_detections(frames: int, objects: int, width: int = GROWTH_WIDTH, seed: int = 0
                      ) -> list:
    """``frames`` Detections of ``objects`` boxes each: people-sized boxes (about 12x28 px) that
    walk horizontally at 1-2 px/frame across a 240x360 frame (wrapping around), features N(0, 1)
    [objects, width]. Vectorised: 100,000 frames take a few seconds."""
    from detectors.base import Detections

    rng = np.random.default_rng(seed)
    height, image_w = GROWTH_IMAGE_HW
    size = rng.uniform([10, 24], [14, 32], (objects, 2))
    start = rng.uniform([0, 0.28 * height], [image_w, 0.95 * height - 32], (objects, 2))
    speed = rng.choice([-1, 1], objects) * rng.uniform(1, 2, objects)
    t = np.arange(frames)[:, None]
    x = (start[:, 0] + speed * t) % (image_w - size[:, 0])
    y = np.broadcast_to(start[:, 1], x.shape)
    boxes = np.stack([x, y, x + size[:, 0], y + size[:, 1]], -1).astype(np.float32)
    features = rng.standard_normal((frames, objects, width), dtype=np.float32)
    scores, labels = np.full(objects, 0.9, np.float32), np.zeros(objects, np.int64)
    return [Detections(boxes[k], scores, labels, frame_index=k, image_size=GROWTH_IMAGE_HW,
                       class_names=("person",), features=features[k]) for k in range(frames)]


def _rss_kib(field: str) -> int:
    """``VmRSS`` or ``VmHWM`` (KiB) of this process, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def growth_point(phase: str, frames: int, objects: int, model_dir: str) -> dict:
    """One measurement in this (fresh) process: ``phase`` "build" or "score" on ``frames`` x
    ``objects`` random detections. Returns seconds, CPU seconds and peak MiB above the resident
    set before the phase (the input detections and the loaded model already in memory)."""
    import gc

    from stgraph.models.anograph import AnoGraph

    torch.set_num_threads(1)
    model = AnoGraph.load(model_dir)
    model.progress = False
    detections = random_detections(frames, objects, seed=1)
    builder = model.graph_builder()
    if phase == "build":  # warm the code paths on a small input
        builder.build(detections[:5])
    else:
        model.score(detections[:5])
    gc.collect()
    before = _rss_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current resident set
    start, cpu = time.perf_counter(), time.process_time()
    if phase == "build":
        out = builder.build(detections)
        extra = {"edges": int(out.edge_index.shape[1]), "nodes": int(out.num_nodes)}
    else:
        out = model.score(detections)
        extra = {"rows": len(out)}
    seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    peak_mib = (_rss_kib("VmHWM") - before) / 1024
    if phase == "build":  # where the build's time goes: the dense spatial and temporal blocks
        from stgraph.graphs.object_graph import node_tensors

        nodes, counts = node_tensors(detections), [len(d) for d in detections]
        start = time.perf_counter()
        builder._spatial_weights(nodes["box"], counts)
        extra["spatial_blocks_s"] = time.perf_counter() - start
        start = time.perf_counter()
        builder._temporal_weights(nodes["x"], counts)
        extra["temporal_blocks_s"] = time.perf_counter() - start
    return {"phase": phase, "frames": frames, "objects_per_frame": objects,
            "objects": frames * objects, "seconds": seconds, "cpu_s": cpu_s,
            "peak_mib": peak_mib, "rss_before_mib": before / 1024, **extra}


def loglog_slope(sizes: list[float], values: list[float]) -> float:
    """Least-squares slope of log(value) against log(size): ~1 linear, ~2 quadratic."""
    return float(np.polyfit(np.log(sizes), np.log(values), 1)[0])


def fit_tiny_anograph(model_dir: str) -> dict:
    """Fit and save the tiny AnoGraph every measurement loads (105 frames x 10 objects)."""
    from stgraph.models.anograph import AnoGraph

    torch.set_num_threads(1)
    start = time.perf_counter()
    model = AnoGraph(epochs=2, progress=False).fit([random_detections(105, 10, seed=0)])
    model.save(model_dir)
    return {"hidden": model.hidden, "epochs": model.epochs, "train_frames": 105,
            "train_objects_per_frame": 10, "features": GROWTH_WIDTH,
            "builder": model.graph_builder().get_params(), "fit_s": time.perf_counter() - start}


def _run_point(phase: str, frames: int, objects: int, model_dir: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--growth-point", phase, str(frames),
                          str(objects), model_dir], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _sweep(name: str, sizes: list[tuple[int, int]], model_dir: str, deadline: float) -> dict:
    """Build and score points over ``sizes`` [(frames, objects per frame)], smallest first;
    stops (and says so) when the time budget is spent."""
    points, skipped = [], []
    for frames, objects in sizes:
        if time.perf_counter() > deadline:
            skipped.append([frames, objects])
            continue
        for phase in ("build", "score"):
            point = _run_point(phase, frames, objects, model_dir)
            print(f"[{name}] {phase:5s} {frames:7d} frames x {objects:3d} objects: "
                  f"{point['seconds']:8.2f} s, peak +{point['peak_mib']:8.1f} MiB", flush=True)
            points.append(point)
    return {"points": points, "skipped_for_time": skipped}


def _growth_fits(sweep: dict, axis: str) -> dict:
    fits = {}
    for phase in ("build", "score"):
        rows = [p for p in sweep["points"] if p["phase"] == phase]
        if len(rows) < 2:
            continue
        sizes = [p[axis] for p in rows]
        top = rows[-3:]
        fits[phase] = {
            "time_slope": loglog_slope(sizes, [p["seconds"] for p in rows]),
            "time_slope_largest3": loglog_slope([p[axis] for p in top],
                                                [p["seconds"] for p in top]),
            "cpu_time_slope": loglog_slope(sizes, [max(p["cpu_s"], 1e-4) for p in rows]),
            "memory_slope": loglog_slope(sizes, [max(p["peak_mib"], 1e-3) for p in rows]),
            "memory_slope_largest3": loglog_slope([p[axis] for p in top],
                                                  [max(p["peak_mib"], 1e-3) for p in top]),
            "us_per_object": [1e6 * p["seconds"] / p["objects"] for p in rows],
        }
    return fits


def plot_growth(growth: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    series = [("frames", "frames", "video length (frames, 10 objects/frame)", "o"),
              ("objects_per_frame", "objects_per_frame",
               f"objects per frame ({growth['objects_per_frame']['fixed_frames']} frames)", "s")]
    for sweep_key, axis, label, marker in series:
        for phase, colour in (("build", "tab:blue"), ("score", "tab:red")):
            rows = [p for p in growth[sweep_key]["points"] if p["phase"] == phase]
            if not rows:
                continue
            xs = [p[axis] for p in rows]
            style = "-" if sweep_key == "frames" else "--"
            slope = growth[sweep_key]["fits"][phase]
            axes[0].plot(xs, [p["seconds"] for p in rows], style, marker=marker, color=colour,
                         label=f"{phase} vs {axis.replace('_', ' ')} (slope "
                               f"{slope['time_slope']:.2f})")
            axes[1].plot(xs, [max(p["peak_mib"], 1e-1) for p in rows], style, marker=marker,
                         color=colour, label=f"{phase} vs {axis.replace('_', ' ')} (slope "
                                             f"{slope['memory_slope']:.2f})")
    for ax, ylabel in zip(axes, ("wall time (s)", "peak memory above input (MiB, RSS)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("frames (solid) / objects per frame (dashed)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_title("time: object graph build, AnoGraph.score")
    axes[1].set_title("peak memory (resident set rise)")
    fig.suptitle("stgraph cost growth, random synthetic detections, 1 CPU thread", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def growth_main() -> None:
    parser = argparse.ArgumentParser(description="How cost grows (see the module docstring).")
    parser.add_argument("--growth", action="store_true")
    parser.add_argument("--growth-point", nargs=4, metavar=("PHASE", "FRAMES", "OBJECTS", "MODEL"))
    parser.add_argument("--frames", default="1000,3000,10000,30000,100000",
                        help="video lengths of sweep (a), comma-separated")
    parser.add_argument("--objects-per-frame", type=int, default=10)
    parser.add_argument("--objects", default="5,10,20,50,100,200",
                        help="objects per frame of sweep (b), comma-separated")
    parser.add_argument("--fixed-frames", type=int, default=500)
    parser.add_argument("--budget-s", type=float, default=480.0,
                        help="stop starting new sizes after this many seconds")
    args = parser.parse_args()
    if args.growth_point:
        phase, frames, objects, model_dir = args.growth_point
        print(json.dumps(growth_point(phase, int(frames), int(objects), model_dir)))
        return
    started = time.perf_counter()
    load_at_start = os.getloadavg()
    lengths = [int(v) for v in args.frames.split(",")]
    counts = [int(v) for v in args.objects.split(",")]
    with tempfile.TemporaryDirectory() as model_dir:
        model = fit_tiny_anograph(model_dir)
        # share the budget between the sweeps: (a) may use up to 60% of it
        by_length = _sweep("length", [(f, args.objects_per_frame) for f in lengths], model_dir,
                           started + 0.6 * args.budget_s)
        by_objects = _sweep("objects", [(args.fixed_frames, m) for m in counts], model_dir,
                            started + args.budget_s)
    by_length["fits"] = _growth_fits(by_length, "frames")
    by_length["objects_per_frame"] = args.objects_per_frame
    by_objects["fits"] = _growth_fits(by_objects, "objects_per_frame")
    by_objects["fixed_frames"] = args.fixed_frames
    growth = {
        "command": "taskset -c 1 python benchmarks/scale.py --growth",
        "data": "random synthetic detections (benchmarks/scale.py random_detections): boxes of "
                f"about 12x28 px walking in a {GROWTH_IMAGE_HW[0]}x{GROWTH_IMAGE_HW[1]} frame, "
                f"{GROWTH_WIDTH}-d N(0, 1) features",
        "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs shared with other jobs, "
                   "1 core pinned (taskset -c 1), 1 torch thread",
        "model": model,
        "memory": "peak resident set (VmHWM, reset via /proc/self/clear_refs) minus the resident "
                  "set before the phase, in a fresh process per point; the input detections "
                  "and the model are not counted",
        "build": "ObjectGraphBuilder(**SPARSE_GRAPH).build(all frames) as one graph; "
                 "spatial_blocks_s / temporal_blocks_s time the dense blocks alone",
        "score": "AnoGraph.score(all frames): whole-video pass in 1000-frame chunks, "
                 "GCN embedding, Mahalanobis score, ScoreTable",
        "frames": by_length, "objects_per_frame": by_objects,
        "total_s": time.perf_counter() - started,
        "load_average_at_start": load_at_start, "load_average_at_end": os.getloadavg(),
        "measured_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }
    for key in ("frames", "objects_per_frame"):
        for phase, fit in growth[key]["fits"].items():
            print(f"{key:17s} {phase:5s} time slope {fit['time_slope']:.2f} "
                  f"(largest 3: {fit['time_slope_largest3']:.2f}), memory slope "
                  f"{fit['memory_slope']:.2f} (largest 3: {fit['memory_slope_largest3']:.2f})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    existing["growth"] = growth
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    plot_growth(growth, GROWTH_PNG)
    print(f"wrote {RESULTS} (key 'growth') and {GROWTH_PNG}")


if __name__ == "__main__":
    main()
