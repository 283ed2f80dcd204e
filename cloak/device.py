"""The one place that chooses the compute device and precision."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from cloak.errors import ConfigError


def choose_device(requested: str = "auto") -> torch.device:
    """Pick cuda, then mps, then cpu; or the device the user forced.

    Args:
        requested: ``"auto"`` or a torch device string such as ``"cpu"`` or ``"cuda:0"``.

    Raises:
        ConfigError: The forced device does not exist on this machine.
    """
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {requested!r}: use auto, cpu, cuda or mps") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but no CUDA GPU is available; use cpu")
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError("--device mps was asked for, but MPS is not available; use cpu")
    return device


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 math (AVX-512 BF16 or AMX), where autocast pays off."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(device: torch.device, precision: str) -> bool:
    """Whether to run encoders under bf16 autocast for this device and setting."""
    if precision == "fp32":
        return False
    if precision == "bf16":
        return True
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_has_fast_bf16()
    return False


@contextlib.contextmanager
def autocast(device: torch.device, enabled: bool) -> Iterator[None]:
    """bf16 autocast on ``device`` when enabled; a no-op otherwise."""
    if not enabled:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        yield


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_M_MMAP_MAX = -4
_MMAP_MAX_DEFAULT = 65536

LOW_MEMORY_ENV = "CLOAK_LOW_MEMORY"
"""Set to 1 to run ``cloak`` and ``cloak-gui`` in low-memory mode (as ``--low-memory`` does), to 0
to keep the default mode even when memory is short (as ``--no-low-memory`` does)."""

LOW_MEMORY_AUTO_BELOW = 3 * 10**9
"""Free memory (bytes, the kernel's ``MemAvailable``) under which ``cloak`` and ``cloak-gui``
start in low-memory mode unless told otherwise. The default mode's peak reached 2.48 GB over
ten portraits in the app and 2.07 GB over a ``cloak protect`` batch (fp32, docs/PERFORMANCE.md);
with less than 3 GB free it could push other programs, or itself, into swap or out of memory."""

LOW_MEMORY_BLOCK = 32 * 2**20
"""In low-memory mode, blocks of this size and more get mappings of their own (see
:func:`map_large_blocks`): a step's full-resolution maps (~53 MB), not its smaller blocks."""

_HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb=1"


@functools.cache
def _libc() -> Any | None:
    """glibc through ctypes, or None off Linux or where it cannot be loaded."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - both must exist (glibc)
    except (OSError, AttributeError):
        return None
    return libc


def keep_freed_memory() -> bool:
    """Ask glibc to reuse freed memory instead of returning it to the OS.

    The attack allocates and frees hundreds of MB of activations per step, in shapes that vary
    with the random transforms. glibc serves such blocks with fresh ``mmap`` pages that must be
    faulted in again on every step, which costs seconds per GiB on some VMs; keeping them in the
    heap made a 20-step run ~2.8x faster here. It changes the whole process, so only entry
    points call it (through :func:`configure_process`), never library code and never at
    import. Returns whether the setting took effect (False off glibc).
    """
    libc = _libc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_MMAP_MAX, 0) == 1
    ok = libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1 and ok
    return bool(ok)


def map_large_blocks(threshold: int = LOW_MEMORY_BLOCK) -> bool:
    """Low-memory mode: blocks of ``threshold`` bytes and more get their own mappings.

    The heap of :func:`keep_freed_memory` fragments over a session: a step's largest blocks no
    longer fit the room freed between them, so the heap grows past them, photo after photo.
    Blocks of their own mapping go back to the OS when freed and never split the heap; smaller
    freed blocks stay in the heap as before. The price is fresh pages for every large block:
    run with transparent huge pages (:func:`restart_with_huge_pages`) a photo took 1.2-1.3x
    the time in fp32 here, with 4 KiB pages 1.7x. Process-wide, for entry points only
    (:func:`configure_process`). Returns whether the setting took effect (False off glibc).
    """
    libc = _libc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    ok = libc.mallopt(_M_MMAP_MAX, _MMAP_MAX_DEFAULT) == 1 and ok
    ok = libc.mallopt(_M_MMAP_THRESHOLD, threshold) == 1 and ok
    return bool(ok)


_process_low_memory = False


def low_memory_supported() -> bool:
    """Whether low-memory mode changes anything here (glibc's allocator, i.e. Linux)."""
    return _libc() is not None


def low_memory_active() -> bool:
    """Whether :func:`configure_process` put this process in low-memory mode."""
    return _process_low_memory


def memory_available() -> int | None:
    """Bytes the kernel says it can give without swapping (``MemAvailable``), or None where it
    does not say (off Linux)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclasses.dataclass(frozen=True)
class LowMemoryChoice:
    """Whether a program runs in low-memory mode, and why (see :func:`choose_low_memory`).

    ``why``: ``"asked"`` (the command line or ``CLOAK_LOW_MEMORY``, on or off), ``"setting"``
    (the app's saved choice), ``"short"`` (less than :data:`LOW_MEMORY_AUTO_BELOW` free; ``free``
    says how much), or ``""`` (nothing asked: the default mode).
    """

    on: bool
    why: str = ""
    free: int | None = None


def choose_low_memory(
    flag: bool | None = None,
    setting: bool = False,
    auto: bool = True,
    available: Callable[[], int | None] | None = None,
) -> LowMemoryChoice:
    """Low-memory mode or not, for an entry point, before :func:`configure_process`.

    In order: the command line (``flag``: ``--low-memory`` True, ``--no-low-memory`` False,
    neither None), then ``CLOAK_LOW_MEMORY`` (1 on, 0 off), then the app's saved ``setting``,
    then, with ``auto`` and where the mode works (:func:`low_memory_supported`), on when less
    than :data:`LOW_MEMORY_AUTO_BELOW` bytes are free (``available``, default
    :func:`memory_available`).
    """
    if flag is not None:
        return LowMemoryChoice(flag, "asked")
    env = os.environ.get(LOW_MEMORY_ENV, "").strip()
    if env in ("0", "1"):
        return LowMemoryChoice(env == "1", "asked")
    if setting:
        return LowMemoryChoice(True, "setting")
    if auto and low_memory_supported():
        free = (available or memory_available)()
        if free is not None and free < LOW_MEMORY_AUTO_BELOW:
            return LowMemoryChoice(True, "short", free)
    return LowMemoryChoice(False)


def add_low_memory_option(parser: argparse.ArgumentParser) -> None:
    """``--low-memory`` / ``--no-low-memory`` on an entry point's parser; its value (None when
    neither is given) is :func:`choose_low_memory`'s ``flag``."""
    parser.add_argument(
        "--low-memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="up to about a quarter less memory for up to about 30%% more time, the same "
        f"protected photos (CPUs without bf16, Linux; also {LOW_MEMORY_ENV}=1). On by itself "
        f"when less than {LOW_MEMORY_AUTO_BELOW / 1e9:.0f} GB of memory is free; "
        f"--no-low-memory (or {LOW_MEMORY_ENV}=0) keeps the faster mode",
    )


def huge_pages_restart_env(
    environ: Mapping[str, str], glibc: str, thp_mode: str | None
) -> dict[str, str] | None:
    """The environment to start this program again with for huge-page mappings, or None.

    glibc 2.35 and later advise the kernel to back its own mappings with transparent huge pages
    when ``GLIBC_TUNABLES`` holds ``glibc.malloc.hugetlb=1``; glibc reads it only when a
    process starts. None where that cannot help or is done already: another C library or an
    older glibc (``glibc`` as ``os.confstr("CS_GNU_LIBC_VERSION")`` gives it, e.g.
    ``"glibc 2.36"``), a kernel without transparent huge pages or with them off (``thp_mode``:
    the bracketed word of ``/sys/kernel/mm/transparent_hugepage/enabled``, None if absent), or
    a ``GLIBC_TUNABLES`` that already names the setting (so a restart happens at most once).
    """
    name, _, version = glibc.partition(" ")
    try:
        major, minor = (int(v) for v in version.split(".")[:2])
    except ValueError:
        return None
    if name != "glibc" or (major, minor) < (2, 35) or thp_mode not in ("always", "madvise"):
        return None
    tunables = environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb" in tunables:
        return None
    joined = f"{tunables}:{_HUGE_PAGES_TUNABLE}" if tunables else _HUGE_PAGES_TUNABLE
    return {**environ, "GLIBC_TUNABLES": joined}


def _thp_mode() -> str | None:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled", encoding="ascii") as f:
            text = f.read()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else None


def restart_with_huge_pages() -> None:
    """Start this program again, once, so glibc maps large blocks with huge pages.

    For low-memory mode (:func:`map_large_blocks`), whose large blocks each take fresh pages:
    in 2 MiB pages that costs ~10x fewer page faults than in 4 KiB ones. Replaces the process
    (same PID, arguments, open files) through ``os.execve``; returns without doing anything
    where it would not help (see :func:`huge_pages_restart_env`) or in a frozen app. Entry
    points only, before they print or start threads.
    """
    import sys

    if not sys.platform.startswith("linux") or getattr(sys, "frozen", False):
        return
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        return
    env = huge_pages_restart_env(os.environ, glibc, _thp_mode())
    if env is None or not sys.orig_argv or not sys.executable:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, sys.orig_argv, env)
    except OSError:
        return  # Not restarted: the mode still works, in 4 KiB pages.


