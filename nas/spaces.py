"""Search spaces: registered by name (the files in ``search_spaces/``), or a user's .py file.

A space turns an Optuna trial into ``(ArchSpec, TrainConfig)``: it samples and never builds a
module. A built-in space registers itself where it is defined::

    SPACE = register_space("general", sample, about="...", known=KNOWN, version=1)

A user's file only needs ``sample(trial)``; ``ABOUT`` (one line) and ``KNOWN`` (name -> params
dict for ``study.enqueue_trial``, so known designs are tried first) are optional.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nas.errors import NasError
from nas.registry import Registry

DEFAULT_SPACE = "auto"
# `auto` gives a budget under this many parameters the separable space, any other the general
# one. Searches of two hours in each (docs/experiments.md): the separable space won by 0.39 at
# 2k and 0.10 at 4k on MNIST, and lost by 0.70 at 8k on Fashion-MNIST.
SEPARABLE_BELOW = 5000
AUTO_ABOUT = f"separable under {SEPARABLE_BELOW:,} parameters, general otherwise"


def resolve_space(name: str, max_params: int | None) -> str:
    """``auto``: 'separable' under SEPARABLE_BELOW parameters, else 'general' (also with no
    parameter budget); any other name or path as it is."""
    if name != "auto":
        return name
    return "separable" if max_params is not None and max_params < SEPARABLE_BELOW else "general"


@dataclass(frozen=True)
class Space:
    name: str
    sample: Callable  # sample(trial) -> (ArchSpec, TrainConfig)
    about: str = ""
    known: dict = field(default_factory=dict)  # name -> params, for --enqueue
    version: int = 1  # bump when the same params would give other candidates

    def fingerprint(self) -> str:
        """A hash of the module that defines the space and of the space modules it draws on
        (``separable`` samples with ``general``'s functions): a resumed study checks it."""
        module = inspect.getmodule(self.sample)
        mods = _space_modules(module) if module is not None else []
        text = "".join(_source(m) for m in mods)  # one module: its source, as before
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _source(module) -> str:
    try:
        return inspect.getsource(module)
    except (OSError, TypeError):
        return ""


def _space_modules(module) -> list:
    """``module``, then (sorted by name) every module it uses, directly or through another,
    from its own top-level package or from ``search_spaces``: whatever it imports from there
    shapes its candidates. Anything else (nas, torch) is the tool's code, not the space's."""
    roots = {module.__name__.split(".")[0], "search_spaces"}
    found = {module.__name__: module}
    todo = [module]
    while todo:
        for value in list(vars(todo.pop()).values()):
            if inspect.ismodule(value):
                dep = value
            elif inspect.isfunction(value) or inspect.isclass(value):
                dep = inspect.getmodule(value)
            else:
                continue
            if dep is not None and dep.__name__ not in found \
                    and dep.__name__.split(".")[0] in roots:
                found[dep.__name__] = dep
                todo.append(dep)
    return [module] + [found[k] for k in sorted(found) if k != module.__name__]


SPACES: Registry[Space] = Registry("search space", packages=("search_spaces",))


def register_space(name: str, sample: Callable, *, about: str = "", known: dict | None = None,
                   version: int = 1) -> Space:
    return SPACES.add(name, Space(name, sample, about, known or {}, version))


def list_spaces() -> list[str]:
    return SPACES.names()


def get_space(name_or_path: str) -> Space:
    if name_or_path == "auto":
        raise NasError("space 'auto' depends on the budget: resolve_space(name, max_params) "
                       "names the space")
    if name_or_path in SPACES:
        return SPACES.get(name_or_path)
    path = Path(name_or_path)
    if path.suffix != ".py":
        raise NasError(f"unknown search space {name_or_path!r} (valid: "
                       f"{', '.join(SPACES.names())}, or a path to a .py file)")
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
    return Space(str(path), module.sample, getattr(module, "ABOUT", ""),
                 getattr(module, "KNOWN", {}), getattr(module, "VERSION", 1))
