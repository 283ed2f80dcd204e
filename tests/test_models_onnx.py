"""The ONNX interpreter and the VAElight wrapper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from support import models_fixtures as mf

from cloak import models
from cloak.metrics import psnr
from cloak.models.onnx_graph import load_onnx

photo_crop = mf.photo_crop


def _graph(tmp_path: Path, nodes: list, inits: list, name: str = "g.onnx") -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 10)])
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def test_unsupported_op_is_named(tmp_path: Path) -> None:
    from onnx import helper

    path = _graph(tmp_path, [helper.make_node("Softplus", ["x"], ["y"])], [])
    with pytest.raises(models.WeightsError, match="Softplus"):
        load_onnx(path)


def test_small_ops_match_reference_semantics(tmp_path: Path) -> None:
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    wt = rng.standard_normal((2, 2, 2, 2)).astype(np.float32)
    scales = np.array([1, 1, 2, 2], dtype=np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("LeakyRelu", ["c"], ["l"], alpha=0.2),
        helper.make_node("ConvTranspose", ["l", "wt"], ["t"], strides=[2, 2]),
        helper.make_node("Sigmoid", ["t"], ["s"]),
        helper.make_node("Upsample", ["l", "sc"], ["u"], mode="nearest"),
        helper.make_node("Concat", ["s", "u"], ["cat"], axis=1),
        helper.make_node("AveragePool", ["cat"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Relu", ["p"], ["r"]),
        helper.make_node("Mul", ["r", "r"], ["m"]),
        helper.make_node("Sub", ["m", "r"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(wt, "wt"),
        numpy_helper.from_array(scales, "sc"),
    ]
    g = load_onnx(_graph(tmp_path, nodes, inits))
    x = torch.from_numpy(rng.standard_normal((1, 2, 8, 8)).astype(np.float32))
    F = torch.nn.functional
    xp = F.pad(x, (0, 1, 0, 1))  # SAME_UPPER for k=3, s=2 on 8 px: total pad 1, at the end
    c = F.conv2d(xp, torch.from_numpy(w), stride=2)
    lr = F.leaky_relu(c, 0.2)
    t = torch.sigmoid(F.conv_transpose2d(lr, torch.from_numpy(wt), stride=2))
    u = F.interpolate(lr, scale_factor=2, mode="nearest")
    r = F.relu(F.avg_pool2d(torch.cat([t, u], 1), 2))
    with torch.no_grad():
        out = g(x)[0]
    assert torch.allclose(out, r * r - r, atol=1e-5)


@pytest.mark.real
def test_vaelight_loads_and_encodes(models_dir: Path) -> None:
    enc = models.load_encoder("VAElight", models_dir=models_dir, offline=True)
    x = photo_crop(size=64)
    with torch.no_grad():
        z = enc.encode(x)
    assert z.shape == (1, 4, 8, 8)
    # Unscaled SD 1.x latents: std of several units, unlike an image.
    assert 1.0 < float(z.std()) < 20.0


@pytest.mark.real
def test_vaelight_round_trip(models_dir: Path) -> None:
    enc = models.load_encoder("vaelight", models_dir=models_dir, offline=True)
    x = photo_crop(size=128)
    with torch.no_grad():
        y = enc.decode(enc.encode(x))
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    # Measured 21.5 dB on this crop (a weak preview decoder); the wrong output range gives ~10.
    assert psnr(y, x) > 19


@pytest.mark.real
def test_vaelight_range_matters(models_dir: Path) -> None:
    enc = models.load_encoder("vaelight", models_dir=models_dir, offline=True)
    x = photo_crop(size=64)
    raw = load_onnx(models_dir / "vaelight" / "VAEencoder.onnx")
    with torch.no_grad():
        ours = enc.encode(x)
        assert torch.allclose(ours, raw(x * 2 - 1)[0])
        wrong = raw(x)[0]
    assert float((ours - wrong).abs().mean()) > 0.1 * float(ours.abs().mean())


@pytest.mark.real
def test_vaelight_gradients_flow(models_dir: Path) -> None:
    enc = models.load_encoder("vaelight", models_dir=models_dir, offline=True)
    x = photo_crop(size=32).requires_grad_(True)
    enc.encode(x).square().mean().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


@pytest.mark.real
def test_vaelight_matches_onnxruntime(models_dir: Path) -> None:
    # onnxruntime is a test-only reference implementation (the `test` extra), not a dependency.
    import onnxruntime as ort

    x = (photo_crop(size=64) * 2 - 1).numpy()
    d = models_dir / "vaelight"
    enc, dec = load_onnx(d / "VAEencoder.onnx"), load_onnx(d / "VAEpreview.onnx")
    ref_z = ort.InferenceSession(str(d / "VAEencoder.onnx")).run(None, {"input": x})[0]
    with torch.no_grad():
        z = enc(torch.from_numpy(x))[0]
        assert np.allclose(z.numpy(), ref_z, atol=1e-3 * float(np.abs(ref_z).max()))
        outs = dec(z)
    ref = ort.InferenceSession(str(d / "VAEpreview.onnx")).run(None, {"latent": z.numpy()})
    assert dec.output_names[0] == "output"
    for a, b in zip(outs, ref, strict=True):
        assert a.shape == b.shape and np.allclose(a.numpy(), b, atol=1e-4)


@pytest.mark.real
def test_vaelight_matches_reference_without_onnxruntime(models_dir: Path) -> None:
    """The encoder graph written out by hand with torch ops, from the file's own weights."""
    import onnx
    from onnx import numpy_helper

    path = models_dir / "vaelight" / "VAEencoder.onnx"
    model = onnx.load(str(path))
    w = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
    F = torch.nn.functional
    x = photo_crop(size=64) * 2 - 1
    env = {"input": x}
    for node in model.graph.node:
        a = {at.name: onnx.helper.get_attribute_value(at) for at in node.attribute}
        i = [env.get(n, w.get(n)) for n in node.input]
        if node.op_type == "Conv":
            k = a["kernel_shape"][0]
            pad = (k - 1) // 2 if a.get("auto_pad") == b"SAME_UPPER" else 0
            out = F.conv2d(i[0], i[1], i[2], stride=a.get("strides", [1, 1]), padding=pad)
        elif node.op_type == "LeakyRelu":
            out = F.leaky_relu(i[0], a["alpha"])
        elif node.op_type == "AveragePool":
            out = F.avg_pool2d(i[0], a["kernel_shape"], a["strides"])
        elif node.op_type == "Add":
            out = i[0] + i[1]
        else:
            raise AssertionError(f"unexpected op {node.op_type}")
        env[node.output[0]] = out
    with torch.no_grad():
        ours = load_onnx(path)(x)[0]
    assert torch.allclose(ours, env["latent"], atol=1e-4)
