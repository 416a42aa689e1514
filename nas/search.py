"""The search: an Optuna study whose trials sample a spec, pass the budget gate, then train.

- Budget gate: the parameter count comes from the spec (nas.spec.analyze) before anything is
  built. A drawn net over the budget is scaled down until it fits (nas/fit.py; the trial keeps
  the drawn parameters and records the factor), unless ``scale_to_fit`` is off. Every trial
  sets Optuna's per-trial constraint ``params`` (<= 0 is feasible), so TPE ranks over-budget
  candidates by how far over they are; those that still do not fit end PRUNED in
  milliseconds.
- Cheap rungs (default): a candidate first trains on each rung of ``cfg.rungs`` (few epochs,
  part of the images, the whole recipe compressed into them), and Optuna's successive-halving
  pruner lets one in ``eta`` go on (or nas.halving's, with an eta per rung); the survivors
  train for the full ``epochs``. A pruned trial's rung scores stay in the study, so TPE
  learns from cheap candidates too.
- Objective: final-epoch validation accuracy (selection never sees the test set, which is not
  even evaluated unless ``record_test``).
- Seed race: the search ends by training its top K candidates on S more seeds (train and
  validation split only) and names the winner by mean validation accuracy, in study.json,
  before anything touches the test set (nas/race.py).
- Storage: a journal file under results/<study>/ by default, or any RDB URL. Re-running with
  the same study name resumes, if the settings that shape the study are the same.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os
import queue
import signal
import socket
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState
from tqdm import tqdm

from nas.config import (
    DEFAULT_RACE_SPLIT,
    PRUNERS,
    SAMPLERS,
    SearchConfig,
    check_rungs,
    default_eta,
)
from nas.data import resolve_device
from nas.datasets import check_spec, load_data
from nas.errors import NasError
from nas.fit import fit_to_budgets
from nas.halving import RungPruner, rung_steps
from nas.runs import (
    check_writable,
    environment,
    exit_with_parent,
    save_weights,
    worker_threads,
    write_json,
)
from nas.spaces import AUTO_ABOUT, get_space, resolve_space
from nas.spec import SpecError, analyze, describe
from nas.studyio import (
    cut_reason,
    is_rejected,
    open_storage,
    race_train_s,
    study_dir,
    trial_fce,
    trials_frame,
    weights_path,
)
from nas.train import resolve_precision, train

__all__ = ["SearchConfig", "PRUNERS", "SAMPLERS", "run_search", "make_pruner", "make_sampler",
           "sampler_seed"]


MIN_RUNG_IMAGES = 256


@dataclass
class Outcome:
    n_trials: int = 0
    stopped: str | None = None  # why the search ended early (interrupt, impossible budget)
    counts: dict = field(default_factory=dict)
    winner: dict | None = None


class SearchInterrupted(Exception):
    """Raised inside the objective after Ctrl-C, once the current epoch has finished."""


class OutOfTime(Exception):
    """Raised inside the objective when the search phase's deadline passes mid-training."""


def make_pruner(name: str, epochs: int, prune_from: int | None = None,
                eta: int | tuple = 3) -> optuna.pruners.BasePruner:
    if name == "rungs":
        if isinstance(eta, tuple):  # its own eta per rung: nas.halving's pruner
            return RungPruner(eta)
        # rung k reports at step eta**k, the rungs Optuna's pruner promotes from
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=eta)
    if name == "median":
        # OneCycle's first epochs run at a high learning rate and say little about the end:
        # compare only after a third of the epochs (--prune-from moves it), after 5 trials.
        warmup = max(1, epochs // 3) if prune_from is None else prune_from  # first step pruned
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, epochs // 5),
                                              max_resource=epochs, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise NasError(f"unknown pruner {name!r} (valid: {', '.join(PRUNERS)})")


def sampler_seed(seed: int, worker: int) -> int:
    """Worker 0 draws with --seed itself, as a one-worker search always did. The others take a
    seed derived from (seed, worker): with seed + worker, worker 1 of --seed 1 and worker 0 of
    --seed 2 drew the same random start-up trials, so two "independent" searches shared most
    of their first draws (fashion-8k-seed1 and -seed2, 2026-12-05)."""
    if worker == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence([seed, worker]).generate_state(1)[0])


def make_sampler(cfg: SearchConfig, worker: int) -> optuna.samplers.BaseSampler:
    seed = sampler_seed(cfg.seed, worker)
    if cfg.sampler == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # group=True: the space is conditional (block counts change which widths exist).
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                              n_startup_trials=cfg.startup_trials,
                                              constant_liar=True)
    if cfg.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=20)
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise NasError(f"unknown sampler {cfg.sampler!r} (valid: {', '.join(SAMPLERS)})")


