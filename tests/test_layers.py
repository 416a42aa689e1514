"""nas.layers.Dropout: nn.Dropout's maths with a cheaper mask on the CPU."""

import pytest
import torch
from torch import nn

from nas.build import build
from nas.layers import Dropout
from nas.presets import get_preset


def dropped_and_kept(p: float, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    y = Dropout(p).train()(x)
    kept = y != 0
    return ~kept, y[kept], x[kept]


@pytest.mark.parametrize("p", [0.05, 0.1, 0.5])
def test_drop_rate_and_scale_match_nn_dropout(p):
    torch.manual_seed(0)
    x = torch.rand(64, 16, 32, 32) + 0.5  # no zeros in the input
    dropped, y_kept, x_kept = dropped_and_kept(p, x)
    q = round(p * 65536) / 65536  # the drop probability, to 1/65536
    sd = (q * (1 - q) / x.numel()) ** 0.5
    assert abs(dropped.float().mean().item() - q) < 5 * sd
    assert torch.equal(y_kept, x_kept * torch.tensor(1 / (1 - q)))  # nn.Dropout's 1 / (1 - p)
    # each element of a 64-bit draw (4 x 16 bits) drops at the same rate: with torch's
    # random_() the 4th never would, as its sign bit is always 0
    by_position = dropped.flatten().view(-1, 4).float().mean(0)
    assert (by_position - q).abs().max().item() < 5 * sd * 2


def test_eval_identity_seeded_and_gradient():
    x = torch.randn(8, 4, 6, 6)
    d = Dropout(0.2)
    assert torch.equal(d.eval()(x), x)
    d.train()
    torch.manual_seed(1)
    a = d(x)
    torch.manual_seed(1)
    assert torch.equal(d(x), a)
    assert not torch.equal(d(x), a)
    ones = torch.ones(8, 4, 6, 6, requires_grad=True)
    torch.manual_seed(2)
    y = d(ones)
    y.sum().backward()
    assert torch.equal(ones.grad, y.detach())  # d(mask * scale * x)/dx = mask * scale
    assert torch.equal(Dropout(0.0).train()(x), x)


def test_memory_formats_and_dtypes():
    torch.manual_seed(0)
    x = (torch.rand(32, 8, 20, 20) + 0.5).contiguous(memory_format=torch.channels_last)
    y = Dropout(0.3).train()(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert abs((y == 0).float().mean().item() - 0.3) < 0.01
    strided = x[:, :, ::2]  # not dense: made contiguous first
    assert Dropout(0.3).train()(strided).shape == strided.shape
    assert Dropout(0.3).train()(x.bfloat16()).dtype == torch.bfloat16


def test_builder_uses_it_and_state_dict_is_nn_dropout_s():
    model = build(get_preset("baseline").spec)
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert drops and all(type(m) is Dropout for m in drops)
    assert all("dropout" not in k for k in model.state_dict())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("p", [0.01, 0.05, 0.5])
def test_float_mask_is_the_comparison_mask(p, dtype):
    """The mask made in float arithmetic equals `int16 >= threshold`, bit for bit."""
    x = torch.ones(4, 8, 13, 13, dtype=dtype)
    torch.manual_seed(3)
    y = Dropout(p).train()(x)
    torch.manual_seed(3)
    n, cut = x.numel(), round(p * 65536)
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(1 << 63), None)
    keep = bits.view(torch.int16)[:n] >= cut - 32768
    scale = torch.tensor(1 / (1 - cut / 65536), dtype=dtype)
    want = torch.where(keep, scale, torch.zeros((), dtype=dtype)).view(x.shape)
    assert torch.equal(y, want)


def test_global_avg_pool_gradient_keeps_the_layout():
    from nas.layers import GlobalAvgPool

    x = torch.randn(4, 6, 7, 7).contiguous(memory_format=torch.channels_last)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    g = torch.randn(4, 6, 1, 1)
    GlobalAvgPool()(a).backward(g)
    nn.AdaptiveAvgPool2d(1)(b).backward(g)
    assert torch.equal(a.grad, b.grad)  # the same numbers...
    assert a.grad.is_contiguous(memory_format=torch.channels_last)  # ...in x's layout
    assert torch.equal(GlobalAvgPool()(x), nn.AdaptiveAvgPool2d(1)(x))


def test_dropout_bits_inside_train_are_seeded_and_outside_follow_torch():
    from nas.layers import seeded_bits

    x = torch.ones(2, 4, 8, 8)
    d = Dropout(0.5).train()
    with seeded_bits(7):
        a = d(x)
    with seeded_bits(7):
        assert torch.equal(d(x), a)
    torch.manual_seed(0)
    c = d(x)
    torch.manual_seed(0)
    assert torch.equal(d(x), c)  # outside a run: torch's generator, as before
