"""Search spaces: a registry of built-in spaces by name, or a user's Python file by path.

A space is a module with ``sample(trial) -> (ArchSpec, TrainConfig)``. It samples and never
builds a module. Optional: ``ABOUT`` (one line) and ``KNOWN`` (name -> params dict for
``study.enqueue_trial``, so known good designs are tried first).
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

from nas.errors import NasError

BUILTIN = ("mnist_8k", "mnist_8k_ref", "mnist_8k_oc", "mnist_5k_oc", "mnist_2k", "skeleton")


def list_spaces() -> list[str]:
    return list(BUILTIN)


def get_space(name_or_path: str) -> ModuleType:
    if name_or_path in BUILTIN:
        return importlib.import_module(f"search_spaces.{name_or_path}")
    path = Path(name_or_path)
    if path.suffix != ".py":
        raise NasError(
            f"unknown search space {name_or_path!r} (valid: {', '.join(BUILTIN)}, "
            "or a path to a .py file)"
        )
    if not path.is_file():
        raise NasError(f"search space file {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"nas_user_space_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # a user's file can raise anything
        raise NasError(f"search space {path} raised on import: {type(e).__name__}: {e}") from None
    if not callable(getattr(module, "sample", None)):
        raise NasError(f"search space {path} defines no sample(trial) function")
    return module
