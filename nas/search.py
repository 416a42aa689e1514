"""The search: an Optuna study whose trials sample a spec, pass the budget gate, then train.

- Budget gate: the parameter count comes from the spec (nas.spec.analyze) before anything is
  built. Every trial sets Optuna's per-trial constraint ``params`` (<= 0 is feasible), so TPE
  ranks over-budget candidates by how far over they are; those end PRUNED in milliseconds.
- Objective: final-epoch validation accuracy (selection never sees the test set); per-epoch
  test accuracy is kept as a trial attribute for the reports.
- Storage: a journal file under results/<study>/ by default, or any RDB URL. Re-running with
  the same study name resumes.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
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

from nas.data import load_mnist, resolve_device
from nas.errors import NasError
from nas.runs import check_writable, environment, worker_threads, write_json
from nas.spaces import get_space
from nas.spec import SpecError, analyze, describe
from nas.studyio import (
    is_rejected,
    open_storage,
    study_dir,
    trials_frame,
    weights_path,
)
from nas.train import train

PRUNERS = ("median", "hyperband", "none")
SAMPLERS = ("tpe", "nsga2", "random")


@dataclass(frozen=True)
class SearchConfig:
    study: str = "mnist_8k"  # name; files under results/<study>/
    space: str = "mnist_8k"  # a registered space name or a path to a .py file
    max_params: int = 8000  # strict: a candidate needs n_params < max_params
    epochs: int = 15  # per candidate
    trials: int = 30  # candidates trained (budget rejections do not count)
    timeout_s: float | None = None  # stop starting new trials after this many seconds
    seed: int = 0  # sampler seed; worker k uses seed + k; training seed is the trial number
    objectives: tuple = ("accuracy",)  # or ("accuracy", "params")
    pruner: str = "median"
    sampler: str = "tpe"
    val_size: int = 10000  # training images held out for selection
    train_limit: int | None = None  # first N training images only (quick runs)
    eval_limit: int | None = None  # first N validation/test images only (quick runs)
    enqueue: tuple = ()  # names from the space's KNOWN, tried first
    workers: int = 1  # processes on this machine sharing one storage
    startup_trials: int = 10  # TPE: random trials (enqueued ones count) before it models
    bf16: bool | None = None  # force bf16 autocast on (True) or off (False); None: the recipe's
    prune_from: int | None = None  # first epoch the median pruner compares at (None: epochs // 3)
    storage: str | None = None  # RDB URL; default: journal file in the study folder
    device: str = "auto"
    data_dir: str | None = None
    results_dir: str = "results"
    max_rejections: int = 300  # consecutive budget rejections before giving up
    progress: bool = True
    command: str = ""  # the command line, for study.json

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1


@dataclass
class Outcome:
    n_trials: int = 0
    stopped: str | None = None  # why the search ended early (interrupt, impossible budget)
    counts: dict = field(default_factory=dict)


class SearchInterrupted(Exception):
    """Raised inside the objective after Ctrl-C, once the current epoch has finished."""


def make_pruner(name: str, epochs: int, prune_from: int | None = None) -> optuna.pruners.BasePruner:
    if name == "median":
        # OneCycle's first epochs run at a high learning rate and say little about the end:
        # compare only after a third of the epochs, and only once 5 trials have finished.
        # In a space that mixes schedules even that is early: at epochs 5-9 a StepLR run has
        # already decayed and a OneCycle run has not (the s8kref study pruned 7 of 10 OneCycle
        # runs and 8 of 16 StepLR runs). --prune-from moves the comparison.
        warmup = max(1, epochs // 3) if prune_from is None else prune_from  # first step pruned
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, epochs // 5),
                                              max_resource=epochs, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise NasError(f"unknown pruner {name!r} (valid: {', '.join(PRUNERS)})")


def make_sampler(cfg: SearchConfig, worker: int) -> optuna.samplers.BaseSampler:
    seed = cfg.seed + worker
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


class Objective:
    """Callable objective; holds the data (loaded once per process) and the stop flag."""

    def __init__(self, cfg: SearchConfig, space, data, out_dir: Path):
        self.cfg, self.space, self.data, self.out_dir = cfg, space, data, out_dir
        self.interrupted = False

    def __call__(self, trial: optuna.Trial):
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
        if cfg.bf16 is not None:  # recorded in the trial's train_config: verify and export
            tcfg = dataclasses.replace(tcfg, bf16=cfg.bf16)  # repeat it
        try:
            info = analyze(spec)
        except SpecError as e:
            trial.set_user_attr("rejected", f"impossible spec: {e}")
            trial.set_constraint("params", 1.0)
            raise optuna.TrialPruned(str(e)) from None
        trial.set_user_attr("spec", spec.to_dict())
        trial.set_user_attr("train_config", tcfg.to_dict())
        trial.set_user_attr("arch", describe(spec))
        trial.set_user_attr("n_params", info.n_params)
        trial.set_user_attr("macs", info.macs)
        trial.set_user_attr("rf", info.rf)
        # Feasible when n_params <= max_params - 1; positive values say how far over it is.
        trial.set_constraint("params", float(info.n_params - (cfg.max_params - 1)))
        if info.n_params >= cfg.max_params:
            ms = (time.perf_counter() - t0) * 1000
            trial.set_user_attr("rejected", f"over budget: {info.n_params} >= {cfg.max_params}")
            trial.set_user_attr("reject_ms", ms)
            raise optuna.TrialPruned(f"{info.n_params} params >= {cfg.max_params}")

        test_accs: list[float] = []
        pruned = False

        def on_epoch(rec: dict) -> bool:
            nonlocal pruned
            test_accs.append(rec["test_acc"])
            trial.set_user_attr("test_acc", test_accs)
            if not cfg.multi:
                trial.report(rec["val_acc"], rec["epoch"])
                if rec["epoch"] < cfg.epochs and trial.should_prune():
                    pruned = True
                    return True
            return self.interrupted

        res = train(spec, tcfg, self.data, seed=trial.number, callback=on_epoch,
                    progress=cfg.progress and cfg.workers == 1, train_limit=cfg.train_limit,
                    eval_limit=cfg.eval_limit, desc=f"trial {trial.number} ")
        hist = res.history
        trial.set_user_attr("history", hist)
        trial.set_user_attr("epochs_run", len(hist))
        trial.set_user_attr("train_s", time.perf_counter() - t0)
        if self.interrupted and not pruned:
            trial.set_user_attr("interrupted", True)
            raise SearchInterrupted()
        if pruned:
            raise optuna.TrialPruned(f"pruned after epoch {len(hist)}")
        if res.stop_reason:  # non-finite loss: a failed candidate, not a crash
            trial.set_user_attr("failed", res.stop_reason)
            return float("nan") if not cfg.multi else (float("nan"), float(info.n_params))
        path = weights_path(self.out_dir, trial.number)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(res.model.state_dict(), path)
        val = hist[-1]["val_acc"]
        return (val, float(info.n_params)) if cfg.multi else val


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
    counts = {"complete": 0, "rejected": 0, "pruned": 0, "failed": 0, "running": 0}
    reject_ms = 0.0
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.COMPLETE:
            counts["failed" if "failed" in t.user_attrs else "complete"] += 1
        elif t.state == TrialState.PRUNED:
            if is_rejected(t):
                counts["rejected"] += 1
                reject_ms += t.user_attrs.get("reject_ms", 0.0)
            else:
                counts["pruned"] += 1
        elif t.state == TrialState.FAIL:
            counts["failed"] += 1
        elif t.state == TrialState.RUNNING:
            counts["running"] += 1
    counts["reject_ms_total"] = reject_ms
    counts["trained"] = counts["complete"] + counts["pruned"] + counts["failed"]
    return counts


def create_study(cfg: SearchConfig, worker: int = 0) -> optuna.Study:
    storage = open_storage(cfg.storage, study_dir(cfg.results_dir, cfg.study))
    directions = ["maximize", "minimize"] if cfg.multi else ["maximize"]
    try:
        return optuna.create_study(
            study_name=cfg.study, storage=storage, directions=directions,
            sampler=make_sampler(cfg, worker),
            pruner=make_pruner(cfg.pruner, cfg.epochs, cfg.prune_from),
            load_if_exists=True,
        )
    except ValueError as e:  # e.g. resuming a study with other objectives
        raise NasError(f"cannot open study {cfg.study!r}: {e}") from None


def _interrupt(procs) -> None:
    for p in procs:
        if p.is_alive():
            os.kill(p.pid, signal.SIGINT)


def _worker_main(cfg: SearchConfig, worker: int) -> None:
    """Entry point of an extra worker process (spawned): same storage, its own sampler seed."""
    # Out of the terminal's process group: Ctrl-C reaches the main process only, which passes
    # it on once (see run). A kill -INT of the main process alone then stops the workers too.
    os.setpgrp()
    torch.set_num_threads(worker_threads(cfg.workers))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        _optimize(cfg, worker, bar=None)
    except (KeyboardInterrupt, SearchInterrupted):
        pass


def _optimize(cfg: SearchConfig, worker: int, bar, on_interrupt=None) -> Outcome:
    """Run trials until the study has enough; ``on_interrupt()`` runs at the first Ctrl-C."""
    space = get_space(cfg.space)
    study = create_study(cfg, worker)
    device = resolve_device(cfg.device)
    data = load_mnist(cfg.data_dir, str(device), cfg.val_size)
    out_dir = study_dir(cfg.results_dir, cfg.study)
    objective = Objective(cfg, space, data, out_dir)
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
                    f"budget {cfg.max_params} is below every net space {cfg.space!r} makes: "
                    f"{streak['n']} candidates in a row were over it (smallest "
                    f"{streak['min']:,} params)" if streak["min"] is not None else
                    f"{streak['n']} candidates in a row were impossible specs"
                )
                study.stop()
        else:
            streak["n"] = 0
        if counts["trained"] >= cfg.trials or objective.interrupted:
            study.stop()  # after Ctrl-C during a trial that then got pruned: start no more
        text = _bar_text(study, counts, cfg)
        if not cfg.progress and not is_rejected(trial):
            # No bar (a log file, nohup, CI): one line per trained candidate, flushed, so
            # `tail -f` shows the search moving. Every worker reports its own trials.
            print(f"{_trial_line(trial)} | {text}", flush=True)
        if bar is not None:
            bar.n = min(counts["trained"], cfg.trials)
            bar.set_postfix_str(text, refresh=False)
            bar.refresh()
            if worker == 0:
                _write_trials_csv(study, out_dir)

    # A first Ctrl-C lets the current epoch finish; a second one stops at once.
    def on_sigint(signum, frame):
        objective.interrupted = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if on_interrupt is not None:
            on_interrupt()

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        if count_states(study)["trained"] < cfg.trials:
            study.optimize(objective, timeout=cfg.timeout_s, callbacks=[on_trial],
                           gc_after_trial=False)
    except SearchInterrupted:
        outcome.stopped = "interrupted"
    except KeyboardInterrupt:
        outcome.stopped = "interrupted"
    finally:
        signal.signal(signal.SIGINT, old)
    if objective.interrupted:
        outcome.stopped = "interrupted"
    outcome.counts = count_states(study)
    return outcome


def _bar_text(study, counts, cfg) -> str:
    best = best_value(study)
    b = f"best val {best:.2f}%" if best is not None else "best -"
    return (f"{b} | done {counts['complete']} rejected {counts['rejected']} "
            f"pruned {counts['pruned']} failed {counts['failed']}")


def _trial_line(t: optuna.trial.FrozenTrial) -> str:
    n = t.user_attrs.get("n_params")
    head = f"trial {t.number} ({n:,} params)" if n is not None else f"trial {t.number}"
    if "failed" in t.user_attrs:
        return f"{head} failed: {t.user_attrs['failed']}"
    if t.state == TrialState.COMPLETE and t.values:
        return f"{head} val {t.values[0]:.2f}%"
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


def run_search(cfg: SearchConfig, log=print) -> Outcome:
    """Run (or resume) a search; write study.json and trials.csv; return what happened."""
    if cfg.trials < 1:
        raise NasError(f"--trials must be >= 1, got {cfg.trials}")
    if cfg.max_params < 1:
        raise NasError(f"--max-params must be >= 1, got {cfg.max_params}")
    if cfg.workers < 1:
        raise NasError(f"--workers must be >= 1, got {cfg.workers}")
    if cfg.startup_trials < 0:
        raise NasError(f"--startup-trials must be >= 0, got {cfg.startup_trials}")
    if cfg.prune_from is not None and not 1 <= cfg.prune_from <= cfg.epochs:
        raise NasError(
            f"--prune-from must be an epoch from 1 to {cfg.epochs}, got {cfg.prune_from}"
        )
    if cfg.multi and cfg.pruner != "none":
        cfg = dataclasses.replace(cfg, pruner="none")  # Optuna cannot prune multi-objective
    space = get_space(cfg.space)  # fail fast on a bad space, before touching the results
    out_dir = study_dir(cfg.results_dir, cfg.study)
    check_writable(out_dir)
    device = resolve_device(cfg.device)
    load_mnist(cfg.data_dir, str(device), cfg.val_size)  # data problems surface now
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = create_study(cfg)
    stale = fail_stale_trials(study)
    if stale:
        log(f"marked stale running trials {stale} FAIL (their process is gone)")
    for name in cfg.enqueue:
        known = getattr(space, "KNOWN", {})
        if name not in known:
            raise NasError(f"space {cfg.space!r} has no known design {name!r} "
                           f"(valid: {', '.join(known) or 'none'})")
        study.enqueue_trial(known[name], user_attrs={"enqueued": name}, skip_if_exists=True)
    _write_study_json(cfg, out_dir, device)
    before = count_states(study)
    log(f"study {cfg.study!r}: space {cfg.space}, < {cfg.max_params:,} params, "
        f"{cfg.epochs} epochs, {cfg.trials} candidates, pruner {cfg.pruner}, device {device}"
        + (f"; resuming with {before['trained']} trained" if before["trained"] else ""))
    t0 = time.perf_counter()
    procs = []
    if cfg.workers > 1:
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_worker_main, args=(cfg, k), daemon=False)
                 for k in range(1, cfg.workers)]
        for p in procs:
            p.start()
        torch.set_num_threads(worker_threads(cfg.workers))
    bar = tqdm(total=cfg.trials, initial=min(before["trained"], cfg.trials), desc="search",
               unit="trial", disable=not cfg.progress, dynamic_ncols=True)
    try:
        outcome = _optimize(cfg, 0, bar, on_interrupt=lambda: _interrupt(procs))
    finally:
        for p in procs:
            p.join()
        bar.close()
    study = create_study(cfg)
    outcome.counts = count_states(study)
    outcome.n_trials = len(study.trials)
    _write_trials_csv(study, out_dir)
    wall = time.perf_counter() - t0
    c = outcome.counts
    mean_ms = c["reject_ms_total"] / c["rejected"] if c["rejected"] else 0.0
    log(f"{len(study.trials)} trials: {c['complete']} complete, {c['rejected']} rejected by "
        f"budget ({c['reject_ms_total']:.0f} ms in all, {mean_ms:.1f} ms each), "
        f"{c['pruned']} stopped early, {c['failed']} failed; this run {wall / 60:.1f} min")
    if outcome.stopped == "interrupted":
        log(f"interrupted: finished trials are kept. Resume with: nas search --study {cfg.study}"
            + (f" --space {cfg.space}" if cfg.space != "mnist_8k" else ""))
    elif outcome.stopped:
        raise NasError(outcome.stopped)
    from nas.studyio import top_table

    table = top_table(study)
    if table:
        log(table)
    log(f"files: {out_dir}/ (trials.csv, study.json, trials/); report: nas report {cfg.study}")
    return outcome


def _write_study_json(cfg: SearchConfig, out_dir: Path, device) -> None:
    import json

    path = out_dir / "study.json"
    runs = []
    if path.is_file():
        try:
            runs = json.loads(path.read_text()).get("runs", [])
        except ValueError:
            runs = []
    runs.append({"command": cfg.command or " ".join(sys.argv),
                 "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
    d = dataclasses.asdict(cfg)
    write_json(path, {
        **d, "storage": cfg.storage or str(out_dir / "journal.log"),
        "sampler_detail": "TPE multivariate+group, 10 startup trials" if cfg.sampler == "tpe"
        else cfg.sampler, "device_used": str(device), "environment": environment(),
        "runs": runs,
    })
