"""CLI commands over studies: search, spaces, report, export (see nas/cli.py for the layout)."""

from __future__ import annotations

import argparse
import sys

from nas.cli import _add_data_args, _epochs_note, _positive
from nas.errors import NasError

SEARCH_HELP = """\
Run or resume an Optuna study. Every candidate's parameter count is computed from its spec
before anything is built: one at or over --max-params is rejected (PRUNED) in milliseconds, and
TPE learns the feasible region from Optuna's per-trial constraint. Selection uses the final-epoch
accuracy on a validation split held out of the training images; the test set is only recorded.

Running the same --study again resumes it. Ctrl-C stops after the current epoch and keeps every
finished trial; a second Ctrl-C stops at once.

--objectives accuracy,params runs a multi-objective (Pareto) search. Optuna cannot prune
multi-objective studies, so --pruner is ignored there.
"""


class Search:
    help = "search architectures and training recipes under a parameter budget"
    __doc__ = SEARCH_HELP

    def add_arguments(self, p):
        p.add_argument("--study", default=None, help="study name (default: the space's name, "
                       "or 'quick' with --quick); files under results/<study>/")
        p.add_argument("--space", default="mnist_8k",
                       help="a space name (see `nas spaces`) or a path to a .py file")
        p.add_argument("--max-params", type=int, default=8000,
                       help="strict budget: n_params < this (default 8000)")
        p.add_argument("--epochs", type=_positive("--epochs"), default=15,
                       help="epochs per candidate (default 15)")
        p.add_argument("--trials", type=int, default=30,
                       help="candidates to train; budget rejections do not count (default 30)")
        p.add_argument("--timeout", type=float, default=None, help="seconds; then no new trials")
        p.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
        p.add_argument("--objectives", default="accuracy",
                       help="accuracy (default) or accuracy,params for a Pareto search")
        p.add_argument("--pruner", default="median", help="median (default) | hyperband | none")
        p.add_argument("--prune-from", type=int, default=None, metavar="EPOCH",
                       help="median pruner: first epoch it compares at (default: a third of "
                            "the epochs; later when the space mixes schedules)")
        p.add_argument("--sampler", default="tpe", help="tpe (default) | nsga2 | random")
        p.add_argument("--val-size", type=int, default=10000,
                       help="training images held out for selection (default 10000)")
        p.add_argument("--enqueue", default="",
                       help="known designs to try first, comma-separated (e.g. baseline)")
        p.add_argument("--workers", type=int, default=1,
                       help="worker processes on this machine, one storage (default 1)")
        p.add_argument("--storage", default=None,
                       help="Optuna RDB URL (sqlite:///x.db, postgresql://...); default: a "
                       "journal file in the study folder")
        p.add_argument("--quick", action="store_true",
                       help="a smoke run: 5,000 training images, 3 epochs, 6 candidates")
        p.add_argument("--train-limit", type=int, default=None,
                       help="train on the first N training images only (smoke runs)")
        p.add_argument("--eval-limit", type=int, default=None,
                       help="evaluate on the first N validation/test images only")
        p.add_argument("--max-rejections", type=int, default=300,
                       help="consecutive budget rejections before giving up (default 300)")
        p.add_argument("--startup-trials", type=int, default=10,
                       help="TPE's random trials before it models the space; enqueued and "
                            "earlier trials count (default 10, Optuna's)")
        p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                       help="bf16 autocast for every candidate on or off (default: the "
                            "space's recipe, on unless it says off: faster on GPUs and on "
                            "CPUs with AVX512-BF16; recorded in each trial's recipe)")
        p.add_argument("--no-progress", action="store_true")
        _add_data_args(p)

    def take_action(self, args) -> int:
        from nas.search import SearchConfig, run_search

        objectives = tuple(o.strip() for o in args.objectives.split(",") if o.strip())
        if objectives not in (("accuracy",), ("accuracy", "params")):
            raise NasError(f"--objectives must be 'accuracy' or 'accuracy,params', "
                           f"got {args.objectives!r}")
        quick = {}
        if args.quick:
            quick = dict(train_limit=5000, eval_limit=2000, epochs=3, trials=6,
                         val_size=2000)
        cfg = SearchConfig(
            study=args.study or ("quick" if args.quick else args.space.split("/")[-1]
                                 .removesuffix(".py")),
            space=args.space, max_params=args.max_params, epochs=args.epochs,
            trials=args.trials, timeout_s=args.timeout, seed=args.seed, objectives=objectives,
            pruner=args.pruner, sampler=args.sampler, val_size=args.val_size,
            enqueue=tuple(e for e in args.enqueue.split(",") if e), workers=args.workers,
            storage=args.storage, device=args.device, data_dir=args.data_dir,
            results_dir=args.results_dir, max_rejections=args.max_rejections,
            progress=not args.no_progress, train_limit=args.train_limit,
            eval_limit=args.eval_limit, bf16=args.bf16,
            startup_trials=args.startup_trials, prune_from=args.prune_from,
            command="nas " + " ".join(sys.argv[1:]),
        )
        if quick:
            import dataclasses

            cfg = dataclasses.replace(cfg, **quick)
        _epochs_note(cfg.epochs)
        from nas.search import PRUNERS, SAMPLERS

        if cfg.pruner not in PRUNERS:
            raise NasError(f"unknown pruner {cfg.pruner!r} (valid: {', '.join(PRUNERS)})")
        if cfg.sampler not in SAMPLERS:
            raise NasError(f"unknown sampler {cfg.sampler!r} (valid: {', '.join(SAMPLERS)})")
        outcome = run_search(cfg)
        return 130 if outcome.stopped == "interrupted" else 0


