"""The desktop app shows the same failures as the CLI: per photo, in the queue, batch goes on."""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_cases import leftovers, sha256, smooth_rgb
from PIL import Image

pytest.importorskip("PySide6")

from PySide6.QtCore import QSettings, Qt  # noqa: E402

from cloak.config import TransformConfig  # noqa: E402
from cloak.gui.main_window import MainWindow  # noqa: E402
from cloak.gui.state import DONE, FAILED, QueueModel  # noqa: E402


@pytest.fixture
def window(qtbot, tmp_path: Path, tiny_encoder) -> MainWindow:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the runner is shared; more threads only fight
    settings = QSettings(str(tmp_path / "cloak.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, encoder_loader=lambda names: ([tiny_encoder], {}))
    qtbot.addWidget(win)
    win.settings.override(steps=2, work_size=64, transforms=TransformConfig(enabled=False))
    win.attacker_long_side = 64
    yield win
    torch.set_num_threads(threads)


def test_queue_shows_why_each_bad_photo_failed(qtbot, window: MainWindow, tmp_path: Path):
    folder = tmp_path / "album"
    folder.mkdir()
    corrupt = folder / "a corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    empty = folder / "b empty.png"
    empty.write_bytes(b"")
    good = folder / "c good.png"
    Image.fromarray(smooth_rgb(72, 48)).save(good)
    before = {p: sha256(p) for p in (corrupt, empty, good)}

    assert window.add_paths([folder]) == 3
    with qtbot.waitSignal(window.run_finished, timeout=90_000):
        window.protect_action.trigger()

    model = window.queue
    rows = {model.item(r).source.name: r for r in range(model.rowCount())}
    shown = {
        name: model.data(model.index(row), QueueModel.StatusRole) for name, row in rows.items()
    }
    tips = {
        name: model.data(model.index(row), Qt.ItemDataRole.ToolTipRole)
        for name, row in rows.items()
    }
    bad = model.item(rows["a corrupt.jpg"])
    assert bad.status == FAILED
    assert shown["a corrupt.jpg"].startswith("failed: ")
    assert "damaged" in shown["a corrupt.jpg"] and "re-" in shown["a corrupt.jpg"]
    assert "a corrupt.jpg" in tips["a corrupt.jpg"]
    empty_item = model.item(rows["b empty.png"])
    assert empty_item.status == FAILED
    assert "empty (0 bytes)" in shown["b empty.png"]
    assert model.item(rows["c good.png"]).status == DONE, shown["c good.png"]
    out = folder / "c good_protected.png"
    with Image.open(out) as im:
        assert im.size == (72, 48)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["a corrupt.jpg", "b empty.png", "c good.png", "c good_protected.png"]
    )
    assert {p: sha256(p) for p in before} == before
    assert not leftovers(folder)
    assert window.protect_button.isEnabled()
