"""The batch ETA estimator on synthetic timings."""

from __future__ import annotations

import pytest

from cloak.eta import EtaEstimator, format_duration, photo_pixels, pixels_of


def test_none_before_the_first_photo():
    assert EtaEstimator().remaining([100, 100]) is None


def test_constant_cost_for_similar_photos():
    eta = EtaEstimator()
    for _ in range(4):
        eta.observe(12_000_000, 10.0)
    assert eta.remaining([12_000_000] * 6) == pytest.approx(60.0)


def test_fits_per_pixel_cost_and_skips_the_warm_up_photo():
    eta = EtaEstimator()
    eta.observe(4_000_000, 30.0)  # first photo pays one-off costs
    for px in (2_000_000, 4_000_000, 8_000_000, 3_000_000):
        eta.observe(px, 5.0 + 1e-6 * px)
    assert eta.predict(10_000_000) == pytest.approx(15.0, rel=1e-6)
    left = eta.remaining([1_000_000], current_pixels=2_000_000, current_fraction=0.5)
    assert left == pytest.approx(6.0 + 3.5, rel=1e-6)


def test_rejects_bad_samples():
    with pytest.raises(ValueError):
        EtaEstimator().observe(0, 1.0)


def test_pixels_from_headers(tmp_path):
    from PIL import Image

    Image.new("RGB", (30, 20)).save(tmp_path / "a.png")
    (tmp_path / "bad.jpg").write_text("no")
    assert photo_pixels(tmp_path / "a.png") == 600
    assert pixels_of([tmp_path / "a.png", tmp_path / "bad.jpg"]) == [600, 600]


def test_format_duration():
    assert format_duration(42.4) == "42 s"
    assert format_duration(185) == "3 min 05 s"
    assert format_duration(3720) == "1 h 02 min"
