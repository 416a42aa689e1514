"""What the CLI modules share: argument groups and small parsers (no torch, no Optuna)."""

from __future__ import annotations

import argparse
import os
import sys

from nas.errors import NasError

EPILOG = ("Data: --dataset (default mnist), read from --data-dir or NAS_DATA_DIR (for mnist a "
          "folder with MNIST/raw/*.gz). Results: ./results.")


def _add_data_args(p: argparse.ArgumentParser, val: bool = False) -> None:
    p.add_argument("--dataset", default=None,
                   help="mnist (default), fashion-mnist, npz:PATH or folder:PATH (a study's "
                        "own for `nas verify STUDY`)")
    p.add_argument("--data-dir", default=None,
                   help="folder holding the IDX files (default: $NAS_DATA_DIR for mnist, "
                        "/usr/share/datasets/fashion-mnist for fashion-mnist)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    p.add_argument("--results-dir", default=os.environ.get("NAS_RESULTS_DIR", "results"),
                   help="where runs write their files (default: results)")


def _parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise NasError(f"--seeds takes comma-separated integers, got {text!r}") from None
    if not seeds:
        raise NasError("--seeds is empty")
    bad = [s for s in seeds if not 0 <= s < 2**32]
    if bad:
        raise NasError(f"--seeds must be in 0..2**32-1 (NumPy's and Optuna's range), got {bad[0]}")
    if len(set(seeds)) != len(seeds):
        raise NasError(f"--seeds repeats a seed: {text} (the same seed trains the same net)")
    return seeds


def _positive(name: str):
    def check(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {v}")
        return v

    return check


def _epochs_note(epochs: int) -> None:
    if epochs > 15:
        print(f"warning: {epochs} epochs breaks the 15-epoch target", file=sys.stderr)


