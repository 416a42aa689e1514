"""Evaluation throughput by eval batch size: what TrainConfig.eval_batch_size is worth.

Every epoch of every run evaluates the whole validation (search) or test split (train, verify):
10,000 images on MNIST. A search's cheap rung trains 2 epochs on a quarter of the images, so
there evaluation is a large share of a candidate's time. This times ``nas.train.evaluate`` on
the test split, one preset, fresh random weights, for each batch size in turn, round after
round (each round starts one size later), and counts the minor page faults and the system
time of each pass: activations too large for glibc's heap come as fresh pages every time.

    python bench/eval_speed.py                        # baseline, 2000 / 1000 / 500 / 256 / 128
    python bench/eval_speed.py --preset best8k --rounds 5

Prints per size: images/s, faults per pass, system seconds per pass, accuracy and loss (the
same for every size: the batch size changes no result); the last line is `ratio X.XX` (the
default size over 2000).
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import statistics
import time

import torch

from nas.build import build
from nas.config import TrainConfig
from nas.data import load_mnist, resolve_device
from nas.presets import get_preset
from nas.train import evaluate, resolve_precision


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="baseline")
    p.add_argument("--sizes", default="2000,1000,500,256,128")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()
    device = resolve_device(args.device)
    sizes = [int(s) for s in args.sizes.split(",")]
    default = TrainConfig().eval_batch_size
    if 2000 not in sizes or default not in sizes:
        p.error(f"--sizes must hold 2000 and the default, {default}")
    preset = get_preset(args.preset)
    data = load_mnist(args.data_dir, str(device), 0)
    torch.manual_seed(0)
    model = build(preset.spec).to(device).to(memory_format=torch.channels_last)
    cfg = resolve_precision(preset.train, device)
    print(f"{args.preset} on {device}, {torch.get_num_threads()} threads, bf16 {cfg.bf16}, "
          f"{len(data.test)} test images per pass, {args.rounds} rounds; default "
          f"eval_batch_size {default}")
    evaluate(model, data.test, dataclasses.replace(cfg, eval_batch_size=default))  # warm-up
    seconds: dict[int, list[float]] = {s: [] for s in sizes}
    faults: dict[int, list[int]] = {s: [] for s in sizes}
    system: dict[int, list[float]] = {s: [] for s in sizes}
    result = {}
    for r in range(args.rounds):
        k = r % len(sizes)
        for bs in sizes[k:] + sizes[:k]:
            c = dataclasses.replace(cfg, eval_batch_size=bs)
            u0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            result[bs] = evaluate(model, data.test, c)
            seconds[bs].append(time.perf_counter() - t0)
            u1 = resource.getrusage(resource.RUSAGE_SELF)
            faults[bs].append(u1.ru_minflt - u0.ru_minflt)
            system[bs].append(u1.ru_stime - u0.ru_stime)
            print(f"round {r} batch {bs:5d} {len(data.test) / seconds[bs][-1]:8.0f} img/s "
                  f"{faults[bs][-1]:8d} faults {system[bs][-1]:6.2f} s system", flush=True)
    rate = {bs: len(data.test) * args.rounds / sum(v) for bs, v in seconds.items()}
    for bs in sizes:
        loss, acc = result[bs]
        print(f"batch {bs:5d} {rate[bs]:8.0f} img/s  x{rate[bs] / rate[2000]:.2f} vs 2000  "
              f"faults/pass {statistics.median(faults[bs]):8.0f}  system s/pass "
              f"{statistics.median(system[bs]):.2f}  acc {acc:.2f}% loss {loss:.6f}")
    print(f"ratio {rate[default] / rate[2000]:.2f}")


if __name__ == "__main__":
    main()
