"""CLI commands over studies: search, spaces, report, export (see nas/cli.py for the layout)."""

from __future__ import annotations

import argparse
import sys

from nas.cli_common import _add_data_args, _epochs_note, _positive
from nas.errors import NasError

SEARCH_HELP = """\
Search architectures and training recipes under a parameter budget, then name a winner.

0. The space: by default (--space auto) the general one, or the separable one under 5,000
   parameters, where its depthwise-separable convs won (nas spaces lists them all).
1. Every candidate's parameter count is computed from its spec before anything is built: at or
   over --max-params it is rejected in milliseconds, and TPE learns the edge from Optuna's
   per-trial constraint.
2. Cheap rungs (--rungs, default 2x0.25,3x0.5: 2 epochs on a quarter of the images, then 3 on
   half): one candidate in 3 goes on from the first and one in 5 from the last (--eta), and
   the survivors train --epochs in full.
3. The seed race: the top --race-top candidates by validation train on --race-seeds fresh
   seeds; the best mean validation accuracy names the winner, written into study.json.
   Selection never sees the test set, which the search does not even evaluate unless
   --record-test. Then: nas verify STUDY --trial winner.

--timeout covers all of it, the race included; so does --budget-fce, counted in full-candidate
equivalents rather than seconds, so that one search costs the same on any machine (the race
takes --race-top x --race-seeds of them). Running the same --study again resumes it (with
the same settings; the study refuses others). Ctrl-C stops after the current epoch and keeps
every finished trial; a second Ctrl-C stops at once.

--objectives accuracy,params runs a multi-objective (Pareto) search: no pruning, no race.
"""


