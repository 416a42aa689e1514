"""Training as a function: spec + config + data + seed -> per-epoch history.

Data stays on the device as one tensor; each batch is a slice of a device-side permutation,
augmented on the device as a whole batch (airbench's way). Host syncs happen once per epoch,
not per step. This module does not import Optuna: the search prunes through ``callback``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from nas.build import build, count_params
from nas.config import TrainConfig, piecewise_factor
from nas.data import MNISTData, Split, augment
from nas.errors import NasError
from nas.heap import keep_freed_memory
from nas.layers import bits_state, seeded_bits, set_bits_state
from nas.spec import ArchSpec

__all__ = ["TrainConfig", "TrainResult", "train", "evaluate", "summarize", "native_bf16",
           "resolve_precision"]


@dataclass
class TrainResult:
    history: list[dict]  # one record per epoch; accuracies in %, losses per image
    model: nn.Module
    n_params: int
    stop_reason: str | None = None  # None when all epochs ran
    config: TrainConfig | None = None  # the recipe as run: bf16 resolved to True or False
    extra: dict = field(default_factory=dict)


def make_optimizer(model: nn.Module, cfg: TrainConfig, steps_per_epoch: int):
    params = model.parameters()
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
            weight_decay=cfg.weight_decay, foreach=True,
        )
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
    if cfg.schedule == "onecycle":
        # SGD's momentum cycles inversely to the lr, +-0.05 around the recipe's (0.85-0.95
        # for 0.9, torch's default); plain SGD (momentum 0) stays plain: torch would
        # otherwise cycle it 0.85-0.95 behind the recipe's back
        cycle = cfg.optimizer == "sgd" and cfg.momentum > 0
        pct, total = cfg.pct_start, cfg.epochs * steps_per_epoch
        if pct * total == 1:
            # a warm-up of exactly one step: torch divides by its length less one, 0 (a
            # 1-epoch rung of 4 batches at pct_start 0.25). Its warm-up ends at step 0, so step
            # 0 is the peak; a hair less says that to torch, which then anneals from there.
            pct = (1 - 1e-6) / total
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch,
            pct_start=pct, cycle_momentum=cycle,
            base_momentum=max(0.0, cfg.momentum - 0.05), max_momentum=cfg.momentum + 0.05,
        )
        return opt, sched, True  # stepped per batch
    if cfg.schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
        return opt, sched, False  # stepped per epoch
    if cfg.schedule == "piecewise":
        knots, epochs = cfg.knots, cfg.epochs
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda e: piecewise_factor(knots, e, epochs))
        return opt, sched, False  # stepped per epoch
    return opt, None, False


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, cfg: TrainConfig) -> tuple[float, float]:
    """(mean loss per image, accuracy in %) over the whole split."""
    was_training = model.training
    model.eval()
    loss = torch.zeros((), device=split.device)
    correct = torch.zeros((), device=split.device, dtype=torch.long)
    for i in range(0, len(split), cfg.eval_batch_size):
        batch = slice(i, i + cfg.eval_batch_size)
        x, y = split.x_at(batch), split.y[batch]
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(cfg, x.device):
            out = model(x)
        loss += F.cross_entropy(out.float(), y, reduction="sum")
        correct += (out.argmax(1) == y).sum()
    model.train(was_training)
    n = len(split)
    return loss.item() / n, 100.0 * correct.item() / n


def ema_avg_fn(decay: float):
    """EMA update for ``AveragedModel``, with timm's warm-up: the decay used at update n is
    min(decay, (1 + n) / (10 + n)), so early epochs are not dragged back to the random init
    (which would make the pruner kill EMA candidates for a lag that is gone by the end).
    The weight stays a device tensor: no host sync per step.
    """

    @torch.no_grad()
    def update(ema_params, params, n_averaged):
        if not torch.is_floating_point(ema_params[0]):  # num_batches_tracked: unused with momentum
            return
        w = 1 - torch.clamp((1 + n_averaged) / (10 + n_averaged), max=decay)
        torch._foreach_lerp_(ema_params, params, w.to(ema_params[0].dtype))

    return update


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 autocast runs on hardware bf16 here (else it is emulated, and slow).

    NAS_NATIVE_BF16=0 (or 1) makes the answer "no" (or "yes") on any machine, so both
    precision paths can be tested and benchmarked anywhere.
    """
    forced = os.environ.get("NAS_NATIVE_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return True


def resolve_precision(cfg: TrainConfig, device: torch.device) -> TrainConfig:
    """The recipe with bf16 decided: a forced value stays, None (auto) follows the hardware."""
    if cfg.bf16 is not None:
        return cfg
    return dataclasses.replace(cfg, bf16=native_bf16(device))


def _autocast(cfg: TrainConfig, device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(cfg.bf16))


def _seeded_dropout(fn):
    """Run ``fn`` with dropout's random bits drawn from a generator seeded by its ``seed``."""

    @functools.wraps(fn)
    def run(spec, cfg, data, seed: int = 0, *args, **kwargs):
        with seeded_bits(seed):
            return fn(spec, cfg, data, seed, *args, **kwargs)

    return run


@_seeded_dropout
def train(
    spec: ArchSpec,
    cfg: TrainConfig,
    data: MNISTData,
    seed: int = 0,
    callback: Callable[[dict], bool | None] | None = None,
    progress: bool = True,
    train_limit: int | None = None,
    eval_limit: int | None = None,
    desc: str = "",
    checkpoint: Path | None = None,
    on_progress: Callable[[dict], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train ``spec`` from scratch; evaluate on data.val (if any) and data.test every epoch.

    ``callback(record)`` runs after each epoch; a truthy return stops training (the search
    prunes this way). A non-finite training loss stops it too; both end up in ``stop_reason``.
    ``train_limit`` / ``eval_limit`` use only the first N images (for quick runs and tests).
    ``checkpoint``: after every epoch the whole state (weights, optimizer, schedule, EMA, random
    generators, history) is saved there; a run that finds one picks up after its last epoch and
    ends exactly as an unbroken run would. The caller deletes it once the outputs are saved.
    ``on_progress(info)``: signs of life for long epochs, at most once a second and after each
    epoch: epoch, epochs, step, steps, images_per_s and eta_s (seconds to the end of the run).
    ``stop()``: checked every step; once true the run ends at once, mid-epoch, without that
    epoch's record (the search's Ctrl-C). ``cfg.bf16`` None (auto) is decided here
    (``resolve_precision``); ``result.config`` says what ran. The first call in a process
    tells glibc to keep freed memory (``nas.heap``; ``NAS_KEEP_HEAP=0`` does not).
    """
    cfg.validate()
    keep_freed_memory()  # glibc keeps a step's freed pages for the next step (nas/heap.py)
    from nas.datasets import check_spec

    check_spec(spec, data.info)  # a spec for other images or classes: one line, before training
    train_split = data.train.head(train_limit)
    evals = {"val": data.val, "test": data.test}
    evals = {k: v.head(eval_limit) for k, v in evals.items() if v is not None}
    device = train_split.device
    cfg = resolve_precision(cfg, device)
    if cfg.bf16 and not native_bf16(device):
        warnings.warn(f"bf16 autocast on a {device.type.upper()} without native bf16 runs "
                      "slower than fp32; --no-bf16 trains in fp32", stacklevel=3)
    torch.manual_seed(seed)
    model = build(spec).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    n_params = count_params(model)
    g = torch.Generator(device=device).manual_seed(seed)
    n = len(train_split)
    steps = math.ceil(n / cfg.batch_size)  # the last, partial batch is kept: full passes
    opt, sched, per_step = make_optimizer(model, cfg, steps)
    # BN running statistics are averaged too (use_buffers), as timm's ModelEmaV3 does.
    ema = None
    if cfg.ema:
        ema = AveragedModel(model, multi_avg_fn=ema_avg_fn(cfg.ema), use_buffers=True)
    aug = (cfg.rotate_deg > 0 or cfg.translate > 0 or cfg.scale > 0 or cfg.jitter > 0
           or cfg.hflip > 0)
    history: list[dict] = []
    stop_reason = None
    key = {"spec": spec.to_dict(), "train_config": cfg.to_dict(), "seed": seed, "n_train": n,
           "eval": {k: len(v) for k, v in evals.items()}}
    if checkpoint is not None and Path(checkpoint).is_file():
        history = _restore(Path(checkpoint), key, model, opt, sched, ema, g)
    clock = _Progress(on_progress, cfg.epochs, steps, cfg.batch_size)
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        lr = opt.param_groups[0]["lr"]
        perm = torch.randperm(n, device=device, generator=g)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        bar = tqdm(
            range(steps), desc=f"{desc}epoch {epoch}/{cfg.epochs}", leave=False,
            disable=not progress, unit="step",
        )
        halted = False
        for s in bar:
            if stop is not None and stop():
                halted = True
                break
            idx = perm[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            x, y = train_split.x_at(idx), train_split.y[idx]
            if aug:
                x = augment(x, g, cfg.rotate_deg, cfg.translate, cfg.scale, cfg.interp,
                            p=cfg.aug_p, border=cfg.border, jitter=cfg.jitter,
                            jitter_p=cfg.jitter_p, mean=data.info.mean, std=data.info.std,
                            hflip=cfg.hflip)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(cfg, device):
                out = model(x)
            loss = F.cross_entropy(out.float(), y, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                ema.update_parameters(model)
            if per_step:
                sched.step()
            loss_sum += loss.detach() * len(idx)
            correct += (out.argmax(1) == y).sum()
            clock.step(epoch, s + 1)
        if halted:
            stop_reason = f"stopped during epoch {epoch}"
            break
        if sched is not None and not per_step:
            sched.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        train_s = time.perf_counter() - t0
        record = {
            "epoch": epoch,
            "lr": lr,
            "train_loss": loss_sum.item() / n,
            "train_acc": 100.0 * correct.item() / n,
        }
        for name, split in evals.items():
            record[f"{name}_loss"], record[f"{name}_acc"] = evaluate(final(model, ema), split, cfg)
            record[f"{name}_n"] = len(split)  # images the accuracy is out of
            if ema is not None:  # the raw weights too, so one run shows what the EMA bought
                record[f"{name}_acc_raw"] = evaluate(model, split, cfg)[1]
        record["train_s"] = train_s
        record["time_s"] = time.perf_counter() - t0
        clock.epoch_done(epoch, train_s, record["time_s"])
        history.append(record)
        if checkpoint is not None:
            _save(Path(checkpoint), key, history, model, opt, sched, ema, g)
        if not math.isfinite(record["train_loss"]):
            stop_reason = f"non-finite training loss at epoch {epoch}"
            break
        if callback is not None and callback(record):
            stop_reason = f"stopped by callback after epoch {epoch}"
            break
    return TrainResult(history, final(model, ema), n_params, stop_reason, config=cfg)


class _Progress:
    """Throttled signs of life for ``train(on_progress=...)``: one call a second at most."""

    def __init__(self, fn, epochs: int, steps: int, batch_size: int):
        self.fn, self.epochs, self.steps, self.batch = fn, epochs, steps, batch_size
        self.last = self.t_epoch = time.perf_counter()
        self.step_s = None  # seconds per training step, measured
        self.eval_s = 0.0  # seconds of evaluation per epoch, measured

    def step(self, epoch: int, step: int) -> None:
        if self.fn is None:
            return
        now = time.perf_counter()
        if now - self.last < 1.0:
            return
        self.last = now
        rate = (now - self.t_epoch) / step  # s per step in this epoch so far
        self._send(epoch, step, rate)

    def epoch_done(self, epoch: int, train_s: float, total_s: float) -> None:
        self.step_s, self.eval_s = train_s / self.steps, total_s - train_s
        if self.fn is not None:
            self._send(epoch, self.steps, self.step_s)
        self.last = self.t_epoch = time.perf_counter()

    def _send(self, epoch: int, step: int, s_per_step: float) -> None:
        left_steps = (self.steps - step) + (self.epochs - epoch) * self.steps
        left_evals = (self.epochs - epoch) + (step < self.steps)
        self.fn({"epoch": epoch, "epochs": self.epochs, "step": step, "steps": self.steps,
                 "images_per_s": self.batch / s_per_step if s_per_step > 0 else 0.0,
                 "eta_s": left_steps * s_per_step + left_evals * self.eval_s})


def _save(path: Path, key: dict, history, model, opt, sched, ema, g) -> None:
    state = {
        "key": key, "history": history, "model": model.state_dict(),
        "optimizer": opt.state_dict(), "scheduler": sched.state_dict() if sched else None,
        "ema": ema.state_dict() if ema is not None else None, "generator": g.get_state(),
        "torch_rng": torch.get_rng_state(),
        "dropout_bits": bits_state(),  # dropout draws from its own generator, not from g
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # a run killed while saving leaves the previous checkpoint whole


def _restore(path: Path, key: dict, model, opt, sched, ema, g) -> list[dict]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state["key"] != key:
        diff = sorted(k for k in key if state["key"].get(k) != key[k])
        raise NasError(f"checkpoint {path} belongs to another run (different {', '.join(diff)}); "
                       "delete it or train under another name")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    if sched is not None:
        sched.load_state_dict(state["scheduler"])
    if ema is not None:
        ema.load_state_dict(state["ema"])
    g.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    set_bits_state(state.get("dropout_bits"))
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["history"]


def final(model: nn.Module, ema: AveragedModel | None) -> nn.Module:
    """The weights a run evaluates and ships: the EMA copy when there is one."""
    return model if ema is None else ema.module


def summarize(histories: dict[int, list[dict]], metric: str = "test_acc") -> dict:
    """Per seed: best accuracy and its epoch, final-epoch accuracy; then mean, std, min of finals.

    std is the sample standard deviation (n-1), 0 for one seed.
    """
    per_seed = {}
    for seed, hist in histories.items():
        best = max(hist, key=lambda r: r[metric])
        per_seed[seed] = {
            "best_acc": best[metric],
            "best_epoch": best["epoch"],
            "final_acc": hist[-1][metric],
            "epochs": len(hist),
            "s_per_epoch": sum(r["train_s"] for r in hist) / len(hist),
        }
    finals = torch.tensor([v["final_acc"] for v in per_seed.values()], dtype=torch.float64)
    std = finals.std().item() if len(finals) > 1 else 0.0
    return {
        "metric": metric,
        "per_seed": per_seed,
        "final_mean": finals.mean().item(),
        "final_std": std,
        "final_min": finals.min().item(),
        "best_acc": max(v["best_acc"] for v in per_seed.values()),
    }
