"""Where one training step of a preset goes: ms per step, page faults, torch.profiler table.

    OMP_NUM_THREADS=1 python bench/profile_step.py --bf16          # bf16 autocast + channels-last
    OMP_NUM_THREADS=1 python bench/profile_step.py --nn-dropout    # torch's nn.Dropout instead
    OMP_NUM_THREADS=1 python bench/profile_step.py --nchw          # contiguous NCHW
    OMP_NUM_THREADS=1 python bench/profile_step.py --compile       # torch.compile: compile s, ms
"""

from __future__ import annotations

import argparse
import resource
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

import nas.build
from nas.presets import get_preset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="baseline")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--nchw", action="store_true", help="no channels-last")
    p.add_argument("--nn-dropout", action="store_true", help="torch's nn.Dropout")
    p.add_argument("--compile", action="store_true", help="time torch.compile against eager")
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()
    if args.nn_dropout:
        nas.build.FastDropout = torch.nn.Dropout
    torch.manual_seed(0)
    model = nas.build.build(get_preset(args.preset).spec)
    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    if not args.nchw:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(
            memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, foreach=True)

    def stepper(f):
        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                out = f(x)
            loss = F.cross_entropy(out.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    def ms(step) -> float:
        for _ in range(3):
            step()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        return (time.perf_counter() - t0) / args.steps * 1e3

    eager = stepper(model)
    print(f"{args.preset}, {torch.get_num_threads()} threads, bf16 {args.bf16}, "
          f"channels-last {not args.nchw}, nn.Dropout {args.nn_dropout}")
    if args.compile:
        t0 = time.perf_counter()
        compiled = stepper(torch.compile(model))
        compiled()
        print(f"compile + first step {time.perf_counter() - t0:.1f} s")
        for _ in range(2):  # alternate, so machine noise hits both
            print(f"eager {ms(eager):.1f} ms/step, compiled {ms(compiled):.1f} ms/step")
        return
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    print(f"{ms(eager):.1f} ms/step, "
          f"{(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / (args.steps + 3):.0f} "
          "minor page faults per step")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            eager()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
