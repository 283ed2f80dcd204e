"""Fuzz: damaged copies of real small images only ever raise PhotoError (or load)."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.photo_factory import mutate, seed_images

from cloak.errors import PhotoError
from cloak.photo_io import load_photo

SEEDS = seed_images()
# Small enough that a mutated size field can't make a slow decode pass the pixel limit.
FUZZ_MAX_PIXELS = 4_000_000


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(SEEDS)), seed=st.integers(0, 2**32 - 1))
def test_damaged_files_raise_only_photo_error(name: str, seed: int) -> None:
    data = mutate(SEEDS[name], random.Random(seed))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            photo = load_photo(path, max_pixels=FUZZ_MAX_PIXELS)
        except PhotoError as exc:
            assert exc.path == path
            assert str(exc).startswith(str(path))
            return
    assert photo.rgb.ndim == 3 and photo.rgb.shape[2] == 3
    assert np.isfinite(photo.rgb).all()
    assert photo.rgb.min() >= 0 and photo.rgb.max() <= 1
