"""One small registry for what users pick by name (presets, search spaces), as timm's models.

Things register themselves with a decorator where they are defined; ``get`` raises a NasError
that lists the valid names. ``discover`` imports every module of a package once, so a new file
in ``search_spaces/`` is found without a hand-kept list.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from nas.errors import NasError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, packages: Iterable[str] = ()):
        self.kind = kind  # "preset", "search space": for error messages
        self.packages = tuple(packages)  # imported on first use, so their modules register
        self._items: dict[str, T] = {}
        self._discovered = False

    def add(self, name: str, item: T) -> T:
        if name in self._items and self._items[name] is not item:
            raise NasError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: ``@REGISTRY.register()`` keys the object by its ``__name__``."""

        def deco(obj: T) -> T:
            return self.add(name or obj.__name__, obj)

        return deco

    def discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        for pkg_name in self.packages:
            pkg = importlib.import_module(pkg_name)
            for mod in pkgutil.iter_modules(pkg.__path__):
                if not mod.name.startswith("_"):
                    importlib.import_module(f"{pkg_name}.{mod.name}")

    def names(self) -> list[str]:
        self.discover()
        return sorted(self._items)

    def get(self, name: str) -> T:
        self.discover()
        if name not in self._items:
            raise NasError(f"unknown {self.kind} {name!r} (valid: {', '.join(self.names())})")
        return self._items[name]

    def __contains__(self, name: str) -> bool:
        self.discover()
        return name in self._items
