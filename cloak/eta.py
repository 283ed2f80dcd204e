"""How long a batch still needs: a per-photo cost model fed with what the batch has done.

A photo's time is ``a + b * pixels``: the attack runs at the work resolution, so it costs about
the same for every photo (``a``), while loading, lifting and saving scale with the photo's pixels
(``b``). After each photo the estimator refits both from the photos done so far and predicts the
photos still queued from their pixel counts (read from the file headers, which is cheap).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MIN_SPREAD = 1.25
"""Pixel counts must vary by this factor before the per-pixel slope is fitted at all."""


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
        """The fitted ``(a, b)``: seconds per photo and seconds per pixel; None before any photo.

        With similar-sized photos the slope cannot be told from the constant, so the median
        photo time is used (robust to one slow photo). Otherwise a least-squares line, with
        both coefficients kept non-negative.
        """
        pts = self._fit_samples()
        if not pts:
            return None
        px = [p for p, _ in pts]
        secs = [s for _, s in pts]
        if len(pts) < 3 or max(px) < MIN_SPREAD * min(px):
            return statistics.median(secs), 0.0
        mx, my = statistics.fmean(px), statistics.fmean(secs)
        var = sum((p - mx) ** 2 for p in px)
        b = sum((p - mx) * (s - my) for p, s in zip(px, secs, strict=True)) / var
        b = max(0.0, b)
        a = my - b * mx
        if a < 0:
            # A line through the origin: all cost per pixel.
            a, b = 0.0, sum(p * s for p, s in pts) / sum(p * p for p in px)
        return a, b

    def predict(self, pixels: int) -> float | None:
        """Predicted seconds for one photo of ``pixels`` pixels; None before any photo."""
        m = self.model()
        if m is None:
            return None
        a, b = m
        return a + b * pixels

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
        a, b = m
        total = sum(a + b * p for p in queued_pixels)
        if current_pixels is not None:
            total += (a + b * current_pixels) * (1.0 - min(max(current_fraction, 0.0), 1.0))
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
