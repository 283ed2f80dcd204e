"""A small ONNX graph interpreter as a ``torch.nn.Module``, so gradients flow through ONNX models.

It covers the operators of small convolutional autoencoders (VAElight and the like): Conv,
ConvTranspose, LeakyRelu, Relu, Sigmoid, Tanh, AveragePool, Add, Sub, Mul, Div, Concat,
Identity, Constant, and nearest-neighbour Upsample / Resize with constant scales. Any other
operator raises :class:`WeightsError` naming it, at load time rather than mid-run.

Initializers become buffers (the weights are frozen data); the graph runs node by node in the
file's order, which ONNX requires to be topological.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import WeightsError

Attrs = dict[str, Any]
OpFn = Callable[["OnnxGraph", list[torch.Tensor | None], Attrs], list[torch.Tensor]]


def _spatial_pads(
    x: torch.Tensor,
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    attrs: Attrs,
) -> list[int]:
    """ONNX ``pads`` (begins then ends) for a conv/pool, resolving ``auto_pad``."""
    n = len(kernel)
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = [], []
        for i in range(n):
            size = x.shape[2 + i]
            out = math.ceil(size / strides[i])
            total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size, 0)
            small, big = total // 2, total - total // 2
            begins.append(small if auto == "SAME_UPPER" else big)
            ends.append(big if auto == "SAME_UPPER" else small)
        return begins + ends
    if auto == "VALID":
        return [0] * (2 * n)
    return list(attrs.get("pads", [0] * (2 * n)))


def _pad(x: torch.Tensor, pads: Sequence[int], value: float = 0.0) -> torch.Tensor:
    n = len(pads) // 2
    if not any(pads):
        return x
    torch_pads: list[int] = []
    for i in reversed(range(n)):  # F.pad wants the last dimension first
        torch_pads += [pads[i], pads[i + n]]
    return F.pad(x, torch_pads, value=value)


def _conv(g: OnnxGraph, ins: list[torch.Tensor | None], a: Attrs) -> list[torch.Tensor]:
    x, w, b = ins[0], ins[1], ins[2] if len(ins) > 2 else None
    assert x is not None and w is not None
    k = list(a.get("kernel_shape", w.shape[2:]))
    strides = list(a.get("strides", [1] * len(k)))
    dil = list(a.get("dilations", [1] * len(k)))
    x = _pad(x, _spatial_pads(x, k, strides, dil, a))
    if len(k) != 2:
        raise WeightsError(f"ONNX Conv with {len(k)} spatial dims is not supported")
    return [F.conv2d(x, w, b, stride=strides, dilation=dil, groups=int(a.get("group", 1)))]


def _conv_transpose(g: OnnxGraph, ins: list[torch.Tensor | None], a: Attrs) -> list[torch.Tensor]:
    x, w, b = ins[0], ins[1], ins[2] if len(ins) > 2 else None
    assert x is not None and w is not None
    k = list(a.get("kernel_shape", w.shape[2:]))
    if len(k) != 2 or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise WeightsError("ONNX ConvTranspose: only 2-D with explicit pads is supported")
    if "output_shape" in a:
        raise WeightsError("ONNX ConvTranspose with output_shape is not supported")
    strides = list(a.get("strides", [1, 1]))
    dil = list(a.get("dilations", [1, 1]))
    pads = list(a.get("pads", [0, 0, 0, 0]))
    out_pad = list(a.get("output_padding", [0, 0]))
    y = F.conv_transpose2d(
        x,
        w,
        b,
        stride=strides,
        padding=0,
        output_padding=out_pad,
        groups=int(a.get("group", 1)),
        dilation=dil,
    )
    # ONNX allows asymmetric pads; crop them off explicitly.
    h, wd = y.shape[2], y.shape[3]
    return [y[:, :, pads[0] : h - pads[2], pads[1] : wd - pads[3]]]


def _avg_pool(g: OnnxGraph, ins: list[torch.Tensor | None], a: Attrs) -> list[torch.Tensor]:
    x = ins[0]
    assert x is not None
    k = list(a["kernel_shape"])
    strides = list(a.get("strides", [1] * len(k)))
    pads = _spatial_pads(x, k, strides, [1] * len(k), a)
    if len(k) != 2:
        raise WeightsError("ONNX AveragePool: only 2-D is supported")
    ceil = bool(a.get("ceil_mode", 0))
    include = bool(a.get("count_include_pad", 0))
    if pads[:2] == pads[2:] and (include or not any(pads)):
        return [F.avg_pool2d(x, k, strides, padding=pads[:2], ceil_mode=ceil)]
    xp = _pad(x, pads)
    summed = F.avg_pool2d(xp, k, strides, ceil_mode=ceil) * (k[0] * k[1])
    ones = _pad(torch.ones_like(x[:, :1]), pads) if not include else torch.ones_like(xp[:, :1])
    count = F.avg_pool2d(ones, k, strides, ceil_mode=ceil) * (k[0] * k[1])
    return [summed / count]


def _nearest(x: torch.Tensor, scales: torch.Tensor | None, sizes: torch.Tensor | None, op: str):
    if sizes is not None and sizes.numel():
        return F.interpolate(x, size=[int(s) for s in sizes.tolist()[2:]], mode="nearest")
    if scales is None or not scales.numel():
        raise WeightsError(f"ONNX {op} without constant scales or sizes is not supported")
    sc = [float(s) for s in scales.tolist()]
    if sc[:2] != [1.0, 1.0]:
        raise WeightsError(f"ONNX {op} over batch or channel axes is not supported")
    return F.interpolate(x, scale_factor=sc[2:], mode="nearest")


def _check_nearest(a: Attrs, op: str) -> None:
    mode = a.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode != "nearest":
        raise WeightsError(f"ONNX {op} mode {mode!r} is not supported (only nearest)")


def _upsample(g: OnnxGraph, ins: list[torch.Tensor | None], a: Attrs) -> list[torch.Tensor]:
    _check_nearest(a, "Upsample")
    x = ins[0]
    assert x is not None
    scales = ins[1] if len(ins) > 1 else None
    if scales is None and "scales" in a:
        scales = torch.tensor(a["scales"])
    return [_nearest(x, scales, None, "Upsample")]


def _resize(g: OnnxGraph, ins: list[torch.Tensor | None], a: Attrs) -> list[torch.Tensor]:
    _check_nearest(a, "Resize")
    x = ins[0]
    assert x is not None
    if len(ins) == 2:  # opset 10: X, scales
        return [_nearest(x, ins[1], None, "Resize")]
    scales = ins[2] if len(ins) > 2 else None
    sizes = ins[3] if len(ins) > 3 else None
    return [_nearest(x, scales, sizes, "Resize")]


def _binary(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> OpFn:
    def op(g: OnnxGraph, ins: list[torch.Tensor | None], a: Attrs) -> list[torch.Tensor]:
        x, y = ins[0], ins[1]
        assert x is not None and y is not None
        return [fn(x, y)]

    return op


def _unary(fn: Callable[[torch.Tensor], torch.Tensor]) -> OpFn:
    def op(g: OnnxGraph, ins: list[torch.Tensor | None], a: Attrs) -> list[torch.Tensor]:
        x = ins[0]
        assert x is not None
        return [fn(x)]

    return op


def _leaky_relu(g: OnnxGraph, ins: list[torch.Tensor | None], a: Attrs) -> list[torch.Tensor]:
    x = ins[0]
    assert x is not None
    return [F.leaky_relu(x, float(a.get("alpha", 0.01)))]


def _concat(g: OnnxGraph, ins: list[torch.Tensor | None], a: Attrs) -> list[torch.Tensor]:
    return [torch.cat([t for t in ins if t is not None], dim=int(a["axis"]))]


def _constant(g: OnnxGraph, ins: list[torch.Tensor | None], a: Attrs) -> list[torch.Tensor]:
    if "value" not in a:
        raise WeightsError("ONNX Constant without a tensor 'value' is not supported")
    return [a["value"]]


OPS: dict[str, OpFn] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "LeakyRelu": _leaky_relu,
    "Relu": _unary(F.relu),
    "Sigmoid": _unary(torch.sigmoid),
    "Tanh": _unary(torch.tanh),
    "Identity": _unary(lambda x: x),
    "AveragePool": _avg_pool,
    "Add": _binary(torch.add),
    "Sub": _binary(torch.sub),
    "Mul": _binary(torch.mul),
    "Div": _binary(torch.div),
    "Concat": _concat,
    "Constant": _constant,
    "Upsample": _upsample,
    "Resize": _resize,
}


class OnnxGraph(nn.Module):
    """An ONNX graph run with torch ops; ``forward`` returns the graph outputs in order.

    Attributes:
        input_names: Names of the graph's (non-initializer) inputs, in order.
        output_names: Names of the graph's outputs, in order.
    """

    def __init__(
        self,
        nodes: list[tuple[str, list[str], list[str], Attrs]],
        initializers: dict[str, torch.Tensor],
        input_names: list[str],
        output_names: list[str],
    ) -> None:
        super().__init__()
        self.nodes = nodes
        self.input_names = input_names
        self.output_names = output_names
        self._buffer_of: dict[str, str] = {}
        for i, (name, tensor) in enumerate(initializers.items()):
            key = f"init_{i}"
            self.register_buffer(key, tensor)
            self._buffer_of[name] = key

    def forward(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        if len(inputs) != len(self.input_names):
            raise ValueError(f"expected inputs {self.input_names}, got {len(inputs)} tensors")
        env: dict[str, torch.Tensor] = {n: getattr(self, k) for n, k in self._buffer_of.items()}
        env.update(zip(self.input_names, inputs, strict=True))
        for op_type, ins, outs, attrs in self.nodes:
            args = [env[n] if n else None for n in ins]
            results = OPS[op_type](self, args, attrs)
            env.update(zip(outs, results, strict=False))
        return [env[n] for n in self.output_names]


def _attr_value(attr: Any) -> Any:
    from onnx import helper, numpy_helper

    value = helper.get_attribute_value(attr)
    if hasattr(value, "raw_data") or attr.type == attr.TENSOR:
        return torch.from_numpy(numpy_helper.to_array(value).copy())
    return value


def load_onnx(path: str | Path) -> OnnxGraph:
    """Convert the ONNX file at ``path`` into an :class:`OnnxGraph` (float32 weights).

    Raises:
        WeightsError: The file cannot be parsed, or uses an operator this interpreter lacks
            (the message names the operator).
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:
        raise WeightsError(
            "Reading ONNX encoders needs the 'onnx' package: pip install 'cloak[onnx]'"
        ) from exc
    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure means an unusable file
        raise WeightsError(
            f"{path}: not a readable ONNX model ({exc}). Delete it and download it again."
        ) from exc
    graph = model.graph
    inits: dict[str, torch.Tensor] = {}
    for t in graph.initializer:
        arr = torch.from_numpy(numpy_helper.to_array(t).copy())
        inits[t.name] = arr.float() if arr.is_floating_point() else arr
    nodes: list[tuple[str, list[str], list[str], Attrs]] = []
    for node in graph.node:
        if node.op_type not in OPS:
            raise WeightsError(
                f"{path}: ONNX operator {node.op_type!r} (node {node.name!r}) is not supported; "
                f"supported: {', '.join(sorted(OPS))}"
            )
        attrs = {a.name: _attr_value(a) for a in node.attribute}
        if node.op_type == "Constant" and "value" in attrs:
            attrs["value"] = (
                attrs["value"].float() if attrs["value"].is_floating_point() else (attrs["value"])
            )
        nodes.append((node.op_type, list(node.input), list(node.output), attrs))
    inputs = [i.name for i in graph.input if i.name not in inits]
    outputs = [o.name for o in graph.output]
    return OnnxGraph(nodes, inits, inputs, outputs)
