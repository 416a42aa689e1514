"""ONNX and int8 exports, checked with ONNX Runtime (the ``[deploy]`` extra).

The exported graph takes raw uint8 images (N, C, H, W) and returns logits: the dataset's
normalization is inside it, and each batch norm that directly follows a conv is folded into
that conv (``torch.nn.utils.fusion.fuse_conv_bn_eval``). int8 is ONNX Runtime's post-training
static quantization (QDQ, per-channel int8 weights, uint8 activations) calibrated on training
images; nothing here is a hand-written quantizer.
"""

from __future__ import annotations

import contextlib
import io
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nas.data import per_channel
from nas.errors import NasError


class Deployable(nn.Module):
    """uint8 images -> logits: normalization, then the net with batch norm folded in."""

    def __init__(self, net: nn.Sequential, mean: tuple, std: tuple):
        super().__init__()
        self.net = fold_batch_norm(net)
        self.register_buffer("mean", per_channel(mean))
        self.register_buffer("std", per_channel(std))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(torch.float32) / 255.0
        return self.net((x - self.mean) / self.std)


def fold_batch_norm(net: nn.Sequential) -> nn.Sequential:
    """A copy of ``net`` (in eval mode) with every conv -> BN pair fused into one conv."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    mods = list(net.eval().named_children())
    out: list[tuple[str, nn.Module]] = []
    i = 0
    while i < len(mods):
        name, m = mods[i]
        nxt = mods[i + 1][1] if i + 1 < len(mods) else None
        if isinstance(m, nn.Conv2d) and isinstance(nxt, nn.BatchNorm2d):
            out.append((name, fuse_conv_bn_eval(m, nxt)))
            i += 2
            continue
        out.append((name, m))
        i += 1
    return nn.Sequential(OrderedDict(out)).eval()


def export_onnx(model: nn.Module, shape: tuple, path: Path) -> Path:
    """Write ``model`` (a Deployable) as ONNX with a dynamic batch size.

    PyTorch's TorchScript exporter first, while it exists: for the same predictions and int8
    accuracy its files are smaller (best8k: 26 KB int8 against the dynamo exporter's 44 KB,
    docs/internals.md). Where it is gone, or with NAS_ONNX_DYNAMO=1, the dynamo exporter.
    """
    import os
    import warnings

    example = torch.zeros((1, *shape), dtype=torch.uint8)
    names = {"input_names": ["images"], "output_names": ["logits"]}
    if os.environ.get("NAS_ONNX_DYNAMO") != "1":
        try:
            with warnings.catch_warnings():  # its deprecation notice is ours to handle
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                torch.onnx.export(model.eval(), (example,), str(path), **names,
                                  dynamic_axes={"images": {0: "batch"}}, dynamo=False)
            return path
        except (TypeError, RuntimeError, NotImplementedError, ImportError):
            pass  # a PyTorch without the TorchScript exporter
    torch.onnx.export(model.eval(), (example,), str(path), **names, dynamo=True,
                      dynamic_shapes={"images": {0: torch.export.Dim("batch")}}, verbose=False)
    return path


def session(path: Path):
    try:
        import onnxruntime as ort
    except ImportError:
        raise NasError("--onnx needs onnxruntime: pip install -e '.[deploy]'") from None
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def onnx_predict(path: Path, images: np.ndarray, batch: int = 1000) -> np.ndarray:
    """Class indices from ONNX Runtime for uint8 images (N, C, H, W)."""
    sess = session(path)
    return np.concatenate([sess.run(None, {"images": images[i:i + batch]})[0].argmax(1)
                           for i in range(0, len(images), batch)])


INT8_CALIBRATION = "percentile"  # what `nas export --int8` uses


def quantize_int8(fp32: Path, calibration: np.ndarray, path: Path,
                  calibration_method: str = INT8_CALIBRATION, bn_float: bool = False) -> Path:
    """ONNX Runtime's static quantization, calibrated on ``calibration`` (uint8 images).

    Activation ranges come from the 99.999th percentile of the calibration values, not their
    extremes (MinMax, ORT's default): over 12 verified designs the int8 drop averaged 0.013
    points against 0.026, and on the 25k Fashion-MNIST winner 0.11 against 0.27
    (bench/int8_calibration.py).

    ``bn_float`` leaves in float the BatchNormalization nodes that the exporter could not fold
    into a conv (a ReLU stands between them), whose rank-1 scale ORT quantizes per tensor
    only. It was the guess for the 25k winner's loss and did not help (0.27 points with
    MinMax either way), so it is off; bench/int8_calibration.py measures it."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"images": calibration[i:i + 100]}
                                 for i in range(0, len(calibration), 100)])

        def get_next(self):
            return next(self.batches, None)

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}
    if calibration_method not in methods:
        raise NasError(f"unknown calibration {calibration_method!r} (valid: {', '.join(methods)})")
    bn = [n.name for n in onnx.load(str(fp32)).graph.node
          if n.op_type == "BatchNormalization"] if bn_float else []
    with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print progress
        quantize_static(str(fp32), str(path), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QUInt8, nodes_to_exclude=bn,
                        calibrate_method=methods[calibration_method])
    return path


