"""What one epoch of `batch1` (6.4M params) costs on this machine, from a few timed steps.

Its 15-epoch verification over 3 seeds is out of reach of a 2-core CPU; this measures the
training step (forward + backward + SGD, batch 128, fp32) and extrapolates to 469 steps per epoch.

    python bench/batch1_cost.py --steps 3
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from nas.build import build
from nas.presets import get_preset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="batch1")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast + channels-last")
    args = p.parse_args()
    torch.manual_seed(0)
    model = build(get_preset(args.preset).spec)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(args.batch, 1, 28, 28), torch.randint(0, 10, (args.batch,))
    if args.bf16:
        model = model.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    times = []
    for _ in range(args.steps + 1):  # the first step warms up and is not counted
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    step = sum(times[1:]) / args.steps
    steps = -(-60000 // args.batch)
    threads = torch.get_num_threads()
    prec = "bf16 autocast + channels-last" if args.bf16 else "fp32"
    print(f"{args.preset}: {step:.2f} s per step of {args.batch}, {threads} threads, {prec}")
    epoch = step * steps
    print(f"one epoch ~{epoch / 60:.0f} min; 15 epochs x 3 seeds ~{epoch * 45 / 3600:.1f} h")


if __name__ == "__main__":
    main()
