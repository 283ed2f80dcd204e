"""The one place that chooses the compute device and precision."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator

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
_M_MMAP_MAX = -4


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc to reuse freed memory instead of returning it to the OS.

    The attack allocates and frees hundreds of MB of activations per step, in shapes that vary
    with the random transforms. glibc serves such blocks with fresh ``mmap`` pages that must be
    faulted in again on every step, which costs seconds per GiB on some VMs; keeping them in the
    heap made a 20-step run ~2.8x faster here. It changes the whole process, so only entry
    points call it (through :func:`configure_process`), never library code and never at
    import. Returns whether the setting took effect (False off glibc).
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(_M_MMAP_MAX, 0) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1 and ok
    return ok


@functools.cache
def _libc_malloc_trim() -> Callable[[int], int] | None:
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_freed_memory() -> bool:
    """Hand the pages of freed heap memory back to the OS (glibc ``malloc_trim``).

    :func:`keep_freed_memory` keeps freed blocks so that a step's activations reuse warm pages;
    but the phases of one photo (the full-size decode, the clean round trip at the work size,
    the attack's steps, the save) free blocks of different sizes, which the next phase cannot
    always reuse, so without this the peak RSS is close to the sum of the phases instead of
    the largest. The engine calls it between phases (a few times per photo, never per step):
    it changes no setting, only returns memory nothing holds. Returns False off glibc.
    """
    trim = _libc_malloc_trim()
    if trim is None:
        return False
    trim(0)
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


def configure_process(threads: int | None = None) -> None:
    """Process-wide settings of a program that protects photos; call once, from its entry point.

    The ``cloak`` command, the ``cloak-gui`` app and the benchmarks call this; the library
    (:func:`cloak.engine.protect` and the rest) never changes the process.

    Args:
        threads: CPU threads for torch (see :func:`set_threads`); None keeps torch's default.
    """
    if threads is not None:
        set_threads(threads)
    keep_freed_memory()