class Deadline:
    """When the search phase must end so that the seed race fits in --timeout.

    The race needs race_top * race_seeds full-length trainings spread over the workers; until
    a full-length training has been timed, 30% of the timeout is kept for it.
    """

    def __init__(self, cfg: SearchConfig, started: float):
        self.cfg, self.end = cfg, (started + cfg.timeout_s) if cfg.timeout_s else None

    def search_end(self, study: optuna.Study) -> float | None:
        if self.end is None:
            return None
        cfg = self.cfg
        if cfg.multi or not cfg.race_top or not cfg.race_seeds:
            return self.end
        # the race's own candidates' time, not the median candidate's: the best are often the
        # larger, slower nets (general-8k, 2026-11-25: median 214 s, top 3 up to 219 s)
        t_full = race_train_s(study, cfg.race_top)
        runs = math.ceil(cfg.race_top * cfg.race_seeds / cfg.workers)  # rounds of the pool
        # x1.25: the race's first run starts when the last candidate's epoch ends
        reserve = runs * t_full * 1.25 if t_full else 0.3 * cfg.timeout_s
        return self.end - reserve


def race_fce(cfg: SearchConfig) -> int:
    """The seed race's cost in FCE: each run is one full-length training on the search's
    training images."""
    return 0 if cfg.multi else cfg.race_top * cfg.race_seeds


def spent_fce(study: optuna.Study, cfg: SearchConfig) -> float:
    """FCE the study's candidates have spent, or committed to: every finished rung and epoch,
    and a whole FCE for each full-length training under way, which will cost that (so that two
    workers cannot both start one on the last FCE left). A running trial's history is written
    only when its training ends, so trial_fce has not counted any of it yet."""
    rungs = [list(r) for r in cfg.rungs]
    total = 0.0
    for t in study.get_trials(deepcopy=False):
        total += trial_fce(t, rungs, cfg.epochs)
        if t.state == TrialState.RUNNING and "full_started" in t.user_attrs:
            total += 1.0
    return total


def fce_left(study: optuna.Study, cfg: SearchConfig) -> float | None:
    """What --budget-fce leaves the search phase, after the race's share; None without it."""
    if cfg.budget_fce is None:
        return None
    return cfg.budget_fce - race_fce(cfg) - spent_fce(study, cfg)


def full_run_s(rung: dict, epochs: int, images: int) -> float:
    """Seconds a candidate's full-length training should take, from its last rung's: time goes
    with epochs x images (453 real full runs of 12 two-hour studies took 0.54-1.41x this,
    median 0.96: bench/search_phase_end.txt)."""
    return rung["train_s"] * epochs * images / (rung["epochs"] * rung["images"])


