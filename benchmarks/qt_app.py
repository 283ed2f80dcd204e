"""The app's process as the benchmarks that drive its window set it up."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any


def cloak_app() -> Any:
    """The QApplication, named as ``cloak-gui`` names it (its settings and cache paths)."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("Cloak")
    app.setApplicationName("Cloak")
    return app


def wait_until(app: Any, done: Callable[[], bool], timeout: float, who: str) -> float:
    """Process events until ``done()``; the seconds it took. Gives up (exits, naming ``who``)
    after ``timeout`` seconds."""
    start = time.perf_counter()
    while not done():
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"{who}: gave up after {timeout:.0f} s")
        app.processEvents()
        time.sleep(0.01)
    return time.perf_counter() - start
