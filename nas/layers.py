"""Layers the builder uses in place of torch.nn's, with the same maths and state_dict."""

from __future__ import annotations

import json

import numpy as np
import torch
from torch import nn

BITS = 16  # random bits per element: p is rounded to a multiple of 1/65536


class _Bits:
    """Where dropout's random bits come from: inside train(), a seeded NumPy SFC64 generator;
    elsewhere torch's global generator (so ``torch.manual_seed`` makes a bare layer repeat).

    Drawing the bits was ~9% of a CPU training step with torch's MT19937 (one stream, one
    core); SFC64's ``random_raw`` draws them in about half the time (bench/RESULTS.md). It is a
    well-tested generator (PractRand, BigCrush) and its state is four words, kept in checkpoints.
    """

    gen: np.random.SFC64 | None = None

    @classmethod
    def draw(cls, n: int) -> torch.Tensor:
        if cls.gen is None:  # random_(from, None) spans all 64 bits
            return torch.empty(n, dtype=torch.int64).random_(-(1 << 63), None)
        return torch.from_numpy(cls.gen.random_raw(n).view(np.int64))


class seeded_bits:
    """``with seeded_bits(seed):`` dropout draws from SFC64(seed) (train() does this)."""

    def __init__(self, seed: int):
        self.seed = seed

    def __enter__(self):
        self.saved, _Bits.gen = _Bits.gen, np.random.SFC64(self.seed)

    def __exit__(self, *exc):
        _Bits.gen = self.saved


def bits_state() -> str | None:
    """The generator's state as JSON text (checkpoints load it with weights_only)."""
    if _Bits.gen is None:
        return None
    st = _Bits.gen.state
    st["state"] = {k: v.tolist() for k, v in st["state"].items()}
    return json.dumps(st)


def set_bits_state(text: str | None) -> None:
    if text is None or _Bits.gen is None:
        return
    st = json.loads(text)
    st["state"] = {k: np.array(v, dtype=np.uint64) for k, v in st["state"].items()}
    _Bits.gen.state = st


class Dropout(nn.Dropout):
    """nn.Dropout whose mask is much cheaper to draw on the CPU.

    On the CPU, nn.Dropout draws one random number per element from the MT19937 generator
    (``bernoulli_``), which costs more than the convolutions of a tiny net (bench/RESULTS.md).
    Here one 64-bit draw of the same generator serves four elements, 16 bits each, so the drop
    probability becomes round(p * 65536) / 65536 (0.05 -> 0.050003) and the kept values are
    scaled by the inverse of that exact keep rate, as nn.Dropout scales by 1 / (1 - p). The
    global generator is used, so ``torch.manual_seed`` makes it deterministic. In eval mode,
    and off the CPU (CUDA's Philox generator is fast), it is nn.Dropout itself; an exported
    model.py uses nn.Dropout.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and x.device.type == "cpu" and 0 < self.p < 1) or self.inplace:
            return super().forward(x)
        if not (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)):
            x = x.contiguous()
        n, cut = x.numel(), round(self.p * (1 << BITS))
        # random_(from, None) spans all 64 bits (random_() leaves the sign bit 0), so each
        # int16 is uniform on [-32768, 32767]
        bits = _Bits.draw((n + 3) // 4)
        # keep an element when its int16 v >= t (t = cut - 32768). The mask is made in float
        # arithmetic: v - (t - 1) is >= 1 exactly when v >= t and <= 0 otherwise, so clamping
        # it to [0, 1] gives the 0/1 mask. int16 -> float32 and these in-place ops are
        # vectorized on the CPU, where `v >= t` and `where` on a bool mask are not: 2.6x less
        # time per mask, and the same mask, bit for bit (tests/test_layers.py).
        mask = bits.view(torch.int16)[:n].to(torch.float32)
        mask.sub_(cut - (1 << (BITS - 1)) - 1).clamp_(0, 1)
        # scaled by the inverse of the exact keep rate, in x's dtype (bf16 under autocast)
        mask = mask.to(x.dtype).mul_(1 / (1 - cut / (1 << BITS)))
        # the mask laid out like x (NCHW or channels-last): any layout of iid bits is iid
        return x * mask.as_strided(x.shape, x.stride())


class _GapFn(torch.autograd.Function):
    """Global average pooling whose gradient keeps the input's memory format.

    adaptive_avg_pool2d's backward returns a contiguous NCHW gradient even for a channels-last
    input, and every op of the last block's backward then mixes the two layouts, which is
    several times slower on the CPU. Here the gradient is the (N, C, 1, 1) one broadcast over
    H x W: the same numbers, with strides that fit any layout.
    """

    @staticmethod
    def forward(ctx, x):
        ctx.shape = x.shape
        return nn.functional.adaptive_avg_pool2d(x, 1)

    @staticmethod
    def backward(ctx, grad):
        n, c, h, w = ctx.shape
        return (grad / (h * w)).expand(n, c, h, w)


class GlobalAvgPool(nn.AdaptiveAvgPool2d):
    """nn.AdaptiveAvgPool2d(1) with a layout-keeping backward (see _GapFn)."""

    def __init__(self):
        super().__init__(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _GapFn.apply(x) if x.dim() == 4 else super().forward(x)