class Search:
    help = "search architectures and training recipes under a budget (params, MACs, bytes)"
    __doc__ = SEARCH_HELP

    def add_arguments(self, p):
        p.add_argument("--study", default=None, help="study name (default: SPACE-BUDGET, e.g. "
                       "general-8k, or 'quick' with --quick); files under results/<study>/")
        from nas.config import DEFAULT_RACE_SPLIT
        from nas.spaces import AUTO_ABOUT, DEFAULT_SPACE

        p.add_argument("--space", default=DEFAULT_SPACE,
                       help="a space name (see `nas spaces`) or a path to a .py file "
                            f"(default: {DEFAULT_SPACE}: {AUTO_ABOUT})")
        p.add_argument("--max-params", type=int, default=8000,
                       help="strict budget: n_params < this (default 8000; 0: no parameter "
                            "budget, when another is given)")
        p.add_argument("--max-macs", type=int, default=None,
                       help="strict budget on multiply-accumulates per image")
        p.add_argument("--max-peak-kb", type=float, default=None,
                       help="strict budget on the deployed net's peak int8 activation memory, "
                            "KB (1 KB = 1,000 bytes; see nas summary)")
        p.add_argument("--max-int8-kb", type=float, default=None,
                       help="strict budget on the model's size once int8-quantized, KB")
        p.add_argument("--epochs", type=_positive("--epochs"), default=15,
                       help="epochs of a full-length training (default 15)")
        p.add_argument("--trials", type=int, default=None,
                       help="candidates to train, budget rejections not counted (default: "
                            "as many as --timeout or --budget-fce allows, or 60 without "
                            "either)")
        p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                       help="wall time for the whole search, seed race included")
        p.add_argument("--budget-fce", type=float, default=None, metavar="FCE",
                       help="compute for the whole search, seed race included, in full-"
                            "candidate equivalents (one: a full-length training on the search's "
                            "training images); the same search costs the same on any machine. "
                            "With --timeout, whichever ends first")
        p.add_argument("--seed", type=int, default=0,
                       help="sampler seed (default 0); worker 0 draws with it, each other "
                            "worker with a seed derived from it and its number")
        p.add_argument("--objectives", default="accuracy",
                       help="accuracy (default), or accuracy,params / accuracy,macs for a "
                            "Pareto search")
        p.add_argument("--pruner", default="rungs",
                       help="rungs (default) | median | hyperband | none")
        p.add_argument("--rungs", default=None, metavar="ExF,...",
                       help="cheap rungs as EPOCHSxFRACTION of the training images, cheapest "
                            "first (default 2x0.25,3x0.5)")
        p.add_argument("--eta", default=None, metavar="ETA[,ETA...]",
                       help="successive halving: 1 in ETA goes on from each rung, or one per "
                            "rung (default: 3, and 5 at the last of two or more rungs, e.g. "
                            "3,5; a resumed study keeps its own)")
        p.add_argument("--race-top", type=int, default=3, metavar="K",
                       help="candidates in the seed race (default 3; 0: no race)")
        p.add_argument("--race-seeds", type=int, default=2, metavar="S",
                       help="fresh seeds per raced candidate (default 2)")
        p.add_argument("--race-split", choices=("search", "fresh"), default=None,
                       help="the race's validation images: search, the search's own split, "
                            "or fresh, a different block of the training images for each race "
                            f"seed, none of which chose the finalists (default "
                            f"{DEFAULT_RACE_SPLIT}; a resumed study keeps its own)")
        p.add_argument("--record-test", action="store_true",
                       help="also evaluate the test set each epoch, for reports (it never "
                            "selects); recorded in study.json")
        p.add_argument("--prune-from", type=int, default=None, metavar="EPOCH",
                       help="median pruner: first epoch it compares at (default: a third)")
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
        p.add_argument("--scale-to-fit", action=argparse.BooleanOptionalAction, default=True,
                       help="a drawn net over the budget is trained with its widths scaled "
                            "down until it fits (default); --no-scale-to-fit rejects it")
        p.add_argument("--startup-trials", type=int, default=10,
                       help="TPE's random trials before it models the space (default 10)")
        p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                       help="bf16 autocast for every candidate on or off (default: auto, on "
                            "where the hardware has native bf16; recorded in each recipe)")
        p.add_argument("--allow-changed", action="store_true",
                       help="resume a study even though these settings differ from its own")
        p.add_argument("--no-progress", action="store_true",
                       help="no bar: a line per epoch and per candidate (for log files)")
        _add_data_args(p)

    def take_action(self, args) -> int:
        import dataclasses

        from nas.config import DEFAULT_RUNGS, SearchConfig, parse_eta, parse_rungs
        from nas.search import run_search

        objectives = tuple(o.strip() for o in args.objectives.split(",") if o.strip())
        if objectives not in (("accuracy",), ("accuracy", "params"), ("accuracy", "macs")):
            raise NasError(f"--objectives must be accuracy, accuracy,params or accuracy,macs, "
                           f"got {args.objectives!r}")
        max_params = args.max_params or None
        if max_params:
            budget = f"{max_params // 1000}k" if max_params % 1000 == 0 else str(max_params)
        else:
            budget = "-".join(f"{k}{v:g}" for k, v in (
                ("macs", args.max_macs), ("peak", args.max_peak_kb), ("int8", args.max_int8_kb))
                if v is not None) or "nobudget"
        from nas.spaces import resolve_space

        space_name = resolve_space(args.space, max_params).split("/")[-1].removesuffix(".py")
        bounded = args.timeout or args.budget_fce  # either ends the search without --trials
        trials = args.trials if args.trials is not None else (1000 if bounded else 60)
        cfg = SearchConfig(
            study=args.study or ("quick" if args.quick else f"{space_name}-{budget}"),
            space=args.space, dataset=args.dataset or "mnist", max_params=max_params,
            max_macs=args.max_macs, max_peak_kb=args.max_peak_kb, max_int8_kb=args.max_int8_kb,
            epochs=args.epochs,
            trials=trials, timeout_s=args.timeout, budget_fce=args.budget_fce, seed=args.seed,
            objectives=objectives,
            pruner=args.pruner, sampler=args.sampler, val_size=args.val_size,
            rungs=parse_rungs(args.rungs) if args.rungs is not None else DEFAULT_RUNGS,
            eta=parse_eta(args.eta) if args.eta is not None else None,
            race_top=args.race_top, race_seeds=args.race_seeds, race_split=args.race_split,
            record_test=args.record_test,
            enqueue=tuple(e for e in args.enqueue.split(",") if e), workers=args.workers,
            storage=args.storage, device=args.device, data_dir=args.data_dir,
            results_dir=args.results_dir, max_rejections=args.max_rejections,
            progress=not args.no_progress, train_limit=args.train_limit,
            eval_limit=args.eval_limit, bf16=args.bf16, allow_changed=args.allow_changed,
            startup_trials=args.startup_trials, prune_from=args.prune_from,
            scale_to_fit=args.scale_to_fit,
            command="nas " + " ".join(sys.argv[1:]),
        )
        if args.quick:
            quick = dict(train_limit=5000, eval_limit=2000, epochs=3, val_size=2000,
                         rungs=parse_rungs(args.rungs or "1x0.5"), race_top=2, race_seeds=1)
            if args.trials is None:
                quick["trials"] = 6
            cfg = dataclasses.replace(cfg, **quick)
        _epochs_note(cfg.epochs)
        outcome = run_search(cfg)
        return 130 if outcome.stopped == "interrupted" else 0


