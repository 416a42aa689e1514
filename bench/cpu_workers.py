"""Search throughput on a CPU: one 2-thread training at a time vs two 1-thread trainings at once.

`nas search --workers K` gives each worker cpu_count // K threads. Tiny nets use threads badly
(8-20 channels leave little to split), so K processes of fewer threads may train more candidates
per hour than one process with all of them. This trains the same candidate (the `baseline`
preset, 1 epoch on --limit images) in both ways, alternating rounds, and prints trainings per
hour for each; the last line is `ratio X.XX` (parallel over sequential).

    python bench/cpu_workers.py --limit 10000 --repeats 2   # ~2 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

CHILD = """
import sys, time, torch, dataclasses
from nas.data import load_mnist
from nas.presets import get_preset
from nas.train import train
torch.set_num_threads(int(sys.argv[1]))
p = get_preset(sys.argv[2])
cfg = dataclasses.replace(p.train, epochs=1, bf16=sys.argv[4] == "1",
                          channels_last=sys.argv[4] == "1")
data = load_mnist(None, "cpu", 0)
t0 = time.perf_counter()
train(p.spec, cfg, data, progress=False, train_limit=int(sys.argv[3]), eval_limit=1000)
print(time.perf_counter() - t0)
"""


def spawn(threads: int, args) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(threads), args.preset, str(args.limit),
         "1" if args.bf16 else "0"], env=env, stdout=subprocess.PIPE, text=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="baseline")
    p.add_argument("--limit", type=int, default=10000, help="training images per run")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast + channels-last")
    args = p.parse_args()
    cores = os.cpu_count() or 1
    rates = {"sequential": [], "parallel": []}
    for r in range(args.repeats):
        # sequential: two trainings one after the other, each with every core
        t0 = time.perf_counter()
        for _ in range(2):
            spawn(cores, args).communicate()
        rates["sequential"].append(2 / (time.perf_counter() - t0))
        # parallel: two trainings at once, cores // 2 threads each
        t0 = time.perf_counter()
        procs = [spawn(max(1, cores // 2), args) for _ in range(2)]
        for proc in procs:
            proc.communicate()
        rates["parallel"].append(2 / (time.perf_counter() - t0))
        print(f"round {r + 1}: sequential {3600 * rates['sequential'][-1]:.0f} trainings/h, "
              f"parallel {3600 * rates['parallel'][-1]:.0f} trainings/h", flush=True)
    seq = sum(rates["sequential"]) / args.repeats
    par = sum(rates["parallel"]) / args.repeats
    print(f"{cores} cores, preset {args.preset}, {args.limit} images, 1 epoch, "
          f"{'bf16' if args.bf16 else 'fp32'}; process start and data load included")
    print(f"ratio {par / seq:.2f}")


if __name__ == "__main__":
    main()
