"""The desktop app with a tiny random encoder: open, protect, compare, cancel, errors, settings."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent
from support.counting import counting_encodes

from benchmarks.ui_latency import heartbeat
from cloak.config import TransformConfig, preset
from cloak.gui.compare_view import MODES
from cloak.gui.main_window import MainWindow
from cloak.gui.state import DONE, FAILED, PROTECTING, WAITING

RUN_TIMEOUT_MS = 90_000


def make_photo(path: Path, w: int = 80, h: int = 64, seed: int = 0) -> Path:
    """A small photo-like picture: smooth gradients plus a little texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin(xx / 7 + yy / 5)], axis=-1)
    rgb = np.clip(rgb + rng.normal(0, 0.03, rgb.shape), 0, 1)
    Image.fromarray((rgb * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: on a shared 2-core runner, more threads only fight each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def qsettings(tmp_path: Path) -> QSettings:
    """Settings in a temporary INI file, never the user's."""
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qs"))
    return QSettings(str(tmp_path / "cloak.ini"), QSettings.Format.IniFormat)


def fast(win: MainWindow, steps: int = 3) -> MainWindow:
    """Settings that keep a tiny-encoder run well under a second per photo."""
    win.settings.override(steps=steps, work_size=64, transforms=TransformConfig(enabled=False))
    win.attacker_long_side = 64
    return win


@pytest.fixture
def make_window(qtbot, qsettings, tiny_encoder):
    def make(loader=None) -> MainWindow:
        loader = loader or (lambda names: ([tiny_encoder], {}))
        win = MainWindow(settings=qsettings, encoder_loader=loader)
        qtbot.addWidget(win)
        return fast(win)

    return make


@pytest.fixture
def window(make_window) -> MainWindow:
    return make_window()


def protect_and_wait(qtbot, win: MainWindow) -> None:
    with qtbot.waitSignal(win.run_finished, timeout=RUN_TIMEOUT_MS):
        win.protect_action.trigger()


def test_open_and_protect(qtbot, window: MainWindow, tmp_path: Path):
    src = make_photo(tmp_path / "me.png")
    before = src.read_bytes()
    assert window.add_paths([src]) == 1
    assert window.queue.item(0).status == WAITING
    assert window.queue.item(0).thumbnail is not None
    protect_and_wait(qtbot, window)
    item = window.queue.item(0)
    assert item.status == DONE, item.message
    assert item.dest == tmp_path / "me_protected.png"
    assert item.dest.is_file()
    assert src.read_bytes() == before
    with Image.open(item.dest) as im:
        assert im.size == (80, 64)
    assert window.protect_button.isEnabled() and not window.cancel_button.isEnabled()
    # Save as: a copy elsewhere; the original can never be the target.
    copy = window.save_to(0, tmp_path / "copy.png")
    assert copy.read_bytes() == item.dest.read_bytes()
    with pytest.raises(ValueError):
        window.save_to(0, src)
    assert src.read_bytes() == before
    out = tmp_path / "all"
    out.mkdir()
    assert [p.name for p in window.save_all_to(out)] == ["me_protected.png"]
    assert window.output_folder() == tmp_path


def test_shortcuts_are_bound(qtbot, window: MainWindow, tmp_path: Path, monkeypatch):
    """Pressing each shortcut on the shown window does what it says."""
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QFileDialog

    with qtbot.waitActive(window):
        window.show()
        window.activateWindow()
    photo = make_photo(tmp_path / "k.png")
    monkeypatch.setattr(
        QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: ([str(photo)], ""))
    )
    QTest.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert [it.source for it in window.queue.items] == [photo]
    for i, mode in enumerate(MODES):
        QTest.keyClick(window, getattr(Qt.Key, f"Key_{i + 1}"))
        assert window.compare.mode == mode
    st = window.compare.state
    QTest.keyClick(window, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert st.zoom > 1.0
    QTest.keyClick(window, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(window, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(window, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert st.zoom == 1.0
    fast(window, steps=400)
    QTest.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.busy
    item = window.queue.item(0)
    qtbot.waitUntil(lambda: item.status == PROTECTING, timeout=RUN_TIMEOUT_MS)
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS):
        QTest.keyClick(window, Qt.Key.Key_Escape)
    assert item.status == WAITING and "Cancelled" in window.status.text()
    fast(window, steps=2)
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS):
        QTest.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert item.status == DONE
    target = tmp_path / "saved.png"
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), ""))
    )
    QTest.keyClick(window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert target.read_bytes() == item.dest.read_bytes()


def test_compare_modes_zoom_and_pan(qtbot, window: MainWindow, tmp_path: Path):
    window.add_paths([make_photo(tmp_path / "a.png")])
    with qtbot.waitSignal(window.analysis_ready, timeout=RUN_TIMEOUT_MS):
        window.protect()
    cmp = window.compare
    item = window.queue.item(0)
    pics, ai = item.pictures, item.ai
    assert cmp.shown_uid == item.uid
    assert pics.original.shape == pics.protected.shape == pics.heat.shape == (64, 80, 3)
    assert pics.original.dtype == np.uint8
    assert ai.original is not None and ai.encoder == "taef2"
    # Only what is shown is measured: the size the app shows, the photo posted as is.
    assert {s.scenario for s in ai.report.scores} == {"direct"} and not ai.reposts
    assert {s.size for s in ai.report.scores} == {64}
    assert "Measure after platform re-posts" in cmp.scores.text()
    # Re-posts on request: measuring... until they are in.
    with qtbot.waitSignal(window.analysis_ready, timeout=RUN_TIMEOUT_MS):
        cmp.scores.linkActivated.emit("reposts")
        assert "Platform re-posts: <i" in cmp.scores.text()
    ai = item.ai
    assert ai.reposts and ai.original is not None
    assert {s.scenario for s in ai.report.scores} == {"direct", "1080/q80", "720/q70"}
    assert "PSNR" in cmp.scores.text() and "720 px" in cmp.scores.text()
    assert "measuring" not in cmp.scores.text()
    for i, mode in enumerate(MODES):
        window.mode_actions[i].trigger()
        assert cmp.mode == mode
        assert cmp._stack.currentIndex() == i
        assert cmp._stack.currentWidget().isVisibleTo(window)
    # Zoom and pan are one state shared by every canvas.
    st = cmp.state
    st.zoom_in()
    st.pan_by(0.1, 0.0)
    assert st.zoom > 1.0 and st.center.x() == pytest.approx(0.6)
    r1, r2 = cmp.ai_left._rect(), cmp.ai_right._rect()
    assert r1.width() > 0 and (r1.width() / cmp.ai_left.width()) == pytest.approx(
        r2.width() / cmp.ai_right.width(), rel=0.05
    )
    st.reset()
    assert st.zoom == 1.0
    st.set_split(0.25)
    assert st.split == 0.25
    img = cmp.split_canvas.grab().toImage()
    assert not img.isNull() and img.width() > 100


def test_cancel_mid_run_writes_nothing_and_window_stays_usable(
    qtbot, window: MainWindow, tmp_path: Path
):
    src = make_photo(tmp_path / "slow.png")
    window.add_paths([src])
    fast(window, steps=400)

    worker = window.protect()
    assert worker is not None
    assert not window.protect_button.isEnabled() and window.cancel_button.isEnabled()
    item = window.queue.item(0)
    qtbot.waitUntil(lambda: item.status == PROTECTING and item.progress > 0, timeout=RUN_TIMEOUT_MS)
    from cloak.gui.worker import ItemProgress

    steps_after: list[object] = []
    window.record.connect(
        lambda rec: steps_after.append(rec) if isinstance(rec, ItemProgress) else None
    )
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS):
        window.cancel_action.trigger()
        # The wait is explained at once.
        assert window.status.text().startswith("Cancelling: stopping after the current step")
    assert worker.abort_requested
    # It acts within one step: at most the step under way (and one queued record) reports.
    assert len(steps_after) <= 2, len(steps_after)
    assert window.progress.value() == 0  # the bar resets after a cancel
    assert window.status.text().startswith("Cancelled.")
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != "cloak.ini")
    assert left == ["slow.png"]  # no output, no temp file
    assert window.queue.item(0).status == WAITING
    assert window.protect_button.isEnabled() and not window.cancel_button.isEnabled()
    assert window.settings_panel.isEnabled()
    fast(window, steps=2)
    protect_and_wait(qtbot, window)
    assert window.queue.item(0).status == DONE
    assert (tmp_path / "slow_protected.png").is_file()


