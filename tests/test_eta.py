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


def test_fits_the_size_exponent_and_skips_the_warm_up_photo():
    eta = EtaEstimator()
    eta.observe(4_000_000, 90.0)  # first photo pays one-off costs
    for px in (2_000_000, 4_000_000, 8_000_000, 3_000_000):
        eta.observe(px, 2e-3 * px**0.5)
    c, k = eta.model()
    assert k == pytest.approx(0.5, rel=1e-6) and c == pytest.approx(2e-3, rel=1e-6)
    assert eta.predict(16_000_000) == pytest.approx(8.0, rel=1e-6)
    left = eta.remaining([1_000_000], current_pixels=4_000_000, current_fraction=0.5)
    assert left == pytest.approx(2.0 + 2.0, rel=1e-6)


def test_exponent_stays_between_constant_and_proportional():
    slow_small = EtaEstimator(skip_first=False)
    for px, s in ((1_000_000, 20.0), (2_000_000, 10.0), (4_000_000, 5.0)):
        slow_small.observe(px, s)
    assert slow_small.model()[1] == 0.0  # larger photos never predicted faster
    steep = EtaEstimator(skip_first=False)
    for px in (1_000_000, 2_000_000, 4_000_000):
        steep.observe(px, 1e-12 * px**2)
    assert steep.model()[1] == 1.0


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


def test_replays_a_measured_queue_within_a_fifth():
    """Photo times measured in the app on the ten portraits (8 still to do after 2 done; 4
    steps at 320 px, shared 2-core CPU): from the second photo on, the ETA is within 20 % of
    the real time left except on the last photo, where one photo's noise is the whole of it."""
    px = [1_458_812, 3_086_336, 2_430_000, 12_633_856, 4_800_000, 1_688_000, 2_791_424, 362_400]
    times = [7.8, 8.9, 8.9, 14.0, 8.9, 7.9, 8.7, 4.3]
    eta = EtaEstimator()
    ratios = []
    for i in range(len(px)):
        left = eta.remaining(px[i:])
        if left is not None:
            ratios.append(left / sum(times[i:]))
        eta.observe(px[i], times[i])
    assert all(0.8 <= r <= 1.2 for r in ratios[1:-1]), ratios
    assert all(0.5 <= r <= 1.5 for r in ratios), ratios
