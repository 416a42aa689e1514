"""Spec -> nn.Sequential. Never sees an Optuna trial; the spec is all it needs."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from nas.layers import Dropout as FastDropout
from nas.layers import GlobalAvgPool
from nas.spec import (
    BN,
    GAP,
    ArchSpec,
    Conv,
    Dropout,
    DWConv,
    Flatten,
    Linear,
    MaxPool,
    ReLU,
    analyze,
    layer_names,
)


def torch_layer(layer, in_shape: tuple) -> tuple[str, tuple, dict]:
    """The ``torch.nn`` class name and arguments for one spec layer.

    The one mapping from spec to PyTorch: ``build`` instantiates it, ``nas.export`` writes it out
    as source, so an exported model.py always matches the built module.
    """
    if isinstance(layer, Conv):
        return "Conv2d", (in_shape[0], layer.out), {
            "kernel_size": layer.k, "padding": layer.pad, "bias": layer.bias}
    if isinstance(layer, DWConv):
        return "Conv2d", (in_shape[0], in_shape[0]), {
            "kernel_size": layer.k, "padding": layer.pad, "bias": layer.bias,
            "groups": in_shape[0]}
    if isinstance(layer, BN):
        return f"BatchNorm{2 if len(in_shape) == 3 else 1}d", (in_shape[0],), {}
    if isinstance(layer, ReLU):
        return "ReLU", (), {"inplace": True}
    if isinstance(layer, Dropout):
        return "Dropout", (layer.p,), {}
    if isinstance(layer, MaxPool):
        return "MaxPool2d", (layer.k,), {}
    if isinstance(layer, GAP):
        return "AdaptiveAvgPool2d", (1,), {}
    if isinstance(layer, Flatten):
        return "Flatten", (), {}
    if isinstance(layer, Linear):
        return "Linear", (in_shape[0], layer.out), {"bias": layer.bias}
    raise TypeError(f"unsupported layer {layer!r}")


def build(spec: ArchSpec) -> nn.Sequential:
    """Build the module; raises SpecError (via analyze) for an impossible spec."""
    info = analyze(spec)
    shape: tuple = (spec.in_channels, spec.input_size, spec.input_size)
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    for layer, name, li in zip(spec.layers, layer_names(spec), info.layers, strict=True):
        cls, args, kwargs = torch_layer(layer, shape)
        # same maths as torch.nn's, faster on the CPU (nas/layers.py): a cheaper dropout mask,
        # and a GAP whose gradient keeps channels-last
        faster = {"Dropout": FastDropout, "AdaptiveAvgPool2d": lambda _: GlobalAvgPool()}
        mods[name] = faster.get(cls, getattr(nn, cls))(*args, **kwargs)
        shape = li.out_shape
    if info.needs_flatten:
        mods["logits"] = nn.Flatten()
    model = nn.Sequential(mods)
    if spec.init == "xavier":  # Keras' default: Glorot-uniform weights, zero biases
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    return model


def count_params(model: nn.Module) -> int:
    """Every parameter, trainable or not, as PyTorch counts it."""
    return sum(p.numel() for p in model.parameters())
