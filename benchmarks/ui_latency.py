"""How long is the UI thread blocked while the app protects a photo, how soon does the result
show, and what does the measurement cost?

A 10 ms QTimer heartbeat runs on the UI thread during a real protect run (and the compare
view's scoring that follows); every gap between beats above the interval is time the window
could not repaint or react. Prints the longest gap and a histogram, the time from "saved" to
the compare view showing the photo, and the AI view + scores time as a share of the protect
time of the same photo.

    python benchmarks/ui_latency.py [--photo PATH] [--steps N] [--encoders taef2]

Weights come from ``--models-dir``, else ``$CLOAK_MODELS_DIR``, else ``../shared/weights``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PHOTO = REPO.parent / "shared" / "photos" / "astronaut.png"
BINS_MS = (10, 20, 50, 100, 250, 500, 1000)


def heartbeat(interval_ms: int) -> tuple[Any, list[float]]:
    """A QTimer for the calling (UI) thread that records the gaps between its beats, in
    seconds, from now on; start and stop it around the work being measured."""
    from PySide6.QtCore import QTimer

    gaps: list[float] = []
    last = [time.perf_counter()]

    def beat() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(interval_ms)
    timer.timeout.connect(beat)
    return timer, gaps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    ap.add_argument(
        "--models-dir",
        default=os.environ.get("CLOAK_MODELS_DIR", str(REPO.parent / "shared" / "weights")),
    )
    ap.add_argument("--steps", type=int, default=None, help="default: the preset's")
    ap.add_argument("--preset", default="standard")
    ap.add_argument("--encoders", default="taef2")
    ap.add_argument("--interval-ms", type=int, default=10)
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from cloak.gui.main_window import MainWindow
    from cloak.gui.worker import ModelLoader

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory(prefix="cloak-latency-") as tmp:
        settings = QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat)
        win = MainWindow(settings, source=ModelLoader(args.models_dir, offline=True))
        win.settings.set_out_dir(Path(tmp) / "out")
        win.settings.set_preset(args.preset)
        changes: dict[str, Any] = {"encoders": tuple(args.encoders.split(","))}
        if args.steps:
            changes["steps"] = args.steps
        win.settings.override(**changes)
        win.show()
        win.add_paths([args.photo])
        timer, gaps = heartbeat(args.interval_ms)
        failed: list[str] = []

        def finished() -> None:
            item = win.queue.item(0)
            if item.status != "done":
                failed.append(item.message or win.banner_text.text())
                app.quit()

        ai_views: list[Any] = []
        win.ai_ready.connect(lambda _uid, _r: ai_views.append(win.queue.item(0).ai))
        win.analysis_ready.connect(lambda _row: QTimer.singleShot(50, app.quit))
        win.run_finished.connect(finished)
        start = time.perf_counter()
        timer.start()
        QTimer.singleShot(0, win.protect)
        app.exec()
        timer.stop()
        wall = time.perf_counter() - start
        win.close()
    if failed:
        print(f"protect failed: {failed[0]}", file=sys.stderr)
        return 1
    ms = [g * 1000 for g in gaps]
    item = win.queue.item(0)
    protect_s = item.result.seconds
    steps = win.settings.config.steps
    print(f"photo {args.photo.name}, encoders {args.encoders}, {steps} steps: {wall:.1f} s")
    print(f"protect {protect_s:.1f} s; shown {win.shown_after_s:.3f} s after it was saved")
    for ai in ai_views:
        what = "AI view + scores, direct and re-posts" if ai.reposts else "AI view + direct scores"
        print(f"{what}: {ai.seconds:.1f} s = {ai.seconds / protect_s * 100:.0f} % of protect")
    print(f"heartbeats: {len(ms)} at {args.interval_ms} ms; longest UI-thread gap {max(ms):.0f} ms")
    lo = 0
    for hi in (*BINS_MS, float("inf")):
        n = sum(lo <= g < hi for g in ms)
        label = f"{lo:>5}-{hi:<5}" if hi != float("inf") else f"{lo:>5}+     "
        print(f"  {label} ms  {n:6d}  {'#' * min(60, n // max(1, len(ms) // 60))}")
        lo = hi
    return 0


if __name__ == "__main__":
    sys.exit(main())