def test_corrupt_file_fails_and_batch_goes_on(qtbot, window: MainWindow, tmp_path: Path):
    bad = tmp_path / "a_broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 20)
    good = make_photo(tmp_path / "b_good.png")
    window.add_paths([bad, good])
    protect_and_wait(qtbot, window)
    first, second = window.queue.item(0), window.queue.item(1)
    assert first.status == FAILED and first.message
    assert "failed" in first.status_text()
    assert second.status == DONE
    assert (tmp_path / "b_good_protected.png").is_file()
    assert not (tmp_path / "a_broken_protected.png").exists()
    assert window.protect_button.isEnabled()


def test_unsupported_file_and_folder_drop(qtbot, window: MainWindow, tmp_path: Path):
    folder = tmp_path / "album"
    folder.mkdir()
    make_photo(folder / "x.png")
    make_photo(folder / "y.png", seed=1)
    note = tmp_path / "notes.txt"
    note.write_text("hello")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder)), QUrl.fromLocalFile(str(note))])
    ev = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(ev)
    names = [(it.source.name, it.status) for it in window.queue.items]
    assert names == [("x.png", WAITING), ("y.png", WAITING), ("notes.txt", FAILED)]


def test_weights_error_shows_and_window_stays_usable(qtbot, make_window, tmp_path: Path):
    from cloak.models import WeightsError

    def offline(names):
        raise WeightsError("taef2: weights missing and offline; run `cloak models download`")

    win = make_window(offline)
    win.add_paths([make_photo(tmp_path / "p.png")])
    protect_and_wait(qtbot, win)
    assert win.banner.isVisibleTo(win)
    assert "offline" in win.banner_text.text()
    assert win.protect_button.isEnabled() and not win.cancel_button.isEnabled()
    assert win.queue.item(0).status == WAITING


