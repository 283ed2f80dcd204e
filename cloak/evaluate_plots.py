"""The pictures of ``cloak evaluate`` (matplotlib, the ``eval`` extra, imported lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloak.errors import CloakError
from cloak.report import SCENARIOS, median, score
from cloak.tensors import to_array

if TYPE_CHECKING:
    from cloak.report import Evaluation, Views


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


def damage_vs_psnr(ev: Evaluation, dest: Path) -> list[str]:
    """Scatter of damage (dB) against PSNR, one point per photo and method.

    One row of panels per encoder with a decoder, one column per scenario (direct, 1080/q80,
    720/q70), at the largest attacker size measured; each method's median is drawn as a larger
    marker, and the presets' medians are joined.
    """

    plt = _pyplot()
    size = max(ev.sizes) if ev.sizes else None
    encs = [
        e
        for e in ev.attacked + ev.holdout
        if any(score(r.report, e, "direct", "damage_db") is not None for r in ev.rows)
    ]
    if not encs:
        return []
    fig, axes = plt.subplots(
        len(encs), len(SCENARIOS), figsize=(4.2 * len(SCENARIOS), 3.6 * len(encs)), squeeze=False
    )
    colours = plt.get_cmap("tab10")
    for i, enc in enumerate(encs):
        for j, sc in enumerate(SCENARIOS):
            ax = axes[i][j]
            means = []
            for k, m in enumerate(ev.methods):
                rows = ev.rows_of(m)
                xs = [r.report.psnr for r in rows]
                ys = [score(r.report, enc, sc, "damage_db", size) for r in rows]
                pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
                if not pts:
                    continue
                marker = "D" if m.startswith("photoguard") else "o"
                ax.scatter(
                    *zip(*pts, strict=True), s=18, alpha=0.6, color=colours(k), marker=marker
                )
                mx, my = median([p[0] for p in pts]), median([p[1] for p in pts])
                ax.scatter(
                    [mx], [my], s=90, color=colours(k), marker=marker, edgecolors="black", label=m
                )
                if not m.startswith("photoguard"):
                    means.append((mx, my))
            if len(means) > 1:
                ax.plot(*zip(*means, strict=True), color="gray", lw=1, zorder=0)
            held = " (held out)" if enc in ev.holdout else ""
            ax.set_title(f"{enc}{held}: {sc}, attacker at {size} px", fontsize=10)
            ax.set_xlabel("PSNR of protected photo (dB)")
            ax.set_ylabel("edit damage (dB)")
            ax.axhline(0, color="black", lw=0.5)
            ax.grid(alpha=0.3)
            if i == 0 and j == 0:
                ax.legend(fontsize=8)
    fig.suptitle("Damage to the attacker's round trip vs visibility (higher and right is better)")
    fig.tight_layout()
    fig.savefig(dest, dpi=90)
    plt.close(fig)
    return [dest.name]


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
