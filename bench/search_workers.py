"""Search throughput with K worker processes on one machine: full-length trainings per hour.

For each K in --workers, runs `nas search --workers K` on a fresh study in a temporary folder,
with the pruner off (every candidate that starts trains all its epochs) and no new trial after
--minutes, and counts the candidates that completed. The rate is completed trainings per hour
of wall time, from the first trial's start to the search's exit, so it counts process start-up
and the wait for the last trials (a K-worker search ends when its slowest worker does). Budget
rejections take milliseconds and are not counted. The last line is `ratio X.XX`: the largest
K's rate over the smallest K's.

The issue's GPU figure (candidates per GPU-hour for K = 1, 4, 8):

    python bench/search_workers.py --device cuda --workers 1,4,8 --minutes 10

A smoke run on a CPU (2 cores: `--workers 1,2`, tiny candidates):

    python bench/search_workers.py --device cpu --workers 1,2 --minutes 1 --epochs 2 \\
        --train-limit 2000
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nas.studyio import load_study


def one(k: int, args, root: Path) -> dict:
    cmd = [sys.executable, "-m", "nas.cli", "search", "--space", args.space, "--study", f"w{k}",
           "--results-dir", str(root), "--workers", str(k), "--trials", "100000",
           "--timeout", str(args.minutes * 60), "--pruner", "none", "--epochs",
           str(args.epochs), "--device", args.device, "--seed", str(args.seed), "--no-progress"]
    if args.train_limit:
        cmd += ["--train-limit", str(args.train_limit)]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    t0 = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    end = datetime.datetime.fromtimestamp(time.time())
    trials = load_study(root, f"w{k}").trials
    done = [t for t in trials if t.state.name == "COMPLETE"]
    trained = [t for t in trials if t.datetime_start and "rejected" not in t.user_attrs]
    first = min((t.datetime_start for t in trained), default=end)
    hours = (end - first).total_seconds() / 3600
    return {"k": k, "completed": len(done), "hours": hours, "wall_s": time.time() - t0,
            "rate": len(done) / hours if hours > 0 else 0.0,
            "mean_params": sum(t.user_attrs["n_params"] for t in done) / max(1, len(done))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", default="1,4,8", help="comma-separated K values")
    p.add_argument("--minutes", type=float, default=10.0, help="per K: no new trial after this")
    p.add_argument("--space", default="mnist_8k_oc")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--train-limit", type=int, default=None, help="smoke runs only")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()
    ks = [int(k) for k in args.workers.split(",")]
    print(f"space {args.space}, {args.epochs} epochs, train limit {args.train_limit or 'none'}, "
          f"device {args.device}, {args.minutes:g} minutes per K, pruner off")
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for k in ks:
            r = one(k, args, Path(tmp))
            rates[k] = r["rate"]
            print(f"K={k:<2d} {r['completed']:4d} completed in {r['hours'] * 60:6.1f} min "
                  f"(wall {r['wall_s'] / 60:.1f} min)  {r['rate']:8.1f} trainings/hour  "
                  f"mean {r['mean_params']:,.0f} params", flush=True)
    print(f"ratio {rates[max(ks)] / rates[min(ks)]:.2f}")


if __name__ == "__main__":
    main()
