"""Train one spec over several seeds and write the results as plain files.

Shared by ``nas train`` and ``nas verify``: per seed a history CSV and a state_dict, once the
spec and training config as JSON, the curves as an offline HTML plot, and a summary.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from nas.config import TrainConfig
from nas.data import Data as MNISTData
from nas.spec import ArchSpec, analyze
from nas.train import native_bf16, resolve_precision, summarize, train


def check_writable(path: Path) -> None:
    """Create ``path`` and prove a file can be written there, or raise one clear NasError."""
    from nas.errors import NasError

    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise NasError(f"results folder {path} is not writable: {e.strerror}") from None


def write_json(path: Path, obj) -> None:
    # whole or not at all: seeds run side by side (--resume) write the same files
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)


def save_weights(model: torch.nn.Module, path: Path) -> None:
    """The state dict as CPU tensors: weights a GPU run wrote load with a plain torch.load on a
    machine without one."""
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, path)


def cpu_name() -> str:
    """The CPU's model name, with family and model numbers where Linux gives them.

    Virtual machines often say only "AMD EPYC"; the numbers still tell a Zen 3 (family 25,
    model 1) from a Zen 4 (25, 17), which train these nets 2-3x apart (docs/experiments.md),
    so a run's wall time can be read against the machine that spent it.
    """
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def environment() -> dict:
    from importlib.metadata import version

    import optuna

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_native_bf16": native_bf16(torch.device("cpu")),
        "torch": torch.__version__,
        "torchvision": version("torchvision"),  # not imported: bench/startup.py
        "optuna": optuna.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def t_interval95(values: list[float]) -> tuple[float, float]:
    """Two-sided 95% Student-t interval for the mean (nan for fewer than 2 values)."""
    n = len(values)
    if n < 2:
        return (math.nan, math.nan)
    # t quantiles 0.975 for df = 1..30; beyond, the normal 1.96 is close enough.
    t = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
    q = t[n - 2] if n - 1 <= len(t) else 1.96
    x = torch.tensor(values, dtype=torch.float64)
    half = q * x.std().item() / math.sqrt(n)
    return (x.mean().item() - half, x.mean().item() + half)


def _same_run(out_dir: Path, spec: ArchSpec, cfg: TrainConfig, limits: dict) -> None:
    """--resume only continues a run of the very same spec, training config and data limits."""
    from nas.errors import NasError

    if not (out_dir / "spec.json").is_file():
        return  # nothing there yet
    limits_file = out_dir / "limits.json"  # absent: a full run
    had = {
        "spec.json": json.loads((out_dir / "spec.json").read_text()),
        "train_config.json": json.loads((out_dir / "train_config.json").read_text()),
        "limits.json": json.loads(limits_file.read_text()) if limits_file.is_file() else {},
    }
    want = {"spec.json": spec.to_dict(), "train_config.json": cfg.to_dict(),
            "limits.json": limits}
    for file in had:
        if had[file] != json.loads(json.dumps(want[file])):
            raise NasError(f"--resume: {out_dir / file} is another run's; give a new --name, "
                           "or drop --resume to start over")


def train_seed(
    spec: ArchSpec,
    cfg: TrainConfig,
    data: MNISTData,
    seed: int,
    out_dir: Path,
    log: Callable[[str], None] = print,
    progress: bool = True,
    resume: bool = False,
    limits: dict | None = None,
) -> list[dict]:
    """One seed into out_dir (history_seed<N>.csv, weights_seed<N>.pt); returns its history.

    It checkpoints after every epoch. With ``resume`` a seed already trained there is reused
    and one cut short goes on from its checkpoint.
    """
    hist_path, weights = out_dir / f"history_seed{seed}.csv", out_dir / f"weights_seed{seed}.pt"
    ckpt = out_dir / f"checkpoint_seed{seed}.pt"
    if resume and hist_path.is_file() and weights.is_file():
        log(f"seed {seed}: trained before, reusing {hist_path.name} (--resume)")
        import pandas as pd

        return pd.read_csv(hist_path).to_dict("records")
    if not resume:
        ckpt.unlink(missing_ok=True)
    elif ckpt.is_file():
        log(f"seed {seed}: going on from {ckpt.name} (--resume)")

    def show(r: dict) -> None:
        log(f"seed {seed} epoch {r['epoch']:2d}  lr {r['lr']:.4f}  "
            f"train loss {r['train_loss']:.4f} acc {r['train_acc']:.2f}  "
            f"test loss {r['test_loss']:.4f} acc {r['test_acc']:.2f}  {r['train_s']:.1f}s")

    res = train(spec, cfg, data, seed=seed, callback=show, progress=progress,
                desc=f"seed {seed} ", checkpoint=ckpt, **(limits or {}))
    if res.stop_reason:
        log(f"seed {seed}: {res.stop_reason}")
    import pandas as pd  # here, not at the top: see nas/studyio.py

    pd.DataFrame(res.history).to_csv(hist_path, index=False)
    save_weights(res.model, weights)
    ckpt.unlink(missing_ok=True)
    return res.history


def _seed_worker(spec: dict, cfg: dict, data_dir, device: str, seed: int, out_dir: str,
                 threads: int, limits: dict | None, dataset: str = "mnist") -> None:
    """One seed in a spawned process: its own data, its lines appended to the run's log."""
    from nas.datasets import load_data

    exit_with_parent()
    torch.set_num_threads(threads)
    data = load_data(dataset, data_dir, device, 0)
    with (Path(out_dir) / "log.txt").open("a") as f:
        def log(line: str) -> None:
            print(line, flush=True)
            f.write(line + "\n")
            f.flush()

        train_seed(ArchSpec.from_dict(spec), TrainConfig.from_dict(cfg), data, seed,
                   Path(out_dir), log, progress=False, resume=True, limits=limits)


