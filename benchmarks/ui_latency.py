"""How long is the UI thread blocked while the app protects a photo, how soon does the result
show, and what does the measurement cost?

A 10 ms QTimer heartbeat runs on the UI thread during a real protect run (and the compare
view's scoring that follows); every gap between beats above the interval is time the window
could not repaint or react. Prints the longest gap and a histogram, the time from "saved" to
the compare view showing the photo, and the AI view + scores time as a share of the protect
time of the same photo.

    python benchmarks/ui_latency.py [--photo PATH] [--steps N] [--encoders taef2] [--cli] [--fp32]

``--cli`` then times ``cloak protect`` and ``cloak check`` of the same photo (each a process of
its own, model loading included) and prints check's time as a share of protect's, then
``cloak protect --check`` (both in one process, as the app does them). Both ratios
come from one run, side by side, so a shared machine's load weighs on both sides alike; the
load average is printed before and after. ``--fp32`` runs everything as on a CPU without bf16
(most laptops): the app as if the CPU lacked it, the commands with ``--precision fp32``.

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
    ap.add_argument("--cli", action="store_true", help="also time cloak protect / cloak check")
    ap.add_argument("--fp32", action="store_true", help="as on a CPU without bf16")
    args = ap.parse_args(argv)
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # The process set up as `cloak-gui` sets it up (threads, memory reuse): without it every
    # step faults its activations in afresh and the app's run takes several times as long.
    from cloak.device import configure_process

    configure_process(worker_threads=True)

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    import cloak.device
    from cloak.gui.main_window import MainWindow
    from cloak.gui.worker import ModelLoader

    if args.fp32:
        # The app's precision is "auto": a CPU without bf16 is what it then sees.
        cloak.device.cpu_has_fast_bf16 = lambda: False  # type: ignore[assignment]
    print(f"path: {'fp32' if not cloak.device.cpu_has_fast_bf16() else 'bf16'}")

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
    if args.cli:
        time_cli(args)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


def time_cli(args: argparse.Namespace) -> None:
    """``cloak protect`` and then ``cloak check`` of the same photo, as a person runs them."""
    import subprocess

    cloak = [str(Path(sys.executable).parent / "cloak")]  # the installed command
    env = {**os.environ, "CLOAK_MODELS_DIR": args.models_dir, "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(prefix="cloak-cli-") as tmp:
        precision = ["--precision", "fp32" if args.fp32 else "auto"]
        settings = ["-q", "--preset", args.preset, "--encoders", args.encoders, *precision]
        if args.steps:
            settings += ["--steps", str(args.steps)]
        protect = [*cloak, "protect", str(args.photo), "-o", tmp, *settings]
        t0 = time.perf_counter()
        subprocess.run(protect, check=True, env=env, stdout=subprocess.DEVNULL)
        protect_s = time.perf_counter() - t0
        (out,) = Path(tmp).iterdir()
        check = [*cloak, "check", str(args.photo), str(out), "--picture", f"{tmp}/c.png"]
        check += precision
        t0 = time.perf_counter()
        res = subprocess.run(check, check=True, env=env, capture_output=True, text=True)
        check_s = time.perf_counter() - t0
        # Protected and measured in one process: what the app does from Protect to the scores.
        both = [*cloak, "protect", str(args.photo), "-o", f"{tmp}/checked", *settings, "--check"]
        t0 = time.perf_counter()
        subprocess.run(both, check=True, env=env, stdout=subprocess.DEVNULL)
        both_s = time.perf_counter() - t0
    said = [line for line in res.stdout.splitlines() if "simulated at" in line]
    print(
        f"cloak protect {protect_s:.1f} s; cloak check {check_s:.1f} s = "
        f"{check_s / protect_s * 100:.0f} % of protect"
    )
    print(f"  check said: {said[0] if said else '?'}")
    print(f"cloak protect --check (one process) {both_s:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
