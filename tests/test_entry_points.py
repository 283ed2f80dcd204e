"""Process-wide settings are made by the entry points, once, and never by the library."""

from __future__ import annotations

import sys

import pytest
import torch

import cloak.device
from cloak.config import ProtectConfig, TransformConfig
from cloak.device import huge_pages_restart_env
from cloak.engine import protect, run_to_end


class _Reached(Exception):
    """Raised by a patched process setting to show who called it."""


def _count_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int | None, bool]]:
    calls: list[tuple[int | None, bool]] = []

    def record(threads: int | None = None, low_memory: bool = False) -> None:
        calls.append((threads, low_memory))
        # The test process keeps its allocator: only the threads are set, and put back by the
        # callers that set them.
        if threads is not None:
            cloak.device.set_threads(threads)

    monkeypatch.setattr("cloak.cli.configure_process", record)
    monkeypatch.delenv(cloak.device.LOW_MEMORY_ENV, raising=False)
    # Plenty of memory free, whatever this machine has now (tests below set it short).
    monkeypatch.setattr(cloak.device, "memory_available", lambda: 16 * 10**9)
    return calls


def test_cli_configures_the_process_once(monkeypatch, tmp_path, capsys) -> None:
    from cloak.cli import main

    calls = _count_calls(monkeypatch)
    assert main(["models", "list", "--models-dir", str(tmp_path), "--offline"]) == 0
    assert calls == [(None, False)]


def test_cli_passes_threads_through(monkeypatch, tmp_path) -> None:
    from cloak.cli import main

    calls = _count_calls(monkeypatch)
    before = torch.get_num_threads()
    try:
        main(["protect", str(tmp_path / "none.png"), "--threads", "1", "-q"])
    finally:
        torch.set_num_threads(before)
    assert calls == [(1, False)]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_cli_low_memory_restarts_once_then_configures(monkeypatch, tmp_path, how) -> None:
    from cloak.cli import main

    calls = _count_calls(monkeypatch)
    restarts: list[bool] = []
    monkeypatch.setattr("cloak.cli.restart_with_huge_pages", lambda: restarts.append(True))
    argv = ["models", "list", "--models-dir", str(tmp_path), "--offline"]
    if how == "flag":
        argv.append("--low-memory")
    else:
        monkeypatch.setenv(cloak.device.LOW_MEMORY_ENV, "1")
    assert main(argv) == 0
    assert restarts == [True]
    assert calls == [(None, True)]


def test_choose_low_memory_in_order_flag_env_setting_free_memory(monkeypatch) -> None:
    from cloak.device import LOW_MEMORY_AUTO_BELOW, LowMemoryChoice, choose_low_memory

    monkeypatch.delenv(cloak.device.LOW_MEMORY_ENV, raising=False)
    short = LOW_MEMORY_AUTO_BELOW - 1

    def free(n: int | None):
        return lambda: n

    supported = cloak.device.low_memory_supported()
    assert choose_low_memory(available=free(16 * 10**9)) == LowMemoryChoice(False)
    assert choose_low_memory(available=free(None)) == LowMemoryChoice(False)
    assert choose_low_memory(available=free(LOW_MEMORY_AUTO_BELOW)) == LowMemoryChoice(False)
    expected = LowMemoryChoice(True, "short", short) if supported else LowMemoryChoice(False)
    assert choose_low_memory(available=free(short)) == expected
    # A command that loads no encoder never switches by itself.
    assert choose_low_memory(auto=False, available=free(short)) == LowMemoryChoice(False)
    assert choose_low_memory(setting=True, available=free(short)) == LowMemoryChoice(
        True, "setting"
    )
    # The command line wins over everything; the environment over the saved setting.
    assert choose_low_memory(False, setting=True, available=free(short)) == LowMemoryChoice(
        False, "asked"
    )
    assert choose_low_memory(True, available=free(16 * 10**9)) == LowMemoryChoice(True, "asked")
    monkeypatch.setenv(cloak.device.LOW_MEMORY_ENV, "0")
    assert choose_low_memory(setting=True, available=free(short)) == LowMemoryChoice(False, "asked")
    assert choose_low_memory(True) == LowMemoryChoice(True, "asked")
    monkeypatch.setenv(cloak.device.LOW_MEMORY_ENV, "1")
    assert choose_low_memory(available=free(16 * 10**9)) == LowMemoryChoice(True, "asked")
    assert choose_low_memory(False) == LowMemoryChoice(False, "asked")
    # Anything else in the variable is as if it were not set.
    monkeypatch.setenv(cloak.device.LOW_MEMORY_ENV, "yes")
    assert choose_low_memory(available=free(16 * 10**9)) == LowMemoryChoice(False)


