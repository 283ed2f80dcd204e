"""Attack objectives: one module each, found and registered when this package is imported.

To add an objective, add a module here with one :class:`Objective` subclass decorated by
:func:`register`; :mod:`cloak.config` takes its list of names from :data:`REGISTRY`. Modules
whose names start with ``_`` hold shared helpers and are not scanned. (A frozen app bundle must
collect this package's submodules, e.g. PyInstaller's ``collect_submodules``.)
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from cloak.objectives.base import REGISTRY, Fixed, Objective, Setup, Step, register

if TYPE_CHECKING:
    from cloak.config import ProtectConfig

__all__ = ["REGISTRY", "Fixed", "Objective", "Setup", "Step", "make", "names", "register"]

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_") and _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")


def names() -> tuple[str, ...]:
    """Every registered objective's name."""
    return tuple(REGISTRY)


def make(config: ProtectConfig) -> Objective:
    """The objective ``config.objective`` names, built for ``config``."""
    return REGISTRY[config.objective](config)
