"""The ``nas`` command line: thin argparse over library functions (Optuna's CLI layout).

Each command is a class with ``add_arguments`` and ``take_action``; ``main(argv) -> int``.
A NasError becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from nas.cli_common import EPILOG, _add_data_args, _epochs_note, _parse_seeds, _positive
from nas.cli_search import SEARCH_COMMANDS
from nas.errors import NasError


def _add_model_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--preset", help="a preset name (see `nas presets`)")
    g.add_argument("--spec", help="an architecture spec JSON file")


def _load_model(args) -> tuple:
    """(name, spec, train config) from --preset or --spec (+ optional train_config.json beside)."""
    from nas.config import TrainConfig
    from nas.presets import get_preset
    from nas.spec import ArchSpec

    if args.preset:
        p = get_preset(args.preset)
        return p.name, p.spec, p.train
    path = Path(args.spec)
    try:
        text = path.read_text()
    except OSError as e:
        raise NasError(f"cannot read spec {path}: {e.strerror}") from None
    spec = ArchSpec.from_json(text)
    cfg_path = path.with_name("train_config.json")
    cfg = TrainConfig()
    if cfg_path.is_file():
        import json

        cfg = TrainConfig.from_dict(json.loads(cfg_path.read_text()))
    return path.stem if path.stem != "spec" else path.parent.name, spec, cfg


class Presets:
    help = "list the preset architectures"

    def add_arguments(self, p):
        pass

    def take_action(self, args) -> int:
        from nas.presets import get_preset, list_presets
        from nas.spec import analyze

        for name in list_presets():
            pr = get_preset(name)
            print(f"{name:10s} {analyze(pr.spec).n_params:>10,} params  {pr.about}")
        return 0


class Summary:
    help = "layer table of an architecture: output shape, params, receptive field"

    def add_arguments(self, p):
        _add_model_args(p)

    def take_action(self, args) -> int:
        from nas.report import summary_table

        name, spec, _ = _load_model(args)
        print(summary_table(spec, name))
        return 0


class Results:
    help = "table of every `nas verify` run under results/verify/ (markdown; also table.md)"

    def add_arguments(self, p):
        p.add_argument("--results-dir", default="results")

    def take_action(self, args) -> int:
        from nas.report import markdown, verify_frame

        df = verify_frame(Path(args.results_dir))
        if df.empty:
            raise NasError(f"no verify runs under {args.results_dir}/verify/ (run nas verify)")
        table = markdown(df)
        print(table)
        (Path(args.results_dir) / "verify" / "table.md").write_text(table + "\n")
        return 0


class DataStats:
    help = "per split: count, mean, std, min/max, images per class; a grid of samples"

    def add_arguments(self, p):
        _add_data_args(p)
        p.add_argument("--val-size", type=int, default=10000, help="held-out validation images")

    def take_action(self, args) -> int:
        from nas.datasets import load_data
        from nas.report import data_stats, save_sample_grid

        dataset = args.dataset or "mnist"
        data = load_data(dataset, args.data_dir, "cpu", args.val_size)
        full = load_data(dataset, args.data_dir, "cpu", 0) if args.val_size else None
        print(data_stats(data, full).to_string())
        path = save_sample_grid(data, Path(args.results_dir) / "data")
        print(f"sample grid: {path}")
        return 0


def _add_recipe_args(p) -> None:
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (default: the recipe's)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="NHWC memory format (default: the recipe's, on unless it says off)")
    p.add_argument("--ema", type=float, default=None, metavar="DECAY",
                   help="keep and report an EMA of the weights, e.g. 0.999; 0 turns it off "
                        "(default: the recipe's)")
    p.add_argument("--workers", type=_positive("--workers"), default=1,
                   help="seeds trained at once, in separate processes with cpu_count (or "
                        "OMP_NUM_THREADS) // workers threads each (default: 1)")
    p.add_argument("--train-limit", type=_positive("--train-limit"), default=None,
                   help="train on the first N images only (quick runs; recorded)")
    p.add_argument("--eval-limit", type=_positive("--eval-limit"), default=None,
                   help="test on the first N images only (quick runs; recorded)")
    p.add_argument("--resume", action="store_true",
                   help="reuse the seeds already trained under this --name and go on from a "
                        "cut-short seed's last epoch (checkpoint_seed<N>.pt)")


class Train:
    help = "train a preset or spec over seeds on the whole training split"

    def add_arguments(self, p):
        _add_model_args(p)
        _add_data_args(p)
        p.add_argument("--epochs", type=_positive("--epochs"), default=None,
                       help="default: the preset's (15)")
        p.add_argument("--seeds", default="0", help="comma-separated, e.g. 0,1,2")
        p.add_argument("--name", default=None, help="results/train/<name>/ (default: preset)")
        _add_recipe_args(p)
        p.add_argument("--no-progress", action="store_true", help="no progress bars")

    def take_action(self, args) -> int:
        return _run_seeds(args, "train")


def _run_seeds(args, kind: str) -> int:
    import dataclasses

    from nas.data import resolve_device
    from nas.datasets import check_spec, load_data
    from nas.runs import check_writable, train_seeds
    from nas.spec import analyze

    name, spec, cfg = _model_for(args)
    analyze(spec)  # an impossible spec fails here, before any data is loaded
    seeds = _parse_seeds(args.seeds)
    if args.epochs is not None:
        cfg = dataclasses.replace(cfg, epochs=args.epochs)
    if args.bf16 is not None:
        cfg = dataclasses.replace(cfg, bf16=args.bf16)
    if args.channels_last is not None:
        cfg = dataclasses.replace(cfg, channels_last=args.channels_last)
    if args.ema is not None:
        cfg = dataclasses.replace(cfg, ema=args.ema)
    cfg.validate()
    _epochs_note(cfg.epochs)
    device = resolve_device(args.device)
    out = Path(args.results_dir) / kind / (args.name or name)
    check_writable(out)
    data = load_data(_dataset_for(args), args.data_dir, str(device), 0)
    check_spec(spec, data.info)
    if not args.resume:
        (out / "log.txt").write_text("")
    log_file = (out / "log.txt").open("a")  # append: --workers processes write to it too

    def log(line: str) -> None:
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    log(f"$ nas {' '.join(sys.argv[1:])}" if sys.argv[0].endswith("nas") else f"# {kind} {name}")
    if args.workers > 1:
        import torch

        from nas.runs import worker_threads

        torch.set_num_threads(worker_threads(args.workers))  # recorded as each worker's
    limits = {k: v for k, v in (("train_limit", args.train_limit),
                                ("eval_limit", args.eval_limit)) if v}
    try:
        summary = train_seeds(spec, cfg, data, seeds, out, log, progress=not args.no_progress,
                              resume=args.resume, workers=args.workers, data_dir=args.data_dir,
                              limits=limits)
    except KeyboardInterrupt:
        log(f"interrupted: finished seeds and each seed's last epoch are kept in {out}/; "
            f"go on with the same command and --resume")
        raise
    if kind == "verify":
        from nas.runs import write_json

        write_json(out / "verify.json", {"name": name, "train_config": cfg.to_dict(), **summary})
        log(f"wrote {out / 'verify.json'}")
    log(f"files: {out}/")
    log_file.close()
    return 0


def _dataset_for(args) -> str:
    """--dataset, else the study's own (for `nas verify STUDY`), else mnist."""
    if args.dataset:
        return args.dataset
    if getattr(args, "study", None):
        import json

        meta = Path(args.results_dir) / args.study / "study.json"
        if meta.is_file():
            return json.loads(meta.read_text()).get("dataset", "mnist")
    return "mnist"


