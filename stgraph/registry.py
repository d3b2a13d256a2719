"""The registry of the library's components: what a saved pipeline or model may name.

Saved pipelines and model directories name their parts (detector, feature producer, graph
builder, model) by **registered name**, and loading looks each name up here. Nothing else is ever
imported or called: a crafted ``pipeline.json`` naming a function (``stgraph.fileio.atomic_write_text``)
or an unknown class is refused with a :class:`RegistryError` before anything is built.

Four kinds of component::

    detector   image -> Detections                 (detectors/)
    features   (image, Detections) -> [N, D]       (stgraph.features)
    builder    list[Detections] -> Data | HeteroData (stgraph.graphs)
    model      an estimator (stgraph.models)        (also the CLI's ``--method NAME``)

The library's own components are listed in :data:`BUILTIN` by module path and imported lazily
(``detectors`` must stay importable without torch; optional backends load only when used). A
user's own component joins with :func:`register`::

    from stgraph.registry import register

    @register("features", "my_features")
    class MyFeatures(FeatureProducer): ...
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, TypeVar

__all__ = ["RegistryError", "register", "lookup", "names", "name_of", "KINDS", "BUILTIN",
           "build_component", "component_spec", "is_spec", "SPEC_KEYS"]

KINDS = ("detector", "features", "builder", "model")

T = TypeVar("T", bound=type)


class RegistryError(ValueError):
    """An unknown component name, or a spec that is not a registered component."""


#: kind -> name -> "module:Class" of the library's own components (imported on first lookup).
BUILTIN: dict[str, dict[str, str]] = {
    "detector": {
        "MotionRegionDetector": "detectors.motion:MotionRegionDetector",
        "YoloxOnnxDetector": "detectors.yolox_onnx:YoloxOnnxDetector",
        "UltralyticsDetector": "detectors.ultralytics_yolo:UltralyticsDetector",
        "TorchvisionDetector": "detectors.torchvision_rcnn:TorchvisionDetector",
        "Detectron2Detector": "detectors.detectron2_rcnn:Detectron2Detector",
        "CompositeDetector": "detectors.composite:CompositeDetector",
    },
    "features": {
        "GeometryFeatures": "stgraph.features.geometry:GeometryFeatures",
        "ClassFeatures": "stgraph.features.classes:ClassFeatures",
        "RoIAlignFeatures": "stgraph.features.roi:RoIAlignFeatures",
        "ConcatFeatures": "stgraph.features.base:ConcatFeatures",
        "SnippetExtractor": "stgraph.features.snippets:SnippetExtractor",
        "STMAEFeatures": "stgraph.features.autoencoder:STMAEFeatures",
        "DissociationFeatures": "stgraph.features.autoencoder:DissociationFeatures",
        "STAEFeatures": "stgraph.features.stae:STAEFeatures",
        "FlowFeatures": "stgraph.features.motion:FlowFeatures",
        "TrackFeatures": "stgraph.features.tracks:TrackFeatures",
    },
    "builder": {
        "ObjectGraphBuilder": "stgraph.graphs.object_graph:ObjectGraphBuilder",
    },
    "model": {
        "anograph": "stgraph.models.anograph:AnoGraph",
        "frame_difference": "stgraph.models.frame_difference:FrameDifference",
        "mil_linear": "stgraph.models.ssrl:LinearMIL",
        "ssrl": "stgraph.models.ssrl:SSRL",
        "stm_ae": "stgraph.models.stm_ae:STMAE",
        "dissociation": "stgraph.models.dissociation:DissociationAE",
        "strl": "stgraph.models.strl:STRL",
        "evidence": "stgraph.models.evidence:EvidenceFusion",
        "late_fusion": "stgraph.models.late_fusion:LateFusion",
        "patch_knn": "stgraph.models.patch_knn:PatchKNN",
    },
}

_REGISTERED: dict[str, dict[str, type]] = {kind: {} for kind in KINDS}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise RegistryError(f"unknown component kind {kind!r}; kinds are {KINDS}")


def register(kind: str, name: str | None = None) -> Callable[[T], T]:
    """Class decorator: make ``cls`` loadable under ``name`` (default: the class name).

    Raises:
        RegistryError: unknown kind, or the name is taken by another class.
    """
    _check_kind(kind)

    def decorate(cls: T) -> T:
        key = name or cls.__name__
        taken = _REGISTERED[kind].get(key)
        if taken is not None and taken is not cls:
            raise RegistryError(f"{kind} name {key!r} is already registered for "
                                f"{taken.__module__}.{taken.__qualname__}")
        _REGISTERED[kind][key] = cls
        cls._registry_name = key  # type: ignore[attr-defined]
        return cls

    return decorate


def lookup(kind: str, name: str) -> type:
    """The class registered as ``name`` of ``kind`` (built-ins are imported on first use).

    Raises:
        RegistryError: no such component; the message lists the known names.
    """
    _check_kind(kind)
    if not isinstance(name, str):
        raise RegistryError(f"a {kind} must be named by a string, got {type(name).__name__}")
    if name in _REGISTERED[kind]:
        return _REGISTERED[kind][name]
    target = BUILTIN[kind].get(name)
    if target is None:
        raise RegistryError(f"unknown {kind} {name!r}; known: {', '.join(names(kind))}")
    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    _REGISTERED[kind].setdefault(name, cls)
    return cls


def names(kind: str) -> list[str]:
    """Registered names of ``kind`` (built-ins and user registrations), sorted."""
    _check_kind(kind)
    return sorted(set(BUILTIN[kind]) | set(_REGISTERED[kind]))


def _registered_name(cls: type, kind: str) -> str | None:
    for key, registered in _REGISTERED[kind].items():
        if registered is cls:
            return key
    qualified = f"{cls.__module__}:{cls.__qualname__}"
    return next((key for key, target in BUILTIN[kind].items() if target == qualified), None)


def name_of(obj: Any, kind: str | None = None) -> tuple[str, str]:
    """``(kind, registered name)`` of ``obj``'s class (searched in every kind when None).

    Raises:
        RegistryError: the class is not registered (it could not be loaded back).
    """
    cls = obj if isinstance(obj, type) else type(obj)
    for candidate in (KINDS if kind is None else (kind,)):
        _check_kind(candidate)
        key = _registered_name(cls, candidate)
        if key is not None:
            return candidate, key
    what = "component" if kind is None else kind
    raise RegistryError(f"{cls.__qualname__} is not a registered {what}: decorate it with "
                        f"@stgraph.registry.register(kind) so that it can be saved and loaded")


#: Keys of a saved component spec.
SPEC_KEYS = frozenset({"kind", "class", "params"})


def is_spec(value: Any) -> bool:
    """Whether ``value`` is a saved component spec (a dict with exactly :data:`SPEC_KEYS`)."""
    return isinstance(value, dict) and set(value) == SPEC_KEYS


def component_spec(obj: Any, kind: str | None = None) -> dict[str, Any]:
    """``{"kind", "class": registered name, "params": obj.get_params()}``: enough to rebuild it.

    Nested components in ``params`` (the producers of a ``ConcatFeatures``, a model's graph
    builder) are specs themselves (``get_params`` returns them so).
    """
    if not hasattr(obj, "get_params"):
        raise RegistryError(f"{type(obj).__name__} has no get_params(); it cannot be saved")
    kind, name = name_of(obj, kind)
    return {"kind": kind, "class": name, "params": obj.get_params()}


def build_component(spec: Any, kind: str) -> Any:
    """Inverse of :func:`component_spec`: rebuild a registered component from its spec.

    Specs nested in ``params`` (or lists of them) are rebuilt as components of their own kind.
    Only registered names are looked up; the class is called with the saved keyword arguments
    and nothing else.

    Raises:
        RegistryError: not a spec, a spec of another kind, an unknown name, or arguments the
            class refuses.
    """
    _check_kind(kind)
    if not is_spec(spec) or not isinstance(spec["class"], str):
        raise RegistryError(f"a saved {kind} must be {{'kind', 'class', 'params'}}, "
                            f"got {str(spec)[:80]}")
    if spec["kind"] != kind:
        raise RegistryError(f"expected a saved {kind}, got a {spec['kind']!r} "
                            f"({spec['class']!r})")
    params = spec["params"]
    if not isinstance(params, dict):
        raise RegistryError(f"saved {kind} {spec['class']!r}: params must be a mapping")
    cls = lookup(kind, spec["class"])

    def rebuild(value: Any) -> Any:
        if is_spec(value):
            return build_component(value, value["kind"])
        if isinstance(value, list) and value and all(is_spec(v) for v in value):
            return [build_component(v, v["kind"]) for v in value]
        return value

    kwargs = {key: rebuild(value) for key, value in params.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise RegistryError(f"cannot rebuild {kind} {spec['class']!r} from its saved "
                            f"params: {exc}") from exc
