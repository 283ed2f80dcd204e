"""The verdict rests on the weakest attacked case and never on held-out encoders."""

from __future__ import annotations

import dataclasses

import pytest

from cloak.metrics import EncoderScore, Report
from cloak.verdict import BROKEN_DB, DEGRADED_DB, LEVELS, level_of, verdict


def _report(*scores: EncoderScore) -> Report:
    return Report(psnr=37.0, ssim=0.98, linf_255=8.0, width=64, height=48, scores=list(scores))


def test_levels_follow_the_thresholds() -> None:
    assert DEGRADED_DB < BROKEN_DB
    assert level_of(DEGRADED_DB - 0.01) == LEVELS[0]
    assert level_of(DEGRADED_DB) == LEVELS[1]
    assert level_of(BROKEN_DB - 0.01) == LEVELS[1]
    assert level_of(BROKEN_DB) == LEVELS[2]


def test_weakest_case_decides() -> None:
    strong = EncoderScore("taef2", "direct", BROKEN_DB + 3, 0.5, 9.0, 1024)
    weak = EncoderScore("taef2", "720/q70", DEGRADED_DB - 1, 0.9, 3.0, 512)
    v = verdict(_report(strong, weak), attacked=["taef2"])
    assert v.level == LEVELS[0]
    assert v.worst_db == pytest.approx(DEGRADED_DB - 1)
    assert "512 px" in v.worst_case and "720/q70" in v.worst_case
    assert "not protected well" in v.sentence


def test_held_out_encoders_are_reported_not_counted() -> None:
    attacked = EncoderScore("taef2", "direct", BROKEN_DB + 1, 0.5, 9.0, 768)
    held = EncoderScore("vaelight", "direct", 0.1, 0.99, 4.5, 768)
    v = verdict(_report(attacked, held), attacked=["taef2"])
    assert v.level == LEVELS[2]
    assert v.measured == ("taef2",)
    assert v.held_out == (("vaelight", 4.5),)


def test_no_decoder_means_no_verdict() -> None:
    only_latent = EncoderScore("vaelight", "direct", None, None, 5.0, 768)
    v = verdict(_report(only_latent))
    assert v.level == "not measured" and v.worst_db is None


def test_verdict_names_the_sizes_measured_and_what_other_sizes_get() -> None:
    from cloak.config import PRESETS

    a = EncoderScore("taef2", "direct", BROKEN_DB + 1, 0.5, 9.0, 1024)
    b = EncoderScore("taef2", "direct", BROKEN_DB + 2, 0.5, 9.0, 768)
    v = verdict(_report(a, b), attacked=["taef2"])
    assert v.caveat.startswith("Measured at 768/1024 px.")
    # The sizes every preset aims at are named, and the verdict says that others get less.
    for cfg in PRESETS.values():
        for size in cfg.transforms.sizes:
            assert f"{size}" in v.caveat
    assert "another size" in v.caveat and "crop" in v.caveat
    # An aimed size that was not measured is named as one where some photos get far less.
    assert "At 512 px, which were not measured, some photos get far less" in v.caveat
    every = verdict(_report(a, b, dataclasses.replace(a, size=512)), attacked=["taef2"])
    assert "not measured" not in every.caveat


def test_shown_damage_never_reaches_a_threshold_it_misses():
    from cloak.verdict import BROKEN_DB, DEGRADED_DB, format_db, level_of

    assert format_db(8.96) == "+8.9" and level_of(8.96) == "degraded"
    assert format_db(BROKEN_DB) == f"+{BROKEN_DB:.1f}" and level_of(BROKEN_DB) == "visibly broken"
    assert format_db(BROKEN_DB - 0.04) == f"+{BROKEN_DB - 0.1:.1f}"
    assert level_of(BROKEN_DB - 0.04) == "degraded"
    assert format_db(DEGRADED_DB - 0.001) == "+3.9"
    assert format_db(-0.04) == "-0.1"


def test_broken_is_claimed_only_where_every_calibrated_portrait_looked_broken() -> None:
    """The calibration grid (docs/img/verdict_calibration.png) showed a face on a smooth blue
    screen (img58) still merely degraded at 17.4 dB of damage, and purple with a grid at 19.4
    dB; the verdict may not call a view broken below what the least sensitive portrait needed."""
    assert level_of(17.4) == "degraded"
    assert level_of(19.4) == "visibly broken"
    # Faces on plain backgrounds break far earlier (img13 at 9.4 dB): that is under-claimed,
    # never over-claimed.
    assert level_of(9.4) == "degraded"
