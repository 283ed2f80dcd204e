"""``cloak-gui``: the desktop app's entry point.

Usage::

    cloak-gui [PHOTO_OR_FOLDER ...] [--models-dir DIR] [--offline] [--encoders a,b] [--steps N]
    cloak-gui --screenshot OUT.png [PHOTO]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

SCREENSHOT_TIMEOUT_MS = 15 * 60 * 1000


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from cloak.device import add_low_memory_option

    ap = argparse.ArgumentParser(
        prog="cloak-gui", description="Protect photos from AI undress and editing tools."
    )
    ap.add_argument("paths", nargs="*", metavar="PHOTO_OR_FOLDER", help="photos to queue")
    ap.add_argument(
        "--screenshot",
        metavar="OUT.png",
        help="render the window to a PNG and exit; with a PHOTO, protect it first (default "
        "preset) and show the AI view with its scores",
    )
    ap.add_argument("--models-dir", help="folder with the encoder weights")
    ap.add_argument("--offline", action="store_true", help="never download weights")
    ap.add_argument("--encoders", help="comma-separated encoders to attack (see `cloak models`)")
    ap.add_argument("--steps", type=int, help="optimisation steps (fewer is faster and weaker)")
    add_low_memory_option(ap)
    ap.add_argument(
        "--output-dir",
        metavar="DIR",
        help="write protected copies into DIR (default: beside each original; with "
        "--screenshot, a temporary folder)",
    )
    ap.add_argument(
        "--view",
        choices=("split", "side", "diff", "ai"),
        default=None,
        help="compare view to start in (with --screenshot the default is the AI view)",
    )
    # Test hook: tiny random encoders instead of real weights.
    ap.add_argument("--random-encoders", action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def _random_loader(names: Sequence[str]):
    from cloak.models import build_random

    return [build_random("taef2", seed=0)], {}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from cloak.device import choose_low_memory, configure_process, restart_with_huge_pages
    from cloak.gui.state import low_memory_setting

    # A screenshot run leaves the person's settings alone, so it does not read them either.
    low_memory = choose_low_memory(
        args.low_memory, setting=not args.screenshot and low_memory_setting()
    )
    if low_memory.on:
        restart_with_huge_pages()
    configure_process(low_memory=low_memory.on, worker_threads=True)
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from cloak.errors import CloakError
    from cloak.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("Cloak")
    app.setApplicationName("Cloak")
    settings = None
    tmp = None
    if args.screenshot:
        # A screenshot uses the default preset and leaves the person's settings alone.
        tmp = tempfile.TemporaryDirectory(prefix="cloak-shot-")
        settings = QSettings(str(Path(tmp.name) / "settings.ini"), QSettings.Format.IniFormat)
    loader = _random_loader if args.random_encoders else None
    win = MainWindow(settings, loader, args.models_dir, True if args.offline else None)
    win.settings_panel.set_low_memory_choice(low_memory)
    if args.output_dir:
        win.settings.set_out_dir(Path(args.output_dir))
    elif tmp is not None:
        # The protected copy of a screenshot run is thrown away with the temporary folder.
        win.settings.set_out_dir(Path(tmp.name))
    if args.view:
        win.set_mode(args.view)
    if args.random_encoders:
        from cloak.config import TransformConfig

        win.settings.override(work_size=64, transforms=TransformConfig(enabled=False))
        win.attacker_long_side = 64
    try:
        changes: dict[str, object] = {}
        if args.encoders:
            changes["encoders"] = tuple(e.strip() for e in args.encoders.split(",") if e.strip())
        if args.steps:
            changes["steps"] = args.steps
        if changes:
            win.settings.override(**changes)
    except CloakError as exc:
        print(f"cloak-gui: {exc}", file=sys.stderr)
        return 2
    win.show()
    if args.paths:
        win.add_paths(args.paths)
    if not args.screenshot:
        return app.exec()

    out = Path(args.screenshot)
    code = {"rc": 0}

    def shoot() -> None:
        app.processEvents()
        pm = win.grab()
        item = win.queue.items[0] if win.queue.items else None
        if item is not None:
            print(f"item: {item.source.name} status={item.status} dest={item.dest}")
        for name in ("side_right", "split_canvas", "ai_right"):
            c = getattr(win.compare, name)
            if c.isVisible():
                r = c.rect()
                r.moveTopLeft(c.mapTo(win, r.topLeft()))
                print(f"canvas {name}: {r.x()},{r.y()},{r.width()},{r.height()}")
        out.parent.mkdir(parents=True, exist_ok=True)
        if not pm.save(str(out)):
            print(f"cloak-gui: cannot write {out}", file=sys.stderr)
            code["rc"] = 1
        else:
            print(
                f"screenshot: {out} {pm.width()}x{pm.height()} window "
                f"{win.width()}x{win.height()} dpr {pm.devicePixelRatio():g}"
            )
        win.close()
        app.quit()

    def after_run() -> None:
        item = win.queue.items[0] if win.queue.items else None
        if item is None or item.status != "done":
            QTimer.singleShot(200, shoot)

    def analysed(_row: int) -> None:
        QTimer.singleShot(300, shoot)

    def report() -> None:
        print(f"cloak-gui: {win.status.text()}", file=sys.stderr, flush=True)

    ticker = QTimer()
    ticker.setInterval(10_000)
    ticker.timeout.connect(report)
    ticker.start()
    if args.paths:
        if not args.view:
            win.set_mode("ai")
        win.analysis_ready.connect(analysed)
        win.run_finished.connect(after_run)
        QTimer.singleShot(100, win.protect)
        QTimer.singleShot(SCREENSHOT_TIMEOUT_MS, shoot)
    else:
        QTimer.singleShot(500, shoot)
    app.exec()
    if tmp is not None:
        tmp.cleanup()
    return code["rc"]


if __name__ == "__main__":
    sys.exit(main())
