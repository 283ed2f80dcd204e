"""Property tests: load -> save -> load keeps size, alpha and pixels (within quantisation)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from cloak.photo_io import SaveOptions, load_photo, save_photo

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def small_images(draw: st.DrawFn) -> Image.Image:
    mode = draw(st.sampled_from(["RGB", "RGBA", "L", "LA"]))
    height = draw(st.integers(1, 24))
    width = draw(st.integers(1, 24))
    channels = len(mode)
    shape = (height, width) if channels == 1 else (height, width, channels)
    pixels = draw(arrays(np.uint8, shape))
    return Image.fromarray(pixels, mode=mode) if channels > 1 else Image.fromarray(pixels)


@SETTINGS
@given(img=small_images(), delta=st.floats(-0.02, 0.02))
def test_png_roundtrip_exact(img: Image.Image, delta: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src.png"
        img.save(src)
        photo = load_photo(src)
        assert photo.size == img.size
        # Perturb, save, reload: the file holds exactly the rounded perturbed pixels.
        perturbed = np.clip(photo.rgb + np.float32(delta), 0, 1)
        out = load_photo(save_photo(photo, perturbed, Path(tmp) / "out.png"))
        assert out.size == img.size
        assert out.is_grayscale == photo.is_grayscale
        expected = perturbed.mean(axis=2, keepdims=True) if photo.is_grayscale else perturbed
        assert np.abs(out.rgb - expected).max() <= 0.5 / 255 + 1e-6
        if photo.alpha is None:
            assert out.alpha is None
        else:
            assert out.alpha is not None and np.array_equal(out.alpha, photo.alpha)
        # An unchanged photo comes back bit-identical.
        same = load_photo(save_photo(photo, photo.rgb, Path(tmp) / "same.png"))
        assert np.array_equal(same.rgb, photo.rgb)


@SETTINGS
@given(img=small_images(), quality=st.integers(1, 100))
def test_jpeg_roundtrip_keeps_size(img: Image.Image, quality: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src.png"
        img.save(src)
        photo = load_photo(src)
        options = SaveOptions(format="JPEG", jpeg_quality=quality)
        out = load_photo(save_photo(photo, photo.rgb, Path(tmp) / "out.jpg", options))
        assert out.size == photo.size
        assert out.alpha is None
        assert out.is_grayscale == photo.is_grayscale
        assert out.rgb.min() >= 0 and out.rgb.max() <= 1