class Objective:
    """Callable objective; holds the data (loaded once per process) and the stop flag."""

    def __init__(self, cfg: SearchConfig, space, data, out_dir: Path, deadline: Deadline,
                 status=None):
        self.cfg, self.space, self.out_dir, self.deadline = cfg, space, out_dir, deadline
        # the test split is not even evaluated unless asked for: selection cannot peek
        self.data = data if cfg.record_test else dataclasses.replace(data, test=None)
        self.status = status  # status(trial number, stage text, progress info) or None
        self.interrupted = False
        self.stop_at: float | None = None  # wall time after which training stops (OutOfTime)

    def __call__(self, trial: optuna.Trial):
        try:
            return self._run(trial)
        except (KeyboardInterrupt, SearchInterrupted):
            # a stop, not a crash, so the summary counts this trial cut short
            # (studyio.cut_reason): the first Ctrl-C ends training through the stop flag
            # (SearchInterrupted), a second one raises at once, wherever it lands
            try:
                trial.set_user_attr("interrupted", True)
            except Exception:  # the storage write it broke into may refuse another
                pass
            raise

    def _run(self, trial: optuna.Trial):
        cfg = self.cfg
        t0 = time.perf_counter()
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        try:
            spec, tcfg = self.space.sample(trial)
        except optuna.TrialPruned:
            raise
        except Exception as e:
            raise NasError(f"search space {cfg.space} raised in sample(): "
                           f"{type(e).__name__}: {e}") from None
        tcfg = dataclasses.replace(tcfg, epochs=cfg.epochs)
        if cfg.bf16 is not None:
            tcfg = dataclasses.replace(tcfg, bf16=cfg.bf16)
        # recorded as run (auto precision decided), so verify and export repeat it
        tcfg = resolve_precision(tcfg, self.data.train.device)
        try:
            info = analyze(spec)
            check_spec(spec, self.data.info)
        except (SpecError, NasError) as e:
            trial.set_user_attr("rejected", f"impossible spec: {e}")
            trial.set_user_attr("reject_ms", (time.perf_counter() - t0) * 1000)
            for name in cfg.budgets():
                trial.set_constraint(name, 1.0)
            raise optuna.TrialPruned(str(e)) from None
        if cfg.scale_to_fit:
            fitted = fit_to_budgets(spec, cfg.budgets())
            if fitted and fitted[1] < 1:  # trained as drawn, but narrower (nas/fit.py)
                trial.set_user_attr("scaled", fitted[1])
                trial.set_user_attr("drawn_arch", describe(spec))
                trial.set_user_attr("drawn_n_params", info.n_params)
                spec, info = fitted[0], analyze(fitted[0])
        trial.set_user_attr("spec", spec.to_dict())
        trial.set_user_attr("train_config", tcfg.to_dict())
        trial.set_user_attr("arch", describe(spec))
        trial.set_user_attr("n_params", info.n_params)
        trial.set_user_attr("macs", info.macs)
        trial.set_user_attr("rf", info.rf)
        trial.set_user_attr("peak_int8_bytes", info.peak_bytes(1))
        trial.set_user_attr("int8_bytes", info.int8_bytes)
        # One Optuna constraint per budget: feasible when <= 0, positive values say how far
        # over (relative to the limit), so TPE learns each edge. Limits are strict (<).
        over = []
        for name, (limit, measure) in cfg.budgets().items():
            value = measure(info)
            trial.set_constraint(name, (value - limit) / limit + (1e-9 if value >= limit else 0))
            if value >= limit:
                over.append(f"{name} {value:,.6g} >= {limit:,}")
        if over:
            ms = (time.perf_counter() - t0) * 1000
            trial.set_user_attr("rejected", "over budget: " + ", ".join(over))
            trial.set_user_attr("reject_ms", ms)
            raise optuna.TrialPruned("over budget: " + ", ".join(over))

        self.stop_at = self.deadline.search_end(trial.study)
        if self.stop_at is not None and time.time() >= self.stop_at:
            trial.set_user_attr("out_of_time", "before training")
            raise OutOfTime()
        rungs = cfg.rungs if cfg.pruner == "rungs" and not cfg.multi else ()
        n_train = len(self.data.train.head(cfg.train_limit))
        scores, steps = [], rung_steps(cfg.etas())
        for k, (epochs, fraction) in enumerate(rungs):
            limit = max(MIN_RUNG_IMAGES, int(n_train * fraction))
            res = self._train(trial, spec, dataclasses.replace(tcfg, epochs=epochs), limit,
                              f"rung {k}", report=False)
            val = res.history[-1]["val_acc"]
            scores.append({"rung": k, "epochs": epochs, "images": limit, "val_acc": val,
                           "train_s": sum(r["time_s"] for r in res.history)})
            trial.set_user_attr("rungs", scores)
            if res.stop_reason:  # non-finite loss: a failed candidate, not a crash
                trial.set_user_attr("failed", res.stop_reason)
                return float("nan")
            trial.report(val, steps[k])
            if trial.should_prune():
                raise optuna.TrialPruned(f"stopped at rung {k}: val {val:.2f}%")

        if scores and self.stop_at is not None:
            # a full run that would be cut at the search phase's end is not started: the
            # trial stays pruned at its last rung (a valid score for TPE), and this worker's
            # search phase ends, so the race can start before the deadline
            need, left = full_run_s(scores[-1], cfg.epochs, n_train), self.stop_at - time.time()
            if need > left:
                trial.set_user_attr("no_full_run", f"needs ~{_duration(need)}, "
                                    f"{_duration(max(left, 0.0))} left before the race")
                raise optuna.TrialPruned("no time left for the full run")
        left = fce_left(trial.study, cfg)
        if left is not None and left < 1.0:
            # the same for --budget-fce: a full run costs 1 FCE, and what is left cannot pay
            # for it, so no later candidate could be trained in full either
            trial.set_user_attr("no_full_run", f"needs 1 FCE, {max(left, 0.0):.2f} of "
                                f"--budget-fce {cfg.budget_fce:g} left before the race")
            raise optuna.TrialPruned("no compute left for the full run")
        if left is not None:  # only spent_fce reads it: no storage write per trial otherwise
            trial.set_user_attr("full_started", True)
        res = self._train(trial, spec, tcfg, cfg.train_limit, "full", report=not rungs)
        hist = res.history
        trial.set_user_attr("history", hist)
        trial.set_user_attr("epochs_run", len(hist))
        trial.set_user_attr("full_train_s", sum(r["time_s"] for r in hist))
        trial.set_user_attr("train_s", time.perf_counter() - t0)
        if res.stop_reason:
            trial.set_user_attr("failed", res.stop_reason)
            return float("nan") if not cfg.multi else (float("nan"), float(self._second(info)))
        path = weights_path(self.out_dir, trial.number)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_weights(res.model, path)
        val = hist[-1]["val_acc"]
        return (val, float(self._second(info))) if cfg.multi else val

    def _second(self, info) -> int:
        """A multi-objective study's second objective, minimized: parameters or MACs."""
        return info.macs if self.cfg.objectives[1] == "macs" else info.n_params

    def _train(self, trial, spec, tcfg, limit, stage: str, report: bool):
        """One training of the candidate; ``report``: per-epoch values for the median pruner."""
        cfg = self.cfg
        test_accs: list[float] = []
        pruned = False
        timed_out = False

        def on_epoch(rec: dict) -> bool:
            nonlocal pruned, timed_out
            if "test_acc" in rec:
                test_accs.append(rec["test_acc"])
                trial.set_user_attr("test_acc", test_accs)
            if not cfg.progress:  # a log file: a line per epoch, so it shows the search moving
                print(f"trial {trial.number} {stage} epoch {rec['epoch']}/{tcfg.epochs} "
                      f"val {rec['val_acc']:.2f}% loss {rec['train_loss']:.4f} "
                      f"{rec['time_s']:.0f} s", flush=True)
            if report and not cfg.multi:
                trial.report(rec["val_acc"], rec["epoch"])
                if rec["epoch"] < tcfg.epochs and trial.should_prune():
                    pruned = True
                    return True
            if self.stop_at is not None and time.time() >= self.stop_at \
                    and rec["epoch"] < tcfg.epochs:
                timed_out = True
                return True
            return self.interrupted

        def on_progress(info: dict) -> None:
            if self.status is not None:
                self.status(trial.number, stage, info)

        res = train(spec, tcfg, self.data, seed=trial.number, callback=on_epoch, progress=False,
                    train_limit=limit, eval_limit=cfg.eval_limit, on_progress=on_progress,
                    stop=lambda: self.interrupted)
        if self.interrupted and not pruned:
            raise SearchInterrupted()  # __call__ marks the trial
        if timed_out:
            trial.set_user_attr("out_of_time", stage)
            raise OutOfTime()
        if pruned:
            trial.set_user_attr("history", res.history)
            trial.set_user_attr("epochs_run", len(res.history))
            raise optuna.TrialPruned(f"pruned after epoch {len(res.history)}")
        return res


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """Mark RUNNING trials left by dead processes on this host (kill -9, power loss) FAIL."""
    host = socket.gethostname()
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") != host or pid is None or _alive(pid):
            continue
        study._storage.set_trial_user_attr(t._trial_id, "stale", True)
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        failed.append(t.number)
    return failed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own pid from an earlier life of a reused pid: we are not running it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def count_states(study: optuna.Study) -> dict:
    counts = {"complete": 0, "rejected": 0, "pruned": 0, "failed": 0, "cut": 0, "running": 0,
              "scaled": 0}
    rung_counts: dict[int, int] = {}
    reject_ms = 0.0
    for t in study.get_trials(deepcopy=False):
        counts["scaled"] += "scaled" in t.user_attrs
        for r in t.user_attrs.get("rungs", []):
            rung_counts[r["rung"]] = rung_counts.get(r["rung"], 0) + 1
        if t.state == TrialState.COMPLETE:
            counts["failed" if "failed" in t.user_attrs else "complete"] += 1
        elif t.state == TrialState.PRUNED:
            if is_rejected(t):
                counts["rejected"] += 1
                reject_ms += t.user_attrs.get("reject_ms", 0.0)
            else:
                counts["pruned"] += 1
        elif t.state == TrialState.FAIL:
            counts["cut" if cut_reason(t) else "failed"] += 1  # a stop is not a broken net
        elif t.state == TrialState.RUNNING:
            counts["running"] += 1
    counts["reject_ms_total"] = reject_ms
    counts["trained"] = counts["complete"] + counts["pruned"] + counts["failed"] + counts["cut"]
    counts["rungs"] = dict(sorted(rung_counts.items()))
    return counts