def release_freed_memory() -> bool:
    """Hand the pages of freed heap memory back to the OS (glibc ``malloc_trim``).

    :func:`keep_freed_memory` keeps freed blocks so that a step's activations reuse warm pages;
    but the phases of one photo (the full-size decode, the clean round trip at the work size,
    the attack's steps, the save) free blocks of different sizes, which the next phase cannot
    always reuse, so without this the peak RSS is close to the sum of the phases instead of
    the largest. The engine calls it between phases (a few times per photo, never per step):
    it changes no setting, only returns memory nothing holds. Returns False off glibc.
    """
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def set_threads(count: int) -> None:
    """Use ``count`` CPU threads for torch's operators (default: one per core).

    Fewer threads leave a core free for other work on a laptop; more than the cores only adds
    contention, so it is refused.
    """
    cores = os.cpu_count() or 1
    if not 1 <= count <= cores:
        raise ConfigError(
            f"--threads {count}: this machine has {cores} CPU threads; use 1..{cores}"
        )
    torch.set_num_threads(count)


def share_one_arena() -> bool:
    """Every thread allocates from glibc's main arena (``M_ARENA_MAX`` 1).

    A thread of its own gets its own malloc arena, whose heaps are at most 64 MiB each and which
    serves larger blocks with fresh mappings every time; the app protects on a worker thread, so
    its steps paid for pages the main thread (the CLI) reuses. Call before the threads start.
    Returns whether the setting took effect (False off glibc).
    """
    libc = _libc()
    return libc is not None and libc.mallopt(_M_ARENA_MAX, 1) == 1


def configure_process(
    threads: int | None = None, low_memory: bool = False, worker_threads: bool = False
) -> None:
    """Process-wide settings of a program that protects photos; call once, from its entry point.

    The ``cloak`` command, the ``cloak-gui`` app and the benchmarks call this; the library
    (:func:`cloak.engine.protect` and the rest) never changes the process.

    Args:
        threads: CPU threads for torch (see :func:`set_threads`); None keeps torch's default.
        low_memory: Low-memory mode (:func:`map_large_blocks`) instead of
            :func:`keep_freed_memory`; entry points call :func:`restart_with_huge_pages` first.
        worker_threads: The program protects on threads other than the main one (the app). In
            the default mode they then share the main thread's arena (:func:`share_one_arena`):
            five portraits in the app took 0.80-0.97x the time, ten 0.94-0.97x, for +61-157 MB at
            the session's peak (docs/PERFORMANCE.md). Not in low-memory mode, where the same
            setting measured slower and larger (242 against 233 s, 1781 against 1671 MB).
    """
    if threads is not None:
        set_threads(threads)
    global _process_low_memory
    if low_memory:
        _process_low_memory = map_large_blocks()
    else:
        keep_freed_memory()
        if worker_threads:
            share_one_arena()
        _process_low_memory = False