def _model_for(args) -> tuple:
    """--preset / --spec, or a study's trial (for verify)."""
    if getattr(args, "study", None):
        from nas.studyio import trial_model

        return trial_model(Path(args.results_dir), args.study, args.trial)
    if not (args.preset or args.spec):
        raise NasError("give a STUDY, --preset NAME or --spec FILE")
    return _load_model(args)


class Verify:
    help = "retrain a study's trial, a preset or a spec over seeds; report mean +- std"

    def add_arguments(self, p):
        p.add_argument("study", nargs="?", help="a study under results/")
        p.add_argument("--trial", default="auto",
                       help="winner (the seed race's), best (the search's validation score), a "
                            "number, or auto (default: the winner if the race ran, else best)")
        _add_model_args(p, required=False)
        _add_data_args(p)
        p.add_argument("--seeds", default="0,1,2", help="comma-separated (default: 0,1,2)")
        p.add_argument("--epochs", type=_positive("--epochs"), default=None)
        p.add_argument("--name", default=None, help="results/verify/<name>/")
        _add_recipe_args(p)
        p.add_argument("--no-progress", action="store_true")

    def take_action(self, args) -> int:
        if args.study and (args.preset or args.spec):
            raise NasError("give either a STUDY or --preset/--spec, not both")
        return _run_seeds(args, "verify")


# The search, report and export commands live in nas/cli_search.py; like every command here
# they import Optuna and torch only when they run, so `nas summary` stays quick.
COMMANDS: dict[str, type] = {
    "presets": Presets,
    "summary": Summary,
    "data": DataStats,
    "train": Train,
    "verify": Verify,
    "results": Results,
    **SEARCH_COMMANDS,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nas", description="Neural architecture search for tiny CNNs under a hard budget.",
        epilog=EPILOG,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, cls in COMMANDS.items():
        cmd = cls()
        p = sub.add_parser(name, help=cmd.help, description=getattr(cls, "__doc__", None)
                           or cmd.help, formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == "data":
            p.add_argument("action", choices=["stats"], help="what to do with the data")
        cmd.add_arguments(p)
        p.set_defaults(_cmd=cmd)
    return parser


def _interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # SIGTERM (kill, timeout, a session's end) and SIGHUP (a closed terminal) stop a run as
    # Ctrl-C does: a message, workers stopped, finished work kept. Their default action ends
    # the process without a word and leaves spawned workers behind (docs/internals.md).
    saved = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) is signal.SIG_DFL:
                saved[sig] = signal.signal(sig, _interrupt)
    try:
        args = parser.parse_args(argv)
        return args._cmd.take_action(args)
    except NasError as e:
        print(f"nas: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # argparse: usage errors exit 2, --help exits 0
        return e.code if isinstance(e.code, int) else 2
    except KeyboardInterrupt as e:
        print(f"nas: interrupted{f' ({e})' if str(e) else ''}", file=sys.stderr)
        return 130
    finally:
        for sig, handler in saved.items():  # main() called in-process (tests) leaves no trace
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