class MissingSource:
    """An encoder source where ``absent`` names are not on disk until downloaded."""

    def __init__(self, encoder, absent):
        self.encoder, self.absent, self.downloaded = encoder, list(absent), []

    def missing(self, names):
        return [n for n in names if n in self.absent]

    def download(self, name):
        time.sleep(0.05)
        self.downloaded.append(name)
        self.absent.remove(name)

    def load(self, names):
        return [self.encoder], {n: f"/some/folder/{n}.pth missing" for n in self.missing(names)}


def test_missing_encoder_is_one_line_with_download(qtbot, qsettings, tiny_encoder, tmp_path: Path):
    source = MissingSource(tiny_encoder, ["taesd"])
    win = MainWindow(settings=qsettings, source=source)
    qtbot.addWidget(win)
    fast(win)
    win.settings.override(encoders=("taef2", "taesd"))
    bar = win.encoder_bar
    # Shown from launch, one line, no folder paths unless Details is asked for.
    assert bar.isVisibleTo(win)
    assert bar.text.text() == "Using taef2. Not on this computer: taesd."
    assert "/" not in bar.text.text() and not bar.details.isVisibleTo(win)
    # Only encoders that will be used are ticked.
    boxes = win.settings_panel.encoders
    assert boxes["taef2"].isChecked() and not boxes["taesd"].isChecked()
    assert boxes["taesd"].text() == "taesd (not downloaded)"
    assert [n for n, cb in boxes.items() if cb.isChecked()] == ["taef2"]
    # It stays through a run.
    win.add_paths([make_photo(tmp_path / "p.png")])
    protect_and_wait(qtbot, win)
    assert bar.isVisibleTo(win) and "/some/folder" not in bar.text.text()
    bar.details_button.click()
    assert "/some/folder/taesd.pth" in bar.details.text()
    # Until the person downloads it.
    with qtbot.waitSignal(win.encoders_changed, timeout=RUN_TIMEOUT_MS):
        bar.download_button.click()
    assert source.downloaded == ["taesd"]
    assert not bar.isVisibleTo(win)
    assert boxes["taesd"].isChecked() and boxes["taesd"].text() == "taesd"


def test_records_are_seen_from_the_first(qtbot, window: MainWindow, tmp_path: Path):
    """Connected before the worker starts, a listener sees every record, the first included."""
    seen: list[object] = []
    window.worker_created.connect(lambda w: w.yielded.connect(seen.append))
    window.add_paths([make_photo(tmp_path / "p.png")])
    protect_and_wait(qtbot, window)
    assert type(seen[0]).__name__ == "LoadStatus"
    assert any(type(r).__name__ == "ItemDone" for r in seen)


