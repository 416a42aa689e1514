"""Train one spec over several seeds and write the results as plain files.

Shared by ``nas train`` and ``nas verify``: per seed a history CSV and a state_dict, once the
spec and training config as JSON, the curves as an offline HTML plot, and a summary.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from nas.data import MNISTData
from nas.spec import ArchSpec, analyze
from nas.train import TrainConfig, summarize, train


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
    path.write_text(json.dumps(obj, indent=2) + "\n")


def environment() -> dict:
    import optuna
    import torchvision

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
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


def train_seeds(
    spec: ArchSpec,
    cfg: TrainConfig,
    data: MNISTData,
    seeds: list[int],
    out_dir: Path,
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> dict:
    """Train once per seed on data.train, judge on data.test; write files; return the summary."""
    from nas.plots import curves_figure, write_html

    out_dir.mkdir(parents=True, exist_ok=True)
    info = analyze(spec)
    write_json(out_dir / "spec.json", spec.to_dict())
    write_json(out_dir / "train_config.json", cfg.to_dict())
    log(f"{info.n_params:,} params, {info.macs:,} MACs, {cfg.epochs} epochs, "
        f"{len(data.train):,} training images, seeds {','.join(map(str, seeds))}")
    histories = {}
    t0 = time.perf_counter()
    for seed in seeds:
        def show(r: dict, seed: int = seed) -> None:
            log(f"seed {seed} epoch {r['epoch']:2d}  lr {r['lr']:.4f}  "
                f"train loss {r['train_loss']:.4f} acc {r['train_acc']:.2f}  "
                f"test loss {r['test_loss']:.4f} acc {r['test_acc']:.2f}  {r['train_s']:.1f}s")

        res = train(spec, cfg, data, seed=seed, callback=show, progress=progress,
                    desc=f"seed {seed} ")
        if res.stop_reason:
            log(f"seed {seed}: {res.stop_reason}")
        histories[seed] = res.history
        pd.DataFrame(res.history).to_csv(out_dir / f"history_seed{seed}.csv", index=False)
        torch.save(res.model.state_dict(), out_dir / f"weights_seed{seed}.pt")
    summary = summarize(histories)
    finals = [v["final_acc"] for v in summary["per_seed"].values()]
    summary.update(
        n_params=info.n_params, macs=info.macs, epochs=cfg.epochs, seeds=seeds,
        reached_99_4=sum(f >= 99.4 for f in finals), ci95=t_interval95(finals),
        minutes=(time.perf_counter() - t0) / 60, device=str(data.train.x.device),
        environment=environment(),
    )
    for seed, s in summary["per_seed"].items():
        log(f"seed {seed}: best {s['best_acc']:.2f}% (epoch {s['best_epoch']}), "
            f"final {s['final_acc']:.2f}%, {s['s_per_epoch']:.1f} s/epoch")
    lo, hi = summary["ci95"]
    log(f"final-epoch test accuracy over {len(seeds)} seeds: {summary['final_mean']:.2f} "
        f"+- {summary['final_std']:.2f}% (min {summary['final_min']:.2f}, 95% CI "
        f"{lo:.2f}..{hi:.2f}); {summary['reached_99_4']}/{len(seeds)} seeds >= 99.40%; "
        f"best epoch {summary['best_acc']:.2f}%; {summary['minutes']:.1f} min")
    write_json(out_dir / "summary.json", summary)
    write_html(curves_figure(histories, title=str(out_dir.name)), out_dir / "curves.html")
    return summary
