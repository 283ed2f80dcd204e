"""The app's state: the photo queue and the settings, as QObjects with ``*_changed`` signals."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QSettings, Qt, Signal
from PySide6.QtGui import QImage

from cloak.config import PRESETS, ProtectConfig, preset
from cloak.errors import CloakError
from cloak.jobs import PhotoResult
from cloak.photo_io import OUTPUT_FORMATS, is_supported, iter_photos

WAITING, PROTECTING, DONE, FAILED = "waiting", "protecting", "done", "failed"
_UIDS = itertools.count(1)

_JOB_FIELDS = ("encoders", "device", "output", "max_pixels")
"""Fields a preset change keeps: what to attack with and how to write, not how to attack."""

PRESET_WORDS = {
    "low": "Least visible; the AI view of a portrait barely changes.",
    "standard": (
        "The default. On portraits the AI view comes out barely changed to degraded, not "
        "broken (measured: docs/EVALUATION.md)."
    ),
    "high": "Stronger, more visible than Standard. About 1.6x the time.",
    "max": (
        "For the one photo that matters: takes about 10x the time (about 2 minutes per "
        "portrait, more on a laptop); the AI view gets wrong colours and grain, but a face "
        "stays recognisable."
    ),
}
"""The one qualitative word per preset; every number shown beside it comes from the preset."""

PRESET_SEEN = {
    "low": (
        "Measured on three portraits saved as JPEG (quality 95): PSNR 41.9-44.1 dB, largest "
        "change 12-17/255, most of it the save's own."
    ),
    "standard": (
        "Measured on three portraits saved as JPEG (quality 95): PSNR 35.5-36.2 dB, largest "
        "change 22-27/255. On a flat or smooth background (a white wall, a blue screen, a "
        "clear sky) a pattern of lines or a grid shows, even at the fitted size, and skin "
        "looks mottled at 100 %."
    ),
    "high": (
        "Measured on three portraits saved as JPEG (quality 95): PSNR 33.2-34.0 dB, largest "
        "change 25-29/255 (33.0-34.5 dB on ten portraits before the save). On a flat or "
        "smooth background a grid-like pattern shows even at the fitted "
        "size; at 100 % hair gets colour fringes and skin looks mottled."
    ),
    "max": (
        "Measured on three portraits saved as JPEG (quality 95): PSNR 31.7-33.7 dB, largest "
        "change 27-30/255 (28.6-34.1 dB on ten portraits before the save, median 31.6): a "
        "pattern shows on flat backgrounds and grain on skin."
    ),
}
"""What a person sees on a saved file, as measured and looked at on real portraits."""


def _levels(value: float) -> str:
    v = value * 255
    return f"{v:.0f}" if abs(v - round(v)) < 1e-6 else f"{v:.1f}"


def preset_note(name: str, config: ProtectConfig | None = None) -> str:
    """What a preset promises, in numbers read from the preset itself, and what a saved file
    was measured and seen to be.

    ``eps`` is a hard cap on the change of every pixel value before saving (with
    ``perceptual``, only where texture hides it; flat areas get ``perceptual_floor`` of it);
    ``min_psnr`` is the floor the perturbation is projected to. A JPEG or WebP save adds its own
    compression changes on top, so the saved file's largest change is higher: the scores panel
    shows the measured figures of each saved photo.
    """
    if name == "custom" or name not in PRESETS:
        words, seen, c = "Custom settings from the Advanced panel.", "", config
    else:
        words, seen, c = PRESET_WORDS.get(name, ""), PRESET_SEEN.get(name, ""), preset(name)
    if c is None:
        return words
    cap = _levels(c.eps)
    if c.perceptual and c.perceptual_floor < 1.0:
        budget = (
            f"Before saving, each pixel value moves by at most {cap}/255 where texture hides "
            f"it and {_levels(c.eps * c.perceptual_floor)}/255 on flat areas"
        )
    else:
        budget = f"Before saving, each pixel value moves by at most {cap}/255"
    floor = f", PSNR at least {c.min_psnr:g} dB" if c.min_psnr is not None else "; no PSNR floor"
    return (
        f"{words} {budget}{floor}. A JPEG or WebP save adds compression changes on top. "
        f"{seen + ' ' if seen else ''}Each saved file's own PSNR and largest change appear "
        "under Scores."
    )


@dataclass
class QueueItem:
    """One photo in the queue.

    Attributes:
        source: The original (never modified).
        status: ``waiting``, ``protecting``, ``done`` or ``failed``.
        progress: Fraction of this photo's protection done, 0..1.
        message: The failure reason, or a note about the result.
        result: The engine's result once finished.
        pictures: The compare view's pictures (display size, uint8); dropped for photos not
            shown recently and read again from disk when needed.
        ai: The AI view and scores (:class:`~cloak.gui.worker.AiView`); its pictures are
            dropped like ``pictures``, its scores kept.
        attacked: The encoders the protected copy was made against (the verdict's basis).
        thumbnail: A small preview, loaded when the item is added.
        uid: Identity of this item: records from workers name it, so a late result is never
            shown for another photo.
    """

    source: Path
    status: str = WAITING
    progress: float = 0.0
    message: str = ""
    result: PhotoResult | None = None
    pictures: Any = None
    ai: Any = None
    attacked: tuple[str, ...] = ()
    thumbnail: QImage | None = None
    uid: int = field(default_factory=lambda: next(_UIDS))

    @property
    def dest(self) -> Path | None:
        return self.result.dest if self.result is not None else None

    def status_text(self) -> str:
        if self.status == PROTECTING:
            return f"protecting {round(self.progress * 100)}%"
        if self.status == FAILED:
            return f"failed: {self.message}"
        if self.status == DONE and self.message:
            return f"done ({self.message})"
        return self.status


THUMB_SIZE = 56


def load_thumbnail(path: Path, size: int = THUMB_SIZE) -> QImage | None:
    """A small preview read at reduced size (cheap even for large JPEGs)."""
    from PySide6.QtGui import QImageReader

    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    full = reader.size()
    if full.isValid() and full.width() > 0 and full.height() > 0:
        scale = size * 2 / max(full.width(), full.height())
        if scale < 1:
            reader.setScaledSize(full * scale)
    img = reader.read()
    return None if img.isNull() else img


class QueueModel(QAbstractListModel):
    """The photos to protect, with each one's status, progress and result."""

    StatusRole = Qt.ItemDataRole.UserRole + 1
    ProgressRole = Qt.ItemDataRole.UserRole + 2
    ItemRole = Qt.ItemDataRole.UserRole + 3

    items_changed = Signal()
    item_changed = Signal(int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._items: list[QueueItem] = []

    # Qt model API
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return item.source.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{item.source}\n{item.status_text()}"
        if role == Qt.ItemDataRole.DecorationRole:
            return item.thumbnail
        if role == self.StatusRole:
            return item.status_text()
        if role == self.ProgressRole:
            return item.progress
        if role == self.ItemRole:
            return item
        return None

    # Our API
    @property
    def items(self) -> list[QueueItem]:
        return list(self._items)

    def item(self, row: int) -> QueueItem:
        return self._items[row]

    def add_paths(self, paths: Iterable[str | Path], thumbnails: bool = True) -> int:
        """Queue photos and the photos inside folders; return how many were added.

        Paths already queued are ignored; a file that is not a photo is queued as failed so
        the person sees why it was not taken.
        """
        known = {it.source.resolve() for it in self._items}
        new: list[QueueItem] = []
        for raw in paths:
            p = Path(raw)
            if p.is_dir():
                try:
                    found = list(iter_photos(p, True))
                except (OSError, CloakError) as exc:
                    new.append(QueueItem(p, FAILED, message=str(exc)))
                    continue
                candidates = [f for f in found if not f.stem.endswith("_protected")]
            else:
                candidates = [p]
            for f in candidates:
                key = f.resolve()
                if key in known:
                    continue
                known.add(key)
                item = QueueItem(f)
                if not f.is_file():
                    item.status, item.message = FAILED, "no such file"
                elif not is_supported(f):
                    item.status = FAILED
                    item.message = "not a supported photo type (JPEG, PNG, WebP, HEIC, TIFF...)"
                elif thumbnails:
                    item.thumbnail = load_thumbnail(f)
                new.append(item)
        if new:
            first = len(self._items)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            self._items.extend(new)
            self.endInsertRows()
            self.items_changed.emit()
        return len(new)

    def clear(self) -> None:
        self.beginResetModel()
        self._items.clear()
        self.endResetModel()
        self.items_changed.emit()

    def update(self, row: int, **changes: Any) -> None:
        """Change fields of one item and tell the views."""
        item = self._items[row]
        for key, value in changes.items():
            setattr(item, key, value)
        idx = self.index(row)
        self.dataChanged.emit(idx, idx)
        self.item_changed.emit(row)

    def rows_to_protect(self) -> list[int]:
        """Rows a Protect press runs: those waiting (failed ones wait for "Retry failed")."""
        return [i for i, it in enumerate(self._items) if it.status in (WAITING, PROTECTING)]

    def rows_failed(self) -> list[int]:
        """Failed rows that could run again (the file exists and is a photo type)."""
        return [
            i
            for i, it in enumerate(self._items)
            if it.status == FAILED and it.source.is_file() and is_supported(it.source)
        ]

    def rows_done(self) -> list[int]:
        return [i for i, it in enumerate(self._items) if it.status == DONE]

    def row_of(self, uid: int) -> int:
        """The row of the item with ``uid``, or -1 when it is gone."""
        for i, it in enumerate(self._items):
            if it.uid == uid:
                return i
        return -1


class SettingsModel(QObject):
    """The job's :class:`ProtectConfig` plus the output folder, persisted in QSettings.

    The config is frozen; every edit makes a validated copy with ``.replace()``.
    """

    config_changed = Signal(object)
    preset_changed = Signal(str)
    out_dir_changed = Signal(object)
    low_memory_changed = Signal(bool)

    def __init__(self, settings: QSettings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._qs = settings if settings is not None else QSettings("Cloak", "Cloak")
        self._preset = "standard"
        self._config = preset("standard").replace(output=_gui_output(preset("standard")))
        self._out_dir: Path | None = None
        self._load()

    @property
    def config(self) -> ProtectConfig:
        return self._config

    @property
    def preset_name(self) -> str:
        return self._preset

    @property
    def out_dir(self) -> Path | None:
        """Where protected copies go; None means beside each original (``*_protected``)."""
        return self._out_dir

    @property
    def low_memory(self) -> bool:
        """Low-memory mode from the app's next start (see :func:`low_memory_setting`)."""
        return low_memory_setting(self._qs)

    def set_low_memory(self, on: bool) -> None:
        if on == self.low_memory:
            return
        self._qs.setValue(LOW_MEMORY_KEY, on)
        self._qs.sync()
        self.low_memory_changed.emit(on)

    def set_preset(self, name: str) -> None:
        """Take a preset's whole recipe; the encoders, device and output options stay."""
        name = name.lower()
        if name != "custom":
            self._set(self._with_preset(name))
        self._preset = name
        self._qs.setValue("preset", name)
        self.preset_changed.emit(name)

    def set_eps_255(self, value: float) -> None:
        self._edit(eps=float(value) / 255.0)

    def set_steps(self, steps: int) -> None:
        self._edit(steps=int(steps))

    def set_encoders(self, names: Iterable[str]) -> None:
        self._edit(encoders=tuple(names))

    def set_output(self, **changes: Any) -> None:
        """Change output options (format, strip_metadata, strip_gps, overwrite, ...)."""
        out = self._config.output
        import dataclasses

        self._set(self._config.replace(output=dataclasses.replace(out, **changes)))

    def set_out_dir(self, folder: str | Path | None) -> None:
        self._out_dir = Path(folder) if folder else None
        self._qs.setValue("out_dir", str(self._out_dir) if self._out_dir else "")
        self.out_dir_changed.emit(self._out_dir)

    def override(self, **changes: Any) -> None:
        """Change config fields for this session only (command-line options): not persisted."""
        self._config = self._config.replace(**changes)
        self._match_preset(save=False)
        self.config_changed.emit(self._config)

    def _with_preset(self, name: str) -> ProtectConfig:
        """Preset ``name`` (objective, budget, steps, PSNR floor...) with this job's own
        encoders, device and output options."""
        return preset(name).replace(**{k: getattr(self._config, k) for k in _JOB_FIELDS})

    def _edit(self, **changes: Any) -> None:
        self._set(self._config.replace(**changes))
        self._match_preset()

    def _match_preset(self, save: bool = True) -> None:
        name = "custom"
        for key in PRESETS:
            if self._with_preset(key) == self._config:
                name = key
        if name != self._preset:
            self._preset = name
            if save:
                self._qs.setValue("preset", name)
            self.preset_changed.emit(name)

    def _set(self, config: ProtectConfig) -> None:
        if config == self._config:
            return
        self._config = config
        self._save()
        self.config_changed.emit(config)

    def _save(self) -> None:
        c, o = self._config, self._config.output
        qs = self._qs
        qs.setValue("eps_255", round(c.eps * 255, 3))
        qs.setValue("steps", c.steps)
        qs.setValue("encoders", ",".join(c.encoders))
        qs.setValue("format", o.format or "")
        qs.setValue("strip_metadata", o.strip_metadata)
        qs.setValue("strip_gps", o.strip_gps)
        qs.setValue("overwrite", o.overwrite)
        qs.sync()

    def _load(self) -> None:
        qs = self._qs
        try:
            name = str(qs.value("preset", "standard"))
            if name in PRESETS:
                self._preset = name
            changes: dict[str, Any] = {}
            if qs.contains("eps_255"):
                changes["eps"] = float(qs.value("eps_255")) / 255.0
            if qs.contains("steps"):
                changes["steps"] = int(qs.value("steps"))
            encoders = str(qs.value("encoders", "") or "")
            if encoders:
                changes["encoders"] = tuple(e for e in encoders.split(",") if e)
            fmt = str(qs.value("format", "") or "") or None
            out = self._config.output
            import dataclasses

            changes["output"] = dataclasses.replace(
                out,
                format=fmt if fmt in OUTPUT_FORMATS else None,
                strip_metadata=_as_bool(qs.value("strip_metadata", out.strip_metadata)),
                strip_gps=_as_bool(qs.value("strip_gps", out.strip_gps)),
                overwrite=_as_bool(qs.value("overwrite", out.overwrite)),
            )
            if name in PRESETS:
                # A named preset is taken whole (it may have changed since it was saved);
                # only a custom job keeps its own budget and steps.
                changes.pop("eps", None)
                changes.pop("steps", None)
            self._config = self._config.replace(**changes)
            if name in PRESETS:
                self._config = self._with_preset(name)
            folder = str(qs.value("out_dir", "") or "")
            self._out_dir = Path(folder) if folder else None
            if name == "custom":
                self._preset = "custom"
            else:
                self._match_preset()
        except (CloakError, ValueError, TypeError):
            # Stored settings from another version or edited by hand: fall back to defaults.
            self._preset = "standard"
            self._config = preset("standard").replace(output=_gui_output(preset("standard")))


LOW_MEMORY_KEY = "low_memory"


def low_memory_setting(settings: QSettings | None = None) -> bool:
    """The person's choice of low-memory mode (:func:`cloak.device.map_large_blocks`).

    Read by ``cloak-gui`` when it starts, before it sets up its process, so a change takes
    effect at the next start. ``settings`` defaults to the app's own (``QSettings("Cloak",
    "Cloak")``)."""
    qs = settings if settings is not None else QSettings("Cloak", "Cloak")
    return _as_bool(qs.value(LOW_MEMORY_KEY, False))


def _gui_output(config: ProtectConfig) -> Any:
    import dataclasses

    # In the app, protecting again replaces the earlier protected copy (never the original).
    return dataclasses.replace(config.output, overwrite=True)


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


def copy_protected(item: QueueItem, target: str | Path) -> Path:
    """Copy an item's protected photo to ``target``; refuses to overwrite the original."""
    import shutil

    if item.dest is None or not item.dest.is_file():
        raise FileNotFoundError(f"{item.source.name} is not protected yet")
    target = Path(target)
    if target.resolve() == item.source.resolve():
        raise ValueError(f"{target} is the original photo; Cloak never overwrites it")
    if target.resolve() != item.dest.resolve():
        shutil.copy2(item.dest, target)
    return target


def copy_all(items: Iterable[QueueItem], folder: str | Path) -> list[Path]:
    """Copy every done item's protected photo into ``folder``."""
    out: list[Path] = []
    folder = Path(folder)
    for item in items:
        if item.status == DONE and item.dest is not None:
            target = folder / item.dest.name
            if target.resolve() == item.source.resolve():
                target = folder / f"{item.dest.stem}_protected{item.dest.suffix}"
            out.append(copy_protected(item, target))
    return out
