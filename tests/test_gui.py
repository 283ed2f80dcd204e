"""The desktop app with a tiny random encoder: open, protect, compare, cancel, errors, settings."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent, QKeySequence

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


def test_shortcuts_are_bound(window: MainWindow):
    def keys(action) -> set[str]:
        return {s.toString() for s in action.shortcuts()}

    assert "Ctrl+O" in keys(window.open_action)
    assert "Ctrl+Return" in keys(window.protect_action)
    assert "Esc" in keys(window.cancel_action)
    assert "Ctrl+S" in keys(window.save_action)
    assert [keys(a) for a in window.mode_actions] == [{"1"}, {"2"}, {"3"}, {"4"}]
    assert QKeySequence("Ctrl+0").toString() == "Ctrl+0"


def test_compare_modes_zoom_and_pan(qtbot, window: MainWindow, tmp_path: Path):
    window.add_paths([make_photo(tmp_path / "a.png")])
    with qtbot.waitSignal(window.analysis_ready, timeout=RUN_TIMEOUT_MS):
        window.protect()
    cmp = window.compare
    a = cmp.analysis
    assert a is not None and a.report is not None
    assert a.original.shape == a.protected.shape == a.heat.shape == (64, 80, 3)
    assert a.ai_original is not None and a.encoder == "taef2"
    assert {s.scenario for s in a.report.scores} == {"direct", "1080/q80", "720/q70"}
    assert "PSNR" in cmp.scores.text() and "720 px" in cmp.scores.text()
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
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS):
        window.cancel_action.trigger()
    assert worker.cancelled
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


def test_first_run_download_is_shown(qtbot, make_window, tiny_encoder, tmp_path: Path):
    class Loader:
        downloaded: list[str] = []

        def to_download(self, names):
            return list(names)

        def download(self, name):
            time.sleep(0.05)
            self.downloaded.append(name)

        def __call__(self, names):
            return [tiny_encoder], {}

    loader = Loader()
    win = make_window(loader)
    win.settings.override(encoders=("taef2",))
    seen: list[str] = []
    win.add_paths([make_photo(tmp_path / "p.png")])
    worker = win.protect()
    assert worker is not None
    worker.yielded.connect(lambda rec: seen.append(getattr(rec, "message", "")))
    with qtbot.waitSignal(worker.finished, timeout=RUN_TIMEOUT_MS):
        pass
    qtbot.waitUntil(lambda: win.protect_button.isEnabled(), timeout=5000)
    assert loader.downloaded == ["taef2"]
    assert any("downloading the weights of taef2" in m for m in seen)


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
    panel.preset.setCurrentIndex(panel.preset.findData("high"))
    assert w1.settings.config.min_psnr == preset("high").min_psnr
    panel.preset.setCurrentIndex(panel.preset.findData("low"))
    panel.encoders["taesdxl"].setChecked(False)
    panel.format.setCurrentIndex(panel.format.findData("JPEG"))
    panel.strip_metadata.setChecked(True)
    w1.close()

    w2 = make()
    c = w2.settings.config
    assert w2.settings.preset_name == "low"
    assert w2.settings_panel.preset.currentData() == "low"
    assert c.eps == pytest.approx(4 / 255) and c.steps == low.steps
    assert "taesdxl" not in c.encoders and "taef2" in c.encoders
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
