"""What Cloak tells a person about a protected photo, from its measured scores.

The words come from thresholds chosen by looking at the AI views of real portraits at several
damage levels (``docs/img/verdict_calibration.png``, made by ``benchmarks/calibrate.py``). The
verdict is that of the *weakest* measured case (every attacked encoder, attacker size and
platform re-encode), so it never claims more than the worst case supports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cloak.config import ATTACKER_EOT
from cloak.metrics import Report

DEGRADED_DB = 4.0
"""Below this damage the AI view looks like the original's to a person: in the calibration grid
(four portraits at 1024 px) img13 at 2.6 dB shows only a faint pink cast on the background and
a normal face; every view at 5.3 dB or more (img47) shows a changed face or background."""
BROKEN_DB = 19.0
"""From this damage on the AI view is visibly broken on every portrait of the grid. Where it
starts depends on the photo: a face on a white wall (img13) is magenta at 9.4 dB, img47 pink
to purple at 9.8 dB, img30 red to magenta from 15.1 dB, but a face on a smooth blue screen
(img58), whose clean round trip is already close to the photo, only looks paler, with a brighter
background, at 14.3 dB and a red patch at 17.4 dB, and turns purple with a grid at 19.4 dB.
The verdict must hold for the photo in front of it, so it says "visibly broken" only where no
portrait of the grid still looked merely degraded. A face can stay recognisable even then:
"broken" means the edit comes out visibly wrong, not that the person is hidden."""

LEVELS: tuple[str, ...] = ("barely changed", "degraded", "visibly broken")

AIMED_SIZES: tuple[int, ...] = ATTACKER_EOT.sizes
"""The attacker long sides every preset tunes the protection to."""


def size_caveat(sizes: Sequence[int]) -> str:
    """What the verdict does not cover: attackers at other sizes, and crops.

    Measured on portraits (docs/attack-notes.md, round 4): at 896 and 1182 px, between and above
    the aimed sizes, and at 1024 px after a 5 px crop, the damage was about half of that at the
    aimed sizes (img13 1.3-1.7 against 3.0-3.6 dB, img58 3.8-5.5 against 7.2-10.9 dB). Since the
    warm start (round 8) the aimed sizes gained and the others did not: a third to a half
    (img13 1.2-1.5 against 3.2-4.5 dB, img58 4.0-6.0 against 7.8-12.3, img30 4.6-5.1 against
    7.6-10.9).

    The aimed sizes themselves are not protected alike on every photo: on the ten portraits,
    with its sizes drawn at random, the standard preset left img23 1.0 dB at 512 px against
    6.8 at 1024 px, img54 1.3 against 4.0, the group selfie 2.3 against 8.4 (attack-notes
    round 9). Its fixed size order (round 10) lifted every portrait to about 4 dB or more at
    512 px (img13 3.98), but one size still gets a third less than another on some photos
    (img49 6.5 dB at 512 px against 10.1 at 1024; img47 3.3 at 768 against 5.3 at 512; the
    other presets, in the same order, have such photos too); so a verdict that did not
    measure an aimed size says so.
    """
    measured = "/".join(str(z) for z in sorted(set(sizes)))
    *rest, last = [str(z) for z in AIMED_SIZES]
    aimed = f"{', '.join(rest)} or {last}" if rest else last
    unmeasured = [str(z) for z in AIMED_SIZES if z not in set(sizes)]
    weaker = (
        f" At {' and '.join(unmeasured)} px, which were not measured, some photos get far less "
        f"damage than at {measured} px."
        if unmeasured
        else ""
    )
    return (
        f"Measured at {measured} px. Cloak aims the protection at AI editors working at "
        f"{aimed} px; one working at another size, or on a crop of the photo, gets a third to "
        f"half the damage.{weaker}"
    )


@dataclass(frozen=True)
class Verdict:
    """The verdict on one protected photo.

    Attributes:
        level: One of :data:`LEVELS`, or ``"not measured"`` when no encoder with a decoder was
            measured.
        sentence: One plain sentence for the user.
        worst_db: The weakest measured damage in dB (None when not measured).
        worst_case: Which case gave it (encoder, size, scenario).
        measured: The attacked encoders the verdict rests on.
        held_out: Encoders measured but not attacked, with their weakest latent shift.
        caveat: The attacker sizes measured, and what happens at other sizes.
    """

    level: str
    sentence: str
    worst_db: float | None
    worst_case: str
    measured: tuple[str, ...]
    held_out: tuple[tuple[str, float], ...]
    caveat: str = ""


def format_db(damage_db: float) -> str:
    """A damage figure as shown to a person: signed, rounded *down* to 0.1 dB, so a figure
    never reads as reaching a threshold it misses (8.96 dB shows "+8.9", not "+9.0" beside
    "degraded")."""
    return f"{math.floor(damage_db * 10) / 10:+.1f}"


def level_of(damage_db: float) -> str:
    """The verdict level of one damage figure."""
    if damage_db >= BROKEN_DB:
        return LEVELS[2]
    if damage_db >= DEGRADED_DB:
        return LEVELS[1]
    return LEVELS[0]


_SENTENCES = {
    LEVELS[2]: "AI edits of this photo come out visibly broken in every case measured.",
    LEVELS[1]: (
        "AI edits of this photo come out degraded (grain, smears, shifted colours) but the "
        "person stays recognisable in the weakest case measured."
    ),
    LEVELS[0]: (
        "AI edits of this photo look almost like the original's in at least one case measured: "
        "this photo is not protected well. Try a stronger preset."
    ),
}


def verdict(report: Report, attacked: Sequence[str] | None = None) -> Verdict:
    """The verdict on ``report``.

    Args:
        report: Scores from :func:`cloak.metrics.measure`.
        attacked: Names of the encoders the protection was computed against; the others in the
            report are held out (reported, not counted in the verdict). None treats every
            encoder in the report as attacked.
    """
    names = list(dict.fromkeys(s.encoder for s in report.scores))
    in_set = [n for n in names if attacked is None or n in attacked]
    scored = [
        (s.damage_db, s) for s in report.scores if s.encoder in in_set and s.damage_db is not None
    ]
    held = tuple(
        (n, min(s.latent_shift for s in report.scores if s.encoder == n))
        for n in names
        if n not in in_set
    )
    if not scored:
        return Verdict(
            "not measured",
            "No attacked encoder with a decoder was measured, so there is no verdict.",
            None,
            "",
            tuple(in_set),
            held,
        )
    worst_db, worst = min(scored, key=lambda pair: pair[0])
    where = "posted as is" if worst.scenario == "direct" else f"after {worst.scenario} re-post"
    case = f"{worst.encoder} at {worst.size} px, {where}"
    level = level_of(worst_db)
    caveat = size_caveat([s.size for _, s in scored])
    return Verdict(level, _SENTENCES[level], worst_db, case, tuple(in_set), held, caveat)
