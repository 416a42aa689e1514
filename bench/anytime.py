"""When each default search found its winner, and how far apart the searches' winners are.

From archived studies and their verify runs; no training. For each study: the compute it spent
(FCE: full-candidate equivalents, as ``nas report`` counts them) in the order its trials ended;
the best full-length validation score when 50%, 75% and 100% of the search phase's FCE was
spent; how far in the race's winner ended its 15 epochs, and its mean validation score on the
race's two fresh seeds. Then, per budget, whether the
searches' winners differ by more than the seeds' noise: the spread of their six-seed test means
(seeds 0-2 and 10-12) against what the per-seed spread alone would give. Optionally writes a
plotly page of the best-so-far curves (``--html``).

    python bench/anytime.py results/cpu-2026-11-25/general-8k \
        results/cpu-2026-11-29/general-8k-scaled ... --html results/anytime.html \
        > bench/anytime.txt
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import pandas as pd


def anytime(folder: Path) -> dict:
    """The study's trials in the order they ended, with cumulative FCE and best-so-far."""
    from nas.studyio import load_study, trial_fce

    meta = json.loads((folder / "study.json").read_text())
    epochs, rungs_cfg = meta.get("epochs") or 15, meta.get("rungs") or []
    study = load_study(folder.parent, folder.name)
    trained = [t for t in study.get_trials(deepcopy=False)
               if (t.user_attrs.get("rungs") or t.user_attrs.get("history"))
               and (t.datetime_complete or t.datetime_start)]
    trained.sort(key=lambda t: t.datetime_complete or t.datetime_start)
    rows, spent, best = [], 0.0, float("nan")
    for t in trained:
        spent += trial_fce(t, rungs_cfg, epochs)
        full = t.state.name == "COMPLETE" and len(t.user_attrs.get("history") or []) == epochs
        if full and t.value is not None and not best >= t.value:
            best = t.value
        rows.append({"number": t.number, "fce": spent, "full": full,
                     "val": t.value if full else None, "best": best})
    df = pd.DataFrame(rows)
    win = meta.get("winner") or {}
    return {"name": folder.name, "df": df, "winner": win.get("trial"),
            "race": win.get("mean"), "budget": meta.get("max_params"),
            "dataset": meta.get("dataset") or "mnist"}  # studies before datasets: MNIST


def best_at(df: pd.DataFrame, share: float) -> float:
    part = df[df.fce <= share * df.fce.iloc[-1] + 1e-9]
    return part.best.iloc[-1] if len(part) else float("nan")


def verify_finals(root: Path, name: str) -> list[float]:
    """The winner's final-epoch test accuracies over its two verify runs, where they exist."""
    out = []
    for seeds in ("0-1-2", "10-11-12"):
        f = root / "verify" / f"{name}-winner-seeds{seeds}" / "verify.json"
        if f.is_file():
            out += [s["final_acc"] for s in json.loads(f.read_text())["per_seed"].values()]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("studies", nargs="+", type=Path, help="archived study folders")
    p.add_argument("--verify-root", type=Path, default=Path("results"),
                   help="the folder holding verify/ (default: results)")
    p.add_argument("--html", type=Path, help="write the best-so-far curves here")
    args = p.parse_args()
    studies = [anytime(d) for d in args.studies]
    lines = []
    for s in studies:
        df = s["df"]
        total, n_full = df.fce.iloc[-1], int(df.full.sum())
        w = df[(df.number == s["winner"]) & df.full]
        w_at = w.fce.iloc[0] / total if len(w) else float("nan")
        finals = verify_finals(args.verify_root, s["name"])
        s["finals"] = finals
        lines.append({
            "study": s["name"], "data": s["dataset"], "budget": s["budget"],
            "FCE": round(total, 1), "full": n_full,
            "best@50%": best_at(df, 0.5), "best@75%": best_at(df, 0.75),
            "best@100%": df.best.iloc[-1],
            "winner": s["winner"], "winner done at": f"{w_at:.0%}",
            "race val": s["race"],
            "test, 6 seeds": round(statistics.mean(finals), 3) if finals else None,
        })
    table = pd.DataFrame(lines)
    print("Best full-length validation score (%) by share of the search phase's FCE; how far "
          "in the race's\nwinner ended its 15 epochs, and its mean validation on the race's "
          "two fresh seeds; test: the\nwinner's final-epoch mean over seeds 0-2 and 10-12.\n")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print("\nPer budget and dataset: do the searches' winners differ by more than seed noise?")
    print("sd of the winners' six-seed means, against the pooled within-winner sd / sqrt(6) "
          "that seed noise alone would give.\n")
    for (data, budget), group in table.groupby(["data", "budget"]):
        sets = [s["finals"] for s in studies
                if s["dataset"] == data and s["budget"] == budget and len(s["finals"]) >= 2]
        if len(sets) < 2:
            continue
        means = [statistics.mean(f) for f in sets]
        within = statistics.mean(statistics.variance(f) for f in sets) ** 0.5
        n = statistics.mean(len(f) for f in sets)
        race = group["race val"].dropna()
        rho = (group.loc[race.index, "race val"].rank()
               .corr(group.loc[race.index, "test, 6 seeds"].rank()))  # Spearman
        print(f"{data} < {budget}: {len(sets)} searches, winners' means "
              f"{', '.join(f'{m:.2f}' for m in means)}; mean {statistics.mean(means):.3f}, "
              f"sd {statistics.stdev(means):.3f} against {within / n ** 0.5:.3f} from seed "
              f"noise (per-seed sd {within:.3f}); race validation means span "
              f"{race.max() - race.min():.3f}, Spearman with the test means {rho:.2f}")
    if args.html:
        import plotly.graph_objects as go

        from nas.plots import write_html

        fig = go.Figure()
        for s in studies:
            d = s["df"][s["df"].best.notna()]
            fig.add_scatter(x=d.fce, y=d.best, mode="lines", line_shape="hv",
                            name=f"{s['name']} ({s['dataset']}, <{s['budget']:,})")
        fig.update_layout(title="Best full-length validation score as each search spent its "
                          "compute", xaxis_title="full-candidate equivalents spent",
                          yaxis_title="best validation accuracy so far (%)",
                          template="plotly_white")
        write_html(fig, args.html, args.html.parent)
        print(f"\nwrote {args.html}")


if __name__ == "__main__":
    main()