def test_low_memory_choice_persists_and_says_when_it_takes_effect(
    qtbot, qsettings, make_window
) -> None:
    import cloak.device
    from cloak.device import LowMemoryChoice
    from cloak.gui.state import low_memory_setting

    win = make_window()
    panel = win.settings_panel
    panel.show_advanced(True)
    win.show()
    # The test process runs in the default mode, and low-memory mode tunes glibc (Linux).
    assert not cloak.device.low_memory_active()
    assert panel.low_memory.isVisible() == cloak.device.low_memory_supported()
    assert not panel.low_memory.isChecked() and not panel.low_memory_note.isVisible()
    panel.low_memory.setChecked(True)
    assert win.settings.low_memory and low_memory_setting(qsettings)
    # Chosen now, it starts with the app's next start: the panel says so.
    assert panel.low_memory_note.isVisible() == cloak.device.low_memory_supported()
    assert "next time Cloak starts" in panel.low_memory_note.text()
    win.close()

    again = make_window()
    assert again.settings.low_memory and again.settings_panel.low_memory.isChecked()
    again.settings_panel.low_memory.setChecked(False)
    assert not low_memory_setting(qsettings)

    # Chosen by the box (saved or not): nothing set from outside, the box stays editable.
    panel = again.settings_panel
    panel.set_low_memory_choice(LowMemoryChoice(True, "setting"))
    assert panel.low_memory.isEnabled()
    # Started with --low-memory or CLOAK_LOW_MEMORY=1: on for this run, whatever was saved;
    # the app says so when the person opens Advanced later.
    panel.set_low_memory_choice(LowMemoryChoice(True, "asked"))
    again.show()
    panel.show_advanced(True)
    assert panel.low_memory.isChecked() and not panel.low_memory.isEnabled()
    assert panel.low_memory_note.isVisible() == cloak.device.low_memory_supported()
    assert "On for this run (--low-memory" in panel.low_memory_note.text()
    assert not low_memory_setting(qsettings)
    # On by itself with little memory free: the box says on and the note says how much was free.
    panel.set_low_memory_choice(LowMemoryChoice(True, "short", 2_400_000_000))
    assert panel.low_memory.isChecked() and not panel.low_memory.isEnabled()
    assert "2.4 GB of memory was free" in panel.low_memory_note.text()
    assert "under the 3 GB" in panel.low_memory_note.text()
    again.close()

    # Saved on, started with --no-low-memory: the box shows this run's mode, off.
    qsettings.setValue("low_memory", True)
    third = make_window()
    third.settings_panel.set_low_memory_choice(LowMemoryChoice(False, "asked"))
    assert not third.settings_panel.low_memory.isChecked()
    assert "Off for this run" in third.settings_panel.low_memory_note.text()
    assert low_memory_setting(qsettings)


def test_settings_persist(qtbot, qsettings, tiny_encoder):
    def make() -> MainWindow:
        w = MainWindow(settings=qsettings, encoder_loader=lambda n: ([tiny_encoder], {}))
        qtbot.addWidget(w)
        return w

    w1 = make()
    panel = w1.settings_panel
    panel.preset.setCurrentIndex(panel.preset.findData("low"))
    assert w1.settings.config.eps == pytest.approx(4 / 255)
    # The whole recipe comes with the preset, not just its budget and steps.
    low = preset("low")
    assert w1.settings.config.objective == low.objective
    assert w1.settings.config.min_psnr == low.min_psnr
    assert "Least visible" in panel.note.text()
    assert f"{low.eps * 255:.0f}/255" in panel.note.text()
    panel.preset.setCurrentIndex(panel.preset.findData("high"))
    assert w1.settings.config.min_psnr == preset("high").min_psnr
    panel.preset.setCurrentIndex(panel.preset.findData("low"))
    # Toggle one encoder that is not the last one ticked (the default set may be one encoder).
    with_taesd = "taesd" not in w1.settings.config.encoders
    panel.encoders["taesd"].setChecked(with_taesd)
    panel.format.setCurrentIndex(panel.format.findData("JPEG"))
    panel.strip_metadata.setChecked(True)
    w1.close()

    w2 = make()
    c = w2.settings.config
    assert w2.settings.preset_name == "low"
    assert w2.settings_panel.preset.currentData() == "low"
    assert c.eps == pytest.approx(4 / 255) and c.steps == low.steps
    assert ("taesd" in c.encoders) == with_taesd and "taef2" in c.encoders
    assert c.output.format == "JPEG" and c.output.strip_metadata
    w2.settings_panel.eps.setValue(10)
    w2.close()

    w3 = make()
    assert w3.settings.config.eps == pytest.approx(10 / 255)
    assert w3.settings.preset_name == "custom"
    assert w3.settings_panel.eps.value() == pytest.approx(10)


def test_ui_thread_never_blocks_long(qtbot, window: MainWindow, tmp_path: Path):
    """A 10 ms heartbeat on the UI thread keeps beating during a protect run."""
    window.add_paths([make_photo(tmp_path / f"p{i}.png", seed=i) for i in range(2)])
    fast(window, steps=20)
    timer, gaps = heartbeat(10)
    timer.start()
    with qtbot.waitSignal(window.analysis_ready, timeout=RUN_TIMEOUT_MS):
        window.protect()
    qtbot.waitUntil(lambda: not window.busy, timeout=RUN_TIMEOUT_MS)
    timer.stop()
    assert len(gaps) > 10
    assert max(gaps) < 0.25, f"UI thread blocked for {max(gaps) * 1000:.0f} ms"


def test_command_line_options(qtbot, tmp_path: Path):
    from cloak.gui.app import parse_args

    args = parse_args(
        [str(tmp_path), "b.jpg", "--encoders", "taef2,taesd", "--steps", "5", "--offline"]
    )
    assert args.paths == [str(tmp_path), "b.jpg"]
    assert args.encoders == "taef2,taesd" and args.steps == 5 and args.offline
    assert parse_args(["--screenshot", "out.png", "p.png"]).screenshot == "out.png"


