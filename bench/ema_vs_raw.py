"""What weight averaging (EMA) bought: final-epoch accuracy of the EMA weights minus the raw ones.

Every EMA run records both (``val_acc``/``test_acc`` are the EMA weights', ``*_acc_raw`` the raw
ones'), so this compares them within the same runs, with no extra training. It reads a study's
completed trials and any verify runs given.

    python bench/ema_vs_raw.py s8kref --results-dir results/cpu-2026-11-24 \
        --verify results/verify/s8kref-t28 results/verify/s8kref-t29
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from nas.studyio import completed, load_study


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study")
    ap.add_argument("--results-dir", default="results")
    ap.add_argument("--verify", nargs="*", default=[], help="verify run folders")
    args = ap.parse_args()

    rows = []
    for t in completed(load_study(args.results_dir, args.study)):
        last = t.user_attrs["history"][-1]
        if "val_acc_raw" in last:
            rows.append({"trial": t.number, "ema": t.params.get("ema"),
                         "val_diff": last["val_acc"] - last["val_acc_raw"],
                         "test_diff": last["test_acc"] - last["test_acc_raw"]})
    df = pd.DataFrame(rows)
    print(f"study {args.study}: {len(df)} completed EMA trials, final epoch, EMA minus raw")
    print(df.round({"val_diff": 2, "test_diff": 2}).to_string(index=False))
    for col in ("val_diff", "test_diff"):
        print(f"{col}: mean {df[col].mean():+.3f} ± {df[col].std():.3f} points")
    for folder in map(Path, args.verify):
        finals = [pd.read_csv(f).iloc[-1] for f in sorted(folder.glob("history_seed*.csv"))]
        ema = sum(r.test_acc for r in finals) / len(finals)
        raw = sum(r.test_acc_raw for r in finals) / len(finals)
        print(f"{folder.name}: {len(finals)} seeds, test mean EMA {ema:.2f}%, raw {raw:.2f}%")


if __name__ == "__main__":
    main()
