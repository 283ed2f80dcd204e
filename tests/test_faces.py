"""Face finding on real photos (the Haar cascade bundled in the OpenCV wheel)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cloak.errors import ConfigError
from cloak.faces import face_mask, find_faces
from cloak.metrics import to_tensor

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "photos"


def _photo(name: str) -> torch.Tensor:
    with Image.open(PHOTOS / name) as im:
        return to_tensor(np.asarray(im.convert("RGB"), dtype=np.float32) / 255)


def test_finds_the_astronauts_face_and_not_the_cups() -> None:
    x = _photo("astronaut.png")
    faces = find_faces(x)
    assert faces, "the astronaut's face was not found"
    left, top, w, h = faces[0]
    # The face is in the upper middle of the 512 x 512 portrait, not the whole frame.
    assert 120 <= left + w / 2 <= 320 and 40 <= top + h / 2 <= 220 and 60 <= w <= 260
    assert find_faces(_photo("coffee.png")) == []


def test_boxes_scale_back_to_the_full_photo() -> None:
    x = _photo("astronaut.png")
    big = torch.nn.functional.interpolate(x, scale_factor=2.5, mode="bilinear")
    (l1, t1, w1, _), (l2, t2, w2, _) = find_faces(x)[0], find_faces(big)[0]
    assert abs(l2 - 2.5 * l1) < 0.2 * w2 and abs(t2 - 2.5 * t1) < 0.2 * w2
    assert abs(w2 - 2.5 * w1) < 0.2 * w2


def test_face_mask_covers_grown_boxes_only() -> None:
    m = face_mask((100, 200), [(50, 20, 40, 40)], grow=0.5)
    assert m.shape == (1, 1, 100, 200)
    assert m[0, 0, 40, 70] == 1 and m[0, 0, 10, 45] == 1  # inside, and in the grown margin
    assert m[0, 0, 90, 150] == 0
    assert float(m.sum()) == 60 * 60


def test_rejects_a_batch() -> None:
    with pytest.raises(ConfigError, match="shape"):
        find_faces(torch.zeros(2, 3, 32, 32))