def test_result_shows_at_once_and_scores_fill_in(qtbot, window: MainWindow, tmp_path: Path):
    """The protected photo shows when it is done; the AI view and scores say "measuring..."
    until they arrive, and the verdict's words come from cloak.verdict."""
    from cloak.verdict import verdict

    window.add_paths([make_photo(tmp_path / "a.png")])
    item = window.queue.item(0)
    at_show: dict[str, object] = {}

    def shown(uid: int, seconds: float) -> None:
        at_show.update(
            uid=uid,
            seconds=seconds,
            shown=window.compare.shown_uid,
            widget=window.compare._stack.currentWidget(),
            scores=window.compare.scores.text(),
            ai_label=window.compare.ai_left._labels[0],
        )

    window.photo_shown.connect(shown)
    with qtbot.waitSignal(window.analysis_ready, timeout=RUN_TIMEOUT_MS):
        window.protect()
    assert at_show["uid"] == at_show["shown"] == item.uid
    assert at_show["seconds"] <= 1.0
    assert at_show["widget"] is not window.compare.empty
    # While the run goes on, the AI view waits for its end (and says so); then it is measured.
    for text in (str(at_show["scores"]), str(at_show["ai_label"])):
        assert "measuring" in text or "when the run ends" in text
    assert f"{item.result.psnr:.1f}</b> dB" in str(at_show["scores"])  # the saved file's PSNR
    text = window.compare.scores.text()
    v = verdict(item.ai.report, attacked=item.attacked)
    assert v.sentence in text and v.worst_case in text
    assert v.caveat and v.caveat in text  # the sizes measured, and what other sizes get
    assert "Measured on: taef2" in text
    assert "visibly wrong" not in text


def test_selecting_never_shows_another_photos_pictures(qtbot, window: MainWindow, tmp_path):
    window.add_paths([make_photo(tmp_path / f"p{i}.png", seed=i) for i in range(2)])
    protect_and_wait(qtbot, window)
    a, b = window.queue.item(0), window.queue.item(1)
    qtbot.waitUntil(lambda: window.analyser is None, timeout=RUN_TIMEOUT_MS)
    keep_a = a.pictures
    window.queue_view.setCurrentIndex(window.queue.index(1))
    assert window.compare.current_uid == b.uid
    assert window.compare.shown_uid in (None, b.uid)
    # A late result for photo a arrives while b is selected: stored for a, never shown.
    from cloak.gui.worker import Pictures

    pixels_before = window.compare.split_canvas._left
    window.analysis.on_record(Pictures(a.uid, keep_a.original, keep_a.protected, keep_a.heat))
    assert window.compare.current_uid == b.uid
    assert window.compare.split_canvas._left is pixels_before
    qtbot.waitUntil(lambda: window.compare.shown_uid == b.uid, timeout=RUN_TIMEOUT_MS)
    shown = window.compare.split_canvas._left.toImage()
    assert shown.width() == b.pictures.original.shape[1]
    px = shown.pixelColor(5, 5)
    assert (px.red(), px.green(), px.blue()) == tuple(int(v) for v in b.pictures.original[5, 5])
    assert not np.array_equal(a.pictures.original, b.pictures.original)


def test_command_line_photo_shows_before_protecting(qtbot, window: MainWindow, tmp_path):
    window.add_paths([make_photo(tmp_path / "a.png")])
    cmp = window.compare
    assert cmp._stack.currentWidget() is cmp.preview_canvas
    assert cmp.preview_canvas._left is not None and cmp.preview_canvas._left.width() == 80
    assert "not protected yet" in cmp.scores.text()


def test_redo_with_another_preset_asks_to_replace(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    window.add_paths([make_photo(tmp_path / "a.png")])
    protect_and_wait(qtbot, window)
    dest = window.queue.item(0).dest
    first = dest.read_bytes()
    asked: list[str] = []
    answer = [QMessageBox.StandardButton.No]

    def question(_parent, title, text, *_args):
        asked.append(title)
        return answer[0]

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    window.settings.set_preset("high")
    fast(window)
    assert window.protect() is None  # "No": nothing runs, nothing changes
    assert asked == ["Replace the protected copy?"] and dest.read_bytes() == first
    answer[0] = QMessageBox.StandardButton.Yes
    protect_and_wait(qtbot, window)
    assert len(asked) == 2
    item = window.queue.item(0)
    assert item.status == DONE and item.message != "kept the earlier copy"
    assert dest.read_bytes() != first


def test_failed_photo_waits_for_retry(qtbot, window: MainWindow, tmp_path: Path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 50)
    window.add_paths([bad])
    protect_and_wait(qtbot, window)
    assert window.queue.item(0).status == FAILED
    assert window.protect() is None  # the failed one is selected: Protect says what to do
    assert "Retry failed" in window.status.text()
    assert "could not be protected" in window.compare.loading.text()
    window.add_paths([make_photo(tmp_path / "good.png")])
    seen: list[int] = []
    window.record.connect(lambda r: seen.append(getattr(r, "row", -1)))
    protect_and_wait(qtbot, window)
    assert 0 not in seen  # the failed one was not run again
    assert "failed" not in window.status.text()
    assert window.queue.item(0).status == FAILED
    assert window.queue.item(1).status == DONE
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS):
        window.retry_action.trigger()
    assert 0 in seen and window.queue.item(0).status == FAILED
    assert "1 failed" in window.status.text()


