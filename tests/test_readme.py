"""What the README tells a user about the presets is what the presets are."""

from __future__ import annotations

import re

from support.paths import REPO

from cloak.config import PRESETS


def _preset_table() -> dict[str, dict[str, str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("### Presets", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    table = {}
    for line in rows[2:]:
        cells = dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
        table[cells["preset"]] = cells
    return table


def test_readme_preset_table_matches_presets() -> None:
    table = _preset_table()
    assert set(table) == set(PRESETS)
    for name, cfg in PRESETS.items():
        row = table[name]
        budget = re.fullmatch(r"(\d+(?:\.\d+)?)/255", row["budget (L-inf)"])
        assert budget is not None and float(budget[1]) == round(cfg.eps * 255, 3), (name, row)
        if cfg.min_psnr is None:
            assert row["PSNR floor"] == "none", (name, row)
        else:
            floor = re.fullmatch(r"(\d+(?:\.\d+)?) dB", row["PSNR floor"])
            assert floor is not None and float(floor[1]) == cfg.min_psnr, (name, row)
        assert int(row["steps"]) == cfg.steps, (name, row)


def test_readme_states_the_presets_work_size() -> None:
    sizes = {cfg.work_size for cfg in PRESETS.values()}
    assert len(sizes) == 1
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"({sizes.pop()} px long side)" in text