def create_study(cfg: SearchConfig, worker: int = 0) -> optuna.Study:
    storage = open_storage(cfg.storage, study_dir(cfg.results_dir, cfg.study))
    directions = ["maximize", "minimize"] if cfg.multi else ["maximize"]
    try:
        study = optuna.create_study(
            study_name=cfg.study, storage=storage, directions=directions,
            sampler=make_sampler(cfg, worker),
            pruner=make_pruner(cfg.pruner, cfg.epochs, cfg.prune_from, cfg.eta),
            load_if_exists=True,
        )
    except ValueError as e:  # e.g. resuming a study with other objectives
        raise NasError(f"cannot open study {cfg.study!r}: {e}") from None
    if worker == 0 and "max_params" not in study.user_attrs and cfg.max_params:
        study.set_user_attr("max_params", cfg.max_params)  # spaces read the budget from here
    return study


class Board:
    """What each running candidate is doing, for the bar: trial, stage, epoch, images/s."""

    def __init__(self):
        self.rows: dict[int, tuple] = {}  # pid -> (trial, stage, info, wall time)

    def put(self, pid: int, trial: int, stage: str, info: dict) -> None:
        self.rows[pid] = (trial, stage, info, time.time())

    def drop_trial(self, number: int) -> None:
        self.rows = {pid: r for pid, r in self.rows.items() if r[0] != number}

    def text(self) -> str:
        parts, etas = [], []
        now = time.time()
        for trial, stage, info, at in sorted(self.rows.values(), key=lambda r: r[0]):
            if now - at > 120:  # a worker that stopped reporting: not shown as alive
                continue
            parts.append(f"t{trial} {stage} e{info['epoch']}/{info['epochs']} "
                         f"b{info['step']}/{info['steps']} {info['images_per_s']:,.0f} img/s")
            etas.append(max(0.0, info["eta_s"] - (now - at)))
        if etas:
            parts.append(f"next result in {_duration(min(etas))}")
        return " | ".join(parts)


def _budget_text(cfg: SearchConfig) -> str:
    units = {"params": "params", "macs": "MACs", "peak_kb": "KB int8 peak activations",
             "int8_kb": "KB int8 model"}
    return " and ".join(f"< {limit:,} {units[k]}" for k, (limit, _) in cfg.budgets().items())


def _duration(s: float) -> str:
    return f"{s / 60:.0f}m{s % 60:02.0f}s" if s >= 60 else f"{s:.0f}s"


def _interrupt(procs) -> None:
    for p in procs:
        if p.is_alive():
            os.kill(p.pid, signal.SIGINT)


