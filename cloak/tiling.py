"""Lifting a work-resolution perturbation onto a huge photo, a band of rows at a time.

The attack runs at ~768 px; the photo may have 50 MP. Upsampling the perturbation with one
``F.interpolate`` call allocates a full-size float32 tensor (600 MB at 50 MP) and adding it to
the photo another one. Bilinear interpolation is separable, so the horizontal pass is done once
at the work height (small), and the vertical pass is done per band of output rows and added to
the photo in place: at most one band-sized temporary exists at any time.

The result equals ``F.interpolate(delta, size, mode="bilinear", align_corners=False)`` up to
float rounding (the same source-index rule as PyTorch's kernel).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

BAND_ROWS = 256
"""Output rows per band: 256 rows of a 8000-px-wide photo are ~25 MB of float32."""


def iter_bands(height: int, band_rows: int = BAND_ROWS) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` row ranges covering ``0..height`` in steps of ``band_rows``."""
    if band_rows < 1:
        raise ValueError(f"band_rows={band_rows} must be positive")
    for start in range(0, height, band_rows):
        yield start, min(height, start + band_rows)


def _source_rows(
    out_rows: torch.Tensor, in_size: int, out_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows ``y0``, ``y1`` and weight ``t`` of PyTorch's bilinear rule (align_corners=False)."""
    scale = in_size / out_size
    src = ((out_rows.double() + 0.5) * scale - 0.5).clamp_min(0.0)
    y0 = src.floor().long().clamp_max(in_size - 1)
    y1 = (y0 + 1).clamp_max(in_size - 1)
    t = (src - y0.double()).float()
    return y0, y1, t


def lift_bands(
    delta: torch.Tensor, size: tuple[int, int], eps: float, band_rows: int = BAND_ROWS
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield ``(start, stop, band)``: the lifted perturbation, clamped to ``eps``, band by band.

    Args:
        delta: (N, C, h, w) perturbation at the work resolution.
        size: Full size (H, W).
        eps: L-inf budget; the lifted values are clamped to ``[-eps, eps]``.
        band_rows: Output rows per band.
    """
    if delta.ndim != 4:
        raise ValueError(f"expected a (N, C, h, w) perturbation, got {tuple(delta.shape)}")
    height, width = size
    h = int(delta.shape[-2])
    # Horizontal pass at the work height; a vertical scale of 1 is an exact copy in PyTorch.
    wide = (
        delta
        if delta.shape[-1] == width
        else F.interpolate(delta, size=(h, width), mode="bilinear", align_corners=False)
    )
    for start, stop in iter_bands(height, band_rows):
        if h == height:
            band = wide[..., start:stop, :].clone()
        else:
            rows = torch.arange(start, stop, device=delta.device)
            y0, y1, t = _source_rows(rows, h, height)
            a = wide.index_select(-2, y0.to(delta.device))
            b = wide.index_select(-2, y1.to(delta.device))
            band = torch.lerp(a, b, t.to(delta.device).view(1, 1, -1, 1))
        yield start, stop, band.clamp_(-eps, eps)


def lift_banded(
    delta: torch.Tensor, size: tuple[int, int], eps: float, band_rows: int = BAND_ROWS
) -> torch.Tensor:
    """The whole lifted perturbation (N, C, H, W), assembled from bands (for tests and tools)."""
    out = torch.empty((*delta.shape[:-2], *size), dtype=delta.dtype, device=delta.device)
    for start, stop, band in lift_bands(delta, size, eps, band_rows):
        out[..., start:stop, :] = band
    return out


def lift_add_(
    image: torch.Tensor, delta: torch.Tensor, eps: float, band_rows: int = BAND_ROWS
) -> torch.Tensor:
    """Add the lifted perturbation to ``image`` in place and keep it in [0, 1]; return ``image``.

    Args:
        image: (N, C, H, W) float photo at full size; modified in place.
        delta: (N, C, h, w) perturbation at the work resolution, same dtype and device.
        eps: L-inf budget of the lifted perturbation.
        band_rows: Output rows per band (bounds the temporary memory).
    """
    if image.shape[:-2] != delta.shape[:-2]:
        raise ValueError(
            f"image {tuple(image.shape)} and perturbation {tuple(delta.shape)} differ in N or C"
        )
    size = (int(image.shape[-2]), int(image.shape[-1]))
    for start, stop, band in lift_bands(delta.to(image.dtype), size, eps, band_rows):
        rows = image[..., start:stop, :]
        rows.add_(band).clamp_(0.0, 1.0)
    return image


def band_differences(
    a: torch.Tensor, b: torch.Tensor, band_rows: int = BAND_ROWS
) -> tuple[float, float]:
    """Mean squared and largest absolute difference of two (N, C, H, W) images, by row bands.

    What PSNR and L-inf need, without a full-size difference temporary (150 MB at 12 MP).
    """
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {tuple(a.shape)} and {tuple(b.shape)}")
    total, largest = 0.0, 0.0
    for start, stop in iter_bands(int(a.shape[-2]), band_rows):
        d = a[..., start:stop, :].float() - b[..., start:stop, :].float()
        total += float(d.double().square().sum())
        largest = max(largest, float(d.abs().max())) if d.numel() else largest
    return total / max(1, a.numel()), largest
