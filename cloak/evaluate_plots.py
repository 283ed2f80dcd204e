"""The pictures of ``cloak evaluate`` (matplotlib, the ``eval`` extra, imported lazily)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloak.errors import CloakError
from cloak.report import SCENARIOS, median, score
from cloak.tensors import to_array

if TYPE_CHECKING:
    from cloak.report import Evaluation, Row, Views


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise CloakError(
            "the evaluation pictures need matplotlib: pip install 'cloak[eval]'"
        ) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _scatter_methods(
    ax: Any, ev: Evaluation, point: Callable[[Row], tuple[float, float | None]]
) -> None:
    """One point per photo and method at ``point(row)`` (skipped where y is None), each
    method's median as a larger marker, and the presets' medians joined by a line."""
    import matplotlib.pyplot as plt

    colours = plt.get_cmap("tab10")
    medians = []
    for k, m in enumerate(ev.methods):
        pts = [(x, y) for x, y in map(point, ev.rows_of(m)) if y is not None]
        if not pts:
            continue
        marker = "D" if m.startswith("photoguard") else "o"
        ax.scatter(*zip(*pts, strict=True), s=18, alpha=0.6, color=colours(k), marker=marker)
        mx, my = median([p[0] for p in pts]), median([p[1] for p in pts])
        ax.scatter([mx], [my], s=90, color=colours(k), marker=marker, edgecolors="black", label=m)
        if not m.startswith("photoguard"):
            medians.append((mx, my))
    if len(medians) > 1:
        ax.plot(*zip(*medians, strict=True), color="gray", lw=1, zorder=0)
    ax.grid(alpha=0.3)


def _psnr(r: Row) -> float:
    return r.report.psnr


def _seconds(r: Row) -> float:
    return r.seconds


def _point(
    x: Callable[[Row], float], encoder: str, scenario: str, what: str, size: int | None
) -> Callable[[Row], tuple[float, float | None]]:
    """A row's point: ``x(row)`` and ``encoder``'s ``what`` in ``scenario`` at ``size``."""

    def at(r: Row) -> tuple[float, float | None]:
        return x(r), score(r.report, encoder, scenario, what, size)

    return at


def _plain_log_axis(axis: Any, set_scale: Callable[[str], None]) -> None:
    """A log scale labelled with plain numbers (1, 2, 5, 10, 20, ...), no minor labels."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    set_scale("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ScalarFormatter())
    axis.set_minor_formatter(NullFormatter())


def _damage_panel(ax: Any, title: str, xlabel: str, legend: bool) -> None:
    """Title, axis labels and the zero line of one panel of edit damage; the legend if asked."""
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("edit damage (dB)")
    ax.axhline(0, color="black", lw=0.5)
    if legend:
        ax.legend(fontsize=8)


def _with_damage(ev: Evaluation) -> list[str]:
    """The measured encoders that have a damage figure (those with a decoder)."""
    return [
        e
        for e in ev.attacked + ev.holdout
        if any(score(r.report, e, "direct", "damage_db") is not None for r in ev.rows)
    ]


def _save(fig: Any, dest: Path, title: str) -> list[str]:
    plt = _pyplot()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(dest, dpi=90)
    plt.close(fig)
    return [dest.name]


def damage_vs_psnr(ev: Evaluation, dest: Path) -> list[str]:
    """Scatter of damage (dB) against PSNR, one point per photo and method.

    One row of panels per encoder with a decoder, one column per scenario (direct, 1080/q80,
    720/q70), at the largest attacker size measured; each method's median is drawn as a larger
    marker, and the presets' medians are joined.
    """
    plt = _pyplot()
    size = max(ev.sizes) if ev.sizes else None
    encs = _with_damage(ev)
    if not encs:
        return []
    fig, axes = plt.subplots(
        len(encs), len(SCENARIOS), figsize=(4.2 * len(SCENARIOS), 3.6 * len(encs)), squeeze=False
    )
    for i, enc in enumerate(encs):
        for j, sc in enumerate(SCENARIOS):
            ax = axes[i][j]
            _scatter_methods(ax, ev, _point(_psnr, enc, sc, "damage_db", size))
            held = " (held out)" if enc in ev.holdout else ""
            title = f"{enc}{held}: {sc}, attacker at {size} px"
            _damage_panel(ax, title, "PSNR of protected photo (dB)", legend=i == j == 0)
    return _save(
        fig, dest, "Damage to the attacker's round trip vs visibility (higher and right is better)"
    )


