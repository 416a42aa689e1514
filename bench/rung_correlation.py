"""How well do cheap rungs rank candidates? Spearman between each rung's score and the score of
the full-length training, over random candidates of a space under a budget.

Each candidate is sampled by Optuna's RandomSampler (seed fixed), must fit the budget, and is
trained once per rung (EPOCHSxFRACTION: the recipe compressed into EPOCHS, on that fraction of
the training images) and once in full; all scores are final-epoch validation accuracy on the
10,000 held-out training images (the test set is never evaluated). Every finished candidate is
appended to the --out JSON-lines file, so a stopped run goes on where it was:

    OMP_NUM_THREADS=1 python bench/rung_correlation.py --n 24 --shard 0/2 \
        --rungs 1x0.25,2x0.25,3x0.5,5x0.5 --out bench/rung_correlation_8k.jsonl  # + shard 1/2
    python bench/rung_correlation.py --out bench/rung_correlation_8k.jsonl --report-only

The report gives Spearman's rho of each rung against the full score over all candidates and
over the better half (what successive halving must rank), and each rung's cost in full-candidate
equivalents (its seconds over the full training's).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import optuna
import pandas as pd

from nas.config import DEFAULT_RUNGS, parse_rungs
from nas.data import load_mnist
from nas.spaces import get_space
from nas.spec import SpecError, analyze
from nas.train import resolve_precision, train


def candidates(space_name: str, budget: int, seed: int, n: int) -> list[tuple]:
    """The first n random candidates of the space that fit the budget (deterministic)."""
    space = get_space(space_name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    study.set_user_attr("max_params", budget)
    out = []
    while len(out) < n:
        trial = study.ask()
        spec, cfg = space.sample(trial)
        try:
            n_params = analyze(spec).n_params
        except SpecError:
            n_params = None
        study.tell(trial, 0.0)
        if n_params is not None and n_params < budget:
            out.append((trial.number, spec, cfg, n_params))
    return out


def spearman(a: pd.Series, b: pd.Series) -> float:
    """Spearman's rho: Pearson's r of the ranks (ties share their mean rank)."""
    return a.rank().corr(b.rank())


def report(path: Path, rungs: tuple) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    df = pd.DataFrame(rows)
    lines = [f"{len(df)} candidates from {path.name}"]
    if len(df) < 3:
        return "\n".join(lines)
    good = df[df.full_val >= df.full_val.median()]
    for k, (e, f) in enumerate(rungs):
        col = f"rung{k}_val"
        rho = spearman(df[col], df.full_val)
        rho_top = spearman(good[col], good.full_val)
        cost = (df[f"rung{k}_s"] / df.full_s).mean()
        lines.append(f"rung {k} ({e} epochs x {f:g} of the images): Spearman {rho:.2f} over all "
                     f"{len(df)}, {rho_top:.2f} over the better half ({len(good)}); cost "
                     f"{cost:.3f} of a full training")
    lines.append(f"full training: {df.full_s.mean() / 60:.1f} min per candidate on average; "
                 f"full val {df.full_val.min():.2f}..{df.full_val.max():.2f}%")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--space", default="general")
    p.add_argument("--max-params", type=int, default=8000)
    p.add_argument("--n", type=int, default=24, help="candidates")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--rungs", default=",".join(f"{e}x{f:g}" for e, f in DEFAULT_RUNGS))
    p.add_argument("--out", type=Path, required=True, help="JSON lines, appended")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--shard", default="0/1", metavar="K/M",
                   help="train only candidates K, K+M, K+2M, ... (M processes side by side)")
    args = p.parse_args()
    rungs = parse_rungs(args.rungs)
    if not args.report_only:
        done = set()
        if args.out.is_file():
            done = {json.loads(x)["number"] for x in args.out.read_text().splitlines() if x}
        data = dataclasses.replace(load_mnist(args.data_dir, "cpu", 10000), test=None)
        shard, shards = (int(x) for x in args.shard.split("/"))
        for i, (number, spec, cfg, n_params) in enumerate(
                candidates(args.space, args.max_params, args.seed, args.n)):
            if number in done or i % shards != shard:
                continue
            cfg = resolve_precision(dataclasses.replace(cfg, epochs=args.epochs),
                                    data.train.device)
            row = {"number": number, "n_params": n_params, "spec": spec.to_dict(),
                   "train_config": cfg.to_dict()}
            for k, (e, f) in enumerate(rungs):
                t0 = time.perf_counter()
                res = train(spec, dataclasses.replace(cfg, epochs=e), data, seed=number,
                            progress=False, train_limit=int(len(data.train) * f))
                row[f"rung{k}_val"] = res.history[-1]["val_acc"]
                row[f"rung{k}_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            res = train(spec, cfg, data, seed=number, progress=False)
            row["full_val"] = res.history[-1]["val_acc"]
            row["full_s"] = time.perf_counter() - t0
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"candidate {number} ({n_params:,} params): " + ", ".join(
                f"rung {k} {row[f'rung{k}_val']:.2f}%" for k in range(len(rungs)))
                + f", full {row['full_val']:.2f}% ({row['full_s'] / 60:.1f} min)", flush=True)
    print(report(args.out, rungs))


if __name__ == "__main__":
    main()