def _worker_main(cfg: SearchConfig, worker: int, started: float, status_q) -> None:
    """Entry point of an extra worker process (spawned): same storage, its own sampler seed."""
    # Out of the terminal's process group: Ctrl-C reaches the main process only, which passes
    # it on once (see run_search). A kill -INT of the main process alone then stops them too.
    os.setpgrp()
    exit_with_parent()
    torch.set_num_threads(worker_threads(cfg.workers))
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own lines say what happened

    def status(trial: int, stage: str, info: dict) -> None:
        try:
            status_q.put_nowait((os.getpid(), trial, stage, info))
        except queue.Full:
            pass

    try:
        _optimize(cfg, worker, None, started, status=status)
    except (KeyboardInterrupt, SearchInterrupted):
        pass


def _optimize(cfg: SearchConfig, worker: int, bar, started: float, on_interrupt=None,
              status=None, on_trial_extra=None) -> Outcome:
    """Run trials until the study has enough; ``on_interrupt()`` runs at the first Ctrl-C."""
    space = get_space(cfg.space)
    study = create_study(cfg, worker)
    device = resolve_device(cfg.device)
    data = load_data(cfg.dataset, cfg.data_dir, str(device), cfg.val_size)
    out_dir = study_dir(cfg.results_dir, cfg.study)
    deadline = Deadline(cfg, started)
    objective = Objective(cfg, space, data, out_dir, deadline, status)
    outcome = Outcome()
    streak = {"n": 0, "min": None}

    def on_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        counts = count_states(study)
        if is_rejected(trial):
            streak["n"] += 1
            n = trial.user_attrs.get("n_params")
            if n is not None:
                streak["min"] = n if streak["min"] is None else min(streak["min"], n)
            if streak["n"] >= cfg.max_rejections:
                outcome.stopped = (
                    f"the budget ({_budget_text(cfg)}) is below every net space {cfg.space!r} "
                    "makes: "
                    f"{streak['n']} candidates in a row were over it (smallest "
                    f"{streak['min']:,} params)" if streak["min"] is not None else
                    f"{streak['n']} candidates in a row were impossible specs"
                )
                study.stop()
        else:
            streak["n"] = 0
        if counts["trained"] >= cfg.trials or objective.interrupted:
            study.stop()  # after Ctrl-C during a trial that then got pruned: start no more
        end = deadline.search_end(study)
        if (end is not None and time.time() >= end) or "no_full_run" in trial.user_attrs:
            study.stop()  # the next candidate's full run would not fit either
        left = fce_left(study, cfg)
        if left is not None and left <= 0:
            study.stop()  # --budget-fce spent, the race's share aside
        text = _bar_text(study, counts, cfg)
        if not cfg.progress and not is_rejected(trial):
            print(f"{_trial_line(trial)} | {text}", flush=True)
        if bar is not None:
            bar.n = min(counts["trained"], cfg.trials)
            bar.set_postfix_str(text, refresh=False)
            bar.refresh()
        if on_trial_extra is not None:
            on_trial_extra(study, trial)

    # A first Ctrl-C (or SIGTERM) stops the running candidate within a training step, marks it
    # FAIL and keeps every finished one; a second one stops at once.
    def on_sigint(signum, frame):
        if not objective.interrupted and worker == 0:
            print("stopping: the running candidate ends now, finished ones are kept",
                  flush=True)
        objective.interrupted = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if on_interrupt is not None:
            on_interrupt()

    old = signal.signal(signal.SIGINT, on_sigint)
    old_term = signal.signal(signal.SIGTERM, on_sigint)  # a kill (SIGTERM) stops as Ctrl-C does
    try:
        end = deadline.search_end(study)
        left = fce_left(study, cfg)
        if count_states(study)["trained"] < cfg.trials and (end is None or time.time() < end) \
                and (left is None or left > 0):
            study.optimize(objective, callbacks=[on_trial], gc_after_trial=False,
                           catch=(OutOfTime,))
    except SearchInterrupted:
        outcome.stopped = "interrupted"
    except KeyboardInterrupt:
        outcome.stopped = "interrupted"
    finally:
        signal.signal(signal.SIGINT, old)
        signal.signal(signal.SIGTERM, old_term)
    if objective.interrupted:
        outcome.stopped = "interrupted"
    outcome.counts = count_states(study)
    return outcome


def _bar_text(study, counts, cfg) -> str:
    best = best_value(study)
    b = f"best val {best:.2f}%" if best is not None else "best -"
    rungs = counts.get("rungs") or {}
    at = (" rungs " + "/".join(str(rungs.get(k, 0)) for k in range(len(cfg.rungs)))
          if rungs else "")
    return (f"{b} | full {counts['complete']}{at} rejected {counts['rejected']} "
            f"pruned {counts['pruned']} failed {counts['failed']}"
            + (f" cut {counts['cut']}" if counts.get("cut") else ""))


