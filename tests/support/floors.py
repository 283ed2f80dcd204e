"""What the configured floors guarantee once a photo is saved with 8 bits per channel."""

from __future__ import annotations

import math

HALF_LEVEL = 0.5 / 255
"""The largest rounding error of an 8-bit save, in [0, 1] units."""


def saved_psnr_floor(min_psnr: float) -> float:
    """The lowest PSNR a saved photo can have when the attack kept ``min_psnr`` before saving.

    The attack keeps ``RMS(delta) <= 10^(-min_psnr/20)``; rounding to 8 bits moves each value
    by at most half a level, so by the triangle inequality the saved RMS is at most that plus
    half a level.
    """
    return -20.0 * math.log10(10.0 ** (-min_psnr / 20.0) + HALF_LEVEL)


def linf_psnr_floor(eps_255: float) -> float:
    """The lowest PSNR of any change whose largest value is ``eps_255`` levels (RMS <= max)."""
    return -20.0 * math.log10((eps_255 + 0.5) / 255)
