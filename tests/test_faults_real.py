"""Faults with the real TAEF2 weights: Ctrl+C mid-batch, tampered, truncated and hostile weights."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from support.fault_cases import leftovers, sha256, smooth_rgb

from cloak.cli import main

#: One overall limit for tests that wait on a subprocess: generous, for a slow shared CPU
#: without bf16; ``CLOAK_TEST_PATIENCE_S`` changes it.
PATIENCE_S = float(os.environ.get("CLOAK_TEST_PATIENCE_S", "1200"))
QUICK = ["--work-size", "64", "--encoders", "taef2", "--device", "cpu", "--offline", "-q"]


def _photos(folder: Path, n: int, size=(96, 80)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        arr = smooth_rgb(*size)
        arr[..., 2] = (arr[..., 2].astype(int) + 25 * i).clip(0, 255)
        p = folder / f"photo {i}.png"
        Image.fromarray(arr).save(p)
        paths.append(p)
    return paths


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _outputs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


@pytest.mark.real
def test_sigint_mid_batch_keeps_finished_and_resumes(models_dir, tmp_path):
    src = tmp_path / "in"
    originals = _photos(src, 4)
    before = {p: sha256(p) for p in originals}
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "cloak.cli",
        "protect",
        str(src),
        "-o",
        str(out),
        "--models-dir",
        str(models_dir),
        "--steps",
        "6",
        *QUICK,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    # Wait for events (the first finished photo, the process exiting), never for a fixed time:
    # one generous limit covers the whole test, so a slow CPU (fp32, shared) only takes longer.
    deadline = time.monotonic() + PATIENCE_S
    out_log, err_log = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out_log.open("wb") as o, err_log.open("wb") as e:
        # Ctrl-C's default action in the child, even where this test runs as a background job
        # (whose shell starts it with SIGINT ignored, which Python then keeps ignoring).
        proc = subprocess.Popen(
            cmd,
            stdout=o,
            stderr=e,
            env=env,
            preexec_fn=_default_sigint,  # noqa: PLW1509
        )
        try:
            while not _outputs(out):
                assert proc.poll() is None, err_log.read_text(errors="replace")
                assert time.monotonic() < deadline, f"no photo finished in {PATIENCE_S} s"
                time.sleep(0.02)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
    stdout, stderr = out_log.read_bytes(), err_log.read_bytes()
    assert proc.returncode == 130, (stdout, stderr)
    assert b"interrupted" in stderr and b"run the same command again" in stderr
    assert b"Traceback" not in stderr
    done = _outputs(out)
    assert 1 <= len(done) < 4, done
    for p in done:
        with Image.open(p) as im:
            im.load()  # complete, not half-written
            assert im.size == (96, 80)
    assert not leftovers(src, out)
    assert {p: sha256(p) for p in originals} == before

    # The same command again: finished photos are skipped, the rest are protected.
    rerun = subprocess.run(
        cmd, capture_output=True, env=env, timeout=max(1.0, deadline - time.monotonic())
    )
    assert rerun.returncode == 0, rerun.stderr
    n = len(done)
    assert f"{4 - n} protected, {n} skipped, 0 failed".encode() in rerun.stdout
    assert [p.name for p in _outputs(out)] == [p.name for p in originals]
    assert not leftovers(src, out)
    assert {p: sha256(p) for p in originals} == before


def _models_copy(models_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "models"
    shutil.copytree(models_dir / "taef2", root / "taef2")
    for p in (root / "taef2").iterdir():
        p.chmod(0o644)
    return root


def _protect_with(root: Path, tmp_path: Path, capsys) -> tuple[int, str, Path]:
    photo = _photos(tmp_path / "in", 1)[0]
    before = sha256(photo)
    code = main(
        ["protect", str(photo), "-o", str(tmp_path / "out"), "--models-dir", str(root),
         "--steps", "1", *QUICK]
    )  # fmt: skip
    assert sha256(photo) == before
    assert not _outputs(tmp_path / "out")
    return code, capsys.readouterr().err, photo


@pytest.mark.real
def test_tampered_weights_are_refused(models_dir, tmp_path, capsys):
    root = _models_copy(models_dir, tmp_path)
    enc = root / "taef2" / "taef2_encoder.pth"
    data = bytearray(enc.read_bytes())
    data[len(data) // 2] ^= 0xFF
    enc.write_bytes(bytes(data))
    code, err, _ = _protect_with(root, tmp_path, capsys)
    assert code == 2
    assert str(enc) in err and "corrupt or tampered" in err
    assert "Delete it and download it again" in err
    assert main(["models", "verify", "--models-dir", str(root)]) == 1
    assert "corrupt" in capsys.readouterr().out


@pytest.mark.real
def test_truncated_weights_are_refused(models_dir, tmp_path, capsys):
    root = _models_copy(models_dir, tmp_path)
    enc = root / "taef2" / "taef2_encoder.pth"
    enc.write_bytes(enc.read_bytes()[:100_000])
    code, err, _ = _protect_with(root, tmp_path, capsys)
    assert code == 2
    assert str(enc) in err and "truncated" in err
    assert "Delete it and download it again" in err


class _Payload:
    """Unpickling this runs a shell command: what a hostile weight file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


@pytest.mark.real
def test_malicious_pickle_is_never_run(models_dir, tmp_path, capsys, monkeypatch):
    """A .pth whose unpickling would run code, with a sidecar digest that matches it."""
    from cloak.models import registry
    from cloak.models.base import WeightFile

    root = _models_copy(models_dir, tmp_path)
    enc = root / "taef2" / "taef2_encoder.pth"
    marker = tmp_path / "pwned"
    torch.save({"encoder.0.weight": _Payload(marker)}, enc)
    (root / "taef2" / "taef2_encoder.pth.sha256").write_text(f"{sha256(enc)}  {enc.name}\n")
    spec = registry.REGISTRY["taef2"]
    unpinned = dataclasses.replace(spec, encoder_file=WeightFile("taef2_encoder.pth", None))
    monkeypatch.setitem(registry.REGISTRY, "taef2", unpinned)

    code, err, _ = _protect_with(root, tmp_path, capsys)
    assert code == 2
    assert str(enc) in err and "cannot read weights" in err
    assert "Delete the file and download it again" in err
    assert not marker.exists(), "the pickle's code ran"