def _trial_line(t: optuna.trial.FrozenTrial) -> str:
    n = t.user_attrs.get("n_params")
    head = f"trial {t.number} ({n:,} params)" if n is not None else f"trial {t.number}"
    if "scaled" in t.user_attrs:  # drawn over the budget, trained narrower (nas/fit.py)
        head = (f"{head[:-1]}, drawn with {t.user_attrs['drawn_n_params']:,} and scaled "
                f"x{t.user_attrs['scaled']:.2f})")
    if "failed" in t.user_attrs:
        return f"{head} failed: {t.user_attrs['failed']}"
    if "out_of_time" in t.user_attrs:
        return f"{head} stopped: the search phase's time is up"
    if "no_full_run" in t.user_attrs:
        rungs = t.user_attrs.get("rungs")
        at = f" rung {rungs[-1]['rung']} val {rungs[-1]['val_acc']:.2f}%," if rungs else ""
        return (f"{head}{at} not trained in full: {t.user_attrs['no_full_run']}; this worker's "
                "search phase ends")
    if t.state == TrialState.COMPLETE and t.values:
        return f"{head} val {t.values[0]:.2f}%"
    rungs = t.user_attrs.get("rungs")
    if t.state == TrialState.PRUNED and rungs and "history" not in t.user_attrs:
        r = rungs[-1]
        return f"{head} stopped at rung {r['rung']}, val {r['val_acc']:.2f}%"
    if t.state == TrialState.PRUNED and t.intermediate_values:
        epoch = max(t.intermediate_values)
        return f"{head} pruned at epoch {epoch}, val {t.intermediate_values[epoch]:.2f}%"
    return f"{head} {t.state.name.lower()}"


def best_value(study: optuna.Study) -> float | None:
    vals = [t.values[0] for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.values and t.values[0] == t.values[0]]
    return max(vals) if vals else None


def _write_trials_csv(study: optuna.Study, out_dir: Path) -> None:
    df = trials_frame(study)
    tmp = out_dir / "trials.csv.tmp"
    df.to_csv(tmp, index=False)
    tmp.replace(out_dir / "trials.csv")


def check_config(cfg: SearchConfig) -> SearchConfig:
    """One-line errors for settings that cannot work; returns the config as it will run."""
    if cfg.eta is None:
        cfg = dataclasses.replace(cfg, eta=default_eta(cfg.rungs))
    if cfg.race_split is None:
        cfg = dataclasses.replace(cfg, race_split=DEFAULT_RACE_SPLIT)
    positive = {"--trials": cfg.trials, "--epochs": cfg.epochs, "--workers": cfg.workers}
    positive.update({f"--max-{k.replace('_', '-')}": v for k, (v, _) in cfg.budgets().items()})
    if not cfg.budgets():
        raise NasError("give a budget: --max-params, --max-macs, --max-peak-kb or --max-int8-kb")
    for flag, v in positive.items():
        if not 1 <= v < float("inf"):  # NaN fails this too
            raise NasError(f"{flag} must be >= 1 and finite, got {v}")
    if cfg.workers > 4 * (os.cpu_count() or 1):
        raise NasError(f"--workers {cfg.workers} is more than 4 per CPU core "
                       f"({os.cpu_count()} here): each worker is a process with its own data")
    if cfg.startup_trials < 0:
        raise NasError(f"--startup-trials must be >= 0, got {cfg.startup_trials}")
    for flag, v in (("--train-limit", cfg.train_limit), ("--eval-limit", cfg.eval_limit),
                    ("--max-rejections", cfg.max_rejections)):
        if v is not None and v < 1:
            raise NasError(f"{flag} must be >= 1, got {v}")
    if cfg.race_top < 0 or cfg.race_seeds < 0:
        raise NasError("--race-top and --race-seeds must be >= 0")
    if cfg.race_split not in ("search", "fresh"):
        raise NasError(f"--race-split must be search or fresh, got {cfg.race_split!r}")
    if cfg.timeout_s is not None and not 0 < cfg.timeout_s < float("inf"):
        raise NasError(f"--timeout must be > 0 seconds, got {cfg.timeout_s:g}")
    if cfg.budget_fce is not None and not race_fce(cfg) < cfg.budget_fce < float("inf"):
        raise NasError(f"--budget-fce must be finite and more than the seed race's "
                       f"{race_fce(cfg)} FCE (--race-top x --race-seeds), got {cfg.budget_fce:g}")
    if not 0 <= cfg.seed < 2**32:
        raise NasError(f"--seed must be in 0..2**32-1 (Optuna's range), got {cfg.seed}")
    if cfg.val_size < 1:
        raise NasError(f"--val-size must be >= 1: the search selects on validation images, "
                       f"got {cfg.val_size}")
    if cfg.prune_from is not None and not 1 <= cfg.prune_from <= cfg.epochs:
        raise NasError(
            f"--prune-from must be an epoch from 1 to {cfg.epochs}, got {cfg.prune_from}"
        )
    if cfg.pruner not in PRUNERS:
        raise NasError(f"unknown pruner {cfg.pruner!r} (valid: {', '.join(PRUNERS)})")
    if cfg.sampler not in SAMPLERS:
        raise NasError(f"unknown sampler {cfg.sampler!r} (valid: {', '.join(SAMPLERS)})")
    etas = cfg.eta if isinstance(cfg.eta, tuple) else (cfg.eta,)
    if not etas or any(not isinstance(e, int) or isinstance(e, bool) or e < 2 for e in etas):
        raise NasError(f"--eta must be >= 2 at each rung, and an integer, got {cfg.eta}")
    if cfg.pruner == "rungs":
        check_rungs(cfg.rungs, cfg.epochs)
        if isinstance(cfg.eta, tuple) and len(cfg.eta) != len(cfg.rungs):
            raise NasError(f"--eta gives {len(cfg.eta)} values for {len(cfg.rungs)} rungs "
                           f"({', '.join(f'{e}x{f:g}' for e, f in cfg.rungs)}): give one, "
                           "or one per rung")
    if cfg.multi and cfg.pruner != "none":
        cfg = dataclasses.replace(cfg, pruner="none")  # Optuna cannot prune multi-objective
    return cfg


