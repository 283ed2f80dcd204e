"""The banded lift equals the one-shot bilinear lift, and adds in place within budget."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cloak.staging import lift
from cloak.tiling import iter_bands, lift_add_, lift_banded


def _delta(h: int, w: int, eps: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(1, 3, h, w, generator=g) * 2 - 1) * eps


@pytest.mark.parametrize(
    ("work", "full", "band"),
    [
        ((12, 16), (37, 41), 5),  # odd scale, bands that do not divide the height
        ((16, 12), (64, 48), 64),  # exact 4x, one band
        ((10, 10), (10, 10), 3),  # same size: a copy
        ((9, 20), (31, 20), 7),  # only the height changes
        ((20, 9), (20, 31), 4),  # only the width changes
        ((24, 32), (17, 23), 6),  # downscale (not used by protect, still the same rule)
    ],
)
def test_banded_equals_interpolate(work, full, band):
    eps = 8 / 255
    d = _delta(*work, eps=eps)
    ref = F.interpolate(d, size=full, mode="bilinear", align_corners=False).clamp(-eps, eps)
    got = lift_banded(d, full, eps, band_rows=band)
    assert got.shape == ref.shape
    assert float((got - ref).abs().max()) <= 1e-6
    assert float((got - lift(d, full, eps)).abs().max()) <= 1e-6


def test_lift_add_in_place_matches_untiled():
    eps = 6 / 255
    g = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, 53, 47, generator=g)
    d = _delta(20, 18, eps, seed=2)
    expected = (image + lift(d, (53, 47), eps)).clamp(0, 1)
    out = image.clone()
    ptr = out.data_ptr()
    result = lift_add_(out, d, eps, band_rows=8)
    assert result.data_ptr() == ptr  # no full-size copy
    assert float((result - expected).abs().max()) <= 1e-6
    assert float((result - image).abs().max()) <= eps + 1e-6
    assert float(result.min()) >= 0.0 and float(result.max()) <= 1.0


def test_bands_cover_rows_once():
    assert list(iter_bands(10, 4)) == [(0, 4), (4, 8), (8, 10)]
    assert list(iter_bands(4, 4)) == [(0, 4)]
    with pytest.raises(ValueError):
        list(iter_bands(4, 0))


def test_lift_add_rejects_mismatched_channels():
    with pytest.raises(ValueError, match="differ"):
        lift_add_(torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 4, 4), 0.1)


def test_band_differences_match_psnr_and_linf():
    from cloak.metrics import linf_255, psnr
    from cloak.tiling import band_differences

    g = torch.Generator().manual_seed(3)
    a = torch.rand(1, 3, 517, 300, generator=g)
    b = (a + 0.02 * torch.randn(1, 3, 517, 300, generator=g)).clamp(0, 1)
    mse, largest = band_differences(a, b, band_rows=64)
    assert abs(10 * math.log10(1 / mse) - psnr(a, b)) < 1e-4
    assert abs(largest * 255 - linf_255(a, b)) < 1e-4
    assert band_differences(a, a) == (0.0, 0.0)


def test_heatmap_by_bands_equals_the_full_size_formula() -> None:
    """The change map is computed in row bands (no full-size 3-channel temporaries); the heat
    image equals the one-pass formula, over a height that is not a multiple of the band."""
    from cloak.compare import change_map, heatmap
    from cloak.tiling import BAND_ROWS

    torch.manual_seed(0)
    a = torch.rand(1, 3, BAND_ROWS * 2 + 37, 50)
    b = (a + (torch.rand_like(a) - 0.5) * 0.1).clamp(0, 1)
    d = ((b - a).abs().amax(dim=1, keepdim=True) * 10.0).clamp(0, 1)
    expected = torch.cat([(d * 3).clamp(0, 1), (d * 3 - 1).clamp(0, 1), (d * 3 - 2).clamp(0, 1)], 1)
    assert torch.equal(change_map(a, b, 10.0), d)
    assert torch.equal(heatmap(a, b, 10.0), expected)
    with pytest.raises(ValueError, match="differ in shape"):
        change_map(a, b[..., :-1, :], 10.0)
