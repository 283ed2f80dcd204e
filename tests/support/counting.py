"""Counting an encoder's encodes, for tests of what a measurement computes again."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


class Encodes:
    """How many times the encoder was run since the count started (or was reset)."""

    def __init__(self) -> None:
        self.n = 0

    def reset(self) -> int:
        """The count so far; starts again from zero."""
        n, self.n = self.n, 0
        return n


@contextlib.contextmanager
def counting_encodes(enc: Any) -> Iterator[Encodes]:
    """Count ``enc.encode`` calls inside the block (the real encode still runs)."""
    count = Encodes()
    real = enc.encode

    def counted(x: Any) -> Any:
        count.n += 1
        return real(x)

    enc.encode = counted
    try:
        yield count
    finally:
        del enc.encode
