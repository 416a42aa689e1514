"""Why separable searches train fewer candidates an hour: depthwise convs on the CPU, by precision.

The separable searches (docs/experiments.md) trained 54-68 candidates an hour against 87 for
the general space at the same budget. This measures where their time goes and whether a
precision change for the depthwise convs alone would win it back:

(1) every conv of each winner, forward + backward alone (channels-last, the winner's batch, 2
    threads, median of 20 calls), in fp32 and under bf16 autocast: the depthwise convs' share
    of the conv time and how they take bf16;
(2) whole training steps (SGD, the winner's batch, channels-last), alternating rounds, of the
    default on this machine (bf16 autocast where native, as `nas` runs it), fp32 throughout,
    and bf16 autocast with the depthwise convs alone kept in fp32.

    python bench/depthwise_speed.py                 # the three separable winners and general8k
    python bench/depthwise_speed.py --rounds 2      # shorter
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nas.build import build
from nas.config import TrainConfig
from nas.presets import get_preset
from nas.spec import ArchSpec
from nas.train import native_bf16

WINNERS = {  # name: verify folder of the winner (spec.json, train_config.json), from the root
    "separable-2k": "results/verify/separable-2k-winner-seeds0-1-2",
    "separable-4k": "results/verify/separable-4k-winner-seeds0-1-2",
    "separable-8k": "results/verify/separable-8k-winner-seeds0-1-2",
}


def load(name: str) -> tuple[ArchSpec, int]:
    if name in WINNERS:
        d = Path(WINNERS[name])
        spec = ArchSpec.from_dict(json.loads((d / "spec.json").read_text()))
        cfg = TrainConfig.from_dict(json.loads((d / "train_config.json").read_text()))
        return spec, cfg.batch_size
    p = get_preset(name)
    return p.spec, p.train.batch_size


def is_depthwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels


class Fp32(nn.Module):
    """Runs the wrapped module in fp32 under bf16 autocast."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        with torch.autocast("cpu", enabled=False):
            return self.inner(x.float())


def conv_inputs(model: nn.Module, x: torch.Tensor) -> list[tuple[nn.Conv2d, torch.Size]]:
    """Each conv with the shape of its input, from one forward pass."""
    seen = []
    hooks = [m.register_forward_hook(lambda m, a, o: seen.append((m, a[0].shape)))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


def time_conv(conv: nn.Conv2d, shape, bf16: bool, calls: int = 20) -> float:
    """Median ms of one forward + backward of ``conv`` alone (input and weight gradients)."""
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last).requires_grad_()
    w = conv.weight.detach().clone().requires_grad_()
    times = []
    for i in range(calls + 3):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = F.conv2d(x, w, None, 1, conv.padding, 1, conv.groups)
        y.float().sum().backward()
        if i >= 3:
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def per_conv(name: str, model: nn.Module, batch: int) -> None:
    x = torch.randn(batch, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    rows = {"depthwise": [0.0, 0.0, 0], "full": [0.0, 0.0, 0]}
    for conv, shape in conv_inputs(model, x):
        kind = "depthwise" if is_depthwise(conv) else "full"
        fp32, bf16 = time_conv(conv, shape, False), time_conv(conv, shape, True)
        rows[kind][0] += fp32
        rows[kind][1] += bf16
        rows[kind][2] += 1
        print(f"  {name:13s} {kind:9s} {conv.in_channels:3d}->{conv.out_channels:3d} "
              f"k{conv.kernel_size[0]} at {shape[2]}x{shape[3]}: fp32 {fp32:6.2f} ms, "
              f"bf16 {bf16:6.2f} ms (x{fp32 / bf16:.2f})")
    total = sum(r[0] for r in rows.values())
    for kind, (f, b, n) in rows.items():
        if n:
            print(f"{name:13s} {n:2d} {kind:9s} convs: fp32 {f:6.2f} ms ({100 * f / total:.0f}% "
                  f"of the fp32 conv time), bf16 {b:6.2f} ms, bf16 speed-up x{f / b:.2f}")


def steps(models: dict, batch: int, rounds: int, n: int = 30) -> dict:
    """ms per training step of each (model, bf16) variant, in alternating rounds."""
    x = torch.randn(batch, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    opts = {k: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, nesterov=True)
            for k, (m, _) in models.items()}

    def step(k):
        m, bf16 = models[k]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = m(x)
        loss = F.cross_entropy(out.float(), y)
        opts[k].zero_grad(set_to_none=True)
        loss.backward()
        opts[k].step()

    got = {k: [] for k in models}
    names = list(models)
    for r in range(rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            for _ in range(3):
                step(k)
            t0 = time.perf_counter()
            for _ in range(n):
                step(k)
            got[k].append((time.perf_counter() - t0) / n * 1e3)
    return {k: statistics.median(v) for k, v in got.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", default=[*WINNERS, "general8k"])
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16: "
          f"{native_bf16(torch.device('cpu'))}")
    print("(1) each conv alone, forward + backward, median of 20 calls")
    for name in args.names:
        spec, batch = load(name)
        torch.manual_seed(0)
        per_conv(name, build(spec).to(memory_format=torch.channels_last), batch)
    print(f"(2) whole training steps, median over {args.rounds} alternating rounds of 30")
    for name in args.names:
        spec, batch = load(name)
        torch.manual_seed(0)
        base = build(spec).to(memory_format=torch.channels_last)
        mixed = build(spec).to(memory_format=torch.channels_last)
        for child_name, child in list(mixed.named_children()):
            if is_depthwise(child):
                setattr(mixed, child_name, Fp32(child))
        models = {"bf16": (base, True), "fp32": (build(spec).to(
            memory_format=torch.channels_last), False)}
        if any(is_depthwise(m) for m in base.modules()):
            models["bf16, depthwise fp32"] = (mixed, True)
        ms = steps(models, batch, args.rounds)
        print(f"{name:13s} batch {batch:3d}: " + ", ".join(
            f"{k} {v:.2f} ms" for k, v in ms.items())
            + f"; fp32 / bf16 x{ms['fp32'] / ms['bf16']:.2f}"
            + (f", bf16 / (bf16, depthwise fp32) x{ms['bf16'] / ms['bf16, depthwise fp32']:.2f}"
               if "bf16, depthwise fp32" in ms else ""))


if __name__ == "__main__":
    main()