def damage_vs_seconds(ev: Evaluation, dest: Path) -> list[str]:
    """Scatter of damage (dB, posted as is) against the seconds of protection, one point per
    photo and method, one panel per attacked encoder with a decoder and attacker size."""
    plt = _pyplot()
    encs = [e for e in _with_damage(ev) if e in ev.attacked]
    if not encs or not ev.sizes:
        return []
    fig, axes = plt.subplots(
        len(encs), len(ev.sizes), figsize=(4.2 * len(ev.sizes), 3.6 * len(encs)), squeeze=False
    )
    for i, enc in enumerate(encs):
        for j, size in enumerate(ev.sizes):
            ax = axes[i][j]
            _scatter_methods(ax, ev, _point(_seconds, enc, "direct", "damage_db", size))
            _plain_log_axis(ax.xaxis, ax.set_xscale)
            title = f"{enc}: posted as is, attacker at {size} px"
            _damage_panel(ax, title, "seconds to protect (this machine)", legend=i == j == 0)
    return _save(fig, dest, "Damage vs the time it costs (higher and left is better)")


def shift_vs_psnr(ev: Evaluation, dest: Path) -> list[str]:
    """Each measured encoder's latent shift (in JPEG-95 units) against PSNR at the largest
    attacker size, posted as is: where a held-out encoder's latent stops moving."""
    plt = _pyplot()
    size = max(ev.sizes) if ev.sizes else None
    encs = ev.attacked + ev.holdout
    if not ev.rows or not encs:
        return []
    fig, axes = plt.subplots(1, len(encs), figsize=(4.6 * len(encs), 3.8), squeeze=False)
    for j, enc in enumerate(encs):
        ax = axes[0][j]
        _scatter_methods(ax, ev, _point(_psnr, enc, "direct", "latent_shift", size))
        held = " (held out)" if enc in ev.holdout else " (attacked)"
        ax.set_title(f"{enc}{held}: posted as is, at {size} px", fontsize=10)
        ax.set_xlabel("PSNR of protected photo (dB)")
        ax.set_ylabel("latent shift (x a JPEG-95 re-save)")
        _plain_log_axis(ax.yaxis, ax.set_yscale)
        if j == 0:
            ax.legend(fontsize=8)
    return _save(fig, dest, "How far each encoder's latent moves vs visibility")


def _grid(
    cells: list[list[Any]], col_titles: list[str], row_titles: list[str], title: str, dest: Path
) -> None:
    plt = _pyplot()
    n_rows, n_cols = len(cells), len(col_titles)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(2.8 * n_cols, 2.6 * n_rows + 0.4), squeeze=False
    )
    for i in range(n_rows):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.axis("off")
            if cells[i][j] is not None:
                ax.imshow(cells[i][j])
            if i == 0:
                ax.set_title(col_titles[j], fontsize=9)
        axes[i][0].text(
            -0.04,
            0.5,
            row_titles[i],
            transform=axes[i][0].transAxes,
            rotation=90,
            va="center",
            ha="right",
            fontsize=9,
        )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(dest, dpi=90)
    plt.close(fig)


def _main_method(ev: Evaluation) -> str:
    return "standard" if "standard" in ev.methods else ev.methods[0]


def before_after(
    ev: Evaluation, views: dict[str, Views], dest: Path, gain: float = 10.0
) -> list[str]:
    """Per photo: original | protected | difference amplified ``gain`` times (main preset)."""
    from cloak.compare import heatmap

    m = _main_method(ev)
    cells, names = [], []
    for name, v in views.items():
        if m not in v.protected:
            continue
        p = v.protected[m]
        cells.append([to_array(v.original), to_array(p), to_array(heatmap(v.original, p, gain))])
        names.append(name)
    if not cells:
        return []
    _grid(
        cells,
        ["original", f"protected ({m})", f"|change| x{gain:g}"],
        names,
        "Before / after (thumbnails; the change map is amplified)",
        dest,
    )
    return [dest.name]


def ai_views(ev: Evaluation, views: dict[str, Views], out_dir: Path) -> list[str]:
    """Per encoder with a decoder: the attacker's round trip of the original and of each method."""
    files: list[str] = []
    for enc in ev.attacked + ev.holdout:
        if not any(enc in v.ai_original for v in views.values()):
            continue
        cells, names = [], []
        for name, v in views.items():
            if enc not in v.ai_original:
                continue
            row: list[Any] = [to_array(v.ai_original[enc])]
            for m in ev.methods:
                img = v.ai_protected.get(enc, {}).get(m)
                row.append(None if img is None else to_array(img))
            cells.append(row)
            names.append(name)
        held = " (held out: never attacked)" if enc in ev.holdout else " (attacked)"
        dest = out_dir / f"ai_view_{enc}.png"
        _grid(
            cells,
            ["AI view of original", *[f"AI view: {m}" for m in ev.methods]],
            names,
            f"What {enc}{held} reconstructs: D(E(photo)) at the attacker's size",
            dest,
        )
        files.append(dest.name)
    return files
