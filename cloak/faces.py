"""Where the faces are: identity is what an attacker needs, so the face is measured on its own.

Uses the Haar cascade that ships inside the OpenCV wheel (``opencv-python-headless`` < 5; OpenCV
5 no longer bundles the cascades), so nothing is downloaded at run time. Detection runs on a
copy of at most 768 px on the long side and takes well under a second on a CPU.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch

from cloak.errors import ConfigError

Box = tuple[int, int, int, int]
"""A face as (left, top, width, height) in pixels of the image it was found in."""

DETECT_LONG_SIDE = 768


@lru_cache(maxsize=1)
def _cascade() -> Any:
    try:
        import cv2
    except ImportError:
        raise ConfigError(
            "finding faces needs OpenCV: pip install 'cloak[eval]' "
            "(it installs opencv-python-headless)"
        ) from None
    path = getattr(getattr(cv2, "data", None), "haarcascades", None)
    cascade = cv2.CascadeClassifier(f"{path}haarcascade_frontalface_default.xml") if path else None
    if cascade is None or cascade.empty():
        raise ConfigError(
            f"OpenCV {cv2.__version__} ships no Haar face cascade: "
            "pip install 'opencv-python-headless<5'"
        )
    return cascade


def find_faces(image: torch.Tensor, min_fraction: float = 0.08) -> list[Box]:
    """Frontal faces in a (1, 3, H, W) image in [0, 1], largest first.

    Args:
        image: The photo.
        min_fraction: Smallest face side as a fraction of the image's short side (smaller
            detections are mostly false positives on these cascades).
    """
    if image.ndim != 4 or image.shape[:2] != (1, 3):
        raise ConfigError(f"expected an image of shape (1, 3, H, W), got {tuple(image.shape)}")
    h, w = image.shape[-2:]
    scale = min(1.0, DETECT_LONG_SIDE / max(h, w))
    small = image
    if scale < 1.0:
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        small = torch.nn.functional.interpolate(image, size=size, mode="area")
    lum = (small[0, 0] * 0.299 + small[0, 1] * 0.587 + small[0, 2] * 0.114).clamp(0, 1)
    gray = (lum.detach().cpu().numpy() * 255 + 0.5).astype(np.uint8)
    side = max(16, round(min(gray.shape) * min_fraction))
    found = _cascade().detectMultiScale(gray, 1.1, 5, minSize=(side, side))
    boxes = [
        (round(x / scale), round(y / scale), round(bw / scale), round(bh / scale))
        for x, y, bw, bh in (found if len(found) else [])
    ]
    return sorted(boxes, key=lambda b: -b[2] * b[3])


def face_mask(shape: tuple[int, int], boxes: list[Box], grow: float = 0.3) -> torch.Tensor:
    """A (1, 1, H, W) mask that is 1 on the faces (each box grown by ``grow`` of its size)."""
    h, w = shape
    m = torch.zeros((1, 1, h, w))
    for x, y, bw, bh in boxes:
        gx, gy = round(bw * grow / 2), round(bh * grow / 2)
        m[..., max(0, y - gy) : min(h, y + bh + gy), max(0, x - gx) : min(w, x + bw + gx)] = 1.0
    return m
