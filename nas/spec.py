"""Architecture specs: frozen dataclasses that fully describe a network, and their analysis.

A spec is a flat tuple of layers, each a small frozen dataclass (as in timm's byobnet). Everything
a search needs to know before training — parameter count, MACs, per-layer output shape and
receptive field — is computed here from the spec alone, without building a module.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from nas.errors import NasError


class SpecError(NasError):
    """An impossible or malformed architecture spec."""


@dataclass(frozen=True)
class Conv:
    out: int  # output channels
    k: int = 3  # square kernel size, pixels
    pad: int = 0  # zero padding on each side, pixels
    bias: bool = False


@dataclass(frozen=True)
class DWConv:
    """Depthwise conv: one k x k filter per channel (groups = channels), channels in = out.

    Followed by a 1x1 Conv it is MobileNet's separable conv: a 3x3 conv of C -> W channels
    costs 9*C*W parameters, the pair 9*C + C*W, so a small budget buys far wider layers.
    """

    k: int = 3  # square kernel size, pixels
    pad: int = 0  # zero padding on each side, pixels
    bias: bool = False


@dataclass(frozen=True)
class BN:
    pass


@dataclass(frozen=True)
class ReLU:
    pass


@dataclass(frozen=True)
class Dropout:
    p: float  # drop probability, 0..1


@dataclass(frozen=True)
class MaxPool:
    k: int = 2  # kernel and stride, pixels


@dataclass(frozen=True)
class GAP:
    """Global average pooling to a 1x1 map (channels kept)."""


@dataclass(frozen=True)
class Flatten:
    pass


@dataclass(frozen=True)
class Linear:
    out: int
    bias: bool = True


# JSON "type" string -> layer class; the one place a new layer kind is registered.
LAYER_TYPES: dict[str, type] = {
    "conv": Conv,
    "dwconv": DWConv,
    "bn": BN,
    "relu": ReLU,
    "dropout": Dropout,
    "maxpool": MaxPool,
    "gap": GAP,
    "flatten": Flatten,
    "linear": Linear,
}
_TYPE_OF = {cls: name for name, cls in LAYER_TYPES.items()}
INITS = ("default", "xavier")


@dataclass(frozen=True)
class ArchSpec:
    layers: tuple = ()
    in_channels: int = 1
    input_size: int = 28  # square input, pixels
    num_classes: int = 10
    init: str = "default"  # default (PyTorch's) | xavier (uniform weights, zero biases)

    def to_dict(self) -> dict:
        extra = {"init": self.init} if self.init != "default" else {}
        return {
            "in_channels": self.in_channels,
            "input_size": self.input_size,
            "num_classes": self.num_classes,
            **extra,
            "layers": [
                {"type": _TYPE_OF[type(layer)], **dataclasses.asdict(layer)}
                for layer in self.layers
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> ArchSpec:
        if not isinstance(d, dict) or not isinstance(d.get("layers"), list):
            raise SpecError("spec must be a JSON object with a 'layers' list")
        layers = []
        for i, raw in enumerate(d["layers"]):
            if not isinstance(raw, dict) or raw.get("type") not in LAYER_TYPES:
                got = raw.get("type") if isinstance(raw, dict) else raw
                raise SpecError(
                    f"layer {i}: unknown type {got!r} (valid: {', '.join(LAYER_TYPES)})"
                )
            kwargs = {k: v for k, v in raw.items() if k != "type"}
            try:
                layer = LAYER_TYPES[raw["type"]](**kwargs)
            except TypeError as e:
                raise SpecError(f"layer {i} ({raw['type']}): {e}") from None
            _check_types(layer, f"layer {i} ({raw['type']})")
            layers.append(layer)
        extra = {k: d[k] for k in ("in_channels", "input_size", "num_classes", "init") if k in d}
        spec = cls(layers=tuple(layers), **extra)
        _check_types(spec, "spec", skip=("layers",))
        return spec

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"spec is not valid JSON: {e}") from None
        return cls.from_dict(d)


_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def _check_types(obj, where: str, skip: tuple = ()) -> None:
    """JSON values of the declared types: "8" or 8.5 for channels is a one-line SpecError."""
    for f in dataclasses.fields(obj):
        if f.name in skip:
            continue
        v = getattr(obj, f.name)
        ok = _TYPES.get(str(f.type), (object,))
        # bool is an int in Python; a channel count of true is still wrong
        if not isinstance(v, ok) or (isinstance(v, bool) and bool not in ok):
            raise SpecError(f"{where}: {f.name} must be {f.type}, got {v!r}")


def conv_block(
    out: int, k: int = 3, pad: int = 0, *, bn: bool = True, relu: bool = True,
    dropout: float = 0.0, bias: bool = False, relu_first: bool = False,
) -> tuple:
    """conv -> BN -> ReLU -> dropout (or conv -> ReLU -> BN with relu_first), as a layer tuple."""
    post = [ReLU()] if relu else []
    if bn:
        post = post + [BN()] if relu_first else [BN()] + post
    return (Conv(out, k, pad, bias), *post, *([Dropout(dropout)] if dropout > 0 else []))


# ---------------------------------------------------------------------------------------------
# Analysis from the spec alone


@dataclass(frozen=True)
class LayerInfo:
    index: int
    name: str  # e.g. "conv3" — the module name the builder uses
    text: str  # human-readable, e.g. "conv 3x3 8->16 pad 1"
    out_shape: tuple  # (C, H, W) or (F,)
    n_params: int
    macs: int
    rf: int  # receptive field at this layer's output, input pixels


@dataclass(frozen=True)
class Analysis:
    layers: tuple[LayerInfo, ...]
    n_params: int
    macs: int
    rf: int  # receptive field of the last spatial layer, input pixels
    needs_flatten: bool = field(default=False)  # builder appends a Flatten to reach the logits
    peak_elems: int = 0  # activation elements live at once at worst, batch 1 (peak_memory)
    int8_bytes: int = 0  # model size once int8-quantized (int8_size)

    @property
    def fp32_bytes(self) -> int:
        return 4 * self.n_params

    def peak_bytes(self, dtype_bytes: int = 4) -> int:
        return self.peak_elems * dtype_bytes


def layer_names(spec: ArchSpec) -> list[str]:
    """Module names per layer: conv1, bn1, relu1, ... counted per kind, 1-based."""
    counts: dict[str, int] = {}
    names = []
    for layer in spec.layers:
        kind = _TYPE_OF[type(layer)]
        counts[kind] = counts.get(kind, 0) + 1
        names.append(f"{kind}{counts[kind]}")
    return names


def analyze(spec: ArchSpec) -> Analysis:
    """Shapes, parameters, MACs and receptive field per layer; raises SpecError if impossible."""
    if spec.in_channels <= 0 or spec.input_size <= 0 or spec.num_classes <= 0:
        raise SpecError("in_channels, input_size and num_classes must be positive")
    if spec.init not in INITS:
        raise SpecError(f"unknown init {spec.init!r} (valid: {', '.join(INITS)})")
    if not spec.layers:
        raise SpecError("spec has no layers")
    shape: tuple = (spec.in_channels, spec.input_size, spec.input_size)
    rf, jump = 1, 1
    infos = []
    for i, (layer, name) in enumerate(zip(spec.layers, layer_names(spec), strict=True)):
        spatial = len(shape) == 3
        params = macs = 0

        def fail(msg: str, name: str = name, i: int = i) -> SpecError:
            return SpecError(f"layer {i} ({name}): {msg}")

        if isinstance(layer, Conv | DWConv):
            depthwise = isinstance(layer, DWConv)  # one filter per channel: out = in
            if not spatial:
                raise fail(f"{'depthwise conv' if depthwise else 'conv'} needs a (C, H, W) "
                           "input, got a flat vector")
            c, h, _ = shape
            out, fan_in = (c, 1) if depthwise else (layer.out, c)
            if out <= 0:
                raise fail(f"non-positive channels {out}")
            if layer.k <= 0 or layer.pad < 0:
                raise fail(f"bad kernel {layer.k} / padding {layer.pad}")
            size = h + 2 * layer.pad - layer.k + 1
            if size < 1:
                raise fail(
                    f"kernel {layer.k}x{layer.k} larger than its {h}x{h} input "
                    f"(padding {layer.pad})"
                )
            params = out * fan_in * layer.k * layer.k + (out if layer.bias else 0)
            macs = out * fan_in * layer.k * layer.k * size * size
            rf += (layer.k - 1) * jump
            text = (f"depthwise {layer.k}x{layer.k} {c}" if depthwise
                    else f"conv {layer.k}x{layer.k} {c}->{out}") + (
                f" pad {layer.pad}" if layer.pad else ""
            ) + (" bias" if layer.bias else "")
            shape = (out, size, size)
        elif isinstance(layer, MaxPool):
            if not spatial:
                raise fail("max-pool needs a (C, H, W) input")
            if layer.k < 1:
                raise fail(f"bad pool size {layer.k}")
            c, h, _ = shape
            size = h // layer.k
            if size < 1:
                raise fail(f"pool {layer.k} shrinks the {h}x{h} map below 1x1")
            rf += (layer.k - 1) * jump
            jump *= layer.k
            text = f"max-pool {layer.k}"
            shape = (c, size, size)
        elif isinstance(layer, GAP):
            if not spatial:
                raise fail("GAP needs a (C, H, W) input")
            c, h, _ = shape
            rf += (h - 1) * jump
            text = "global avg pool"
            shape = (c, 1, 1)
        elif isinstance(layer, BN):
            params = 2 * shape[0]  # weight and bias; running stats are buffers
            text = f"batch norm {shape[0]}"
        elif isinstance(layer, Dropout):
            if not 0.0 <= layer.p < 1.0:
                raise fail(f"dropout p={layer.p} outside [0, 1)")
            text = f"dropout {layer.p:g}"
        elif isinstance(layer, ReLU):
            text = "relu"
        elif isinstance(layer, Flatten):
            text = "flatten"
            shape = (_elems(shape),)
        elif isinstance(layer, Linear):
            if spatial:
                raise fail("linear needs a flat input: add a flatten or GAP layer before it")
            if layer.out <= 0:
                raise fail(f"non-positive features {layer.out}")
            params = layer.out * shape[0] + (layer.out if layer.bias else 0)
            macs = layer.out * shape[0]
            text = f"linear {shape[0]}->{layer.out}" + ("" if layer.bias else " no bias")
            shape = (layer.out,)
        else:  # pragma: no cover - LAYER_TYPES and this chain move together
            raise fail(f"unsupported layer {layer!r}")
        infos.append(LayerInfo(i, name, text, shape, params, macs, rf))

    flat = shape == (spec.num_classes,)
    if not flat and shape != (spec.num_classes, 1, 1):
        raise SpecError(
            f"the network ends in shape {shape}; it must give {spec.num_classes} logits "
            f"(({spec.num_classes},) or ({spec.num_classes}, 1, 1))"
        )
    return Analysis(
        layers=tuple(infos),
        n_params=sum(x.n_params for x in infos),
        macs=sum(x.macs for x in infos),
        rf=rf,
        needs_flatten=not flat,
        peak_elems=peak_memory(spec, infos),
        int8_bytes=int8_size(spec, infos),
    )


def _elems(shape: tuple) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def peak_memory(spec: ArchSpec, infos) -> int:
    """The most activation elements alive at once when the deployed net runs on one image.

    Deployed means what ONNX Runtime and microcontroller runtimes do: batch norm folded into
    the conv before it, ReLU and dropout fused or in place. Each remaining layer (conv, pool,
    GAP, linear) reads its input buffer and writes a new output buffer, so the peak is the
    largest input + output over those layers. Multiply by 4 for fp32 bytes, 1 for int8.
    tests/test_spec.py checks it against a forward pass with hooks.
    """
    shape = (spec.in_channels, spec.input_size, spec.input_size)
    peak = _elems(shape)
    for layer, li in zip(spec.layers, infos, strict=True):
        if isinstance(layer, (Conv, DWConv, MaxPool, GAP, Linear)):
            peak = max(peak, _elems(shape) + _elems(li.out_shape))
        shape = li.out_shape
    return peak


def int8_size(spec: ArchSpec, infos) -> int:
    """Bytes of the weights once int8-quantized per channel, batch norm folded in.

    Per conv or linear: its weights as int8 (1 byte each), and per output channel an int32
    bias (4), a float32 scale (4) and an int8 zero point (1): the layout of ONNX Runtime's
    per-channel quantization. BN parameters disappear into the folded weights and bias; graph
    structure and names are not counted.
    """
    size = 0
    c = spec.in_channels
    for layer, li in zip(spec.layers, infos, strict=True):
        if isinstance(layer, Conv):
            size += layer.out * c * layer.k * layer.k + 9 * layer.out
        elif isinstance(layer, DWConv):
            size += c * layer.k * layer.k + 9 * c
        elif isinstance(layer, Linear):
            size += li.n_params - (layer.out if layer.bias else 0) + 9 * layer.out
        if len(li.out_shape) == 3 or isinstance(layer, Linear):
            c = li.out_shape[0]
    return size


def describe(spec: ArchSpec) -> str:
    """One-line architecture, e.g. 'C8 C16 M T8 C16 C16 C16p G H10' (C=3x3 block, T=1x1)."""
    parts = []
    for layer in spec.layers:
        if isinstance(layer, Conv):
            tag = "C" if layer.k == 3 else ("T" if layer.k == 1 else f"K{layer.k}:")
            parts.append(f"{tag}{layer.out}{'p' if layer.pad else ''}")
        elif isinstance(layer, DWConv):  # D: depthwise 3x3; the 1x1 after it says the width
            parts.append(("D" if layer.k == 3 else f"D{layer.k}:") + ("p" if layer.pad else ""))
        elif isinstance(layer, MaxPool):
            parts.append("M")
        elif isinstance(layer, GAP):
            parts.append("G")
        elif isinstance(layer, Linear):
            parts.append(f"L{layer.out}")
        elif isinstance(layer, Dropout) and parts and not parts[-1].endswith("d"):
            parts[-1] += "d"
    return " ".join(parts)
