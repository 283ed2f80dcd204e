"""Shared test settings: Qt offscreen, real weights location, tiny encoders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.paths import ASTRONAUT, REAL_WEIGHT_FILES, real_models_dir

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def never_the_users_settings(tmp_path_factory):
    """The app's settings (``QSettings("Cloak", "Cloak")``, native and INI) live in a temporary
    folder in every test, so no test reads or changes the settings of the person running it."""
    from PySide6.QtCore import QSettings

    folder = str(tmp_path_factory.mktemp("qt-settings"))
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, folder)


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The real weights; a missing file FAILS the test (CI must not silently skip)."""
    d = real_models_dir()
    missing = [str(d / f) for f in REAL_WEIGHT_FILES if not (d / f).is_file()]
    if missing:
        pytest.fail(f"real weights missing (set CLOAK_MODELS_DIR): {', '.join(missing)}")
    return d


@pytest.fixture(scope="session")
def taef2(models_dir: Path):
    from cloak.models import load_encoder

    return load_encoder("taef2", models_dir=models_dir, offline=True)


@pytest.fixture(scope="session")
def vaelight(models_dir: Path):
    from cloak.models import load_encoder

    return load_encoder("vaelight", models_dir=models_dir, offline=True)


@pytest.fixture
def tiny_encoder():
    """A randomly initialised TAEF2-layout encoder+decoder, seeded (fast, no weights)."""
    from cloak.models import build_random

    return build_random("taef2", seed=0)


@pytest.fixture(scope="session")
def astronaut_crop():
    """A 96x96 face crop of the real astronaut photo as a (1, 3, H, W) tensor."""
    import numpy as np
    from PIL import Image

    from cloak.tensors import to_tensor

    with Image.open(ASTRONAUT) as im:
        arr = np.asarray(im.convert("RGB").crop((176, 48, 272, 144)), dtype=np.float32) / 255
    return to_tensor(arr)
