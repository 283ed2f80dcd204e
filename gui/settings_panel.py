"""Settings: the preset selector with its note, and the Advanced panel."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cloak.config import PRESETS
from cloak.device import (
    LOW_MEMORY_AUTO_BELOW,
    LowMemoryChoice,
    low_memory_active,
    low_memory_supported,
)
from cloak.gui.state import SettingsModel, preset_note

PRESET_TITLES = {**{k: k.capitalize() for k in PRESETS}, "custom": "Custom"}
FORMATS = [("Same as the original", None), ("JPEG", "JPEG"), ("PNG", "PNG"), ("WebP", "WEBP")]


def registry_names() -> list[tuple[str, str]]:
    """(name, tooltip) of every registered encoder."""
    from cloak.models import REGISTRY

    return [(n, f"{s.latent_space}: {s.description}") for n, s in REGISTRY.items()]


class SettingsPanel(QWidget):
    """Edits a :class:`SettingsModel`; it only lays out and mirrors the model."""

    def __init__(self, model: SettingsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self._updating = False
        self._missing: list[str] = []
        # This run's memory mode when it was set from outside the box (None: by the box).
        self._forced: bool | None = None
        self.preset = QComboBox()
        self.preset.setObjectName("preset")
        for key, title in PRESET_TITLES.items():
            self.preset.addItem(title, key)
        self.note = QLabel()
        self.note.setObjectName("preset-note")
        self.note.setWordWrap(True)
        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)

        self.eps = QDoubleSpinBox()
        self.eps.setRange(1.0, 32.0)
        self.eps.setDecimals(1)
        self.eps.setSingleStep(1.0)
        self.eps.setSuffix(" / 255")
        self.eps.setToolTip(
            "Largest change of any pixel value: higher is stronger and more visible"
        )
        self.steps = QSpinBox()
        self.steps.setRange(1, 5000)
        self.steps.setToolTip("Optimisation steps: more is stronger and slower")
        self.encoders: dict[str, QCheckBox] = {}
        enc_box = QWidget()
        grid = QGridLayout(enc_box)
        grid.setContentsMargins(0, 0, 0, 0)
        for i, (name, tip) in enumerate(registry_names()):
            cb = QCheckBox(name)
            cb.setToolTip(tip)
            self.encoders[name] = cb
            grid.addWidget(cb, i // 2, i % 2)
        self.format = QComboBox()
        for title, value in FORMATS:
            self.format.addItem(title, value)
        self.out_dir = QLineEdit()
        self.out_dir.setPlaceholderText("Beside each original (name_protected)")
        self.out_dir.setReadOnly(True)
        self.browse = QPushButton("Choose...")
        self.reset_dir = QPushButton("Beside originals")
        self.strip_metadata = QCheckBox("Remove all metadata (EXIF)")
        self.strip_gps = QCheckBox("Remove location (GPS)")
        self.overwrite = QCheckBox("Replace earlier protected copies")
        self.low_memory = QCheckBox("Use less memory (slower)")
        self.low_memory.setToolTip(
            "For computers with little free memory. On a CPU without bf16, protecting then "
            "needs up to about a quarter less memory and takes up to about 30 % longer; "
            "the protected photos are the same. Cloak turns it on by itself when less than "
            f"{LOW_MEMORY_AUTO_BELOW / 1e9:.0f} GB of memory is free as it starts."
        )
        self.low_memory_note = QLabel("Takes effect the next time Cloak starts.")
        self.low_memory_note.setObjectName("low-memory-note")
        self.low_memory_note.setWordWrap(True)
        # Low-memory mode tunes glibc's allocator: elsewhere the box would change nothing.
        self.low_memory.setVisible(low_memory_supported())

        self.advanced = QGroupBox()
        self.advanced.setObjectName("advanced")
        form = QFormLayout(self.advanced)
        form.addRow("Budget", self.eps)
        form.addRow("Steps", self.steps)
        form.addRow("Encoders", enc_box)
        form.addRow("Format", self.format)
        dir_row = QHBoxLayout()
        dir_row.addWidget(self.out_dir, 1)
        dir_row.addWidget(self.browse)
        form.addRow("Folder", dir_row)
        form.addRow("", self.reset_dir)
        form.addRow("", self.strip_gps)
        form.addRow("", self.strip_metadata)
        form.addRow("", self.overwrite)
        form.addRow("", self.low_memory)
        form.addRow("", self.low_memory_note)
        self.advanced.setVisible(False)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.addWidget(QLabel("Protection"))
        top.addWidget(self.preset, 1)
        lay.addLayout(top)
        lay.addWidget(self.note)
        lay.addWidget(self.advanced_toggle)
        lay.addWidget(self.advanced)

        self.preset.currentIndexChanged.connect(self._preset_picked)
        self.advanced_toggle.toggled.connect(self.show_advanced)
        self.eps.valueChanged.connect(self._edited)
        self.steps.valueChanged.connect(self._edited)
        for cb in self.encoders.values():
            cb.toggled.connect(self._edited)
        self.format.currentIndexChanged.connect(self._edited)
        self.strip_metadata.toggled.connect(self._edited)
        self.strip_gps.toggled.connect(self._edited)
        self.overwrite.toggled.connect(self._edited)
        self.low_memory.toggled.connect(self._low_memory_toggled)
        self.browse.clicked.connect(self._choose_dir)
        self.reset_dir.clicked.connect(lambda: self.model.set_out_dir(None))
        model.config_changed.connect(self.refresh)
        model.preset_changed.connect(self.refresh)
        model.out_dir_changed.connect(self.refresh)
        model.low_memory_changed.connect(self.refresh)
        self.refresh()

    def set_missing(self, names: list[str]) -> None:
        """Encoders chosen but not on this computer: shown unticked, kept in the job."""
        self._missing = list(names)
        self.refresh()

    def show_advanced(self, on: bool) -> None:
        self.advanced.setVisible(on)
        self.advanced_toggle.setChecked(on)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    def refresh(self, *_: object) -> None:
        """Mirror the model into the widgets."""
        self._updating = True
        try:
            m, c = self.model, self.model.config
            self.preset.setCurrentIndex(self.preset.findData(m.preset_name))
            self.note.setText(preset_note(m.preset_name, c))
            self.eps.setValue(c.eps * 255)
            self.steps.setValue(c.steps)
            for name, cb in self.encoders.items():
                # Ticked = will be used: chosen and on this computer.
                absent = name in self._missing
                cb.setChecked(name in c.encoders and not absent)
                cb.setText(f"{name} (not downloaded)" if absent else name)
            self.format.setCurrentIndex(max(0, self.format.findData(c.output.format)))
            self.strip_metadata.setChecked(c.output.strip_metadata)
            self.strip_gps.setChecked(c.output.strip_gps)
            self.overwrite.setChecked(c.output.overwrite)
            self.out_dir.setText(str(m.out_dir) if m.out_dir else "")
            self.low_memory.setChecked(m.low_memory if self._forced is None else self._forced)
            # The mode is chosen when the app starts: say so while the choice differs, or
            # that this run's mode was set from outside.
            self.low_memory_note.setVisible(
                low_memory_supported()
                and (self._forced is not None or m.low_memory != low_memory_active())
            )
        finally:
            self._updating = False

    def _preset_picked(self, index: int) -> None:
        if not self._updating:
            self.model.set_preset(self.preset.itemData(index))

    def _edited(self, *_: object) -> None:
        if self._updating:
            return
        m = self.model
        names = [n for n, cb in self.encoders.items() if cb.isChecked()]
        # A chosen encoder that is missing stays chosen until downloaded or unchosen by hand.
        names += [n for n in m.config.encoders if n in self._missing and n not in names]
        if not names:
            # At least one encoder: undo the last uncheck.
            self.refresh()
            return
        m.set_encoders(names)
        m.set_eps_255(self.eps.value())
        m.set_steps(self.steps.value())
        m.set_output(
            format=self.format.currentData(),
            strip_metadata=self.strip_metadata.isChecked(),
            strip_gps=self.strip_gps.isChecked(),
            overwrite=self.overwrite.isChecked(),
        )

    def set_low_memory_choice(self, choice: LowMemoryChoice) -> None:
        """How this run's memory mode was chosen (:func:`cloak.device.choose_low_memory`).

        Set from outside the box (the command line, ``CLOAK_LOW_MEMORY``, or little free
        memory), the box shows this run's mode, not editable, and the note says why; chosen by
        the box (saved or not), nothing changes.
        """
        if choice.why == "asked":
            text = (
                "On for this run (--low-memory or CLOAK_LOW_MEMORY=1)."
                if choice.on
                else "Off for this run (--no-low-memory or CLOAK_LOW_MEMORY=0)."
            )
        elif choice.why == "short" and choice.free is not None:
            text = (
                f"On for this run: {choice.free / 1e9:.1f} GB of memory was free when Cloak "
                f"started, under the {LOW_MEMORY_AUTO_BELOW / 1e9:.0f} GB the faster mode may "
                "need."
            )
        else:
            return
        self._forced = choice.on
        self.low_memory.setEnabled(False)
        self.low_memory_note.setText(text)
        self.refresh()

    def _low_memory_toggled(self, on: bool) -> None:
        if not self._updating:
            self.model.set_low_memory(on)

    def _choose_dir(self) -> None:
        start = str(self.model.out_dir or Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Output folder", start)
        if folder:
            self.model.set_out_dir(folder)
