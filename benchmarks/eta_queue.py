"""The ETA the app shows, against the real time left, for a queue of real portraits.

The app's own window (offscreen) protects the first photos of the queue, then the rest are
added and protected in a second run, as a person adds more photos to a session: every photo of
the second run starts with an ETA on the status line, which is compared with the time the run
really still took from that moment. The process is set up as ``cloak-gui`` sets it up, and the
preset is used as it is (no reduced steps), so the times are those a person waits.

    python -m benchmarks.eta_queue [--photos DIR] [--done 2] [--preset standard] [--steps N]

Prints a markdown table (photo, MP, ETA shown, real time left, ratio), each photo's time, and
the load average before and after: the ETA extrapolates from the photos done, so a load that
changes during the run moves the real times away from it.
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=REPO.parent / "shared/photos/portraits")
    ap.add_argument("--done", type=int, default=2, help="photos protected before the queue")
    ap.add_argument("--preset", default="standard")
    ap.add_argument("--steps", type=int, default=None, help="default: the preset's")
    ap.add_argument("--encoders", default="taef2")
    ap.add_argument(
        "--models-dir",
        default=os.environ.get("CLOAK_MODELS_DIR", str(REPO.parent / "shared" / "weights")),
    )
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from cloak.device import configure_process

    configure_process(worker_threads=True)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from cloak.eta import format_duration, pixels_of
    from cloak.gui.main_window import MainWindow
    from cloak.gui.worker import ItemDone, ItemProgress, ModelLoader

    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    if len(photos) <= args.done:
        print(f"{args.photos}: {len(photos)} photos, need more than --done {args.done}")
        return 2
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp(prefix="cloak-eta-"))
    win = MainWindow(
        QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat),
        source=ModelLoader(args.models_dir, offline=True),
    )
    win.settings.set_out_dir(tmp / "out")
    win.settings.set_preset(args.preset)
    changes: dict[str, Any] = {"encoders": tuple(args.encoders.split(","))}
    if args.steps:
        changes["steps"] = args.steps
    win.settings.override(**changes)

    def run() -> tuple[list[tuple[int, float | None, float]], list[float]]:
        """One protect run: (row, ETA shown at its start, real time left then) per photo,
        and each photo's time from the end of the one before."""
        starts: list[tuple[int, float | None, float]] = []
        done_at: list[float] = []
        seen: set[int] = set()

        def on(rec: Any) -> None:
            if isinstance(rec, ItemProgress) and rec.row not in seen:
                seen.add(rec.row)
                starts.append((rec.row, rec.eta_s, time.perf_counter()))
            elif isinstance(rec, ItemDone):
                done_at.append(time.perf_counter())

        win.record.connect(on)
        finished = {"v": False}
        win.run_finished.connect(lambda: finished.update(v=True))
        t0 = time.perf_counter()
        win.protect()
        while not finished["v"]:
            app.processEvents()
            time.sleep(0.01)
        end = time.perf_counter()
        win.record.disconnect(on)
        times = [b - a for a, b in zip([t0, *done_at[:-1]], done_at, strict=True)]
        return [(r, eta, end - t) for r, eta, t in starts], times

    win.add_paths(photos[: args.done])
    run()
    win.add_paths(photos[args.done :])
    table, times = run()
    px = pixels_of(photos[args.done :])
    lines = [
        f"{len(photos)}-photo queue, {args.done} done before, preset {args.preset}, "
        f"{win.settings.config.steps} steps, encoders {args.encoders}",
        "",
        "| photo starting | MP | ETA shown | real time left | ETA / real |",
        "|---|---|---|---|---|",
    ]
    ratios = []
    for i, (row, eta, real) in enumerate(table):
        shown = "(none yet)" if eta is None else format_duration(eta)
        ratio = "" if eta is None else f"{eta / real:.2f}"
        if eta is not None:
            ratios.append(eta / real)
        name = win.queue.item(row).source.name
        left = format_duration(real)
        lines.append(f"| {name} | {px[i] / 1e6:.1f} | {shown} | {left} | {ratio} |")
    lines += ["", "photo times (s): " + ", ".join(f"{d:.1f}" for d in times)]
    if ratios:
        worst = max(abs(r - 1) for r in ratios)
        within = sum(abs(r - 1) <= 0.2 for r in ratios)
        lines.append(f"within 20 %: {within} of {len(ratios)}; worst {worst * 100:.0f} % off")
    lines.append(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("\n".join(lines))
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
