"""The shared pieces of ``cloak evaluate``'s report: its rows, measures and small pictures.

Used by :mod:`cloak.evaluate` (which fills them) and :mod:`cloak.evaluate_plots` (which draws
them), so neither imports the other's internals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from cloak.metrics import PLATFORMS, Report

SCENARIOS: tuple[str, ...] = ("direct", *PLATFORMS)
"""The scenarios every encoder is scored in: the photo as saved, then each platform re-encode."""


@dataclass
class Row:
    """One photo protected by one method, with all its measures."""

    photo: str
    method: str
    seconds: float
    report: Report
    face_db: float | None = None
    """Damage on the largest face alone (first attacked encoder, the AI view's size)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "photo": self.photo,
            "method": self.method,
            "seconds": self.seconds,
            "face_db": self.face_db,
            **self.report.as_dict(),
        }


@dataclass
class Evaluation:
    """Everything ``cloak evaluate`` found.

    Attributes:
        rows: One per photo and method.
        methods: Preset names in order, then the reference.
        attacked: Names of the encoders attacked.
        holdout: Names of the encoders only measured.
        failed: ``{photo: message}`` for photos that could not be evaluated.
        configs: ``{method: description}``.
        files: Files written, relative to the report folder.
        sizes: The attacker sizes (long side, px) every measure was taken at.
    """

    rows: list[Row] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    attacked: list[str] = field(default_factory=list)
    holdout: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    configs: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    def rows_of(self, method: str) -> list[Row]:
        return [r for r in self.rows if r.method == method]


def score(
    report: Report, encoder: str, scenario: str, what: str, size: int | None = None
) -> float | None:
    """Field ``what`` of ``encoder``'s score in ``scenario`` at attacker ``size`` (None: the
    first size measured), or None when it has none."""
    for s in report.scores:
        if s.encoder == encoder and s.scenario == scenario and size in (None, s.size):
            value = getattr(s, what)
            return None if value is None else float(value)
    return None


def mean(values: Sequence[float | None]) -> float | None:
    """The mean of the finite values, or None when there is none."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else None


def median(values: Sequence[float | None]) -> float | None:
    """The median of the finite values, or None when there is none."""
    vals = sorted(v for v in values if v is not None and math.isfinite(v))
    if not vals:
        return None
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2


def worst(values: Sequence[float | None], higher_is_better: bool = True) -> float | None:
    """The worst finite value (the lowest, or the highest when lower is better)."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return None
    return min(vals) if higher_is_better else max(vals)


def fmt(v: float | None, digits: int = 2, suffix: str = "") -> str:
    """``v`` with ``digits`` decimals and ``suffix``, or ``n/a``."""
    return "n/a" if v is None else f"{v:.{digits}f}{suffix}"


@dataclass
class Views:
    """Small pictures kept per photo for the grids (never full-size copies)."""

    original: torch.Tensor
    protected: dict[str, torch.Tensor] = field(default_factory=dict)
    ai_original: dict[str, torch.Tensor] = field(default_factory=dict)
    ai_protected: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
