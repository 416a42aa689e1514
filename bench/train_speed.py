"""Training throughput: the plain loop users write today vs the nas trainer, in one run.

(a) plain: torchvision.datasets.MNIST with per-image RandomRotation, ToTensor, Normalize and a
    DataLoader, as in the Optuna PyTorch example and the hand-made batches;
(b) nas: nas.train.train with its defaults (data on the device as one tensor, batch-wide
    augmentation, channels-last, nas's Dropout whose mask is cheaper to draw on the CPU,
    precision auto: bf16 autocast where the hardware has native bf16, fp32 elsewhere);
then variants of (b), each with one thing changed, to show what it is worth: nas_nchw
(contiguous NCHW), nas_nndrop (torch's nn.Dropout), nas_fp32 and nas_bf16 (precision forced),
nas_torchrng (dropout bits from torch's MT19937 instead of NumPy's SFC64), nas_aapool (torch's
AdaptiveAvgPool2d, whose gradient is NCHW, instead of nas.layers.GlobalAvgPool),
nas_ftz (denormals flushed to zero), nas_fusedsgd (SGD's fused CPU kernel instead of
foreach), nas_before (NCHW, nn.Dropout, fp32: the trainer before 2026-11-24), and nas_noheap
(the default without telling glibc to keep freed memory: NAS_KEEP_HEAP=0, see nas/heap.py).
Every run is a fresh process, so nothing one method sets up carries over to the next. Each line
also gives the minor page faults per training step of the run (training and the last epoch's
evaluation).

NAS_NATIVE_BF16=0 makes the default precision fp32 (what a CPU without AVX512-BF16 or AMX
gets), NAS_NATIVE_BF16=1 makes it bf16; --quick is CI's smoke run of both.

Same architecture (the `baseline` preset), same recipe (SGD nesterov, OneCycle, batch 128,
+-7 degree rotation). The methods alternate, repeat by repeat, and each round starts one
method later than the one before, so machine noise and slot effects hit all of them. Prints
images/s and final test accuracy per method; the last line is `ratio X.XX` (nas over plain).

    python bench/train_speed.py                                    # ~1 minute on 2 CPU cores
    NAS_NATIVE_BF16=0 python bench/train_speed.py                  # as on a CPU without bf16
    python bench/train_speed.py --quick                            # smoke run, seconds
    python bench/train_speed.py --epochs 15 --limit 0 --repeats 2  # full recipe, 2 seeds
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

import nas.build
import nas.train
from nas.build import build
from nas.data import MEAN, STD, load_mnist, prepare_raw, resolve_device
from nas.presets import get_preset
from nas.train import make_optimizer, native_bf16, train


@contextlib.contextmanager
def torch_dropout(gap: bool = True):
    """Build models with torch.nn.Dropout instead of nas.layers.Dropout, and with ``gap``
    torch.nn.AdaptiveAvgPool2d instead of nas.layers.GlobalAvgPool (benchmark only)."""
    saved = nas.build.FastDropout, nas.build.GlobalAvgPool
    nas.build.FastDropout = torch.nn.Dropout
    if gap:
        nas.build.GlobalAvgPool = lambda: torch.nn.AdaptiveAvgPool2d(1)
    try:
        yield
    finally:
        nas.build.FastDropout, nas.build.GlobalAvgPool = saved


@contextlib.contextmanager
def variant(name: str):
    """nas_torchrng: dropout bits from torch's generator; nas_aapool: torch's GAP;
    nas_ftz: denormals flushed to zero; nas_fusedsgd: the optimizer's fused CPU kernel."""
    saved = nas.train.seeded_bits, nas.build.GlobalAvgPool, torch.optim.SGD
    if name == "nas_torchrng":
        nas.train.seeded_bits = lambda seed: contextlib.nullcontext()
    if name == "nas_aapool":
        nas.build.GlobalAvgPool = lambda: torch.nn.AdaptiveAvgPool2d(1)
    if name == "nas_ftz":
        torch.set_flush_denormal(True)
    if name == "nas_fusedsgd":
        torch.optim.SGD = lambda params, foreach=None, **kw: saved[2](params, fused=True, **kw)
    try:
        yield
    finally:
        nas.train.seeded_bits, nas.build.GlobalAvgPool, torch.optim.SGD = saved
        torch.set_flush_denormal(False)


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def plain_run(spec, cfg, root, device, limit, seed) -> tuple[float, float, int, int]:
    """(train seconds, final test accuracy %, images seen, page faults while training) of the
    DataLoader loop."""
    torch.manual_seed(seed)
    tf_train = transforms.Compose([
        transforms.RandomRotation(cfg.rotate_deg, fill=0),
        transforms.ToTensor(),
        transforms.Normalize((MEAN,), (STD,)),
    ])
    tf_test = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    train_ds = datasets.MNIST(root, train=True, download=False, transform=tf_train)
    if limit:
        train_ds = Subset(train_ds, range(limit))
    test_ds = datasets.MNIST(root, train=False, download=False, transform=tf_test)
    loader = DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=True)
    with torch_dropout():  # what users write: torch's own layers
        model = build(spec).to(device)
    opt, sched, _ = make_optimizer(model, cfg, len(loader))
    f0, t0 = minor_faults(), time.perf_counter()
    for _ in range(cfg.epochs):
        model.train()
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds, faults = time.perf_counter() - t0, minor_faults() - f0
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in DataLoader(test_ds, batch_size=1000):
            correct += (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
    return seconds, 100.0 * correct / len(test_ds), len(train_ds) * cfg.epochs, faults


def nas_run(spec, cfg, data, limit, seed, nn_dropout=False) -> tuple[float, float, int, int]:
    """The same for nas.train.train; its faults include its per-epoch evaluations."""
    f0 = minor_faults()
    with torch_dropout(gap=False) if nn_dropout else contextlib.nullcontext():
        res = train(spec, cfg, data, seed=seed, progress=False, train_limit=limit or None)
    faults = minor_faults() - f0
    seconds = sum(r["train_s"] for r in res.history)
    n = min(limit, len(data.train)) if limit else len(data.train)
    return seconds, res.history[-1]["test_acc"], n * cfg.epochs, faults


METHODS = {  # name: (recipe change, torch's nn.Dropout, extra environment); None: plain loop
    "plain": None,
    "nas": ({}, False, {}),
    "nas_nchw": ({"channels_last": False}, False, {}),
    "nas_nndrop": ({}, True, {}),
    "nas_fp32": ({"bf16": False}, False, {}),
    "nas_bf16": ({"bf16": True}, False, {}),
    "nas_torchrng": ({}, False, {}),
    "nas_aapool": ({}, False, {}),
    "nas_ftz": ({}, False, {}),
    "nas_fusedsgd": ({}, False, {}),
    "nas_before": ({"channels_last": False, "bf16": False}, True, {}),
    # the default, but glibc returns freed pages to the kernel as it does by default, so a
    # step's fresh tensors fault their pages in again (nas/heap.py)
    "nas_noheap": ({}, False, {"NAS_KEEP_HEAP": "0"}),
}


def one(args) -> None:
    """One method, one seed, in this (fresh) process; prints one JSON line."""
    device = resolve_device(args.device)
    preset = get_preset("baseline")
    cfg = dataclasses.replace(preset.train, epochs=args.epochs)
    if args.one == "plain":
        sec, acc, n, faults = plain_run(preset.spec, cfg, prepare_raw(args.data_dir), device,
                                        args.limit, args.seed)
    else:
        change, nn_dropout, _ = METHODS[args.one]
        data = load_mnist(args.data_dir, str(device), 0)
        with variant(args.one):
            sec, acc, n, faults = nas_run(preset.spec, dataclasses.replace(cfg, **change), data,
                                          args.limit, args.seed, nn_dropout)
    steps = math.ceil(n / cfg.epochs / cfg.batch_size) * cfg.epochs
    print(json.dumps({"seconds": sec, "acc": acc, "images": n, "faults_per_step": faults / steps}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--limit", type=int, default=10000, help="training images; 0 = all 60,000")
    p.add_argument("--repeats", type=int, default=2, help="alternating rounds (seed = round)")
    p.add_argument("--device", default="auto")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--methods", default="plain,nas,nas_fp32,nas_bf16",
                   help=f"comma-separated, of {', '.join(METHODS)}")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 epoch of 2,000 images, 1 round, plain and nas")
    p.add_argument("--one", choices=list(METHODS), help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        return one(args)
    if args.quick:
        args.epochs, args.limit, args.repeats, args.methods = 1, 2000, 1, "plain,nas"
    methods = args.methods.split(",")
    print(f"device {resolve_device(args.device)}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.epochs} epochs on {args.limit or 60000} "
          f"images, {args.repeats} rounds; each run in a fresh process; native bf16: "
          f"{native_bf16(resolve_device(args.device))} (NAS_NATIVE_BF16="
          f"{os.environ.get('NAS_NATIVE_BF16', 'unset')}), so the default `nas` runs "
          f"{'bf16' if native_bf16(resolve_device(args.device)) else 'fp32'}")
    totals = {k: [0.0, 0] for k in methods}
    accs: dict[str, list[float]] = {k: [] for k in methods}
    for seed in range(args.repeats):
        # each round starts one method later: no method always runs first or right after the
        # plain loop, so effects of the slot in the round (clock, caches) spread over all
        k = seed % len(methods)
        for name in methods[k:] + methods[:k]:
            env = {**os.environ, **(METHODS[name][2] if METHODS[name] else {})}
            cmd = [sys.executable, __file__, "--one", name, "--seed", str(seed), "--epochs",
                   str(args.epochs), "--limit", str(args.limit), "--device", args.device]
            if args.data_dir:
                cmd += ["--data-dir", args.data_dir]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            totals[name][0] += r["seconds"]
            totals[name][1] += r["images"]
            accs[name].append(r["acc"])
            print(f"round {seed} {name:12s} {r['images'] / r['seconds']:8.0f} img/s  "
                  f"{r['seconds']:7.1f} s  final test acc {r['acc']:.2f}%  "
                  f"{r['faults_per_step']:6.0f} page faults/step", flush=True)
    rate = {k: n / s for k, (s, n) in totals.items()}
    for k in methods:
        a = torch.tensor(accs[k], dtype=torch.float64)
        sd = a.std().item() if len(a) > 1 else math.nan
        print(f"{k:12s} {rate[k]:8.0f} img/s  x{rate[k] / rate['plain']:.2f} vs plain  "
              f"acc {a.mean().item():.2f} +- {sd:.2f}% ({', '.join(f'{x:.2f}' for x in accs[k])})")
    print(f"ratio {rate['nas'] / rate['plain']:.2f}")


if __name__ == "__main__":
    main()
