"""Which seed race picks the best finalist, simulated from archived searches; no training.

A search ends by retraining its top K full-length candidates (by their one validation score) on
S fresh seeds and naming the best mean (`nas/race.py`; K=3, S=2 by default). Whether another K
and S would pick better finalists for the same runs cannot be measured directly: that needs
each candidate's true quality. So this script simulates it, with the noise measured in the
same studies:

- sigma, the seed-to-seed spread of one validation score, is pooled from the race's own
  repeats (each finalist has 2 fresh seeds, so the pair difference gives it without bias),
  separately per dataset;
- each study's full-length candidates get a true quality mu_i = m + lam * (v_i - m), where v_i
  is their observed validation score, m the median, and lam = sqrt(1 - sigma^2 / s^2) with s a
  robust spread (1.4826 * MAD) of the v_i: the true spread is what is left of the observed one
  once the seed noise is taken out. `--lam 1` keeps the observed spread as true, which favours
  racing most;
- each replicate draws a fresh search score mu_i + N(0, sigma) for every candidate, then lets
  each policy pick, drawing fresh race seeds the same way. The regret is how far the pick's
  true quality falls below the best candidate's; "best %" how often it is the best.

Policies: `top1` names the best single score (no race); `KxS fresh` (today's rule) races the
top K on S fresh seeds and ranks by their mean only; `KxS all` also counts the search's own
score in the mean; `6>3` races 6 on one fresh seed, then the best 3 (mean of both scores) on
one more.

    python bench/race_policy.py results/cpu-2026-11-25/general-8k \
        results/cpu-2026-11-29/general-8k-scaled results/cpu-2026-12-01/general-8k-seed1 \
        results/cpu-2026-11-29/general-4k-scaled results/cpu-2026-11-29/general-2k \
        results/cpu-2026-12-02/separable-4k results/cpu-2026-12-02/separable-2k \
        results/cpu-2026-12-02/separable-8k results/cpu-2026-11-29/fashion-8k \
        results/cpu-2026-11-29/fashion-25k results/cpu-2026-12-02/fashion-8k-sep \
        results/cpu-2026-11-28/macs-500k > bench/race_policy.txt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from nas.studyio import read_trials

# name -> (runs it costs, picker(v_search, fresh_draw) -> index into the candidates)
POLICIES = ["top1", "3x2 fresh", "3x2 all", "2x3 fresh", "6x1 all", "6>3", "3x3 all",
            "4x2 all", "5x2 all"]


def race(v: np.ndarray, draw, k: int, s: int, count_search: bool) -> int:
    top = np.argsort(-v, kind="stable")[:k]
    fresh = draw(top, s)  # shape (k, s)
    score = (fresh.sum(1) + v[top]) / (s + 1) if count_search else fresh.mean(1)
    return int(top[np.argmax(score)])


def halving(v: np.ndarray, draw) -> int:
    top = np.argsort(-v, kind="stable")[:6]
    first = draw(top, 1)[:, 0]
    score = (v[top] + first) / 2
    keep = np.argsort(-score, kind="stable")[:3]
    second = draw(top[keep], 1)[:, 0]
    return int(top[keep][np.argmax((v[top][keep] + first[keep] + second) / 3)])


def pick(name: str, v: np.ndarray, draw) -> tuple[int, int]:
    """The candidate a policy names, and the race runs it cost."""
    if name == "top1":
        return int(np.argmax(v)), 0
    if name == "6>3":
        return halving(v, draw), 9
    ks, rule = name.split()
    k, s = map(int, ks.split("x"))
    return race(v, draw, k, s, rule == "all"), k * s


def study_data(folder: Path) -> tuple[str, np.ndarray, list]:
    meta = json.loads((folder / "study.json").read_text())
    d = read_trials(folder)
    full = d[(d.state == "complete") & (d.epochs_run >= meta["epochs"])]
    dataset = meta["dataset"] if isinstance(meta["dataset"], str) else meta["dataset"]["name"]
    return dataset, full.val_acc.to_numpy(float), meta.get("race") or []


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("studies", nargs="+", help="archived study folders (results/cpu-DATE/NAME)")
    p.add_argument("--reps", type=int, default=20000)
    p.add_argument("--lam", type=float, default=None,
                   help="true spread / observed spread (default: from sigma and the MAD)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    studies = {Path(f).name: study_data(Path(f)) for f in args.studies}
    sigma = {}
    for ds in sorted({s[0] for s in studies.values()}):
        pairs = np.array([r["race_vals"][:2] for d, _, race_ in studies.values() if d == ds
                          for r in race_ if len(r["race_vals"]) >= 2])
        sigma[ds] = float(np.sqrt(np.mean((pairs[:, 0] - pairs[:, 1]) ** 2) / 2))
        print(f"{ds}: sigma of one validation score {sigma[ds]:.3f} points, from "
              f"{len(pairs)} race pairs")
    rng = np.random.default_rng(args.seed)
    rows = []
    for name, (ds, v, _) in studies.items():
        sd, m = sigma[ds], np.median(v)
        s = 1.4826 * np.median(np.abs(v - m))
        lam = args.lam if args.lam is not None else float(np.sqrt(max(0.0, 1 - sd**2 / s**2)))
        mu = m + lam * (v - m)
        best = mu.max()
        regret = {k: 0.0 for k in POLICIES}
        hits = dict.fromkeys(POLICIES, 0)
        cost = {}
        for _ in range(args.reps):
            seen = mu + rng.normal(0, sd, mu.shape)

            def draw(idx, n, mu=mu, sd=sd):
                return mu[idx][:, None] + rng.normal(0, sd, (len(idx), n))

            for pol in POLICIES:
                i, cost[pol] = pick(pol, seen, draw)
                regret[pol] += best - mu[i]
                hits[pol] += mu[i] == best
        # the gap between the true best and the 5th best: how much there is to find
        gap5 = best - np.sort(mu)[-5]
        rows.append({"study": name, "n": len(v), "lam": lam, "gap5": gap5,
                     **{f"r {k}": regret[k] / args.reps for k in POLICIES},
                     **{f"h {k}": hits[k] / args.reps for k in POLICIES}})
    df = pd.DataFrame(rows).set_index("study")
    pd.set_option("display.width", 250)
    print("\nmean regret (points of accuracy below the best full-length candidate's true "
          f"quality), {args.reps} replicates per study; race runs: "
          + ", ".join(f"{k} {cost[k]}" for k in POLICIES))
    print(df[["n", "lam", "gap5"] + [f"r {k}" for k in POLICIES]].round(3).to_string())
    mnist = [n for n, s in studies.items() if s[0] == "mnist"]
    print("\nMNIST mean regret: " + ", ".join(
        f"{k} {df.loc[mnist, f'r {k}'].mean():.3f}" for k in POLICIES))
    print("\nhow often the true best is named (share of replicates)")
    print(df[[f"h {k}" for k in POLICIES]].round(2).to_string())


if __name__ == "__main__":
    main()