def _promotion_text(cfg: SearchConfig) -> str:
    """'1 in 3 goes on' or, with an eta per rung, '1 in 3, then 1 in 5, goes on'."""
    if not isinstance(cfg.eta, tuple):
        return f"1 in {cfg.eta} goes on"
    return ", then ".join(f"1 in {e}" for e in cfg.eta) + ", goes on"


def _study_meta(out_dir: Path) -> dict:
    """A study's study.json, or {} for a new study (or an unreadable file)."""
    try:
        return json.loads((out_dir / "study.json").read_text())
    except (OSError, ValueError):
        return {}


def _study_settings(out_dir: Path) -> dict:
    """The settings a study was made with (study.json), or {} for a new or older study."""
    return _study_meta(out_dir).get("settings") or {}


def _check_resume(cfg: SearchConfig, out_dir: Path, space) -> None:
    """A resumed study keeps the settings that shaped it; refuse others in one line."""
    had = _study_settings(out_dir)
    if not had:
        return  # a new study, or one from before settings were recorded
    want = {**cfg.settings(), "space_version": space.version,
            "space_hash": space.fingerprint()}
    had = {"scale_to_fit": False, **had}  # studies from before it rejected every such draw
    diff = [k for k in want if k in had and had[k] != want[k]]
    if diff and not cfg.allow_changed:
        flags = ", ".join(f"--{k.replace('_', '-')} (was {had[k]}, now {want[k]})" for k in diff)
        raise NasError(f"study {cfg.study!r} was made with other settings: {flags}; use the "
                       "study's command (study.json), a new --study, or --allow-changed")


def _log(line: str) -> None:
    print(line, flush=True)  # at once, into a log file too: a race's line may come 15 min later


