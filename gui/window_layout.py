"""The main window's widgets, layout and menus: where things are, not what they do.

:func:`build_layout` and :func:`build_menus` are called once by
:class:`~cloak.gui.main_window.MainWindow`; every slot they connect lives there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cloak.gui.compare_view import MODE_TITLES, MODES, CompareView
from cloak.gui.encoder_bar import EncoderBar
from cloak.gui.queue_view import QueueView
from cloak.gui.settings_panel import SettingsPanel

if TYPE_CHECKING:
    from cloak.gui.main_window import MainWindow


def build_layout(win: MainWindow) -> None:
    """Create the window's widgets as attributes of ``win``, lay them out and connect the
    buttons to ``win``'s slots."""
    win.queue_view = QueueView(win.queue)
    win.settings_panel = SettingsPanel(win.settings)
    win.compare = CompareView()
    win.protect_button = QPushButton("Protect")
    win.protect_button.setObjectName("protect")
    win.cancel_button = QPushButton("Cancel")
    win.open_button = QPushButton("Open photos...")
    win.save_button = QPushButton("Save as...")
    win.save_all_button = QPushButton("Save all...")
    win.folder_button = QPushButton("Open output folder")
    win.encoder_bar = EncoderBar()
    win.banner = QFrame()
    win.banner.setObjectName("banner")
    win.banner_text = QLabel()
    win.banner_text.setWordWrap(True)
    win.banner_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    close = QToolButton()
    close.setText("x")
    close.clicked.connect(win.banner.hide)
    b = QHBoxLayout(win.banner)
    b.addWidget(win.banner_text, 1)
    b.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
    win.banner.hide()
    win.progress = QProgressBar()
    win.progress.setRange(0, 1000)
    win.progress.setTextVisible(False)
    win.progress.setMaximumHeight(10)
    win.status = QLabel("Ready.")

    left = QWidget()
    lv = QVBoxLayout(left)
    lv.setContentsMargins(0, 0, 0, 0)
    lv.addWidget(win.open_button)
    lv.addWidget(win.queue_view, 1)
    lv.addWidget(win.settings_panel)
    buttons = QHBoxLayout()
    buttons.addWidget(win.protect_button, 1)
    buttons.addWidget(win.cancel_button)
    lv.addLayout(buttons)

    right = QWidget()
    rv = QVBoxLayout(right)
    rv.setContentsMargins(0, 0, 0, 0)
    rv.addWidget(win.encoder_bar)
    rv.addWidget(win.banner)
    rv.addWidget(win.compare, 1)
    saves = QHBoxLayout()
    saves.addWidget(win.status, 1)
    saves.addWidget(win.save_button)
    saves.addWidget(win.save_all_button)
    saves.addWidget(win.folder_button)
    rv.addLayout(saves)
    rv.addWidget(win.progress)

    split = QSplitter()
    split.addWidget(left)
    split.addWidget(right)
    split.setStretchFactor(0, 0)
    split.setStretchFactor(1, 1)
    split.setSizes([300, 900])
    central = QWidget()
    cl = QVBoxLayout(central)
    cl.setContentsMargins(8, 8, 8, 8)
    cl.addWidget(split)
    win.setCentralWidget(central)
    win.resize(1280, 800)

    win.open_button.clicked.connect(win.open_dialog)
    win.protect_button.clicked.connect(win.protect)
    win.cancel_button.clicked.connect(win.cancel)
    win.save_button.clicked.connect(win.save_dialog)
    win.save_all_button.clicked.connect(win.save_all_dialog)
    win.folder_button.clicked.connect(win.open_output_folder)
    win.queue_view.selectionModel().currentChanged.connect(win._current_changed)
    win.queue.items_changed.connect(win._update_buttons)
    win.queue.item_changed.connect(win._item_changed)


def build_menus(win: MainWindow) -> None:
    """The menu bar and its shortcuts (keys 1-4 pick a compare mode), bound to ``win``."""

    def act(menu: Any, text: str, keys: Sequence[Any], slot: Any) -> QAction:
        a = QAction(text, win)
        a.setShortcuts([QKeySequence(k) for k in keys])
        a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        a.triggered.connect(slot)
        menu.addAction(a)
        return a

    bar = win.menuBar()
    f = bar.addMenu("&File")
    win.open_action = act(f, "&Open photos...", [QKeySequence.StandardKey.Open], win.open_dialog)
    act(f, "Open &folder...", ["Ctrl+Shift+O"], win.open_folder_dialog)
    f.addSeparator()
    win.save_action = act(f, "&Save as...", [QKeySequence.StandardKey.Save], win.save_dialog)
    win.save_all_action = act(f, "Save &all...", ["Ctrl+Shift+S"], win.save_all_dialog)
    act(f, "Open output &folder", [], win.open_output_folder)
    f.addSeparator()
    act(f, "&Quit", [QKeySequence.StandardKey.Quit], win.close)
    p = bar.addMenu("&Protect")
    win.protect_action = act(p, "&Protect", ["Ctrl+Return", "Ctrl+Enter"], win.protect)
    win.cancel_action = act(p, "&Cancel", ["Esc"], win.cancel)
    win.retry_action = act(p, "&Retry failed", [], win.retry_failed)
    v = bar.addMenu("&View")
    win.mode_actions = []
    for i, mode in enumerate(MODES):
        a = act(v, MODE_TITLES[mode], [str(i + 1)], lambda _=False, m=mode: win.set_mode(m))
        win.mode_actions.append(a)
    v.addSeparator()
    st = win.compare.state
    act(v, "Zoom &in", ["Ctrl+=", "Ctrl++", QKeySequence.StandardKey.ZoomIn], st.zoom_in)
    act(v, "Zoom &out", ["Ctrl+-", QKeySequence.StandardKey.ZoomOut], st.zoom_out)
    act(v, "&Fit", ["Ctrl+0"], st.reset)
