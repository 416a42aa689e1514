"""Layers the builder uses in place of torch.nn's, with the same maths and state_dict."""

from __future__ import annotations

import torch
from torch import nn

BITS = 16  # random bits per element: p is rounded to a multiple of 1/65536


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
        bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(1 << 63), None)
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
