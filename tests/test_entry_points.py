"""Process-wide settings are made by the entry points, once, and never by the library."""

from __future__ import annotations

import sys

import pytest
import torch

import cloak.device
from cloak.config import ProtectConfig, TransformConfig
from cloak.engine import protect, run_to_end


class _Reached(Exception):
    """Raised by a patched process setting to show who called it."""


def _count_calls(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    calls: list[int | None] = []
    real = cloak.device.configure_process

    def record(threads: int | None = None) -> None:
        calls.append(threads)
        real(threads)

    monkeypatch.setattr("cloak.cli.configure_process", record)
    return calls


def test_cli_configures_the_process_once(monkeypatch, tmp_path, capsys) -> None:
    from cloak.cli import main

    calls = _count_calls(monkeypatch)
    assert main(["models", "list", "--models-dir", str(tmp_path), "--offline"]) == 0
    assert calls == [None]


def test_cli_passes_threads_through(monkeypatch, tmp_path) -> None:
    from cloak.cli import main

    calls = _count_calls(monkeypatch)
    before = torch.get_num_threads()
    try:
        main(["protect", str(tmp_path / "none.png"), "--threads", "1", "-q"])
    finally:
        torch.set_num_threads(before)
    assert calls == [1]


def test_gui_entry_point_configures_the_process(monkeypatch) -> None:
    from cloak.gui import app

    def stop(threads: int | None = None) -> None:
        raise _Reached

    monkeypatch.setattr(cloak.device, "configure_process", stop)
    with pytest.raises(_Reached):
        app.main(["--random-encoders"])


def test_protect_leaves_the_process_alone(monkeypatch, tiny_encoder) -> None:
    def refuse() -> bool:
        raise AssertionError("library code changed the process's allocator")

    # Wherever a module bound the names (``from cloak.device import ...``), they refuse.
    for mod in [m for name, m in sys.modules.items() if name.startswith("cloak")]:
        for attr in ("keep_freed_memory", "set_threads", "configure_process"):
            if hasattr(mod, attr):
                monkeypatch.setattr(mod, attr, refuse)
    cfg = ProtectConfig(
        steps=1, work_size=64, device="cpu", transforms=TransformConfig(enabled=False)
    )
    res = run_to_end(protect(torch.rand(1, 3, 40, 40), [tiny_encoder], cfg))
    assert res.protected.shape == (1, 3, 40, 40)
