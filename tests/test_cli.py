"""The `cloak` command line, end to end with the real TAEF2 weights on small photos."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.paths import ASTRONAUT

from cloak.cli import main

QUICK = ["--steps", "2", "--work-size", "64", "--encoders", "taef2", "-q"]


def _photo(path: Path, size=(80, 64), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    with Image.open(ASTRONAUT) as im:
        crop = im.convert("RGB").resize(size)
    arr = np.asarray(crop, dtype=np.int16) + rng.integers(-3, 4, (size[1], size[0], 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(path)
    return path


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.real
def test_protect_folder_batch(models_dir, tmp_path, capsys):
    src = tmp_path / "photos"
    a = _photo(src / "a.png")
    b = _photo(src / "trip" / "b.jpg", seed=1)
    bad = src / "broken.jpg"
    bad.write_text("this is not a photo")
    before = {p: _digest(p) for p in (a, b, bad)}
    out = tmp_path / "out"
    args = ["protect", str(src), "-o", str(out), "-r", "--models-dir", str(models_dir), *QUICK]
    code = main(args)
    text = capsys.readouterr()
    assert code == 1  # one photo failed
    assert (out / "a.png").is_file()
    assert (out / "trip" / "b.jpg").is_file()
    assert not (out / "broken.jpg").exists()
    assert "broken.jpg" in text.err and "not an image" in text.err
    assert "2 protected, 0 skipped, 1 failed" in text.out
    assert "PSNR" in text.out
    assert {p: _digest(p) for p in (a, b, bad)} == before
    with Image.open(out / "trip" / "b.jpg") as im:
        assert im.size == (80, 64) and im.format == "JPEG"
    assert not list(out.rglob("*.cloak-tmp"))

    # A rerun resumes: finished photos are skipped.
    code = main(args)
    assert "0 protected, 2 skipped, 1 failed" in capsys.readouterr().out


@pytest.mark.real
def test_protect_single_file_beside_original_and_check(models_dir, tmp_path, capsys):
    photo = _photo(tmp_path / "selfie.png", size=(96, 96))
    code = main(["protect", str(photo), "--models-dir", str(models_dir), *QUICK])
    assert code == 0
    protected = tmp_path / "selfie_protected.png"
    assert protected.is_file()
    capsys.readouterr()
    picture = tmp_path / "cmp.png"
    code = main(
        [
            "check",
            str(photo),
            str(protected),
            "--encoders",
            "taef2,vaelight",
            "--models-dir",
            str(models_dir),
            "--picture",
            str(picture),
            "--sizes",
            "64,96",
            "--reposts",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "PSNR" in out and "SSIM" in out and "L-inf" in out
    assert "1080/q80" in out and "vaelight" in out and "taef2" in out
    assert "simulated at 64/96 px long side, posted as is and after platform re-posts" in out
    # The verdict rests on the attacked encoder only and names its weakest case; the held-out
    # one is reported beside it.
    assert "verdict (" in out and "weakest case: taef2 at " in out
    assert "held out (not attacked, not in the verdict): vaelight" in out
    assert "> 3 is visible" not in out
    with Image.open(picture) as im:
        assert im.width >= 3 * 300 and im.height > 300
    # Without --reposts only the photo posted as is is measured, and the output says so.
    code = main(
        ["check", str(photo), str(protected), "--models-dir", str(models_dir), "--sizes", "64"]
    )
    out = capsys.readouterr().out
    assert code == 0 and "1080/q80" not in out and "720/q70" not in out
    assert "simulated at 64 px long side, posted as is (--reposts adds platform re-posts)" in out


@pytest.mark.real
@pytest.mark.real
def test_protect_check_measures_each_saved_photo(models_dir, tmp_path, capsys, monkeypatch):
    """``protect --check`` adds each photo's damage and verdict to the summary. A photo at
    least as large as the work size is measured from the attack's own round trip of the
    original (only the saved file is encoded); a bad file fails as before and the batch goes on.
    One step on a photo of the measured size keeps it short."""
    import cloak.metrics
    from cloak.verdict import LEVELS

    seeded: list[list[str]] = []
    real_seed = cloak.metrics.seed_cache
    monkeypatch.setattr(
        cloak.metrics, "seed_cache", lambda *a, **k: seeded.append(real_seed(*a, **k))
    )
    big = _photo(tmp_path / "in" / "big.png", size=(1024, 640))
    (tmp_path / "in" / "broken.jpg").write_bytes(b"not a photo")
    out = tmp_path / "out"
    args = ["protect", str(tmp_path / "in"), "-o", str(out), "--check", "--steps", "1", "-q"]
    code = main([*args, "--encoders", "taef2", "--models-dir", str(models_dir)])
    text = capsys.readouterr().out
    assert code == 1  # the broken file failed; the others are protected and measured
    assert (out / "big.png").is_file() and big.is_file()
    assert seeded == [["taef2"]]
    head, *rows = [line for line in text.splitlines() if line.strip()][:3]
    assert "damage dB" in head and "verdict" in head
    for row in rows:
        if "broken.jpg" in row:
            assert "failed" in row and "  -  " in row
        else:
            assert "protected" in row and any(level in row for level in LEVELS), row
            assert any(tok.startswith(("+", "-")) and "." in tok for tok in row.split()), row
    assert "damage: measured on taef2, the photo posted as is" in text
    assert "Measured at 1024 px." in text


def test_default_ensemble_is_the_measured_one(models_dir, tmp_path, capsys):
    from cloak.config import ProtectConfig
    from cloak.models import DEFAULT_ENSEMBLE

    assert DEFAULT_ENSEMBLE == ("taef2",) == ProtectConfig().encoders
    photo = _photo(tmp_path / "p.png")
    code = main(
        [
            "protect",
            str(photo),
            "--models-dir",
            str(models_dir),
            "--offline",
            "--steps",
            "1",
            "--work-size",
            "64",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0
    assert "not installed" not in err and "warning" not in err
    assert (tmp_path / "p_protected.png").is_file()


@pytest.mark.real
def test_absent_optional_encoder_is_one_calm_line(models_dir, tmp_path, capsys):
    photo = _photo(tmp_path / "p.png")
    args = ["protect", str(photo), "--models-dir", str(models_dir), "--offline", "-q"]
    args += ["--encoders", "taef2,taesd,taef1", "--steps", "1", "--work-size", "64"]
    assert main(args) == 0
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.strip()]
    assert lines == [
        "note: using taef2; not installed: taesd, taef1 "
        "(cloak models download taesd taef1; -v for details)"
    ]
    assert str(models_dir) not in err and "error" not in err.lower()
    # Details, with the folders searched, only when asked for.
    assert main(["-v", *args, "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert str(models_dir / "taesd" / "taesd_encoder.pth") in err


def test_missing_weights_error_names_file_and_command(tmp_path, capsys):
    photo = _photo(tmp_path / "p.png")
    code = main(
        [
            "protect",
            str(photo),
            "--models-dir",
            str(tmp_path / "empty"),
            "--offline",
            "--encoders",
            "taef2",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "taef2_encoder.pth" in err
    assert "cloak models download taef2" in err
    assert str(tmp_path / "empty") in err


def test_missing_path_and_bad_option(tmp_path, capsys):
    code = main(["protect", str(tmp_path / "nope.jpg"), "-q"])
    assert code == 1
    assert "no such file or folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["protect", "x.jpg", "--preset", "ultra"])
    assert main(["protect", str(tmp_path / "nope.jpg"), "--eps", "99", "-q"]) == 2
    assert "eps" in capsys.readouterr().err
    assert main(["protect", str(tmp_path / "nope.jpg"), "--threads", "999", "-q"]) == 2
    assert "--threads 999" in capsys.readouterr().err


@pytest.mark.real
def test_models_list_and_verify(models_dir, capsys):
    assert main(["models", "list", "--models-dir", str(models_dir)]) == 0
    out = capsys.readouterr().out
    taef2 = next(line for line in out.splitlines() if line.startswith("taef2"))
    assert "yes" in taef2 and "FLUX.2" in taef2
    assert main(["models", "verify", "--models-dir", str(models_dir)]) == 0
    out = capsys.readouterr().out
    assert "taef2_encoder.pth" in out and "corrupt" not in out


def test_entry_point_runs():
    res = subprocess.run(
        [sys.executable, "-m", "cloak.cli", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0 and res.stdout.startswith("cloak ")


def test_precision_option_reaches_the_config():
    from cloak.cli import build_parser, config_from_args

    args = build_parser().parse_args(["protect", "x.jpg", "--precision", "fp32"])
    assert config_from_args(args).precision == "fp32"
    args = build_parser().parse_args(["protect", "x.jpg"])
    assert config_from_args(args).precision == "auto"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["protect", "x.jpg", "--precision", "fp16"])


@pytest.mark.real
def test_low_memory_mode_writes_the_same_file(models_dir, tmp_path):
    """``--low-memory`` changes where the step's blocks live, not what is computed: the
    ``cloak`` process (restarted with glibc's huge-page tunable where that helps) writes the
    same bytes as in the default mode. A 768 x 512 photo in fp32 has steps on the full
    576 x 360 window, whose 53 MB maps are the blocks the mode maps on their own."""
    photo = _photo(tmp_path / "p.jpg", size=(768, 512))
    outs = {}
    for mode in ("default", "low"):
        out = tmp_path / mode
        cmd = [sys.executable, "-c", "import sys; from cloak.cli import main; sys.exit(main())"]
        cmd += ["protect", str(photo), "-o", str(out)]
        cmd += ["--models-dir", str(models_dir), "--offline", "--encoders", "taef2"]
        cmd += ["--steps", "2", "--precision", "fp32", "-q"]
        if mode == "low":
            cmd.append("--low-memory")
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        outs[mode] = _digest(out / "p.jpg")
    assert outs["low"] == outs["default"]