def test_pictures_are_kept_for_few_photos(qtbot, window: MainWindow, tmp_path: Path):
    from cloak.gui.analysis import KEEP_PICTURES

    n = KEEP_PICTURES + 2
    window.add_paths([make_photo(tmp_path / f"p{i}.png", seed=i) for i in range(n)])
    protect_and_wait(qtbot, window)
    for r in range(n):
        window.queue_view.setCurrentIndex(window.queue.index(r))
    qtbot.waitUntil(lambda: window.analyser is None, timeout=RUN_TIMEOUT_MS)
    kept = [it for it in window.queue.items if it.pictures is not None]
    assert 1 <= len(kept) <= KEEP_PICTURES
    # A photo whose pictures were dropped is read again from disk when selected.
    window.queue_view.setCurrentIndex(window.queue.index(0))
    qtbot.waitUntil(
        lambda: window.compare.shown_uid == window.queue.item(0).uid, timeout=RUN_TIMEOUT_MS
    )


def test_preset_notes_state_the_presets_numbers(window: MainWindow):
    from cloak.config import PRESETS
    from cloak.gui.state import preset_note

    for name in PRESETS:
        c = preset(name)
        note = preset_note(name)
        assert f"at most {c.eps * 255:.0f}/255 where texture hides it" in note
        flat = c.eps * 255 * c.perceptual_floor
        assert f"{flat:.0f}/255 on flat areas" in note or f"{flat:.1f}/255 on flat areas" in note
        if c.min_psnr is not None:
            assert f"PSNR at least {c.min_psnr:g} dB" in note
        else:
            assert "no PSNR floor" in note
        assert "invisible" not in note and "only when you zoom" not in note
        assert "largest change appear under Scores" in note
    # The presets whose pattern shows on flat backgrounds (seen on img13 and img58) say so.
    for name in ("standard", "high", "max"):
        assert "flat" in preset_note(name) and "background" in preset_note(name)
    assert "largest change 22-27/255" in preset_note("standard")
    assert "largest change 25-29/255" in preset_note("high")
    # Every preset states what a saved file was measured to be.
    for name in ("low", "standard", "high", "max"):
        assert "saved as JPEG (quality 95): PSNR" in preset_note(name)


def test_eta_counts_only_the_photos_still_to_do(tmp_path: Path, tiny_encoder):
    """No ETA before a photo is done; afterwards it predicts the rest of the run."""
    from cloak.gui.worker import FixedEncoders, ItemDone, ItemProgress, protect_task

    config = preset("standard").replace(
        steps=25, work_size=64, transforms=TransformConfig(enabled=False), encoders=("taef2",)
    )
    sources = [make_photo(tmp_path / f"p{i}.png", seed=i) for i in range(4)]
    task = protect_task(
        [0, 1, 2, 3],
        [11, 12, 13, 14],
        sources,
        config,
        tmp_path / "out",
        FixedEncoders(lambda names: ([tiny_encoder], {})),
    )
    first: dict[int, tuple[float | None, float]] = {}
    done: list[int] = []
    for rec in task(lambda: False):
        if isinstance(rec, ItemProgress) and rec.row not in first:
            first[rec.row] = (rec.eta_s, time.perf_counter())
        elif isinstance(rec, ItemDone):
            done.append(rec.row)
    end = time.perf_counter()
    assert done == [0, 1, 2, 3]
    assert first[0][0] is None
    for row in (1, 2, 3):
        eta, at = first[row]
        actual = end - at
        assert eta is not None and 0.4 * actual <= eta <= 2.5 * actual, (row, eta, actual)
    # Fewer photos to do, less time left: the ETA at the last photo is below the one at the
    # second (it counts only what is still to do).
    assert first[3][0] < first[1][0]


