"""The scores beside the compare view: how the saved file looks, what an AI editor gets, and
the verdict in :mod:`cloak.verdict`'s words."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from cloak.verdict import LEVELS, format_db, level_of, verdict

LEVEL_COLOURS = {
    LEVELS[2]: "#2b8a3e",  # visibly broken: the protection works
    LEVELS[1]: "#b35c00",  # degraded
    LEVELS[0]: "#c92a2a",  # barely changed: not protected
}
MEASURING = "<i style='color:#777'>measuring\u2026</i>"


def _where(scenario: str) -> str:
    return "as is" if scenario == "direct" else "re-post " + scenario.replace("/q", " px, q")


class ScoresPanel(QLabel):
    """How the protected photo looks, what an AI editor gets, and the verdict.

    The look figures of the saved file come with the result at once; the AI scores fill in
    as they are measured, each marked "measuring..." until then. The verdict's words come from
    :func:`cloak.verdict.verdict`, nothing here judges on its own.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("scores")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.setMinimumWidth(250)
        self.setMaximumWidth(300)
        self.setOpenExternalLinks(False)
        self.show_scores(None)

    def show_scores(
        self,
        result: Any,
        ai: Any = None,
        attacked: tuple[str, ...] = (),
        note: str = "",
        reposts_pending: bool = False,
        ai_waits: bool = False,
    ) -> None:
        """Show ``result`` (a :class:`~cloak.jobs.PhotoResult`) and ``ai`` (an
        :class:`~cloak.gui.worker.AiView`, or None while it is measured)."""
        if result is None:
            self.setText(f"<h3>Scores</h3><p>{note or 'Protect a photo to see its scores.'}</p>")
            return
        report = ai.report if ai is not None else None

        def num(value: Any, fmt: str) -> str:
            return MEASURING if value is None else f"<b>{value:{fmt}}</b>"

        rows = [
            "<h3>How it looks (saved file)</h3>",
            "<table cellspacing='0' cellpadding='3'>",
            f"<tr><td>PSNR</td><td align='right'>{num(result.psnr, '.1f')} dB</td></tr>",
            f"<tr><td>Largest change</td><td align='right'>{num(result.linf_255, '.0f')}/255"
            "</td></tr></table>",
            "<h3>What an AI editor gets</h3>",
        ]
        if report is None:
            wait = "measured when the run ends" if ai_waits else MEASURING
            rows.append(f"<p>AI view and edit damage: {wait}</p>")
            self.setText("".join(rows))
            return
        rows += [
            "<p style='color:#555'>Edit damage in dB (higher = AI edits come out more wrong), "
            f"at the attacker's size of {', '.join(f'{s} px' for s in report.sizes)}.</p>",
            "<table cellspacing='0' cellpadding='3'>",
            "<tr><th align='left'>Encoder</th><th align='left'>Posted</th>"
            "<th align='right'>Damage</th></tr>",
        ]
        for s in report.scores:
            if s.damage_db is None:
                cell = f"shift x{s.latent_shift:.1f}"
                colour = "#555"
            else:
                cell = f"{format_db(s.damage_db)} dB"
                colour = LEVEL_COLOURS[level_of(s.damage_db)]
            rows.append(
                f"<tr><td>{s.encoder}</td><td>{_where(s.scenario)}</td>"
                f"<td align='right' style='color:{colour}'><b>{cell}</b></td></tr>"
            )
        if not ai.reposts and reposts_pending:
            rows.append(f"<tr><td colspan='3'>Platform re-posts: {MEASURING}</td></tr>")
        elif not ai.reposts:
            rows.append(
                "<tr><td colspan='3'><a href='reposts'>Measure after platform re-posts</a> "
                "(1080 px and 720 px JPEG; about twice this measurement's time)</td></tr>"
            )
        rows.append("</table>")
        v = verdict(report, attacked=attacked or None)
        colour = LEVEL_COLOURS.get(v.level, "#555")
        rows.append(f"<p style='color:{colour}'><b>{v.sentence}</b></p>")
        if v.worst_db is not None:
            so_far = "" if ai.reposts else " (platform re-posts not measured)"
            rows.append(f"<p>Weakest case: {v.worst_case}, {format_db(v.worst_db)} dB{so_far}.</p>")
            rows.append(f"<p>{v.caveat}</p>")
        if v.measured:
            rows.append(f"<p>Measured on: {', '.join(v.measured)}.</p>")
        if v.held_out:
            held = ", ".join(f"{n} (latent shift x{shift:.1f})" for n, shift in v.held_out)
            rows.append(f"<p>Not attacked, measured only: {held}.</p>")
        else:
            # The app measures the encoders the photo was protected against; say so rather
            # than let the verdict read as if it covered every encoder.
            rows.append(
                "<p style='color:#555'>Encoders not attacked (held out) are not measured here; "
                "<tt>cloak check</tt> measures every encoder on this computer.</p>"
            )
        self.setText("".join(rows))
