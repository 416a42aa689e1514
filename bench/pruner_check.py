r"""Does the pruner stop eventual winners? Compare a pruned study with an unpruned twin.

Run two studies with the same seed, space, budget and data, one with `--pruner none`:

    nas search --study prune_none --pruner none --trials 9 --train-limit 10000 \
        --enqueue baseline
    nas search --study prune_median --pruner median --trials 9 --train-limit 10000 \
        --enqueue baseline
    python bench/pruner_check.py prune_none prune_median  # --results-dir DIR if moved

TPE's first 10 trials are sampled at random from the seed, so both studies train the same
candidates there (checked below, parameter by parameter); after that the pruned study's sampler
sees different results and the candidates diverge. For the shared candidates the unpruned study
tells each one's final validation accuracy, and the pruned one whether it was stopped.
"""

from __future__ import annotations

import argparse

from nas.studyio import load_study


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("unpruned")
    p.add_argument("pruned")
    p.add_argument("--results-dir", default="results")
    args = p.parse_args()
    a = load_study(args.results_dir, args.unpruned)
    b = load_study(args.results_dir, args.pruned)
    rows = []
    for ta, tb in zip(a.trials, b.trials, strict=False):
        if ta.params != tb.params:
            break  # the samplers diverged
        if "history" not in ta.user_attrs:
            continue  # rejected by the budget in both
        final = ta.user_attrs["history"][-1]["val_acc"]
        hb = tb.user_attrs.get("history") or []
        fate = (f"pruned after epoch {len(hb)} at {hb[-1]['val_acc']:.2f}"
                if tb.state.name == "PRUNED" else f"completed at {hb[-1]['val_acc']:.2f}"
                if hb else tb.state.name)
        rows.append((ta.number, ta.user_attrs["n_params"], final, fate))
    rows.sort(key=lambda r: -r[2])
    print(f"{len(rows)} shared trained candidates (same parameters in both studies)")
    print("trial  params  final val acc (unpruned)  fate with pruning")
    for number, n, final, fate in rows:
        print(f"{number:5d} {n:7,d}  {final:24.2f}  {fate}")
    top = rows[: max(1, len(rows) // 4)]
    lost = [r for r in top if r[3].startswith("pruned")]
    print(f"top quarter by final accuracy: {len(top)} candidates, {len(lost)} pruned "
          f"({', '.join(str(r[0]) for r in lost) or 'none'})")
    ea = sum(len(t.user_attrs.get("history") or []) for t in a.trials)
    eb = sum(len(t.user_attrs.get("history") or []) for t in b.trials)
    print(f"epochs trained: {ea} unpruned, {eb} pruned ({len(a.trials)} vs {len(b.trials)} trials)")


if __name__ == "__main__":
    main()
