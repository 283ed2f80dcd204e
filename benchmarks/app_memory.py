"""The app's memory over a session: where its peak comes from, photo by photo.

The real window (offscreen unless ``QT_QPA_PLATFORM`` says otherwise), set up as ``cloak-gui``
sets it up, with the real weights: each photo is added, protected with Protect, and shown, and
the run waits for its AI view and scores before the next photo, as a person who looks at every
result does. A thread samples the process's resident size (``VmRSS``) every 20 ms and files each
sample under what the app was doing (protecting or measuring which photo); the peak (``VmHWM``)
is read from the kernel after each photo::

    python -m benchmarks.app_memory --fp32 --count 20 --steps 1
    python -m benchmarks.app_memory --fp32 --photos img49.jpg --count 3
    python -m benchmarks.app_memory --fp32 --count 10 --low-memory

``--fp32`` runs the app as on a CPU without bf16 (most laptops), where a step keeps the most in
memory. ``--low-memory`` runs it as ``cloak-gui --low-memory`` does. MB are 2^20 bytes; the
2 GB target is also printed in 10^9 bytes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.bench import PHOTOS
from benchmarks.qt_app import cloak_app
from benchmarks.qt_app import wait_until as qt_wait_until

PORTRAITS = PHOTOS / "portraits"
MB = 2**20


def status_kb(field: str) -> int:
    """A ``kB`` field of this process's ``/proc/self/status`` (``VmRSS``, ``VmHWM``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


