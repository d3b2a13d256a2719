"""UCSD Ped2: the pixel autoencoders (STM-AE, dissociation) with their CLI defaults, frame and pixel
level, next to the FrameDifference baseline under the same post-processing.

One command per method from the repository root (data in ``../shared/data``); each method writes
``benchmarks/results/ped2_autoencoders_<method>.json`` and ``--merge`` gathers them into
``benchmarks/results/ped2_autoencoders.json``::

    taskset -c 1 .venv/bin/python benchmarks/ped2_autoencoders.py --method stm_ae
    taskset -c 1 .venv/bin/python benchmarks/ped2_autoencoders.py --method dissociation
    .venv/bin/python benchmarks/ped2_autoencoders.py --method frame_difference
    taskset -c 1 .venv/bin/python benchmarks/ped2_autoencoders.py --dataset avenue --method stm_ae
    .venv/bin/python benchmarks/ped2_autoencoders.py --merge

``--dataset avenue`` trains on the 2 Avenue training videos present (389 frames) and scores the
6 test videos present (1353 frames; frame level only: Avenue's masks are .mat files). The
node-feature rows (DGI on autoencoder features) come from ``ped2_autoencoders_dgi.py``.

Per method: fit on the 16 training videos (2550 frames; the estimator's defaults unless
``--set name=value``), score the 12 test videos (2010 frames) frame by frame (the streaming
step), then frame AUC micro / macro and EER under three protocols: ``raw`` (scores as they
are), ``minmax`` (per-video min-max, the papers' Eq. 12 / Eq. 14) and ``minmax_smooth`` (min-max
after a temporal mean filter of ``--smooth`` frames); pixel AUC of the pixel maps against the
official masks (:func:`stgraph.region_metrics.evaluate_masks`); number of parameters, training
time and scoring FPS (including flow and resizing) on this CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "1")
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from stgraph.fileio import atomic_write_text  # noqa: E402
from stgraph.metrics import evaluate_frames  # noqa: E402
from stgraph.region_metrics import evaluate_masks  # noqa: E402
from stgraph.registry import lookup  # noqa: E402

SHARED = Path(os.environ.get("STGRAPH_DATA", REPO.parent / "shared" / "data"))
DATA = SHARED / "ucsd_ped2"
RESULTS = REPO / "benchmarks" / "results"


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def videos_of(dataset: str, data: Path) -> tuple[list[Path], list[Path], dict, Path | None]:
    """Training videos, test videos, frame labels and the pixel-mask root (None: no PNG masks)."""
    if dataset == "avenue":
        root = SHARED / "avenue"
        return (sorted((root / "training_videos").glob("*.avi")),
                sorted((root / "testing_videos").glob("*.avi")),
                dict(np.load(root / "ground_truth" / "frame_labels.npz")), None)
    return (sorted(p for p in (data / "training" / "frames").iterdir() if p.is_dir()),
            sorted(p for p in (data / "testing" / "frames").iterdir() if p.is_dir()),
            dict(np.load(data / "ground_truth" / "frame_labels.npz")),
            data / "ground_truth" / "pixel_masks")


def run(method: str, data: Path, smooth: int, overrides: dict, seed: int,
        dataset: str = "ped2") -> dict:
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    cls = lookup("model", method)
    params = {"progress": False, **overrides}
    if "seed" in cls.defaults():
        params["seed"] = seed
    if "flow_cache" in cls.defaults():
        params.setdefault("flow_cache", str(REPO / ".cache" / "flow"))
    model = cls(**params)
    train, test, labels, mask_root = videos_of(dataset, data)
    t0 = time.perf_counter()
    model.fit([str(p) for p in train])
    fit_s = time.perf_counter() - t0
    if hasattr(model, "net_"):  # kept for the node-feature rows (trained once)
        prefix = "" if dataset == "ped2" else f"{dataset}_"
        model.save(REPO / ".cache" / "ped2_autoencoders" / f"{prefix}{method}_seed{seed}")
    from stgraph.scores import ScoreTable

    t0 = time.perf_counter()
    table = ScoreTable.concat([model.score(str(p), video=p.stem) for p in test])
    score_s = time.perf_counter() - t0
    n_test = sum(len(v) for v in labels.values())
    protocols = {}
    for name, kwargs in {"raw": {}, "minmax": {"normalize": True},
                         "minmax_smooth": {"normalize": True, "smooth": smooth}}.items():
        ev = evaluate_frames(table.frame_scores(**kwargs), labels)
        protocols[name] = {k: ev[k] for k in ("micro_auc", "macro_auc", "eer")}
    masks = (evaluate_masks(table, mask_root) if mask_root is not None
             else {"pixel_auc": None})
    net = getattr(model, "net_", None)
    result = {
        "method": method, "params": model.get_params(),
        "n_parameters": int(sum(p.numel() for p in net.parameters())) if net is not None else 0,
        "fit_seconds": round(fit_s, 1), "score_seconds": round(score_s, 1),
        "score_fps": round(n_test / score_s, 1), "frames": protocols,
        "pixel_auc": masks["pixel_auc"], "smooth": smooth,
        "train_losses": getattr(model, "train_losses_", None),
        "chosen": {k: getattr(model, k) for k in ("lambda_r_", "alpha_") if hasattr(model, k)},
        "machine": "2-core CPU, 1 core pinned (taskset -c 1), torch threads "
                   f"{torch.get_num_threads()}, {platform.processor() or platform.machine()}",
        "data": ("UCSD Ped2: train 16 videos / 2550 frames, test 12 videos / 2010 frames"
                 if dataset == "ped2" else "CUHK Avenue (partial): train 2 videos / 389 frames, "
                 "test 6 videos / 1353 frames"),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", default="stm_ae")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--dataset", choices=("ped2", "avenue"), default="ped2")
    parser.add_argument("--smooth", type=int, default=9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override an estimator parameter (e.g. --set epochs=3)")
    parser.add_argument("--merge", action="store_true",
                        help="gather the per-method files into ped2_autoencoders.json")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.merge:
        parts = {p.stem.split("ped2_autoencoders_", 1)[1]: json.loads(p.read_text())
                 for p in sorted(RESULTS.glob("ped2_autoencoders_*.json"))}
        merged = {"standalone": {k: v for k, v in parts.items()
                                 if k != "dgi" and not k.startswith("avenue_")},
                  "avenue": {k[7:]: v for k, v in parts.items() if k.startswith("avenue_")},
                  "dgi_node_features": parts.get("dgi")}
        seeds: dict[str, list] = {}
        for name, r in merged["standalone"].items():
            seeds.setdefault(name.split("_seed")[0], []).append(r["frames"])
        merged["seed_means"] = {
            name: {"seeds": len(runs), **{proto: {m: float(np.mean([r[proto][m] for r in runs]))
                                                  for m in ("micro_auc", "macro_auc", "eer")}
                                          for proto in runs[0]}}
            for name, runs in seeds.items()}
        atomic_write_text(RESULTS / "ped2_autoencoders.json", json.dumps(merged, indent=2))
        for name, r in [*merged["standalone"].items(),
                        *((f"avenue {k}", v) for k, v in merged["avenue"].items())]:
            f = r["frames"]
            print(f"{name:18s} micro raw {f['raw']['micro_auc']:.3f} minmax "
                  f"{f['minmax']['micro_auc']:.3f} minmax+smooth {f['minmax_smooth']['micro_auc']:.3f}"
                  f" | macro raw {f['raw']['macro_auc']:.3f} | pixel {r['pixel_auc']} | "
                  f"fit {r['fit_seconds']} s, {r['score_fps']} FPS")
        return
    overrides = dict((k, _value(v)) for k, v in (s.split("=", 1) for s in args.set))
    result = run(args.method, args.data, args.smooth, overrides, args.seed, args.dataset)
    tag = ("" if args.dataset == "ped2" else f"{args.dataset}_") + args.method + ("" if not overrides else "_" + "_".join(f"{k}{v}" for k, v in overrides.items()))
    tag += f"_seed{args.seed}" if args.seed else ""
    atomic_write_text(RESULTS / f"ped2_autoencoders_{tag}.json", json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "params"}, indent=2))


if __name__ == "__main__":
    main()
