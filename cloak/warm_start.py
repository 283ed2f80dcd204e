"""The attack's warm start: a small universal pattern, tiled over the photo.

An attack from a random start spends its first steps finding directions that work on almost
every photo: the encoder's own weak spots, at the attacker's sizes. A pattern trained once
on other photos starts every photo there, so the steps that follow refine instead of search.

Each pattern is a (1, 3, 32, 32) array in [-1, 1] at the perturbation's own resolution (half
the 1024 px work size, so a 64 px period on the work image: a whole number of the encoders'
8 px latent cells at the attacker's 512, 768 and 1024 px). The attack starts from the pattern,
tiled from the photo's top-left corner and scaled by the photo's own budget map, then
projected like any step (:class:`cloak.projection.Projection`).

The patterns in ``cloak/patterns`` were trained here with ``python -m
benchmarks.train_warm_start`` on the four sample photos (none of them a portrait), with the
standard preset's own loss and transformations; what they do is in docs/attack-notes.md
(round 8).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from cloak.errors import ConfigError

PATTERN_FILES: dict[str, str] = {"taef2": "taef2.npy"}
"""Encoder registry name -> pattern file in ``cloak/patterns``."""

PERIOD = 32
"""The patterns' size, in pixels of the perturbation's own grid."""

TRAINED_FOR = (1024, 2)
"""(work size, param_scale) the patterns were trained at: the geometry that puts their cells on
the encoder's latent cells. An attack at another geometry starts randomly."""


PATTERN_DIR = Path(__file__).resolve().parent / "patterns"
"""Where the patterns are installed (package data, bundled with the app too)."""


@functools.cache
def _load(name: str) -> torch.Tensor:
    path = PATTERN_DIR / PATTERN_FILES[name]
    try:
        return read_pattern(path)
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"warm-start pattern {path} cannot be read ({e}); reinstall Cloak, or protect with "
            "a preset that does not start warm"
        ) from e


def read_pattern(path: Path) -> torch.Tensor:
    """The pattern in the ``.npy`` file ``path``, checked (:func:`check_pattern`).

    Raises:
        OSError, ValueError: The file cannot be read as an array.
        ConfigError: It is not a pattern.
    """
    arr = np.load(path, allow_pickle=False)
    return check_pattern(torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)), str(path))


def check_pattern(p: torch.Tensor, what: str) -> torch.Tensor:
    """Refuse anything but a finite (1, 3, n, n) pattern in [-1, 1]."""
    if p.dim() != 4 or p.shape[:2] != (1, 3) or p.shape[2] != p.shape[3] or p.shape[2] < 1:
        raise ConfigError(f"warm-start pattern {what}: shape {tuple(p.shape)}, not (1, 3, n, n)")
    if not bool(torch.isfinite(p).all()) or float(p.abs().max()) > 1.0:
        raise ConfigError(f"warm-start pattern {what}: values must be finite and in [-1, 1]")
    return p


def pattern_for(
    encoders: Sequence[str], work_size: int = TRAINED_FOR[0], param_scale: int = TRAINED_FOR[1]
) -> torch.Tensor | None:
    """The pattern of the first of ``encoders`` that has one, or None (a random start) when
    none has or the attack's geometry is not the one the patterns were trained at."""
    if (work_size, param_scale) != TRAINED_FOR:
        return None
    for name in encoders:
        if name in PATTERN_FILES:
            return _load(name)
    return None


def tiled(pattern: torch.Tensor, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """``pattern`` repeated from the top-left corner to cover ``(..., h, w)``, cropped to it."""
    h, w = int(shape[-2]), int(shape[-1])
    ph, pw = pattern.shape[-2:]
    reps = (-(-h // ph), -(-w // pw))
    return pattern.repeat(1, 1, *reps)[..., :h, :w]