def test_memory_available_reads_the_kernels_figure() -> None:
    free = cloak.device.memory_available()
    if sys.platform.startswith("linux"):
        assert free is not None and 0 < free < 2**50
    else:
        assert free is None


def test_cli_turns_low_memory_on_when_memory_is_short_and_says_so(
    monkeypatch, tmp_path, capsys
) -> None:
    from cloak.cli import main

    calls = _count_calls(monkeypatch)
    restarts: list[bool] = []
    monkeypatch.setattr("cloak.cli.restart_with_huge_pages", lambda: restarts.append(True))
    monkeypatch.setattr(cloak.device, "memory_available", lambda: 2_400_000_000)
    missing = str(tmp_path / "none.png")
    main(["protect", missing, "-q"])
    if not cloak.device.low_memory_supported():
        assert calls == [(None, False)] and restarts == []
        return
    assert calls == [(None, True)] and restarts == [True]
    err = capsys.readouterr().err
    assert "2.4 GB of memory free, under 3 GB: running in low-memory mode" in err
    assert "--no-low-memory" in err
    # Told to keep the faster mode; and a command that loads no encoder never switches.
    main(["protect", missing, "-q", "--no-low-memory"])
    main(["models", "list", "--models-dir", str(tmp_path), "--offline"])
    assert calls[1:] == [(None, False), (None, False)] and restarts == [True]
    assert "low-memory mode" not in capsys.readouterr().err


def test_gui_entry_point_configures_the_process(monkeypatch) -> None:
    from cloak.gui import app

    monkeypatch.setattr(cloak.device, "restart_with_huge_pages", lambda: None)

    def stop(
        threads: int | None = None, low_memory: bool = False, worker_threads: bool = False
    ) -> None:
        # The app protects on worker threads: it says so, for their malloc arena.
        assert worker_threads
        raise _Reached

    monkeypatch.setattr(cloak.device, "configure_process", stop)
    with pytest.raises(_Reached):
        app.main(["--random-encoders"])


@pytest.mark.parametrize("screenshot", [False, True])
@pytest.mark.parametrize("short", [False, True])
def test_gui_starts_in_the_memory_mode_the_person_chose(
    monkeypatch, tmp_path, screenshot, short
) -> None:
    """The app's setting (saved by the Advanced panel) is read at start, before the process is
    set up; a screenshot run leaves the person's settings alone. With little memory free the
    app starts in low-memory mode whatever was saved."""
    from PySide6.QtCore import QSettings

    from cloak.gui import app

    # conftest points the app's settings at a temporary folder; the choice is saved there.
    QSettings("Cloak", "Cloak").setValue("low_memory", not short)
    monkeypatch.delenv(cloak.device.LOW_MEMORY_ENV, raising=False)
    free = 2 * 10**9 if short else 16 * 10**9
    monkeypatch.setattr(cloak.device, "memory_available", lambda: free)
    on = cloak.device.low_memory_supported() if short else not screenshot
    seen: list[tuple[str, bool]] = []
    monkeypatch.setattr(
        cloak.device, "restart_with_huge_pages", lambda: seen.append(("restart", True))
    )

    def stop(
        threads: int | None = None, low_memory: bool = False, worker_threads: bool = False
    ) -> None:
        seen.append(("configure", low_memory))
        raise _Reached

    monkeypatch.setattr(cloak.device, "configure_process", stop)
    argv = ["--random-encoders"] + (["--screenshot", str(tmp_path / "s.png")] if screenshot else [])
    with pytest.raises(_Reached):
        app.main(argv)
    if on:
        assert seen == [("restart", True), ("configure", True)]
    else:
        assert seen == [("configure", False)]