def raw_uint8(x: torch.Tensor, mean: tuple, std: tuple) -> np.ndarray:
    """Normalized float images back to the uint8 pixels they came from (exactly: rounding)."""
    m, s = per_channel(mean), per_channel(std)
    return ((x.cpu() * s + m) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()


def initializer_bytes(path: Path) -> int:
    """Bytes of the graph's stored tensors (weights, biases, scales): the size a runtime that
    maps them keeps; the file adds the graph's structure and names."""
    import onnx

    model = onnx.load(str(path))
    return sum(len(t.raw_data) for t in model.graph.initializer)


def latency_ms(fn, image, repeats: int = 300) -> float:
    """Median milliseconds of fn(image) over ``repeats`` single-image calls, after a warm-up."""
    import statistics
    import time

    for _ in range(20):
        fn(image)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(image)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def export_and_check(out: Path, net: nn.Module, info, test_x: torch.Tensor,
                     test_y: torch.Tensor, calib_x: torch.Tensor | None) -> dict:
    """model.onnx (and model.int8.onnx with ``calib_x``) beside model.py, checked with ONNX
    Runtime on the test split against the PyTorch model; returns the figures."""
    net = net.eval()
    deploy = Deployable(net, info.mean, info.std)
    images = raw_uint8(test_x, info.mean, info.std)
    y = test_y.cpu().numpy()
    with torch.no_grad():
        ref = torch.cat([net(test_x[i:i + 1000]).argmax(1) for i in range(0, len(test_x),
                                                                        1000)]).numpy()
    fp32 = export_onnx(deploy, info.shape, out / "model.onnx")
    got = onnx_predict(fp32, images)
    sess = session(fp32)
    one = images[:1]
    with torch.no_grad():
        torch_ms = latency_ms(lambda im: deploy(torch.from_numpy(im)), one)
    ort_ms = latency_ms(lambda im: sess.run(None, {"images": im}), one)
    result = {
        "onnx_file_bytes": fp32.stat().st_size, "onnx_weight_bytes": initializer_bytes(fp32),
        "onnx_differ_from_torch": int((got != ref).sum()), "n_test": len(y),
        "torch_acc": float(100 * (ref == y).mean()), "onnx_acc": float(100 * (got == y).mean()),
        "latency_ms_batch1": {"torch_eager": torch_ms, "onnxruntime": ort_ms,
                              "torch_over_ort": torch_ms / ort_ms},
    }
    if calib_x is not None:
        q = quantize_int8(fp32, raw_uint8(calib_x, info.mean, info.std), out / "model.int8.onnx")
        got8 = onnx_predict(q, images)
        result.update({
            "int8_file_bytes": q.stat().st_size, "int8_weight_bytes": initializer_bytes(q),
            "int8_acc": float(100 * (got8 == y).mean()), "int8_calibration_images": len(calib_x),
            "int8_calibration": INT8_CALIBRATION,
        })
        result["int8_drop_points"] = result["onnx_acc"] - result["int8_acc"]
    return result