class Spaces:
    help = "list the built-in search spaces"

    def add_arguments(self, p):
        pass

    def take_action(self, args) -> int:
        from nas.spaces import get_space, list_spaces

        for name in list_spaces():
            print(f"{name:10s} {getattr(get_space(name), 'ABOUT', '')}")
        return 0


class Report:
    help = "write results/<study>/report.html: Pareto plot, history, importances, curves"

    def add_arguments(self, p):
        p.add_argument("study", help="a study under results/")
        p.add_argument("--results-dir", default="results")

    def take_action(self, args) -> int:
        import json
        from pathlib import Path

        from nas.study_report import write_report
        from nas.studyio import load_study, study_dir

        study = load_study(args.results_dir, args.study)
        meta = json.loads((study_dir(args.results_dir, args.study) / "study.json").read_text())
        path = write_report(study, args.results_dir, meta.get("max_params", 8000))
        print(f"report: {path}\ntrials: {Path(path).with_name('trials.csv')} "
              f"and trials.parquet")
        return 0


class Export:
    help = "export a trial or a verified run as standalone PyTorch code (model.py) with weights"
    __doc__ = """Export a study's trial, or one seed of a `nas verify` run, as a standalone
model.py (torch only), weights.pt (a state_dict), spec.json, train_config.json and preset.json.
For a trial, 'best' follows the study's selection rule: the highest final-epoch validation
accuracy (ties: fewer parameters); its weights were trained without the validation images.
--verify NAME takes results/verify/NAME/ instead: weights trained on all 60,000 images, seed
0 (or --seed); the test set never selects. The export is checked in a fresh process: same
parameter count and the same test accuracy as recorded, to the image."""

    def add_arguments(self, p):
        p.add_argument("study", nargs="?", help="a study under results/")
        p.add_argument("--trial", default="best", help="trial number or 'best' (default)")
        p.add_argument("--verify", metavar="NAME",
                       help="export results/verify/NAME/ (a `nas verify` run) instead of a trial")
        p.add_argument("--seed", type=int, default=None,
                       help="with --verify: which seed's weights (default: the first run)")
        p.add_argument("--out", required=True, help="folder to create")
        p.add_argument("--force", action="store_true", help="overwrite an existing folder")
        p.add_argument("--results-dir", default="results")
        p.add_argument("--data-dir", default=None, help="MNIST folder for the check")

    def take_action(self, args) -> int:
        from pathlib import Path

        from nas.export import export_trial, export_verified

        if bool(args.study) == bool(args.verify):
            raise NasError("give either a STUDY or --verify NAME")
        if args.verify:
            r = export_verified(Path(args.results_dir), args.verify, args.seed, Path(args.out),
                                args.force, args.data_dir)
            what = (f"verify run {r['verify']} seed {r['seed']} ({r['n_params']:,} params, "
                    f"final test {r['recorded_test_acc']:.2f}%)")
        else:
            r = export_trial(Path(args.results_dir), args.study, args.trial, Path(args.out),
                             args.force, args.data_dir)
            what = f"trial {r['trial']} ({r['n_params']:,} params, val {r['val_acc']:.2f}%)"
        print(f"exported {what} to {args.out}/\nchecked in a fresh process: "
              f"{r['exported_n_params']:,} params, {r['exported_correct']}/{r['n_test']} test "
              f"images correct (recorded {r['recorded_correct']}/{r['n_test']}): identical")
        return 0


EXTRA_COMMANDS: dict[str, type] = {"search": Search, "spaces": Spaces, "report": Report,
                                   "export": Export}
