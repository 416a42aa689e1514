"""What a fresh `nas` process pays before its first step: torch, torchvision, the data.

Each line is the median wall time of `--repeats` fresh interpreters running one snippet, so
the differences are what each import or read adds. Every search worker, verify seed worker,
and test subprocess pays this once (issue 17's test suite starts about 30 of them).

    python bench/startup.py --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

SNIPPETS = {
    "python": "pass",
    "import torch": "import torch",
    "import torch, torchvision": "import torch, torchvision",
    "import torch._dynamo (an optimizer's first use)": "import torch, torch._dynamo",
    "MNIST via torchvision.datasets.MNIST (before)": (
        "import torch, torchvision.datasets as D\n"
        "from nas.data import prepare_raw\n"
        "r = prepare_raw(None, 'MNIST')\n"
        "a, b = D.MNIST(r, train=True), D.MNIST(r, train=False)"),
    "MNIST via nas.data.read_idx (now)": (
        "import torch\n"
        "from nas.data import read_idx_dataset\n"
        "read_idx_dataset(None, 'MNIST')"),
    "before, then an optimizer (torch._dynamo)": (
        "import torch, torchvision.datasets as D, torch._dynamo\n"
        "from nas.data import prepare_raw\n"
        "r = prepare_raw(None, 'MNIST')\n"
        "a, b = D.MNIST(r, train=True), D.MNIST(r, train=False)"),
    "now, then an optimizer (torch._dynamo)": (
        "import torch, torch._dynamo\n"
        "from nas.data import read_idx_dataset\n"
        "read_idx_dataset(None, 'MNIST')"),
}


def wall(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    for code in SNIPPETS.values():  # warm the page cache and nas's decompressed-data cache
        wall(code)
    got = {}
    for name, code in SNIPPETS.items():
        got[name] = statistics.median(wall(code) for _ in range(args.repeats))
        print(f"{name:50s} {got[name]:6.2f} s")
    t = list(got.values())
    for what, before, now in (("reading data", t[4], t[5]),
                              ("training (an optimizer)", t[6], t[7])):
        print(f"start-up of a process {what}, before / now: {before / now:.2f}x "
              f"({before - now:.2f} s less)")

if __name__ == "__main__":
    main()
