"""The app as a person uses it, one screenshot per situation.

The real window (run it under ``xvfb-run`` for a real X window, as below), set up as
``cloak-gui`` sets it up, driven by mouse clicks and key presses (``QTest``), with the real
weights and real portraits. For each situation it saves a screenshot and prints what the window
says there (status line, the text beside the pictures) and the times that matter: from "done"
to the compare view showing the photo, and the AI view and scores against the protection::

    xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb \\
        python -m benchmarks.app_tour --out docs/img/app --format jpg

Situations: a photo given at start; the result the moment it is done, scores still measuring;
the scores; selecting the other done photo; protecting a done photo again with another preset
(the question asked); a file that is not a photo, and Protect pressed again; Cancel during a
run; a first start with no encoder on the computer.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.bench import PHOTOS
from benchmarks.qt_app import cloak_app
from benchmarks.qt_app import wait_until as qt_wait_until

PORTRAITS = PHOTOS / "portraits"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the screenshots")
    ap.add_argument("--models-dir", default=str(PHOTOS.parent / "weights"))
    ap.add_argument("--photos", default="img13.jpg,img30.jpg,img58.jpg", help="three portraits")
    ap.add_argument(
        "--format", choices=("png", "jpg"), default="png", help="jpg: quality 90, a fifth the size"
    )
    a = ap.parse_args(argv)
    names = [s for s in a.photos.split(",") if s]
    if len(names) != 3:
        raise SystemExit("--photos: name three portraits")
    a.out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="cloak-tour-"))
    try:
        return _tour(a, names, scratch)
    finally:
        # The protected copies and the settings of the tour go with it.
        shutil.rmtree(scratch, ignore_errors=True)


def _tour(a: argparse.Namespace, names: list[str], scratch: Path) -> int:
    # Nothing of the person's: settings, weights cache and protected copies all in scratch.
    os.environ["XDG_CACHE_HOME"] = str(scratch / "cache")
    os.environ.pop("CLOAK_MODELS_DIR", None)

    from cloak.device import configure_process

    configure_process(worker_threads=True)
    from PySide6.QtCore import QSettings, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

    from cloak.gui.main_window import MainWindow

    app = cloak_app()

    def wait_until(done: Callable[[], bool], timeout: float = 600.0) -> float:
        return qt_wait_until(app, done, timeout, "app tour")

    def settle(seconds: float = 0.4) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.01)

    def shoot(widget: QWidget, name: str, what: str) -> None:
        app.processEvents()
        path = a.out / f"{name}.{a.format}"
        widget.grab().save(str(path), None, 90 if a.format == "jpg" else -1)
        print(f"\n## {name}: {what}\nscreenshot: {path}")

    def says(win: MainWindow) -> None:
        print(f"status: {win.status.text()}")
        print(f"beside the pictures: {_plain(win.compare.scores.text())}")

    def click(widget: QWidget) -> None:
        QTest.mouseClick(widget, Qt.MouseButton.LeftButton)

    def make_window(models_dir: str, tag: str) -> MainWindow:
        ini = scratch / f"{tag}.ini"
        win = MainWindow(QSettings(str(ini), QSettings.Format.IniFormat), None, models_dir, True)
        win.settings.set_out_dir(scratch / "out")
        win.resize(1500, 920)
        win.show()
        QTest.qWaitForWindowExposed(win)
        return win

    photos = [PORTRAITS / n for n in names]
    win = make_window(a.models_dir, "tour")
    # 1. A photo given at start (as `cloak-gui PHOTO` does).
    win.add_paths([photos[0]])
    settle()
    shoot(win, "01-opened", f"{names[0]} given at start, before Protect")
    says(win)

    # 2. Protect: the result shows the moment it is saved, the scores fill in after.
    first: dict[str, Any] = {}

    def on_shown(_uid: int, seconds: float) -> None:
        if not first:
            first["s"] = seconds
            first["text"] = win.compare.scores.text()
            first["status"] = win.status.text()
            shoot(win, "02-done-measuring", "the moment the photo is saved")

    win.photo_shown.connect(on_shown)
    start = time.perf_counter()
    click(win.protect_button)
    wait_until(lambda: bool(first))
    protect_s = time.perf_counter() - start
    print(f"status: {first['status']}\nbeside the pictures: {_plain(first['text'])}")
    analysed = wait_until(lambda: win.queue.item(0).ai is not None and not win.busy)
    print(
        f"protect (click to saved) {protect_s:.1f} s; shown {first['s']:.3f} s"
        f" after it was saved; AI view and scores {analysed:.1f} s later"
        f" ({analysed / protect_s:.0%} of the protection)"
    )
    settle(0.5)
    shoot(win, "03-scores", "the AI view and the scores filled in")
    says(win)

    # 3. A second photo, then the first selected again by a click on its row.
    win.add_paths([photos[1]])
    click(win.protect_button)
    wait_until(lambda: win.queue.item(1).status == "done" and not win.busy)
    settle(3.0)
    view = win.queue_view

    def select(row: int, shown: bool = True) -> float:
        """Click a row; with ``shown``, the seconds until its own pictures are shown."""
        rect = view.visualRect(win.queue.index(row))
        start = time.perf_counter()
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        if shown:
            wait_until(lambda: win.compare.shown_uid == win.queue.item(row).uid)
        return time.perf_counter() - start

    t = select(1)
    wait_until(lambda: win.queue.item(1).ai is not None, timeout=300)
    settle(0.5)
    shoot(win, "04-select-second", f"{names[1]} selected ({t:.3f} s to its pictures)")
    says(win)
    t = select(0)
    settle(0.5)
    shoot(win, "05-select-first", f"{names[0]} selected again ({t:.3f} s to its pictures)")
    says(win)

    # 4. Another preset for a done photo: Protect asks before replacing the copy.
    combo = win.settings_panel.preset
    combo.setFocus()
    QTest.keyClick(combo, Qt.Key.Key_Down)  # standard -> high
    settle()
    asked: dict[str, str] = {}

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            if time.perf_counter() - opened < 10:
                QTimer.singleShot(100, answer)
            return
        asked["title"] = box.windowTitle()
        asked["text"] = box.text()
        shoot(win, "06-replace-window", f"preset {combo.currentText()}, Protect pressed")
        shoot(box, "06-replace-question", "the question asked")
        click(box.button(QMessageBox.StandardButton.No))

    opened = time.perf_counter()
    QTimer.singleShot(300, answer)
    click(win.protect_button)
    wait_until(lambda: bool(asked), timeout=30)
    print(f"asked: {asked.get('title')}: {asked.get('text')}")
    settle()
    says(win)

    # 5. A file that is not a photo: it fails, the batch ends, and Protect does not retry it.
    bad = scratch / "not-a-photo.jpg"
    bad.write_text("this is text, not a JPEG\n")
    win.add_paths([bad])
    click(win.protect_button)
    wait_until(lambda: not win.busy and win.queue.item(2).status == "failed", timeout=120)
    settle()
    shoot(win, "07-failed", "a text file named .jpg, after Protect")
    says(win)
    select(2, shown=False)
    click(win.protect_button)
    settle()
    shoot(win, "08-protect-again", "Protect pressed again with the failed file selected")
    says(win)

    # 6. Cancel during a run.
    win.add_paths([photos[2]])
    select(3, shown=False)
    steps: list[int] = []
    win.record.connect(lambda r: steps.append(1) if getattr(r, "stage", "") == "attack" else None)
    click(win.protect_button)
    wait_until(lambda: len(steps) >= 1, timeout=300)
    t0 = time.perf_counter()
    click(win.cancel_button)
    wait_until(lambda: not win.busy, timeout=300)
    waited = time.perf_counter() - t0
    settle()
    shoot(win, "09-cancelled", f"Cancel pressed during {names[2]}'s run, after its first step")
    print(f"cancel: {waited:.1f} s from the click to the end of the run")
    says(win)
    print(f"progress bar after the cancel: {win.progress.value()} of {win.progress.maximum()}")
    win.close()

    # 7. A first start on a computer with no encoder weights.
    empty = scratch / "no-weights"
    empty.mkdir()
    bare = make_window(str(empty), "bare")
    settle(1.0)
    shoot(bare, "10-no-encoder", "first start, no weights on the computer")
    print(f"status: {bare.status.text()}")
    print(f"encoder line: {_strip_tags(bare.encoder_bar.text.text())}")
    bare.close()
    return 0


def _strip_tags(text: str) -> str:
    import re

    return re.sub(r"<[^>]+>", "", text).replace("&nbsp;", " ").replace("&amp;", "&")


def _plain(html: str) -> str:
    """A rich-text label's words on one line (cells and paragraphs apart)."""
    import re

    spaced = re.sub(r"<(br|/p|/td|/th|/tr|/h\d)[^>]*>", " ", html)
    return " ".join(_strip_tags(spaced).split())[:900]


if __name__ == "__main__":
    sys.exit(main())