class Spaces:
    help = "list the built-in search spaces"

    def add_arguments(self, p):
        pass

    def take_action(self, args) -> int:
        from nas.spaces import AUTO_ABOUT, DEFAULT_SPACE, get_space, list_spaces

        print(f"{DEFAULT_SPACE:13s} the default: {AUTO_ABOUT}")
        for name in list_spaces():
            print(f"{name:13s} {get_space(name).about}")
        return 0


class Report:
    help = "write results/<study>/report.html: Pareto plot, history, importances, curves"

    def add_arguments(self, p):
        p.add_argument("study", help="a study under results/")
        p.add_argument("--x", default="params", choices=["params", "macs", "peak", "int8"],
                       help="the Pareto plots' x-axis: parameters (default), MACs, peak int8 "
                            "activation bytes, or int8 model bytes")
        p.add_argument("--results-dir", default="results")

    def take_action(self, args) -> int:
        import json
        from pathlib import Path

        from nas.study_report import race_summary, write_report
        from nas.studyio import cost_text, load_study, search_cost, study_dir

        study = load_study(args.results_dir, args.study)
        meta = json.loads((study_dir(args.results_dir, args.study) / "study.json").read_text())
        budget = {"macs": meta.get("max_macs"),
                  "peak": (meta.get("max_peak_kb") or 0) * 1000 or None,
                  "int8": (meta.get("max_int8_kb") or 0) * 1000 or None}.get(args.x)
        path = write_report(study, args.results_dir, meta.get("max_params", 8000), args.x,
                            budget)
        cost = search_cost(study, study_dir(args.results_dir, args.study) / "study.json")
        print(f"report: {path}\ntrials: {Path(path).with_name('trials.csv')} "
              f"and trials.parquet\ncost: {cost_text(cost)}")
        if race := race_summary(meta):
            print(race)
        return 0


class Export:
    help = "export a trial or a verified run as standalone PyTorch code (model.py) with weights"
    __doc__ = """Export a study's trial, or one seed of a `nas verify` run, as a standalone
model.py (torch only), weights.pt (a state_dict), spec.json, train_config.json and preset.json.
For a trial, 'best' follows the study's selection rule: the highest final-epoch validation
accuracy (ties: fewer parameters); its weights were trained without the validation images.
--verify NAME takes results/verify/NAME/ instead: weights trained on the whole training split, seed
0 (or --seed); the test set never selects. The export is checked in a fresh process: same
parameter count and the same test accuracy as recorded, to the image."""

    def add_arguments(self, p):
        p.add_argument("study", nargs="?", help="a study under results/")
        p.add_argument("--trial", default="auto",
                       help="winner, best, a number, or auto (default: the seed race's winner "
                            "if it ran, else the best by validation)")
        p.add_argument("--verify", metavar="NAME",
                       help="export results/verify/NAME/ (a `nas verify` run) instead of a trial")
        p.add_argument("--seed", type=int, default=None,
                       help="with --verify: which seed's weights (default: the first run)")
        p.add_argument("--out", required=True, help="folder to create")
        p.add_argument("--force", action="store_true", help="overwrite an existing folder")
        p.add_argument("--onnx", action="store_true",
                       help="also model.onnx (uint8 images in, BN folded, normalization inside), "
                            "checked with ONNX Runtime on the test split ([deploy] extra)")
        p.add_argument("--int8", action="store_true",
                       help="also model.int8.onnx: ONNX Runtime's static quantization, "
                            "calibrated on 1,000 training images (percentile ranges); "
                            "implies --onnx")
        p.add_argument("--results-dir", default="results")
        p.add_argument("--dataset", default=None,
                       help="the data for the check and for model.py's default (default: the "
                            "study's or verify run's own; give it when that data moved, e.g. "
                            "npz:NEW/PATH)")
        p.add_argument("--data-dir", default=None,
                       help="folder holding the IDX files (as for nas train)")

    def take_action(self, args) -> int:
        from pathlib import Path

        from nas.export import export_trial, export_verified

        if bool(args.study) == bool(args.verify):
            raise NasError("give either a STUDY or --verify NAME")
        if args.verify:
            r = export_verified(Path(args.results_dir), args.verify, args.seed, Path(args.out),
                                args.force, args.data_dir, args.onnx, args.int8,
                                args.dataset)
            what = (f"verify run {r['verify']} seed {r['seed']} ({r['n_params']:,} params, "
                    f"final test {r['recorded_test_acc']:.2f}%)")
        else:
            r = export_trial(Path(args.results_dir), args.study, args.trial, Path(args.out),
                             args.force, args.data_dir, args.onnx, args.int8, args.dataset)
            what = f"trial {r['trial']} ({r['n_params']:,} params, val {r['val_acc']:.2f}%)"
        print(f"exported {what} to {Path(args.out)}/\nchecked in a fresh process: "
              f"{r['exported_n_params']:,} params, {r['exported_correct']}/{r['n_test']} test "
              f"images correct (recorded {r['recorded_correct']}/{r['n_test']}): identical")
        d = r.get("deploy")
        if d:
            print(f"model.onnx: {d['onnx_file_bytes']:,} bytes, {d['onnx_differ_from_torch']} "
                  f"of {d['n_test']:,} test predictions differ from PyTorch's; batch-1 latency "
                  f"{d['latency_ms_batch1']['onnxruntime']:.3f} ms (PyTorch eager "
                  f"{d['latency_ms_batch1']['torch_over_ort']:.1f}x that)")
            if "int8_acc" in d:
                print(f"model.int8.onnx: {d['int8_file_bytes']:,} bytes "
                      f"({d['int8_weight_bytes']:,} of tensors), test {d['int8_acc']:.2f}% "
                      f"against fp32 {d['onnx_acc']:.2f}%")
        return 0