def test_eta_learns_from_earlier_runs_with_the_same_settings(
    qtbot, window: MainWindow, tmp_path: Path
):
    """Photos added after a run get an ETA from their first photo on when the settings are
    the same (what a photo costs depends on the settings, not on the run); other settings
    start afresh."""
    from cloak.gui.worker import ItemProgress

    def first_eta() -> float | None:
        etas: list[float | None] = []

        def on(rec) -> None:
            if isinstance(rec, ItemProgress):
                etas.append(rec.eta_s)

        window.record.connect(on)
        protect_and_wait(qtbot, window)
        window.record.disconnect(on)
        return etas[0]

    window.add_paths([make_photo(tmp_path / "a.png", seed=1)])
    assert first_eta() is None  # nothing known yet
    window.add_paths([make_photo(tmp_path / "b.png", seed=2)])
    eta = first_eta()
    assert eta is not None and eta > 0
    window.settings.override(steps=4)
    window.add_paths([make_photo(tmp_path / "c.png", seed=3)])
    assert first_eta() is None


def test_scores_panel_names_measured_and_held_out_encoders(qtbot):
    from cloak.gui.scores_panel import ScoresPanel
    from cloak.gui.worker import AiView
    from cloak.jobs import PhotoResult
    from cloak.metrics import EncoderScore, Report
    from cloak.verdict import verdict

    scores = [
        EncoderScore("taef2", "direct", 10.0, 0.5, 6.0, 1024),
        EncoderScore("taef2", "720/q70", 5.0, 0.6, 3.0, 1024),
        EncoderScore("taesd", "direct", 1.0, 0.9, 1.5, 1024),
    ]
    report = Report(40.0, 0.98, 8.0, 100, 80, scores)
    panel = ScoresPanel()
    qtbot.addWidget(panel)
    result = PhotoResult(Path("a.png"), Path("a_protected.png"), "protected", 1.0, 40.0, 8.0)
    panel.show_scores(result, AiView(1, "taef2", None, None, report, True, 1.0), ("taef2",))
    text = panel.text()
    v = verdict(report, attacked=("taef2",))
    assert v.level == "degraded" and v.sentence in text
    assert "taef2 at 1024 px, after 720/q70 re-post" in text
    assert "Measured on: taef2." in text
    assert "taesd (latent shift x1.5)" in text
    assert "color:#b35c00" in text and "color:#c92a2a" in text  # per-row level colours
    assert "not measured here" not in text
    # Without a held-out encoder in the report, the panel says none was measured.
    only = Report(40.0, 0.98, 8.0, 100, 80, scores[:2])
    panel.show_scores(result, AiView(1, "taef2", None, None, only, True, 1.0), ("taef2",))
    assert "Measured on: taef2." in panel.text()
    assert "held out) are not measured here" in panel.text()


def test_measurement_reuses_the_originals_side_and_measures_only_what_is_shown(
    tmp_path: Path, tiny_encoder
):
    """The AI view and scores cost little: posted as is at one size, no latent-shift encode,
    and a second protected copy of the same photo (a redo) encodes only the protected side."""
    from cloak.gui.worker import AiView, analyse_task

    src = make_photo(tmp_path / "a.png", seed=1)
    copies = []
    for k in range(2):
        arr = np.asarray(Image.open(src), dtype=np.int16)
        noise = np.random.default_rng(k).integers(-4, 5, arr.shape)
        copies.append(tmp_path / f"a_protected{k}.png")
        Image.fromarray(np.clip(arr + noise, 0, 255).astype(np.uint8)).save(copies[-1])
    with counting_encodes(tiny_encoder) as encodes:
        cache: dict = {}
        seen = []
        for dest in copies:
            task = analyse_task(1, src, dest, [tiny_encoder], 64, need_pictures=False, cache=cache)
            recs = list(_drain(task))
            seen.append(encodes.reset())
            (ai,) = [r for r in recs if isinstance(r, AiView)]
            assert [(s.scenario, s.size) for s in ai.report.scores] == [("direct", 64)]
            assert ai.original is not None and ai.protected is not None
    assert seen == [2, 1]  # original + protected, then the protected copy only


