"""Where the shared material lives: photos and the real encoder weights."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
PHOTOS = SHARED / "photos"
ASTRONAUT = PHOTOS / "astronaut.png"
REAL_WEIGHT_FILES = (
    "taef2/taef2_encoder.pth",
    "taef2/taef2_decoder.pth",
    "vaelight/VAEencoder.onnx",
    "vaelight/VAEpreview.onnx",
)
"""The weight files the real-model tests need (CI checks them before running)."""


def real_models_dir() -> Path:
    """``$CLOAK_MODELS_DIR`` (relative to the repo root when relative) or ../shared/weights."""
    env = os.environ.get("CLOAK_MODELS_DIR")
    if not env:
        return SHARED / "weights"
    p = Path(env)
    return p if p.is_absolute() else REPO / p
