import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nas.build import build, count_params
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
    SpecError,
    analyze,
    conv_block,
    describe,
)


def test_json_round_trip():
    spec = ArchSpec(layers=(*conv_block(8, dropout=0.1), MaxPool(2), Conv(8, 1, bias=True),
                            GAP(), Flatten(), Linear(10)))
    again = ArchSpec.from_json(spec.to_json())
    assert again == spec
    assert describe(spec) == "C8d M T8 G L10"
    sep = ArchSpec(layers=(Conv(8, 3), DWConv(3, 1), *conv_block(24, 1), GAP(), Conv(10, 1)))
    assert ArchSpec.from_json(sep.to_json()) == sep
    assert describe(sep) == "C8 Dp T24 G T10"


def test_depthwise_conv_counts():
    """A depthwise 3x3 has one filter per channel: 9C weights, 9C MACs per output pixel."""
    spec = ArchSpec(layers=(Conv(8, 3), DWConv(3), Conv(16, 1), GAP(), Conv(10, 1)))
    info = analyze(spec)
    assert info.layers[1].out_shape == (8, 24, 24)
    assert info.layers[1].n_params == 72 and info.layers[1].macs == 72 * 24 * 24
    assert info.layers[1].rf == 5
    assert info.n_params == count_params(build(spec)) == 72 + 72 + 128 + 160
    # int8 per channel: the 72 weights and 8 x (int32 bias, float scale, int8 zero point)
    assert info.int8_bytes == (72 + 72) + 128 + 160 + 9 * (8 + 8 + 16 + 10)


def test_analysis_per_layer():
    spec = ArchSpec(layers=(Conv(8, 3), BN(), ReLU(), MaxPool(2), Conv(10, 3, pad=1), GAP()))
    info = analyze(spec)
    assert [li.out_shape for li in info.layers] == [
        (8, 26, 26), (8, 26, 26), (8, 26, 26), (8, 13, 13), (10, 13, 13), (10, 1, 1)]
    assert [li.rf for li in info.layers] == [3, 3, 3, 4, 8, 32]
    assert info.n_params == 72 + 16 + 720
    assert info.macs == 72 * 26 * 26 + 720 * 13 * 13
    assert info.needs_flatten


@pytest.mark.parametrize("layers, match", [
    ((Conv(10, 3), MaxPool(2), Conv(10, 14), GAP()), "layer 2 .*14x14 larger than its 13x13"),
    ((Conv(0, 3),), "layer 0 .*non-positive channels"),
    ((Conv(8, 3), MaxPool(30), GAP(), Conv(10, 1)), "layer 1 .*below 1x1"),
    ((Conv(8, 3), Linear(10)), "flat input"),
    ((Conv(8, 3), GAP()), "must give 10 logits"),
    ((Conv(10, 3), Dropout(1.5), GAP()), "dropout"),
    ((Conv(8, 3), MaxPool(13), DWConv(3), GAP(), Conv(10, 1)), "layer 2 .*3x3 larger than its 2x2"),
    ((Conv(8, 3), Flatten(), DWConv(3)), "layer 2 .*depthwise conv needs a"),
])
def test_impossible_specs_name_the_layer(layers, match):
    with pytest.raises(SpecError, match=match):
        analyze(ArchSpec(layers=layers))


@pytest.mark.parametrize("text, match", [
    ("{", "not valid JSON"),
    ('{"layers": [{"type": "conv3d"}]}', "unknown type 'conv3d'"),
    ('{"layers": [{"type": "conv", "channels": 3}]}', "layer 0"),
    ('[1, 2]', "'layers' list"),
    ('{"layers": [{"type": "conv", "out": "8"}]}', "out must be int, got '8'"),
    ('{"layers": [{"type": "conv", "out": 8.5}]}', "out must be int, got 8.5"),
    ('{"layers": [{"type": "dropout", "p": "0.1"}]}', "p must be float"),
    ('{"in_channels": "3", "layers": []}', "in_channels must be int"),
])
def test_malformed_json(text, match):
    with pytest.raises(SpecError, match=match):
        ArchSpec.from_json(text)