def test_first_measurement_reuses_the_attacks_round_trip(
    qtbot, window: MainWindow, tmp_path: Path, tiny_encoder, monkeypatch
):
    """The attack computed the original's round trip at the work size; the AI view shown is
    that round trip, and the measurement encodes only the protected copy. Only the last few
    done photos keep it (3 MB per encoder at 1024 px)."""
    import cloak.metrics
    from cloak.gui.analysis import KEEP_PICTURES
    from cloak.gui.worker import analyse_task

    seeded: list[list[str]] = []
    real_seed = cloak.metrics.seed_cache

    def spy(*args, **kwargs):
        seeded.append(real_seed(*args, **kwargs))
        return seeded[-1]

    monkeypatch.setattr(cloak.metrics, "seed_cache", spy)
    window.add_paths([make_photo(tmp_path / "a.png")])
    with qtbot.waitSignal(window.analysis_ready, timeout=RUN_TIMEOUT_MS):
        window.protect()
    item = window.queue.item(0)
    (clean,) = item.result.clean
    assert seeded == [["taef2"]]
    shown = clean.roundtrip[0].permute(1, 2, 0).numpy()
    assert np.array_equal(item.ai.original, shown)
    # The same photo measured from its files alone: same score, one encode more.
    counts, scores = [], []
    with counting_encodes(tiny_encoder) as encodes:
        for seeds in ((), [clean]):
            task = analyse_task(
                1,
                item.source,
                item.dest,
                [tiny_encoder],
                64,
                need_pictures=False,
                cache={},
                bf16=clean.bf16,
                seeds=seeds,
            )
            (ai,) = list(_drain(task))
            counts.append(encodes.reset())
            scores.append(ai.report.damage("taef2"))
    assert counts == [2, 1]
    assert scores[1] == pytest.approx(scores[0])
    # More photos, the person looking at the last one: only that one keeps its round trips
    # (the others' would be dropped unused); one not looked at is measured from its files
    # when it is shown, with the same score as from the attack's round trip.
    n = KEEP_PICTURES + 1
    window.add_paths([make_photo(tmp_path / f"b{i}.png", seed=i) for i in range(n)])
    window.queue_view.setCurrentIndex(window.queue.index(n))
    seeded.clear()
    with qtbot.waitSignal(window.analysis_ready, timeout=RUN_TIMEOUT_MS):
        window.protect()
    assert seeded == [["taef2"]]
    kept = [bool(window.queue.item(r).result.clean) for r in range(1, n + 1)]
    assert kept == [False] * (n - 1) + [True]
    with qtbot.waitSignal(window.analysis_ready, timeout=RUN_TIMEOUT_MS):
        window.queue_view.setCurrentIndex(window.queue.index(1))
    assert window.queue.item(1).ai is not None and seeded == [["taef2"]]


def _drain(task):
    gen = task(lambda: False)
    while True:
        try:
            yield next(gen)
        except StopIteration:
            return


def test_qt_binding_keeps_none_and_true_alive(qtbot, window: MainWindow, tmp_path: Path):
    """PySide6 6.12.0 returns None and True without a reference from signal emits, model
    ``data()`` overrides and ``processEvents``: on Python 3.11 every call takes one reference
    from them, and a session aborts ("deallocating None") after a few photos. Many such calls
    must leave their counts where they were."""
    import sys

    from PySide6.QtWidgets import QApplication

    window.add_paths([make_photo(tmp_path / "a.png")])
    index = window.queue.index(0)
    none0, true0 = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(500):
        index.data(Qt.ItemDataRole.WhatsThisRole)  # through Qt, to our override: None
        window.compare.mode_changed.emit("split")
        QApplication.processEvents()
    assert sys.getrefcount(None) > none0 - 100
    assert sys.getrefcount(True) > true0 - 100


def test_saved_file_figures_are_those_of_the_file_written(qtbot, window: MainWindow, tmp_path):
    """ "How it looks (saved file)" is the JPEG on disk, compression included, not the
    protection before saving."""
    from cloak.metrics import linf_255, psnr
    from cloak.photo_io import load_photo
    from cloak.tensors import to_tensor

    src = make_photo(tmp_path / "p.png")
    jpg = tmp_path / "p.jpg"
    Image.open(src).save(jpg, quality=90)
    window.add_paths([jpg])
    protect_and_wait(qtbot, window)
    item = window.queue.item(0)
    assert item.status == DONE and item.dest.suffix == ".jpg"
    original = to_tensor(load_photo(jpg).rgb)
    written = to_tensor(load_photo(item.dest).rgb)
    assert item.result.linf_255 == pytest.approx(linf_255(written, original))
    assert item.result.psnr == pytest.approx(psnr(written, original))


def test_pictures_of_a_large_pair_are_display_size_and_show_the_change() -> None:
    """The compare view's pictures of a pair larger than the display size: all three at display
    size, and the heat lights up where the photo changed (and stays black elsewhere)."""
    import torch

    from cloak.gui.worker import DISPLAY_LONG_SIDE, pictures_of

    original = torch.full((1, 3, 1200, 2000), 0.5)
    protected = original.clone()
    protected[..., :600, :1000] += 8 / 255  # the top-left quarter changed by 8/255
    pics = pictures_of(7, original, protected)
    for arr in (pics.original, pics.protected, pics.heat):
        assert arr is not None and arr.shape == (960, DISPLAY_LONG_SIDE, 3)
    assert pics.heat is not None
    assert pics.heat[:400, :700, 0].min() > 200  # x10 of 8/255 is about a third: red
    assert pics.heat[600:, 1000:].max() == 0