def exit_with_parent() -> None:
    """In a worker process: exit as soon as the process that started it is gone.

    A spawned worker is not killed with its parent when the parent dies by SIGKILL (or by the
    OOM killer); without this it would idle on, holding its memory. A daemon thread checks the
    parent pid once a second.
    """
    import multiprocessing
    import threading
    import time

    # the pid multiprocessing passed down: right even if the parent died before this call
    proc = multiprocessing.parent_process()
    parent = proc.pid if proc is not None else os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, daemon=True, name="nas-parent-watch").start()


def stop_pool(pool) -> None:
    """Terminate a ProcessPoolExecutor's workers and cancel what has not started."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def worker_threads(workers: int) -> int:
    """Threads for each of ``workers`` processes sharing this machine's cores, or the
    ``OMP_NUM_THREADS`` the user set (as torch itself honours it): a shared machine, or the
    test suite's parallel workers, caps what one command may take."""
    cap = os.environ.get("OMP_NUM_THREADS", "")
    cores = int(cap) if cap.isdigit() and int(cap) > 0 else os.cpu_count() or 1
    return max(1, cores // workers)


def train_seeds(
    spec: ArchSpec,
    cfg: TrainConfig,
    data: MNISTData,
    seeds: list[int],
    out_dir: Path,
    log: Callable[[str], None] = print,
    progress: bool = True,
    resume: bool = False,
    workers: int = 1,
    data_dir: str | None = None,
    limits: dict | None = None,
) -> dict:
    """Train once per seed on data.train, judge on data.test; write files; return the summary.

    With ``resume``, seeds already trained in ``out_dir`` are reused and a seed cut short goes
    on from its checkpoint (see train_seed), so a long run survives being stopped, and seeds
    trained by separate processes into one folder are summarized by a last ``resume`` run.
    ``workers`` > 1 trains that many seeds at once in spawned processes (each loads the data
    from ``data_dir`` and gets ``worker_threads(workers)`` threads), which is exactly that.
    ``limits``: train()'s train_limit / eval_limit, for quick runs and tests.
    """
    from nas.plots import curves_figure, write_html

    out_dir.mkdir(parents=True, exist_ok=True)
    limits = limits or {}
    cfg = resolve_precision(cfg, data.train.device)  # recorded as run: bf16 True or False
    if resume:
        _same_run(out_dir, spec, cfg, limits)
    info = analyze(spec)
    write_json(out_dir / "spec.json", spec.to_dict())
    write_json(out_dir / "train_config.json", cfg.to_dict())
    if limits:
        write_json(out_dir / "limits.json", limits)
    else:  # a full run: no limits file, and none left from an earlier quick run
        (out_dir / "limits.json").unlink(missing_ok=True)
    log(f"{info.n_params:,} params, {info.macs:,} MACs, {cfg.epochs} epochs, "
        f"{len(data.train.head(limits.get('train_limit'))):,} training images, "
        f"seeds {','.join(map(str, seeds))}" + (f", {workers} at a time" if workers > 1 else ""))
    if workers > 1 and len(seeds) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if not resume:  # start over: nothing of an earlier run in this folder is reused
            for seed in seeds:
                for f in ("history_seed{}.csv", "weights_seed{}.pt", "checkpoint_seed{}.pt"):
                    (out_dir / f.format(seed)).unlink(missing_ok=True)
        args = (spec.to_dict(), cfg.to_dict(), data_dir, str(data.train.device))
        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(min(workers, len(seeds)), mp_context=ctx)
        try:
            jobs = [pool.submit(_seed_worker, *args, seed, str(out_dir), worker_threads(workers),
                                limits, data.info.name) for seed in seeds]
            for job in jobs:
                job.result()  # a worker's error is raised here
        except BaseException:
            # Ctrl-C, SIGTERM or a worker's error: stop the other seeds now. The executor's
            # own exit would wait for them to finish, which looks like a hang; a terminated
            # seed goes on from its last epoch's checkpoint with --resume.
            stop_pool(pool)
            raise
        pool.shutdown()
        # every seed is on disk now: read them back, without a "reusing" line per seed
        histories = {seed: train_seed(spec, cfg, data, seed, out_dir, log=lambda _: None,
                                      resume=True) for seed in seeds}
    else:
        histories = {seed: train_seed(spec, cfg, data, seed, out_dir, log, progress, resume,
                                      limits) for seed in seeds}
    summary = summarize(histories)
    finals = [v["final_acc"] for v in summary["per_seed"].values()]
    summary.update(
        n_params=info.n_params, macs=info.macs, epochs=cfg.epochs, seeds=seeds,
        dataset=data.info.to_dict(),
        reached_99_4=sum(f >= 99.4 for f in finals), ci95=t_interval95(finals),
        # compute, summed over seeds: right for a resumed run and for seeds run side by side
        minutes=sum(r["time_s"] for h in histories.values() for r in h) / 60,
        device=str(data.train.device), workers=workers, limits=limits,
        environment=environment(),
    )
    for seed, s in summary["per_seed"].items():
        log(f"seed {seed}: best {s['best_acc']:.2f}% (epoch {s['best_epoch']}), "
            f"final {s['final_acc']:.2f}%, {s['s_per_epoch']:.1f} s/epoch")
    lo, hi = summary["ci95"]
    log(f"final-epoch test accuracy over {len(seeds)} seeds: {summary['final_mean']:.2f} "
        f"+- {summary['final_std']:.2f}% (min {summary['final_min']:.2f}, 95% CI "
        f"{lo:.2f}..{hi:.2f}); "
        # the classic MNIST target; it means nothing for another dataset
        + (f"{summary['reached_99_4']}/{len(seeds)} seeds >= 99.40%; "
           if data.info.name == "mnist" else "")
        # the seeds' training time added up: seeds run side by side take less wall time
        + f"best epoch {summary['best_acc']:.2f}%; {summary['minutes']:.1f} min of training "
          f"over the {len(seeds)} seeds")
    write_json(out_dir / "summary.json", summary)
    # results/<kind>/<name>/: the shared plotly.min.js sits at results/
    write_html(curves_figure(histories, title=str(out_dir.name)), out_dir / "curves.html",
               out_dir.parent.parent)
    return summary
