"""Where one training step of a preset goes: ms per step, page faults, torch.profiler table.

    OMP_NUM_THREADS=1 python bench/profile_step.py --bf16          # bf16 autocast + channels-last
    OMP_NUM_THREADS=1 python bench/profile_step.py --nn-dropout    # torch's nn.Dropout instead
    OMP_NUM_THREADS=1 python bench/profile_step.py --nchw          # contiguous NCHW
    OMP_NUM_THREADS=1 python bench/profile_step.py --compile       # torch.compile: compile s, ms
    python bench/profile_step.py --loop        # nas.train.train itself, its defaults, 50 steps

The step modes time a bare forward/backward/SGD step on random data; --loop profiles the real
training loop (batch indexing, rotation, the preset's recipe with the trainer's defaults) at the
thread count of the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

import nas.build
from nas.data import load_mnist
from nas.presets import get_preset
from nas.train import train


def profile_loop(args) -> None:
    preset = get_preset(args.preset)
    cfg = dataclasses.replace(preset.train, epochs=1)
    data = load_mnist(None, "cpu", 0)
    train(preset.spec, cfg, data, progress=False, train_limit=2000, eval_limit=100)  # warm-up
    n = 50 * cfg.batch_size
    print(f"{args.preset}, {torch.get_num_threads()} threads, train() defaults: bf16 {cfg.bf16}, "
          f"channels-last {cfg.channels_last}; one epoch of {n} images, eval on 100")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train(preset.spec, cfg, data, progress=False, train_limit=n, eval_limit=100)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="baseline")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--nchw", action="store_true", help="no channels-last")
    p.add_argument("--nn-dropout", action="store_true", help="torch's nn.Dropout")
    p.add_argument("--compile", action="store_true", help="time torch.compile against eager")
    p.add_argument("--loop", action="store_true", help="profile nas.train.train's loop")
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()
    if args.loop:
        return profile_loop(args)
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
