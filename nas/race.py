"""The seed race: the search's top K candidates, each trained on S fresh seeds, on the training
images with the validation split held out, never the test set. The winner is the candidate with
the best mean validation accuracy over those fresh seeds; it is written into study.json before
anything looks at the test set, and `nas verify STUDY` then judges it there.

Why fresh seeds only: the K candidates were chosen for their one search run's score, which is
the highest of many noisy draws and so biased upward (the winner's curse); fresh seeds are not.
The same holds for the validation images: the finalists were chosen on the search's split, so
some of their lead is luck on those particular images, and fresh seeds on the same images keep
it. ``--race-split fresh`` holds out, for race seed i, another block of training images
(``race_fold``), disjoint from the search's split, so the judging images chose nothing.
Each finished run is kept in results/<study>/race.json, so a stopped race goes on where it was.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

import optuna

from nas.config import DEFAULT_RACE_SPLIT, SearchConfig, TrainConfig
from nas.runs import stop_pool, worker_threads, write_json
from nas.spec import ArchSpec
from nas.studyio import completed, full_train_s, rerun_recipe

SEED0 = 100_000  # race seeds: far above any trial number, which is a trial's training seed


def race_seeds(n: int) -> list[int]:
    return [SEED0 + s for s in range(n)]


def race_fold(i: int, n_folds: int) -> int:
    """The validation fold of the race's i-th seed under ``--race-split fresh``: folds 1, 2, ...
    in turn, never fold 0, whose images chose the finalists (see ``nas.data.split_data``)."""
    return 1 + i % (n_folds - 1)


def plan(needs: list[float], workers: int, now: float, end: float | None) -> list[bool]:
    """Which runs, in order, end before ``end`` on a pool of ``workers``: each starts when a
    worker frees up and takes its ``needs`` seconds."""
    free, ok = [now] * workers, []
    for need in needs:
        k = free.index(min(free))
        fits = end is None or free[k] + need <= end
        if fits:
            free[k] += need
        ok.append(fits)
    return ok


def fit(ranked: list[int], seeds: list[int], done: set, need: dict[int, float], workers: int,
        now: float, end: float | None) -> tuple[int, int]:
    """(k, n): the race that ends before ``end`` is the top k of ``ranked`` on the first n
    ``seeds`` each (``done`` runs, (trial, seed) pairs, cost nothing), with the most runs k x n,
    and of those the most candidates. Always a prefix of the ranking: a better candidate is never
    left out so that a worse but faster one can run, which would hand the worse one the win
    (a race can only name a candidate it ran). (0, 0) when not one run fits."""
    best = (0, 0)
    for k in range(len(ranked), 0, -1):
        for n in range(len(seeds), 0, -1):
            jobs = [t for s in seeds[:n] for t in ranked[:k] if (t, s) not in done]
            if all(plan([need[t] for t in jobs], workers, now, end)):
                if k * n > best[0] * best[1]:
                    best = (k, n)
                break
    return best


def margin(table: list[dict], best: dict) -> dict | None:
    """How far the winner leads the runner-up on the race's fresh seeds, against the standard
    error of that difference, from the race's own repeats (pooled seed-to-seed spread). None
    when there is no runner-up with scores or no repeat to measure the spread. ``level`` says
    the lead is under two standard errors: the race could not tell them apart."""
    others = [r for r in table if r is not best and r["race_vals"]]
    repeats = [r["race_vals"] for r in table if len(r["race_vals"]) > 1]
    if not others or not repeats:
        return None
    second = max(others, key=lambda r: r["mean"])
    df = sum(len(v) - 1 for v in repeats)
    sd = math.sqrt(sum(statistics.variance(v) * (len(v) - 1) for v in repeats) / df)
    se = sd * math.sqrt(1 / len(best["race_vals"]) + 1 / len(second["race_vals"]))
    lead = best["mean"] - second["mean"]
    return {"runner_up": second["trial"], "lead": round(lead, 4), "se": round(se, 4),
            "seed_sd": round(sd, 4), "df": df, "level": lead < 2 * se}


def finalist_lines(table: list[dict]) -> list[str]:
    """One line per finalist, best fresh-seed mean first: what the race log and `nas report`
    print."""
    lines = []
    for r in sorted(table, key=lambda r: -r["mean"] if r["race_vals"] else math.inf):
        vals = ", ".join(f"{v:.2f}" for v in r["race_vals"]) or "no run"
        mean = f"{r['mean']:.2f} +- {r['std']:.2f}%" if r["race_vals"] else "-"
        lines.append(f"trial {r['trial']} ({r['n_params']:,} params): search val "
                     f"{r['search_val']:.2f}%, fresh seeds {mean} ({vals})")
    return lines


def fold_of(seed: int, cfg: SearchConfig, n_train: int) -> int:
    """The validation fold a race run on ``seed`` holds out: 0 (the search's split) unless
    ``cfg.race_split`` is "fresh". ``n_train``: training images before the split."""
    if cfg.race_split != "fresh" or not cfg.val_size:
        return 0
    return race_fold(seed - SEED0, n_train // cfg.val_size)


def _run(spec: dict, tcfg: dict, seed: int, cfg: SearchConfig, threads: int | None,
         number: int) -> dict:
    """One race run (in this process or a spawned one): validation accuracy and seconds. It
    prints a line per epoch, with or without --no-progress: a race takes a few full trainings,
    tens of minutes on a CPU, and would otherwise show nothing until its first run ends."""
    import torch

    from nas.data import resolve_device
    from nas.datasets import load_data
    from nas.train import train

    if threads:  # a spawned process of the race's pool
        from nas.runs import exit_with_parent

        exit_with_parent()
        torch.set_num_threads(threads)
    device = str(resolve_device(cfg.device))
    data = load_data(cfg.dataset, cfg.data_dir, device, cfg.val_size)
    if fold := fold_of(seed, cfg, len(data.train.y) + len(data.val.y)):
        data = load_data(cfg.dataset, cfg.data_dir, device, cfg.val_size, fold)
    data = dataclasses.replace(data, test=None)  # the race never sees the test set
    started = datetime.now().isoformat(timespec="seconds")
    t0 = time.perf_counter()
    epochs = tcfg["epochs"]

    def on_epoch(rec: dict) -> None:
        print(f"race: trial {number} seed {seed} epoch {rec['epoch']}/{epochs} "
              f"val {rec['val_acc']:.2f}% loss {rec['train_loss']:.4f} {rec['time_s']:.0f} s",
              flush=True)

    res = train(ArchSpec.from_dict(spec), TrainConfig.from_dict(tcfg), data, seed=seed,
                callback=on_epoch, progress=False, train_limit=cfg.train_limit,
                eval_limit=cfg.eval_limit)
    val = res.history[-1]["val_acc"] if not res.stop_reason else math.nan
    return {"val_acc": val, "seconds": time.perf_counter() - t0, "bf16": bool(res.config.bf16),
            "split": cfg.race_split, "fold": fold,
            "start": started, "end": datetime.now().isoformat(timespec="seconds")}


def race(cfg: SearchConfig, study: optuna.Study, out_dir: Path, end: float | None,
         log=print) -> dict | None:
    """Run (or finish) the race; write the winner into study.json and return it."""
    if not cfg.race_top or not cfg.race_seeds:
        return None
    if cfg.race_split is None:  # a config that did not pass nas.search.check_config
        cfg = dataclasses.replace(cfg, race_split=DEFAULT_RACE_SPLIT)
    top = sorted(completed(study), key=lambda t: (-t.values[0], t.user_attrs["n_params"]))
    top = top[:cfg.race_top]
    if not top:
        return None
    path = out_dir / "race.json"
    runs: dict = json.loads(path.read_text())["runs"] if path.is_file() else {}
    # a resumed race under another --race-split starts over: its runs judged other images
    runs = {k: r for k, r in runs.items() if r.get("split", "search") == cfg.race_split}
    t_full = full_train_s(study) or 0.0
    # each run takes about its trial's own full-length training, +5%
    need = {t.number: t.user_attrs.get("full_train_s", t_full) * 1.05 for t in top}
    seeds = race_seeds(cfg.race_seeds)
    done = {(r["trial"], r["seed"]) for r in runs.values()}
    k, n = fit([t.number for t in top], seeds, done, need, cfg.workers, time.time(), end)
    jobs = [(t, s) for s in seeds[:n] for t in top[:k]
            if (t.number, s) not in done]  # seed by seed, so a cut race stays fair
    taken = done | {(t.number, s) for t, s in jobs}
    cut = [(t.number, s) for s in seeds for t in top if (t.number, s) not in taken]
    if jobs:
        log(f"seed race: top {k} by validation (trials "
            f"{', '.join(str(t.number) for t in top[:k])}) on {n} fresh seeds each"
            + (", each seed on its own validation fold" if cfg.race_split == "fresh" else "")
            + ": "
            f"{len(jobs)} full-length trainings, "
            f"~{sum(need[t.number] for t, _ in jobs) / cfg.workers / 60:.0f} min")
    if cut:
        log(f"race: the time left fits the top {k} of {len(top)} on {n} of {len(seeds)} "
            f"seeds; {len(cut)} runs left out, they would end after --timeout: {cut}")

    def save(t, seed, r) -> None:
        runs[f"{t.number}:{seed}"] = {"trial": t.number, "seed": seed, **r}
        write_json(path, {"runs": runs})
        log(f"race: trial {t.number} seed {seed} val {r['val_acc']:.2f}% "
            f"({r['seconds'] / 60:.1f} min)")

    recipe = {t.number: rerun_recipe(t.user_attrs["train_config"], cfg.bf16) for t in top}
    if cfg.workers > 1 and len(jobs) > 1:
        pool = ProcessPoolExecutor(cfg.workers, mp_context=multiprocessing.get_context("spawn"))
        try:
            futures = [(pool.submit(_run, t.user_attrs["spec"], recipe[t.number], s, cfg,
                                    worker_threads(cfg.workers), t.number), t, s)
                       for t, s in jobs]
            for f, t, s in futures:
                save(t, s, f.result())
        except BaseException:
            stop_pool(pool)  # Ctrl-C or SIGTERM: end the runs now, not when they finish
            raise
        pool.shutdown()
    else:
        for t, s in jobs:
            save(t, s, _run(t.user_attrs["spec"], recipe[t.number], s, cfg, None, t.number))

    table = []
    for t in top:
        vals = [r["val_acc"] for r in runs.values() if r["trial"] == t.number
                and not math.isnan(r["val_acc"])]
        table.append({
            "trial": t.number, "n_params": t.user_attrs["n_params"], "search_val": t.values[0],
            "race_vals": vals, "mean": statistics.fmean(vals) if vals else math.nan,
            "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
        })
    ranked = [r for r in table if r["race_vals"]]
    if ranked:
        best = max(ranked, key=lambda r: (len(r["race_vals"]), r["mean"], -r["n_params"]))
        used = sorted({r["seed"] for r in runs.values()})
        folds = sorted({r["fold"] for r in runs.values()})
        where = ("" if cfg.race_split == "search" else
                 f", each on its own {cfg.val_size:,} validation images, disjoint from the "
                 f"search's (folds {', '.join(map(str, folds))})")
        rule = (f"best mean validation accuracy over {len(used)} fresh seeds "
                f"({', '.join(map(str, used))}){where} among the top {len(ranked)} by search "
                "validation; the test set was not used")
    else:  # --timeout left no room for a race run: the search's own score decides
        best = table[0]
        rule = ("no race run fitted in --timeout: the best search validation accuracy; the "
                "test set was not used")
        log("race: no run fitted in the time; the winner is the best by search validation")
    winner = {**best, "rule": rule, "named": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if ranked and (m := margin(table, best)):
        winner["margin"] = m
    meta_path = out_dir / "study.json"
    meta = json.loads(meta_path.read_text())
    meta["winner"], meta["race"] = winner, table
    write_json(meta_path, meta)
    study.set_user_attr("winner", best["trial"])
    for line in finalist_lines(table):
        log(f"race: {line}")
    if m := winner.get("margin"):
        log(f"race: the winner leads trial {m['runner_up']} by {m['lead']:.3f} points, "
            + (f"under two standard errors of the difference ({m['se']:.3f}, from the race's "
               f"seed-to-seed spread of {m['seed_sd']:.3f}): on validation the two are level, "
               "and the test set may well order them the other way; more --race-seeds would "
               "separate them" if m["level"] else
               f"over two standard errors of the difference ({m['se']:.3f})"))
    log(f"winner: trial {best['trial']} (written to {meta_path} before any test run); "
        f"judge it with: nas verify {cfg.study} --trial winner"
        + (f" --results-dir {cfg.results_dir}" if cfg.results_dir != "results" else ""))
    return winner
