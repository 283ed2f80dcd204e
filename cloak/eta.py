"""How long a batch still needs: a per-photo cost model fed with what the batch has done.

A photo's time is modelled as ``c * pixels ** k`` with ``0 <= k <= 1``: the attack runs at the
work resolution, so it costs about the same for every photo (``k`` near 0), while loading,
lifting and saving grow with the photo's pixels (up to ``k`` = 1). Measured runs of the ten
portraits (0.4-12.6 MP) followed ``k`` of 0.2-0.35: a 12.6 MP photo took 1.6-2x a 1.5 MP one,
and a 0.4 MP photo half of it. After each photo the estimator refits both from the photos done
so far and predicts the photos still queued from their pixel counts (read from the file
headers, which is cheap). A straight line ``a + b * pixels`` fitted the same runs worse: one
large photo steepened it, and the small photos after it were predicted at up to 2x.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MIN_SPREAD = 1.25
"""Pixel counts must vary by this factor before the exponent is fitted at all."""
PRIOR_EXPONENT = 0.4
"""The exponent used until the photos done vary enough in size to fit it (measured 0.2-0.35)."""


@dataclass
class EtaEstimator:
    """Predicts the seconds a batch still needs.

    Usage::

        eta = EtaEstimator(skip_first=True)
        for photo in batch:
            ...  # protect it
            eta.observe(pixels, seconds)
            left = eta.remaining(pixels_of_queued_photos)   # None until the first photo

    Args:
        skip_first: Leave the first photo out of the fit once three are done: it pays one-off
            costs (first touch of fresh memory, kernel warm-up) the others do not.
    """

    skip_first: bool = True
    samples: list[tuple[int, float]] = field(default_factory=list)

    def observe(self, pixels: int, seconds: float) -> None:
        """Record one finished photo (width * height, wall seconds)."""
        if pixels <= 0 or seconds < 0:
            raise ValueError(f"need pixels > 0 and seconds >= 0, got {pixels}, {seconds}")
        self.samples.append((int(pixels), float(seconds)))

    def _fit_samples(self) -> list[tuple[int, float]]:
        if self.skip_first and len(self.samples) >= 3:
            return self.samples[1:]
        return self.samples

    def model(self) -> tuple[float, float] | None:
        """The fitted ``(c, k)`` of ``seconds = c * pixels ** k``; None before any photo.

        ``k`` is the least-squares slope of log seconds against log pixels, kept in [0, 1]
        (a photo never costs less for being larger, nor more than in proportion to its
        pixels); with photos of similar sizes it is :data:`PRIOR_EXPONENT`. ``c`` is the
        median of what each photo gives for it, so one slow photo does not move it much.
        """
        pts = self._fit_samples()
        if not pts:
            return None
        px = [p for p, _ in pts]
        k = PRIOR_EXPONENT
        if len(pts) >= 2 and max(px) >= MIN_SPREAD * min(px):
            lx = [math.log(p) for p in px]
            ly = [math.log(max(s, 1e-3)) for _, s in pts]
            mx, my = statistics.fmean(lx), statistics.fmean(ly)
            var = sum((x - mx) ** 2 for x in lx)
            k = sum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=True)) / var
            k = min(max(k, 0.0), 1.0)
        c = statistics.median(s / p**k for p, s in pts)
        return c, k

    def predict(self, pixels: int) -> float | None:
        """Predicted seconds for one photo of ``pixels`` pixels; None before any photo."""
        m = self.model()
        if m is None:
            return None
        c, k = m
        return c * pixels**k

    def remaining(
        self,
        queued_pixels: Iterable[int],
        current_pixels: int | None = None,
        current_fraction: float = 0.0,
    ) -> float | None:
        """Seconds until the batch finishes; None before the first photo is done.

        Args:
            queued_pixels: Pixel counts of the photos not started yet.
            current_pixels: Pixel count of the photo in progress, if any.
            current_fraction: How much of the photo in progress is done (0..1).
        """
        m = self.model()
        if m is None:
            return None
        c, k = m
        total = sum(c * p**k for p in queued_pixels)
        if current_pixels is not None:
            total += c * current_pixels**k * (1.0 - min(max(current_fraction, 0.0), 1.0))
        return total


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s`` or ``1 h 02 min``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def photo_pixels(path: str | Path, default: int = 0) -> int:
    """Width * height from the file header without decoding the pixels; ``default`` on failure."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
    except Exception:  # noqa: BLE001 - a bad file fails later, with its own message
        return default
    return int(w) * int(h)


def pixels_of(paths: Sequence[str | Path]) -> list[int]:
    """Header pixel counts of ``paths``; unreadable files get the median of the readable ones."""
    counts = [photo_pixels(p) for p in paths]
    known = [c for c in counts if c > 0]
    fill = int(statistics.median(known)) if known else 1
    return [c if c > 0 else fill for c in counts]
