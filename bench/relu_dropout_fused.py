"""A prototype, measured and not adopted: ReLU and nas's dropout fused into one autograd function.

The builder's conv -> BN -> ReLU(inplace) -> Dropout keeps the ReLU's output and the dropout
mask for the backward, which is two passes (mask multiply, then ReLU's threshold) into two new
tensors. Fused, the forward multiplies in place and keeps only its output, and the backward is
one threshold on that output and one in-place scale. Same numbers: the script checks that the
output and every gradient are bit-identical to the current layers (fp32 and bf16), then times
whole training steps (batch 128, channels-last, SGD) of a preset, the two models alternating,
6 rounds of 40 steps. Result and verdict: bench/RESULTS.md (2026-12-02).

    python bench/relu_dropout_fused.py baseline          # fp32
    python bench/relu_dropout_fused.py baseline --bf16   # bf16 autocast
    python bench/relu_dropout_fused.py best8k
"""
import copy
import sys
import time
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

import nas.build
from nas.layers import BITS, Dropout, _Bits
from nas.presets import get_preset


class _ReluDrop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mask, scale):
        out = torch.relu(x).mul_(mask)
        ctx.save_for_backward(out)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        gi = torch.ops.aten.threshold_backward(g, out, 0)
        return gi.mul_(ctx.scale), None, None


class ReluDrop(Dropout):
    def forward(self, x):
        if not (self.training and x.device.type == "cpu" and 0 < self.p < 1):
            return super().forward(torch.relu(x))
        n, cut = x.numel(), round(self.p * (1 << BITS))
        bits = _Bits.draw((n + 3) // 4)
        mask = bits.view(torch.int16)[:n].to(torch.float32)
        mask.sub_(cut - (1 << (BITS - 1)) - 1).clamp_(0, 1)
        scale = 1 / (1 - cut / (1 << BITS))
        mask = mask.to(x.dtype).mul_(scale)
        s = torch.tensor(scale, dtype=x.dtype).item()  # the scale as stored in x's dtype
        return _ReluDrop.apply(x, mask.as_strided(x.shape, x.stride()), s)


def fuse(model):
    mods = list(model.named_children())
    out = []
    i = 0
    while i < len(mods):
        name, m = mods[i]
        if isinstance(m, nn.ReLU) and i + 1 < len(mods) and isinstance(mods[i + 1][1], Dropout):
            out.append((name, nn.Identity()))
            out.append((mods[i + 1][0], ReluDrop(mods[i + 1][1].p)))
            i += 2
            continue
        out.append((name, m))
        i += 1
    return nn.Sequential(OrderedDict(out))


def main():
    preset = sys.argv[1] if len(sys.argv) > 1 else "baseline"
    bf16 = "--bf16" in sys.argv
    torch.manual_seed(0)
    base = nas.build.build(get_preset(preset).spec).to(memory_format=torch.channels_last)
    fused = copy.deepcopy(fuse(base))  # its own weights, equal to base's at the start
    x = torch.randn(128, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (128,))
    # equality: same bits
    outs = []
    for m in (base, fused):
        m.train()
        torch.manual_seed(1)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            o = m(x)
        loss = F.cross_entropy(o.float(), y)
        m.zero_grad()
        loss.backward()
        outs.append((o.detach().clone(), [p.grad.clone() for p in m.parameters()]))
    grads = zip(outs[0][1], outs[1][1], strict=True)
    print("equal out", torch.equal(outs[0][0], outs[1][0]),
          "equal grads", all(torch.equal(a, b) for a, b in grads))
    opts = {id(m): torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, nesterov=True)
            for m in (base, fused)}

    def step(m):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            o = m(x)
        loss = F.cross_entropy(o.float(), y)
        opts[id(m)].zero_grad(set_to_none=True)
        loss.backward()
        opts[id(m)].step()

    tot = {"base": 0.0, "fused": 0.0}
    for r in range(6):
        for name, m in (("base", base), ("fused", fused)) if r % 2 == 0 else (
                ("fused", fused), ("base", base)):
            for _ in range(3):
                step(m)
            t0 = time.perf_counter()
            for _ in range(40):
                step(m)
            dt = (time.perf_counter() - t0) / 40 * 1e3
            tot[name] += dt
            print(f"round {r} {name} {dt:.2f} ms/step")
    print(preset, "bf16" if bf16 else "fp32", {k: round(v / 6, 2) for k, v in tot.items()},
          "speed-up", round(tot["base"] / tot["fused"], 3))


if __name__ == "__main__":
    main()