class Sampler(threading.Thread):
    """Samples ``VmRSS`` every ``interval`` s and keeps the largest per phase label."""

    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.phase = "start"
        self.peaks: dict[str, int] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            rss = status_kb("VmRSS")
            phase = self.phase
            if rss > self.peaks.get(phase, 0):
                self.peaks[phase] = rss
            time.sleep(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models-dir", default=str(PHOTOS.parent / "weights"))
    ap.add_argument(
        "--photos",
        default="",
        help="portraits to cycle through, comma-separated names (default: all ten)",
    )
    ap.add_argument("--count", type=int, default=10, help="photos in the session")
    ap.add_argument("--steps", type=int, default=None, help="default: the preset's")
    ap.add_argument("--preset", default="standard")
    ap.add_argument("--fp32", action="store_true", help="as on a CPU without bf16")
    ap.add_argument(
        "--low-memory", action="store_true", help="as cloak-gui --low-memory runs the app"
    )
    a = ap.parse_args(argv)
    names = [s for s in a.photos.split(",") if s] or sorted(p.name for p in PORTRAITS.glob("*.jpg"))
    if not names:
        raise SystemExit(f"{PORTRAITS}: no portraits (*.jpg) there; give --photos")
    photos = [PORTRAITS / names[i % len(names)] for i in range(a.count)]
    for p in set(photos):
        if not p.is_file():
            raise SystemExit(f"{p}: no such portrait")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if a.low_memory:
        from cloak.device import restart_with_huge_pages

        # Before anything is created that a restart would leave behind (the scratch folder).
        restart_with_huge_pages()
    with tempfile.TemporaryDirectory(prefix="cloak-app-memory-") as tmp:
        return _session(a, photos, Path(tmp))


def _session(a: argparse.Namespace, photos: list[Path], scratch: Path) -> int:
    os.environ["XDG_CACHE_HOME"] = str(scratch / "cache")
    from cloak.device import configure_process

    configure_process(low_memory=a.low_memory, worker_threads=True)
    from PIL import Image
    from PySide6.QtCore import QSettings

    import cloak.device
    from cloak.gui.main_window import MainWindow
    from cloak.gui.worker import ModelLoader

    if a.fp32:
        # The app's precision is "auto": a CPU without bf16 is what it then sees.
        cloak.device.cpu_has_fast_bf16 = lambda: False  # type: ignore[assignment]
    path = "fp32" if not cloak.device.cpu_has_fast_bf16() else "bf16"
    if a.low_memory:
        path += ", low-memory mode"
    print(f"path: {path}, threads {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")

    app = cloak_app()

    def wait_until(done: Callable[[], bool], timeout: float = 1800.0) -> float:
        return qt_wait_until(app, done, timeout, "app memory")

    settings = QSettings(str(scratch / "s.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings, source=ModelLoader(a.models_dir, offline=True))
    win.settings.set_out_dir(scratch / "out")
    win.settings.set_preset(a.preset)
    changes: dict[str, Any] = {"encoders": ("taef2",)}
    if a.steps:
        changes["steps"] = a.steps
    win.settings.override(**changes)
    win.resize(1500, 920)
    win.show()
    app.processEvents()

    # The queue takes a file once: each photo of the session is a copy of its own.
    copies = []
    for i, photo in enumerate(photos):
        copy = scratch / "in" / f"{i + 1:03d}-{photo.name}"
        copy.parent.mkdir(exist_ok=True)
        shutil.copyfile(photo, copy)
        copies.append(copy)
    print(
        f"before the first photo: RSS {status_kb('VmRSS') / 1024:.0f} MB (Python, Qt, the window)"
    )
    sampler = Sampler()
    sampler.start()
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    print(
        "| # | photo | MP | protect s | measure s | RSS max protecting MB"
        " | RSS max measuring MB | RSS after MB | peak so far MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for i, photo in enumerate(copies):
        with Image.open(photo) as im:  # the header only: no pixels in this process's heap
            mp = im.size[0] * im.size[1] / 1e6
        row = win.queue.rowCount()
        if win.add_paths([photo]) != 1:
            raise SystemExit(f"{photo}: the queue did not take it")
        sampler.phase = f"protect {i}"
        t0 = time.perf_counter()
        win.protect()
        wait_until(lambda r=row: win.queue.item(r).status in ("done", "failed") and not win.busy)
        if win.queue.item(row).status != "done":
            raise SystemExit(f"{photo.name}: not protected: {win.queue.item(row).message}")
        t1 = time.perf_counter()
        sampler.phase = f"measure {i}"
        # The finished photo selected, as a person looks at it: its AI view and scores.
        win.queue_view.setCurrentIndex(win.queue.index(row))
        wait_until(lambda r=row: win.queue.item(r).ai is not None and win.analyser is None)
        t2 = time.perf_counter()
        sampler.phase = f"idle {i}"
        time.sleep(0.05)
        rec = {
            "photo": photo.name,
            "mp": mp,
            "protect_s": t1 - t0,
            "measure_s": t2 - t1,
            "protect_mb": sampler.peaks.get(f"protect {i}", 0) / 1024,
            "measure_mb": sampler.peaks.get(f"measure {i}", 0) / 1024,
            "after_mb": status_kb("VmRSS") / 1024,
            "hwm_mb": status_kb("VmHWM") / 1024,
        }
        rows.append(rec)
        print(
            f"| {i + 1} | {rec['photo']} | {mp:.1f} | {rec['protect_s']:.1f}"
            f" | {rec['measure_s']:.1f} | {rec['protect_mb']:.0f} | {rec['measure_mb']:.0f}"
            f" | {rec['after_mb']:.0f} | {rec['hwm_mb']:.0f} |",
            flush=True,
        )
    sampler.stop()
    win.close()
    app.processEvents()
    hwm = status_kb("VmHWM") * 1024
    top = max(sampler.peaks.items(), key=lambda kv: kv[1])
    half = len(rows) // 2
    first = max((max(r["protect_mb"], r["measure_mb"]) for r in rows[:half]), default=0.0)
    second = max((max(r["protect_mb"], r["measure_mb"]) for r in rows[half:]), default=0.0)
    print(
        f"\n{len(rows)} photos in {time.perf_counter() - start:.0f} s ({path});"
        f" peak (VmHWM) {hwm / MB:.0f} MB = {hwm / 1e9:.2f} GB (10^9 bytes),"
        f" highest sample while '{top[0]}' ({top[1] / 1024:.0f} MB);"
        f" RSS max in the first half {first:.0f} MB, in the second {second:.0f} MB;"
        f" load average {os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
