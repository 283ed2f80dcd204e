"""Photos whose name lies about their format, or that have no extension, are protected.

Phones and messengers produce PNGs named ``.jpg``, JPEGs named ``.png`` and files without an
extension. The content decides the format at plan time: the output keeps the real format, gets
the matching extension, and the user is told so.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from support.fault_cases import sha256, smooth_rgb

from cloak.cli import main
from cloak.config import ProtectConfig, TransformConfig
from cloak.engine import run_to_end
from cloak.formats import sniff
from cloak.jobs import plan, run_batch

FAST = ["--steps", "1", "--work-size", "64", "--encoders", "taef2", "--device", "cpu", "-q"]


def _bytes(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(smooth_rgb(64, 48)).save(buf, fmt)
    return buf.getvalue()


def _write(path: Path, fmt: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_bytes(fmt))
    return path


def _config() -> ProtectConfig:
    return ProtectConfig(
        steps=1,
        work_size=64,
        encoders=("taef2",),
        device="cpu",
        transforms=TransformConfig(enabled=False),
    )


CASES = [
    # name, real format, expected output name, words of the note
    ("png_named.jpg", "PNG", "png_named.png", "a PNG file named .jpg"),
    ("jpeg_named.png", "JPEG", "jpeg_named.jpg", "a JPEG file named .png"),
    ("jpeg_without_extension", "JPEG", "jpeg_without_extension.jpg", "JPEG file without an"),
    ("png_without_extension", "PNG", "png_without_extension.png", "PNG file without an"),
    ("webp_named.JPG", "WEBP", "webp_named.webp", "a WEBP file named .JPG"),
]


@pytest.mark.parametrize(("name", "fmt", "out_name", "note"), CASES)
def test_odd_names_are_protected_in_their_real_format(
    tiny_encoder, tmp_path, name, fmt, out_name, note
):
    src = _write(tmp_path / "in" / name, fmt)
    before = sha256(src)
    jobs, refused = plan([src], tmp_path / "out", _config())
    assert not refused
    # Decided at plan time, before any work: the output name already has the real suffix.
    assert [j.dest.name for j in jobs] == [out_name]
    (res,) = run_to_end(run_batch(jobs, _config(), [tiny_encoder]))
    assert res.status == "protected", res.message
    assert note in res.message and out_name in res.message
    with Image.open(res.dest) as im:
        assert im.format == fmt
    assert sha256(src) == before


def test_a_correct_name_gets_no_note(tiny_encoder, tmp_path):
    src = _write(tmp_path / "in" / "fine.png", "PNG")
    jobs, _ = plan([src], tmp_path / "out", _config())
    (res,) = run_to_end(run_batch(jobs, _config(), [tiny_encoder]))
    assert res.status == "protected" and "file named" not in res.message


def test_beside_the_original_without_extension(tiny_encoder, tmp_path):
    src = _write(tmp_path / "photo", "JPEG")
    jobs, _ = plan([src], None, _config())
    assert [j.dest.name for j in jobs] == ["photo_protected.jpg"]


def test_a_text_file_without_extension_is_refused_up_front(tmp_path):
    src = tmp_path / "notes"
    src.write_text("not a photo at all\n")
    jobs, refused = plan([src], tmp_path / "out", _config())
    assert not jobs
    assert "not a supported photo type" in refused[0].message and str(src) in refused[0].message


def test_folder_scan_keeps_the_real_format(tmp_path):
    _write(tmp_path / "in" / "a.jpg", "PNG")
    _write(tmp_path / "in" / "b.png", "JPEG")
    jobs, _ = plan([tmp_path / "in"], tmp_path / "out", _config())
    assert sorted(j.dest.name for j in jobs) == ["a.png", "b.jpg"]


def test_the_cli_tells_the_user(monkeypatch, tiny_encoder, tmp_path, capsys):
    monkeypatch.setattr("cloak.cli.load_encoders", lambda names, args, device="cpu": [tiny_encoder])
    src = _write(tmp_path / "in" / "holiday.jpg", "PNG")
    assert main(["protect", str(src), "-o", str(tmp_path / "out"), *FAST]) == 0
    out = capsys.readouterr().out
    assert "a PNG file named .jpg: kept as PNG, saved as holiday.png" in out
    assert "1 protected, 0 skipped, 0 failed" in out
    assert (tmp_path / "out" / "holiday.png").is_file()
    assert not (tmp_path / "out" / "holiday.jpg").exists()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_sniff_names_what_pillow_wrote(fmt):
    assert sniff(_bytes(fmt)[:32]) == fmt
