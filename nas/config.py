"""Plain, torch-free configuration dataclasses: a training recipe and a search's settings.

Search spaces, presets and the CLI import these without paying for torch or Optuna.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from nas.errors import NasError
from nas.spaces import DEFAULT_SPACE

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("onecycle", "step", "constant", "piecewise")
BORDERS = ("zeros", "reflection")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 15  # full passes over the training images
    batch_size: int = 128  # images per step
    optimizer: str = "sgd"  # sgd | adam
    lr: float = 0.1  # peak learning rate (onecycle, piecewise), initial (step, constant)
    momentum: float = 0.9  # sgd only; 0 is plain SGD
    nesterov: bool = True  # sgd only, with momentum > 0
    weight_decay: float = 0.0  # L2, coupled (torch's SGD/Adam weight_decay)
    schedule: str = "onecycle"  # onecycle | step | constant | piecewise
    pct_start: float = 0.25  # onecycle: fraction of steps spent warming up
    step_size: int = 8  # step: epochs between decays
    gamma: float = 0.1  # step: decay factor
    # piecewise: ((epoch, lr factor), ...) linearly interpolated and set once per epoch; the
    # epochs are those of a run of knots[-1][0] epochs and stretch to `epochs`
    knots: tuple = ()
    label_smoothing: float = 0.0  # 0..0.2
    rotate_deg: float = 0.0  # random rotation, +- degrees
    translate: float = 0.0  # random shift, +- fraction of the image size
    scale: float = 0.0  # random zoom, +- fraction
    aug_p: float = 1.0  # probability that an image gets the random affine at all, 0..1
    border: str = "zeros"  # zeros | reflection: what the affine fills uncovered pixels with
    jitter: float = 0.0  # brightness and contrast factors uniform in 1 +- jitter, 0..1
    jitter_p: float = 0.5  # probability that an image gets the jitter, 0..1
    interp: str = "bilinear"  # bilinear | nearest, for the augmentation's resampling
    # probability that an image is mirrored left-right, 0..1: for data whose labels survive
    # a mirror (clothes), not for digits; the general space searches it where the dataset
    # allows (DatasetInfo.mirror)
    hflip: float = 0.0
    # images per eval forward pass. It changes no result, only speed: on the CPU a batch of
    # 2,000 makes activations too big for the caches and for glibc's heap (fresh pages on
    # every pass), and evaluates at 1/2.4 the speed of 256 (bench/eval_speed.py)
    eval_batch_size: int = 256
    # bf16 autocast: None (auto) uses it where the hardware has native bf16 (a CPU with
    # AVX512-BF16 or AMX, a CUDA GPU with bf16) and fp32 elsewhere, where emulated bf16 is ~5x
    # slower; True / False force it. Runs record the value they used.
    bf16: bool | None = None
    channels_last: bool = True  # NHWC memory format: same maths, faster CPU steps
    ema: float = 0.0  # > 0: evaluate and keep an exponential moving average of the weights

    def validate(self) -> TrainConfig:
        _check_types(self)  # JSON gives strings and nulls: say which key, before comparing
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.eval_batch_size >= 1, f"eval_batch_size must be >= 1, got "
                                        f"{self.eval_batch_size}"),
            (self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}"),
            (self.schedule != "onecycle" or 0 < self.pct_start < 1,
             f"pct_start must be in (0, 1), got {self.pct_start}"),
            (self.step_size >= 1, f"step_size must be >= 1, got {self.step_size}"),
            (0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma}"),
            (0 <= self.rotate_deg <= 180, f"rotate_deg must be in [0, 180], got "
                                          f"{self.rotate_deg}"),
            (0 <= self.translate < 1, f"translate must be in [0, 1), got {self.translate}"),
            (0 <= self.scale < 1, f"scale must be in [0, 1), got {self.scale}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.optimizer in OPTIMIZERS, f"unknown optimizer {self.optimizer!r} (sgd|adam)"),
            (self.lr > 0, f"learning rate must be > 0, got {self.lr}"),
            (self.momentum >= 0, f"momentum must be >= 0, got {self.momentum}"),
            (not (self.schedule == "onecycle" and self.optimizer == "sgd"
                  and 0 < self.momentum < 0.05),
             "onecycle cycles SGD momentum by +-0.05: use momentum 0 or >= 0.05"),
            (self.schedule in SCHEDULES,
             f"unknown schedule {self.schedule!r} ({', '.join(SCHEDULES)})"),
            (self.schedule != "piecewise" or _good_knots(self.knots),
             "piecewise schedule needs knots ((epoch, factor), ...) from epoch 0, increasing"),
            (0 <= self.label_smoothing < 1, "label smoothing must be in [0, 1)"),
            (0 <= self.aug_p <= 1 and 0 <= self.jitter_p <= 1,
             "aug_p and jitter_p are probabilities in [0, 1]"),
            (0 <= self.jitter < 1, f"jitter must be in [0, 1), got {self.jitter}"),
            (0 <= self.hflip <= 1, f"hflip is a probability in [0, 1], got {self.hflip}"),
            (self.border in BORDERS, f"border must be one of {', '.join(BORDERS)}"),
            (self.interp in ("bilinear", "nearest"), "interp must be bilinear or nearest"),
            (0 <= self.ema < 1, f"ema decay must be in [0, 1), got {self.ema}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise NasError(msg)
        return self

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["knots"] = [list(k) for k in self.knots]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise NasError(f"unknown training config keys: {', '.join(sorted(unknown))}")
        d = dict(d)
        if "knots" in d:  # JSON lists back to the hashable tuples a frozen dataclass keeps
            d["knots"] = tuple(tuple(k) for k in d["knots"])
        return cls(**d)


def _check_types(cfg) -> None:
    """Each field of the type its annotation names; numbers finite. One NasError line."""
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        kind = str(f.type)
        if kind == "bool | None" and v is None:
            continue
        if kind.startswith("bool"):
            ok = isinstance(v, bool)
        elif kind == "int":
            ok = isinstance(v, int) and not isinstance(v, bool)
        elif kind == "float":
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        elif kind == "str":
            ok = isinstance(v, str)
        else:  # tuple: checked by its own rule (knots)
            ok = isinstance(v, tuple)
        if not ok:
            raise NasError(f"training config {f.name} must be {kind.replace(' | None', '')}"
                           f"{' (finite)' if kind == 'float' else ''}, got {v!r}")


def _good_knots(knots) -> bool:
    try:
        epochs = [float(e) for e, _ in knots]
        factors = [float(f) for _, f in knots]
    except (TypeError, ValueError):
        return False
    rising = all(b > a for a, b in zip(epochs, epochs[1:], strict=False))
    return len(epochs) >= 2 and epochs[0] == 0 and rising and all(f >= 0 for f in factors)


def piecewise_factor(knots, epoch: float, epochs: int) -> float:
    """The lr factor at ``epoch`` (0-based) of an ``epochs`` run: knots stretched, interpolated."""
    stretch = knots[-1][0] / epochs
    e = epoch * stretch
    for (e0, f0), (e1, f1) in zip(knots, knots[1:], strict=False):
        if e <= e1:
            return f0 + (f1 - f0) * (e - e0) / (e1 - e0)
    return knots[-1][1]


PRUNERS = ("rungs", "median", "hyperband", "none")
SAMPLERS = ("tpe", "nsga2", "random")
# The cheap rungs a candidate passes before its full-length training, as (epochs, fraction of
# the training images); each rung trains from scratch with the whole recipe compressed into
# its epochs. bench/rung_correlation.py measures how well they rank candidates.
DEFAULT_RUNGS = ((2, 0.25), (3, 0.5))  # chosen on bench/rung_correlation_8k.txt


@dataclass(frozen=True)
class SearchConfig:
    study: str = "general"  # name; files under results/<study>/
    space: str = DEFAULT_SPACE  # auto (by budget: nas.spaces.resolve_space), a name or a path
    dataset: str = "mnist"  # mnist | fashion-mnist | npz:PATH | folder:PATH
    max_params: int | None = 8000  # strict: a candidate needs n_params < max_params
    max_macs: int | None = None  # multiply-accumulates per image, strict
    max_peak_kb: float | None = None  # peak int8 activation memory, KB (1 KB = 1,000 bytes)
    max_int8_kb: float | None = None  # model size once int8-quantized, KB
    epochs: int = 15  # per candidate's full-length training
    trials: int = 1000  # candidates trained (budget rejections do not count); --timeout ends most
    timeout_s: float | None = None  # wall seconds for the whole search, seed race included
    # compute for the whole search in full-candidate equivalents (one FCE: a full-length
    # training on all the search's training images), seed race included; a machine twice
    # as fast ends sooner with the same search, where --timeout would buy it twice as much
    budget_fce: float | None = None
    seed: int = 0  # sampler seed; worker k uses seed + k; training seed is the trial number
    objectives: tuple = ("accuracy",)  # or ("accuracy", "params") / ("accuracy", "macs")
    pruner: str = "rungs"  # rungs (successive halving over cheap rungs) | median | ... | none
    rungs: tuple = DEFAULT_RUNGS  # ((epochs, fraction of training images), ...), cheap first
    # successive halving: 1 in eta candidates goes on from each rung; a tuple: its own eta
    # per rung (--eta 3,5), kept as one int when they are all alike (old studies resume);
    # None: a resumed study's own, else default_eta(rungs)
    eta: int | tuple | None = None
    race_top: int = 3  # the seed race: the top K candidates by validation...
    race_seeds: int = 2  # ...each trained on S more seeds; mean validation names the winner
    # the race's validation images: "search", the search's own split (fold 0), or "fresh",
    # seed i holds out fold race_fold(i), images that played no part in choosing the finalists;
    # None: a resumed study's own (studies raced before the flag: "search"), else the default
    race_split: str | None = None
    record_test: bool = False  # evaluate the test set during the search (for reports only)
    sampler: str = "tpe"
    val_size: int = 10000  # training images held out for selection
    train_limit: int | None = None  # first N training images only (quick runs)
    eval_limit: int | None = None  # first N validation/test images only (quick runs)
    enqueue: tuple = ()  # names from the space's known designs, tried first
    workers: int = 1  # processes on this machine sharing one storage
    startup_trials: int = 10  # TPE: random trials (enqueued ones count) before it models
    bf16: bool | None = None  # force bf16 autocast on (True) or off (False); None: the recipe's
    prune_from: int | None = None  # median pruner: first epoch it compares at
    storage: str | None = None  # RDB URL; default: journal file in the study folder
    device: str = "auto"
    data_dir: str | None = None
    results_dir: str = "results"
    max_rejections: int = 300  # consecutive budget rejections before giving up
    scale_to_fit: bool = True  # an over-budget draw is trained narrower (nas.fit), not rejected
    progress: bool = True
    allow_changed: bool = False  # resume even though settings differ from the study's
    command: str = ""  # the command line, for study.json

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    def etas(self) -> tuple:
        """One eta per rung: 1 in etas()[k] candidates goes on from rung k."""
        eta = default_eta(self.rungs) if self.eta is None else self.eta
        return tuple(eta) if isinstance(eta, tuple) else (eta,) * len(self.rungs)

    def budgets(self) -> dict:
        """name -> (limit, how a spec's Analysis measures it); only the budgets that are set."""
        all_ = {"params": (self.max_params, lambda a: a.n_params),
                "macs": (self.max_macs, lambda a: a.macs),
                "peak_kb": (self.max_peak_kb, lambda a: a.peak_bytes(1) / 1000),
                "int8_kb": (self.max_int8_kb, lambda a: a.int8_bytes / 1000)}
        return {k: v for k, v in all_.items() if v[0] is not None}

    # what a resumed study must share with the run that made it (see nas.search)
    SETTINGS = ("space", "dataset", "max_params", "max_macs", "max_peak_kb", "max_int8_kb",
                "epochs", "val_size", "train_limit", "eval_limit", "objectives", "pruner",
                "rungs", "eta", "record_test", "scale_to_fit")

    def settings(self) -> dict:
        d = dataclasses.asdict(self)
        out = {k: d[k] for k in self.SETTINGS}
        out["objectives"] = list(out["objectives"])
        out["rungs"] = [list(r) for r in out["rungs"]]
        if isinstance(out["eta"], tuple):
            out["eta"] = list(out["eta"])
        return out


DEFAULT_RACE_SPLIT = "search"


def parse_rungs(text: str) -> tuple:
    """'2x0.25,3x0.5' -> ((2, 0.25), (3, 0.5)); 'none' -> ()."""
    if text.strip().lower() in ("", "none"):
        return ()
    out = []
    for part in text.split(","):
        try:
            e, f = part.lower().split("x")
            out.append((int(e), float(f)))
        except ValueError:
            raise NasError(f"--rungs takes EPOCHSxFRACTION,... (e.g. 2x0.25,3x0.5), got "
                           f"{part!r}") from None
    return tuple(out)


def default_eta(rungs: tuple) -> int | tuple:
    """1 in 3 goes on from each rung but the last of two or more, 1 in 5 from that one: it
    decides who gets the 15-epoch run, which costs most. Replayed on the 20 searches archived
    by 2026-12-04 (bench/promotion.txt), 1 in 5 there would have skipped 191 full-length runs,
    23% of a search phase's compute, and every race winner would still have trained in full."""
    return (3,) * (len(rungs) - 1) + (5,) if len(rungs) >= 2 else 3


def parse_eta(text: str) -> int | tuple:
    """'3' -> 3; '3,5' -> (3, 5), one per rung; '3,3' -> 3 (one eta, Optuna's own pruner).
    The values are checked with the rest of the search's settings (nas.search.check_config)."""
    try:
        etas = tuple(int(part) for part in str(text).split(","))
    except ValueError:
        raise NasError(f"--eta takes an integer, or one per rung (e.g. 3,5), got {text!r}"
                       ) from None
    return etas[0] if len(set(etas)) == 1 else etas


def check_rungs(rungs: tuple, epochs: int) -> None:
    cost = [e * f for e, f in rungs]
    for e, f in rungs:
        if not 1 <= e <= epochs or not 0 < f <= 1:
            raise NasError(f"a rung needs 1 to {epochs} epochs and a fraction in (0, 1], got "
                           f"{e}x{f}")
    if any(b <= a for a, b in zip(cost, cost[1:], strict=False)) or (cost and cost[-1] >= epochs):
        raise NasError(f"rungs must cost more each (epochs x fraction) and less than the "
                       f"{epochs}-epoch training, got {rungs}")