def run_search(cfg: SearchConfig, log=_log) -> Outcome:
    """Run (or resume) a search and its seed race; write study.json and trials.csv."""
    from nas.race import race

    if cfg.eta is None:  # not given: a resumed study keeps its own, as it was made with it
        had = _study_settings(study_dir(cfg.results_dir, cfg.study)).get("eta")
        if had is not None:
            cfg = dataclasses.replace(cfg, eta=tuple(had) if isinstance(had, list) else had)
    split_asked = cfg.race_split  # None: not given, so a small dataset may fall back
    if cfg.race_split is None and (meta := _study_meta(study_dir(cfg.results_dir, cfg.study))):
        # a resumed study races as it was made to (one made before the flag: "search")
        cfg = dataclasses.replace(cfg, race_split=meta.get("race_split", "search"))
    cfg = check_config(cfg)
    if cfg.space == "auto":
        cfg = dataclasses.replace(cfg, space=resolve_space(cfg.space, cfg.max_params))
        log(f"space auto: {cfg.space} ({AUTO_ABOUT}; --space picks one)")
    space = get_space(cfg.space)  # fail fast on a bad space, before touching the results
    for name in cfg.enqueue:
        if name not in space.known:
            raise NasError(f"space {cfg.space!r} has no known design {name!r} "
                           f"(valid: {', '.join(space.known) or 'none'})")
    out_dir = study_dir(cfg.results_dir, cfg.study)
    check_writable(out_dir)
    _check_resume(cfg, out_dir, space)
    device = resolve_device(cfg.device)
    data = load_data(cfg.dataset, cfg.data_dir, str(device), cfg.val_size)  # problems: now
    n_train = len(data.train.y) + len(data.val.y)
    if cfg.race_split == "fresh" and n_train // cfg.val_size < 2:
        if split_asked == "fresh":
            raise NasError(f"--race-split fresh needs a second validation fold: "
                           f"{cfg.val_size:,} validation images of {n_train:,} leave none; "
                           "lower --val-size")
        cfg = dataclasses.replace(cfg, race_split="search")
        log(f"race: {cfg.val_size:,} validation images of {n_train:,} leave no second fold; "
            "the race judges on the search's split (--race-split search)")
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own lines say what happened
    study = create_study(cfg)
    c, h, _ = data.info.shape  # spaces read the data's shape from here, as the budget
    for key, value in (("in_channels", c), ("input_size", h),
                       ("num_classes", data.info.num_classes), ("mirror", data.info.mirror)):
        if key not in study.user_attrs or study.user_attrs[key] != value:
            study.set_user_attr(key, value)
    stale = fail_stale_trials(study)
    if stale:
        log(f"marked stale running trials {stale} FAIL (their process is gone)")
    for name in cfg.enqueue:
        study.enqueue_trial(space.known[name], user_attrs={"enqueued": name},
                            skip_if_exists=True)
    _write_study_json(cfg, out_dir, device, space)
    before = count_states(study)
    rungs = ", ".join(f"{e} ep x {f:g}" for e, f in cfg.rungs) if cfg.pruner == "rungs" else ""
    log(f"study {cfg.study!r}: {cfg.dataset}, space {cfg.space}, {_budget_text(cfg)}, "
        f"{cfg.epochs} epochs" + (f" after rungs ({rungs}, {_promotion_text(cfg)})" if rungs
                                  else f", pruner {cfg.pruner}")
        + (f", {_duration(cfg.timeout_s)} in all" if cfg.timeout_s else "")
        + (f", {cfg.budget_fce:g} FCE in all" if cfg.budget_fce is not None else "")
        + f", device {device}"
        + (f"; resuming with {before['trained']} trained" if before["trained"] else ""))
    if device.type == "cuda" and cfg.workers == 1:
        log("note: a tiny net's training step is bound by kernel launches, not by the GPU's "
            "arithmetic, so several workers can share it: --workers 6 on an H200 did ~120 "
            "full-candidate equivalents an hour, ~6x a 2-core CPU (bench/RESULTS.md, GPU)")
    started = time.time()
    t0 = time.perf_counter()
    procs = []
    ctx = multiprocessing.get_context("spawn")
    status_q = ctx.Queue(maxsize=1000) if cfg.workers > 1 else None
    board = Board()
    bar = tqdm(total=cfg.trials, initial=min(before["trained"], cfg.trials), desc="search",
               unit="trial", disable=not cfg.progress, dynamic_ncols=True)
    last_draw = [0.0]

    def status(trial: int, stage: str, info: dict) -> None:
        board.put(os.getpid(), trial, stage, info)
        while status_q is not None:
            try:
                pid, t, s, i = status_q.get_nowait()
            except queue.Empty:
                break
            board.put(pid, t, s, i)
        if cfg.progress and time.time() - last_draw[0] >= 1.0:
            last_draw[0] = time.time()
            bar.set_description_str(board.text() or "search", refresh=True)

    if cfg.workers > 1:
        procs = [ctx.Process(target=_worker_main, args=(cfg, k, started, status_q),
                             daemon=True) for k in range(1, cfg.workers)]
        for p in procs:
            p.start()
        torch.set_num_threads(worker_threads(cfg.workers))
    try:
        outcome = _optimize(cfg, 0, bar if cfg.progress else None, started,
                            on_interrupt=lambda: _interrupt(procs), status=status,
                            on_trial_extra=lambda s, t: (board.drop_trial(t.number),
                                                         _write_trials_csv(s, out_dir)))
    except BaseException:
        for p in procs:  # an error here must not leave the workers running
            if p.is_alive():
                p.terminate()
        raise
    finally:
        for p in procs:
            p.join()
        bar.close()
    crashed = [(p.pid, p.exitcode) for p in procs if p.exitcode not in (0, None)]
    study = create_study(cfg)
    if not outcome.stopped and not crashed and not cfg.multi:
        outcome.winner = race(cfg, study, out_dir, Deadline(cfg, started).end, log)
    outcome.counts = count_states(study)
    outcome.n_trials = len(study.trials)
    _write_trials_csv(study, out_dir)
    wall = time.perf_counter() - t0
    c = outcome.counts
    mean_ms = c["reject_ms_total"] / c["rejected"] if c["rejected"] else 0.0
    at_rung = "".join(f", {n} at rung {k}" for k, n in c["rungs"].items())
    log(f"{len(study.trials)} trials: {c['complete']} trained to the end{at_rung}, "
        f"{c['rejected']} rejected from their spec, over budget or impossible "
        f"({c['reject_ms_total']:.0f} ms in all, "
        f"{mean_ms:.1f} ms each), {c['scaled']} scaled down to fit, "
        f"{c['pruned']} stopped early, {c['failed']} failed"
        + (f", {c['cut']} cut short by a stop, the time limit or a lost process"
           if c["cut"] else "") + "; "
        f"this run {wall / 60:.1f} min")
    from nas.studyio import cost_text, search_cost, top_table

    log(f"cost: {cost_text(search_cost(study, out_dir / 'study.json'))}"
        + (f" (--budget-fce {cfg.budget_fce:g})" if cfg.budget_fce is not None else ""))
    table = top_table(study)
    if table:
        log(table)
    if outcome.stopped == "interrupted":
        log(f"interrupted: finished trials are kept. Resume with: {cfg.command}")
    elif outcome.stopped:
        raise NasError(outcome.stopped)
    if crashed:
        raise NasError("worker process(es) died: " + ", ".join(
            f"pid {pid} exit code {code}" for pid, code in crashed)
            + "; finished trials are kept, run the same command to go on")
    log(f"files: {out_dir}/ (trials.csv, study.json, trials/); report: nas report {cfg.study}")
    return outcome


def _write_study_json(cfg: SearchConfig, out_dir: Path, device, space) -> None:
    path = out_dir / "study.json"
    old = {}
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
    runs = old.get("runs", [])
    runs.append({"command": cfg.command or " ".join(sys.argv),
                 "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
    d = dataclasses.asdict(cfg)
    d["storage"] = _redact(cfg.storage) if cfg.storage else str(out_dir / "journal.log")
    settings = old.get("settings") or {**cfg.settings(), "space_version": space.version,
                                       "space_hash": space.fingerprint()}
    keep = {k: old[k] for k in ("winner", "race") if k in old}
    write_json(path, {
        **d, "settings": settings, **keep,
        "sampler_detail": "TPE multivariate+group" if cfg.sampler == "tpe" else cfg.sampler,
        "device_used": str(device), "environment": environment(), "runs": runs,
    })


def _redact(url: str) -> str:
    """A storage URL without its password, for files that may be shared."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