class Archive:
    help = "compact a finished study for committing: gzipped read-only journal, fewer weights"
    __doc__ = """Compact a finished study so that it can be committed: the journal is gzipped
(about 20x smaller; report, export and verify read it as before, but no search can add to it),
and only the weights that are likely to be exported again stay: the race's winner, a
multi-objective study's Pareto front, and the --keep-weights best by validation. Any other
trial can be trained again with nas verify STUDY --trial N.
--into DIR moves the study to DIR/STUDY first (with results/STUDY.log, bench/prove.sh's log,
gzipped, as search.log.gz), so that the same search command starts a new study instead of
resuming it; afterwards pass --results-dir DIR to the other commands."""

    def add_arguments(self, p):
        p.add_argument("study", help="a finished study under --results-dir")
        p.add_argument("--into", metavar="DIR", default=None,
                       help="move it to DIR/STUDY first (e.g. results/cpu-2026-11-25)")
        p.add_argument("--keep-weights", type=int, default=1, metavar="N",
                       help="keep the weights of the N best trials by validation, besides the "
                            "race's winner (default 1)")
        p.add_argument("--results-dir", default="results")

    def take_action(self, args) -> int:
        from pathlib import Path

        from nas.archive import archive_study

        r = archive_study(Path(args.results_dir), args.study,
                          Path(args.into) if args.into else None, args.keep_weights)
        torn = " (a torn last record dropped)" if r["torn"] else ""
        journal = (f"journal.log.gz of {r['journal_records']:,} records{torn}"
                   if r["journal_records"] else "journal gzipped already")  # archived before
        print(f"archived {r['study']} in {r['path']}/: {r['bytes_before'] / 1e6:.2f} MB -> "
              f"{r['bytes_after'] / 1e6:.2f} MB; {journal}; weights kept for trials "
              f"{r['weights_kept']}, {r['weights_removed']} removed")
        return 0


class Dashboard:
    help = "open Optuna's web dashboard on a study, live while it runs ([dashboard] extra)"
    __doc__ = """Serve optuna-dashboard on a study's storage: its journal file (also while a
search is writing it, and an archived journal.log.gz), or the RDB URL it was run with. The
dashboard's history, parallel-coordinate, importance and per-trial views complement
`nas report`'s page. Needs `pip install -e '.[dashboard]'` (make installs it)."""

    def add_arguments(self, p):
        p.add_argument("study", help="a study under --results-dir")
        p.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; 0.0.0.0 for others)")
        p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
        p.add_argument("--results-dir", default="results")

    def take_action(self, args) -> int:
        from nas.studyio import load_study, study_storage

        try:
            import optuna_dashboard
        except ImportError:
            raise NasError("optuna-dashboard is not installed: pip install -e '.[dashboard]' "
                           "(or pip install optuna-dashboard)") from None
        if not 0 < args.port < 65536:
            raise NasError(f"--port must be in 1..65535, got {args.port}")
        storage = study_storage(args.results_dir, args.study)
        load_study(args.results_dir, args.study)  # an unknown name: one line, not a server
        print(f"optuna-dashboard on study {args.study!r}: http://{args.host}:{args.port}/ "
              "(Ctrl-C stops it)", flush=True)
        # A server with nothing to save: SIGTERM ends it at once. Turned into Ctrl-C (nas.cli),
        # it is lost when it lands inside a request, whose errors wsgiref logs and swallows.
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        optuna_dashboard.run_server(storage, host=args.host, port=args.port)
        return 0


SEARCH_COMMANDS: dict[str, type] = {"search": Search, "spaces": Spaces, "report": Report,
                                   "export": Export, "archive": Archive,
                                   "dashboard": Dashboard}