@st.composite
def valid_specs(draw):
    """Random conv nets: blocks with optional BN/ReLU/dropout/pool, then a GAP or FC head."""
    size, layers = 28, []
    for _ in range(draw(st.integers(1, 5))):
        k = draw(st.sampled_from([1, 3]))
        pad = draw(st.integers(0, k // 2))
        if size + 2 * pad - k + 1 < 1:
            break
        layers.append(Conv(draw(st.integers(1, 12)), k, pad, draw(st.booleans())))
        size = size + 2 * pad - k + 1
        if size >= 3 and draw(st.booleans()):  # a depthwise 3x3, padded or not
            pad = draw(st.integers(0, 1))
            layers.append(DWConv(3, pad, draw(st.booleans())))
            size = size + 2 * pad - 2
        if draw(st.booleans()):
            layers.append(BN())
        if draw(st.booleans()):
            layers.append(ReLU())
        if draw(st.booleans()):
            layers.append(Dropout(draw(st.sampled_from([0.0, 0.1]))))
        if size >= 4 and draw(st.booleans()):
            layers.append(MaxPool(2))
            size //= 2
    if not layers:
        layers.append(Conv(4, 3))
    if draw(st.booleans()):
        layers += [GAP(), Conv(10, 1, bias=draw(st.booleans()))]
    else:
        layers += [Flatten(), *([BN()] if draw(st.booleans()) else []), Linear(10)]
    return ArchSpec(layers=tuple(layers))


@settings(max_examples=60, deadline=None)
@given(valid_specs())
def test_analytic_count_matches_pytorch_and_forward_works(spec):
    info = analyze(spec)
    model = build(spec).eval()
    assert info.n_params == count_params(model) == sum(p.numel() for p in model.parameters())
    out = model(torch.randn(3, 1, 28, 28))
    assert out.shape == (3, 10)
    assert not torch.isnan(out).any()


SEPARABLE = ArchSpec(layers=(*conv_block(6, 3, 1), DWConv(3, 1), *conv_block(40, 1), MaxPool(2),
                             DWConv(3), *conv_block(12, 1), GAP(), Conv(10, 1)))


@pytest.mark.parametrize("name", ["best8k", "ref3762", "batch2", "ref7070", "separable"])
def test_peak_memory_matches_a_forward_pass(name):
    """The spec's peak (deployed: BN, ReLU, dropout fused) against the tensors a forward pass
    of the built model actually hands between its conv, pool, GAP and linear layers."""
    from torch import nn

    from nas.presets import get_preset

    spec = SEPARABLE if name == "separable" else get_preset(name).spec
    model = build(spec).eval()
    seen = [spec.in_channels * spec.input_size ** 2]

    def hook(mod, inp, out):
        seen.append(inp[0].numel() + out.numel())

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.randn(1, spec.in_channels, spec.input_size, spec.input_size))
    info = analyze(spec)
    assert info.peak_elems == max(seen)
    assert info.peak_bytes(1) * 4 == info.peak_bytes(4)


def test_int8_size_counts_folded_weights():
    from nas.presets import get_preset

    # ref3762: 3,762 params, of which BN's 2 x 60 = 120 fold away; 3,630 conv weights and
    # biases; per output channel (4*3 + 8*6 + 10 = 70) an int32 bias, a float scale, a zero point
    info = analyze(get_preset("ref3762").spec)
    weights = 3762 - 120 - 70  # conv weights only, as int8
    assert info.int8_bytes == weights + 9 * 70


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 40) | st.floats(-2, 40) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
layer_dicts = st.fixed_dictionaries(
    {"type": st.sampled_from(["conv", "dwconv", "bn", "relu", "dropout", "maxpool", "gap",
                              "flatten", "linear", "conv3d", 3])},
    optional={"out": json_values, "k": json_values, "pad": json_values, "bias": json_values,
              "p": json_values})


@given(st.one_of(
    json_values,
    st.fixed_dictionaries({"layers": st.lists(layer_dicts, max_size=6)},
                          optional={"in_channels": json_values, "input_size": json_values,
                                    "num_classes": json_values, "init": json_values}),
))
@settings(max_examples=300, deadline=None)
def test_mangled_json_works_or_is_one_line(doc):
    """Random and mangled spec JSON: it loads and analyzes, or raises the tool's own error."""
    import json

    from nas.errors import NasError

    try:
        spec = ArchSpec.from_json(json.dumps(doc))
        analyze(spec)
    except NasError as e:
        assert "\n" not in str(e)