def test_protect_leaves_the_process_alone(monkeypatch, tiny_encoder) -> None:
    def refuse() -> bool:
        raise AssertionError("library code changed the process's allocator")

    # Wherever a module bound the names (``from cloak.device import ...``), they refuse.
    for mod in [m for name, m in sys.modules.items() if name.startswith("cloak")]:
        for attr in (
            "keep_freed_memory",
            "map_large_blocks",
            "share_one_arena",
            "restart_with_huge_pages",
            "set_threads",
            "configure_process",
        ):
            if hasattr(mod, attr):
                monkeypatch.setattr(mod, attr, refuse)
    cfg = ProtectConfig(
        steps=1, work_size=64, device="cpu", transforms=TransformConfig(enabled=False)
    )
    res = run_to_end(protect(torch.rand(1, 3, 40, 40), [tiny_encoder], cfg))
    assert res.protected.shape == (1, 3, 40, 40)


def test_huge_pages_restart_env_only_where_it_helps() -> None:
    env = huge_pages_restart_env
    assert env({"A": "1"}, "glibc 2.36", "madvise") == {
        "A": "1",
        "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1",
    }
    joined = env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, "glibc 2.35", "always")
    assert joined is not None
    assert joined["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
    # Done already (the restarted process), too old a glibc, no huge pages, another libc.
    assert env({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, "glibc 2.36", "madvise") is None
    assert env({}, "glibc 2.34", "madvise") is None
    assert env({}, "glibc 2.36", "never") is None
    assert env({}, "glibc 2.36", None) is None
    assert env({}, "", "madvise") is None
    assert env({}, "musl 1.2", "madvise") is None


_PROBE = """
import json, os, sys
from cloak.device import configure_process, restart_with_huge_pages
low = sys.argv[1] == "low"
if low:
    restart_with_huge_pages()
configure_process(low_memory=low)
import torch

def kb(name, path="/proc/self/status"):
    with open(path) as f:
        return next(int(l.split()[1]) for l in f if l.startswith(name + ":"))

before = kb("VmRSS")
block = torch.ones(16 * 2**20)  # 64 MiB, a step's largest block is ~53 MB
held, huge = kb("VmRSS"), kb("AnonHugePages", "/proc/self/smaps_rollup")
del block
after = kb("VmRSS")
print(json.dumps({"grew": held - before, "kept": after - before, "huge": huge,
                  "tunables": os.environ.get("GLIBC_TUNABLES", "")}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_low_memory_mode_hands_large_blocks_back_and_maps_them_with_huge_pages() -> None:
    import json
    import os
    import subprocess

    def probe(mode: str) -> dict[str, int | str]:
        env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
        out = subprocess.run(
            [sys.executable, "-c", _PROBE, mode], env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    fast, low = probe("fast"), probe("low")
    # Both touched the 64 MiB block; the default mode keeps it for the next step, the
    # low-memory mode gives it back as soon as it is freed.
    assert int(fast["grew"]) > 60_000 and int(low["grew"]) > 60_000
    assert int(fast["kept"]) > 60_000
    assert int(low["kept"]) < 8_000
    assert fast["tunables"] == ""
    glibc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    if huge_pages_restart_env({}, glibc, cloak.device._thp_mode()) is not None:
        # This machine can back the mapping with huge pages: the probe restarted itself
        # with glibc's tunable, and the block's pages were huge ones.
        assert low["tunables"] == "glibc.malloc.hugetlb=1"
        assert int(low["huge"]) >= 32_768


_ARENA_PROBE = """
import ctypes, sys, threading
from cloak.device import configure_process
configure_process(low_memory=sys.argv[1] == "low", worker_threads=sys.argv[2] == "workers")
import torch

def work():
    # What a protecting worker thread allocates: blocks of a step's sizes.
    blocks = [torch.ones(4 * 2**20) for _ in range(4)]
    del blocks

t = threading.Thread(target=work)
t.start()
t.join()
ctypes.CDLL("libc.so.6").malloc_stats()  # one "Arena N:" section per arena, on stderr
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
@pytest.mark.parametrize(
    ("low", "workers", "shared"),
    [("fast", "workers", True), ("fast", "main", False), ("low", "workers", False)],
)
def test_the_apps_worker_threads_share_the_main_arena_in_the_default_mode(
    low, workers, shared
) -> None:
    """configure_process(worker_threads=True), as the app calls it: in the default mode a
    worker thread allocates from the main thread's arena instead of one of its own; not in
    low-memory mode (measured slower and larger there), nor for the CLI."""
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", _ARENA_PROBE, low, workers], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    # The worker thread (and any other that allocated) has an arena of its own unless shared.
    assert (out.stderr.count("Arena ") == 1) == shared, out.stderr
