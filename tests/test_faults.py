"""Bad input, faults and hostile files, end to end through the CLI and the batch layer.

Every bad case must be answered with a message naming the file and what to do, the batch must
go on, the exit status must say that something failed, no original may change and no partial
or temporary file may remain. The tiny random encoder stands in for the real ones (the real
weights are used in ``test_faults_real.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image
from support.fault_cases import (
    build_cases,
    crash_on_width,
    disk_full_save,
    leftovers,
    sha256,
    smooth_rgb,
)

from cloak.cli import main
from cloak.config import ProtectConfig
from cloak.engine import run_to_end
from cloak.jobs import PhotoJob, plan, run_batch

FAST = ["--steps", "1", "--work-size", "64", "--encoders", "taef2", "--device", "cpu", "-q"]


@pytest.fixture
def cli_tiny(monkeypatch, tiny_encoder):
    """``cloak.cli.main`` with the tiny random encoder instead of real weights."""
    monkeypatch.setattr("cloak.cli.load_encoders", lambda names, args, device="cpu": [tiny_encoder])
    return tiny_encoder


def _digests(folder: Path) -> dict[Path, str]:
    return {p: sha256(p) for p in folder.rglob("*") if p.is_file() and not p.is_symlink()}


def _drain(gen):
    events = []
    return run_to_end(gen, events.append), events


def _fast_config(**changes) -> ProtectConfig:
    fields = {"steps": 1, "work_size": 64, "encoders": ("taef2",), "device": "cpu", **changes}
    return ProtectConfig(**fields)


def _photo(path: Path, width: int = 64, height: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(smooth_rgb(width, height)).save(path)
    return path


def test_hostile_batch_folder(cli_tiny, tmp_path, capsys):
    """One folder holding every hostile, odd and good file, protected in one run."""
    src = tmp_path / "in"
    cases = build_cases(src)
    loop = src / "sub"
    loop.mkdir()
    (loop / "loop").symlink_to(src, target_is_directory=True)  # a symlink loop
    before = _digests(src)
    out = tmp_path / "out"

    code = main(["protect", str(src), "-o", str(out), "-r", *FAST])
    text = capsys.readouterr()

    assert code == 1, "a failed photo must make the exit status 1"
    assert _digests(src) == before, "an original was modified"
    assert not leftovers(src, out)
    for case in cases:
        lines = [ln for ln in (text.err + text.out).splitlines() if case.name in ln]
        if case.expect == "refused":
            assert not (out / case.name).exists(), case.name
            assert not list(out.glob(Path(case.name).stem + ".*")), f"partial output {case.name}"
            errors = [ln for ln in text.err.splitlines() if case.name in ln]
            assert errors, f"{case.name} was not reported"
            for words in case.says:
                assert any(words in ln for ln in errors), (case.name, words, errors)
        else:
            dest = out / case.output
            assert dest.is_file(), f"{case.name} not protected: {lines}"
            problem = case.check(src / case.name, dest)
            assert not problem, f"{case.name}: {problem}"
            for words in case.says:
                assert any(words in ln for ln in lines), (case.name, words, lines)
    n_refused = sum(c.expect == "refused" for c in cases)
    n_protected = len(cases) - n_refused
    assert f"{n_protected} protected, 0 skipped, {n_refused} failed" in text.out
    assert "Traceback" not in text.err

    # A rerun resumes: nothing is protected twice, the bad files are reported again.
    code = main(["protect", str(src), "-o", str(out), "-r", *FAST])
    text = capsys.readouterr()
    assert code == 1
    assert f"0 protected, {n_protected} skipped, {n_refused} failed" in text.out
    assert _digests(src) == before


def test_max_pixels_is_configurable(cli_tiny, tmp_path, capsys):
    photo = _photo(tmp_path / "in" / "big.png", 64, 48)
    good = _photo(tmp_path / "in" / "small.png", 40, 30)
    code = main(["protect", str(photo), str(good), "-o", str(tmp_path / "out"), "--max-pixels",
                 "2000", *FAST])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "big.png: is 64 x 48 = 3072 pixels, above the limit of 2000" in err
    assert "raise --max-pixels" in err
    assert (tmp_path / "out" / "small.png").is_file()
    assert not (tmp_path / "out" / "big.png").exists()


def test_missing_and_unsupported_paths(cli_tiny, tmp_path, capsys):
    good = _photo(tmp_path / "a.png")
    doc = tmp_path / "report.pdf"
    doc.write_bytes(b"%PDF-1.4")
    code = main(["protect", str(tmp_path / "gone.jpg"), str(doc), str(good), *FAST])
    err = capsys.readouterr().err
    assert code == 1
    assert "gone.jpg: no such file or folder; check the path" in err
    assert "report.pdf: not a supported photo type" in err
    assert (tmp_path / "a_protected.png").is_file()


def test_output_folder_is_a_file(cli_tiny, tmp_path, capsys):
    """An output "folder" that is a file: every photo fails with a clear message, no crash."""
    _photo(tmp_path / "in" / "a.png")
    _photo(tmp_path / "in" / "b.png")
    blocker = tmp_path / "out"
    blocker.write_bytes(b"not a folder")
    code = main(["protect", str(tmp_path / "in"), "-o", str(blocker), *FAST])
    text = capsys.readouterr()
    assert code == 1
    assert "0 protected, 0 skipped, 2 failed" in text.out
    assert text.err.count("choose another") == 2
    assert blocker.read_bytes() == b"not a folder"


def _read_only_folder() -> Path | None:
    # Running as root, chmod doesn't stop writes; /sys refuses new files for everyone.
    probe = Path("/sys/kernel")
    if not probe.is_dir():
        return None
    try:
        open(probe / ".cloak-probe", "wb").close()  # noqa: SIM115
    except OSError:
        return probe
    return None


def test_read_only_output_folder(cli_tiny, tmp_path, capsys):
    folder = _read_only_folder()
    if folder is None:
        pytest.skip("no read-only folder on this system")
    src = _photo(tmp_path / "in" / "a.png")
    before = sha256(src)
    code = main(["protect", str(src), "-o", str(folder), *FAST])
    err = capsys.readouterr().err
    assert code == 1
    assert "a.png" in err and "isn't writable; choose another output folder with -o" in err
    assert sha256(src) == before
    assert not (folder / "a.png").exists()


def test_output_folder_is_input_folder(cli_tiny, tmp_path, capsys):
    src = tmp_path / "photos"
    a = _photo(src / "a.png")
    b = _photo(src / "b.png")
    before = {a: sha256(a), b: sha256(b)}
    assert main(["protect", str(src), "-o", str(src), *FAST]) == 0
    assert "2 protected" in capsys.readouterr().out
    assert {a: sha256(a), b: sha256(b)} == before
    outs = sorted(p.name for p in src.iterdir())
    assert outs == ["a.png", "a_protected.png", "b.png", "b_protected.png"]

    # A rerun neither re-protects the originals nor protects the protected copies.
    assert main(["protect", str(src), "-o", str(src), *FAST]) == 0
    assert "0 protected, 2 skipped, 0 failed" in capsys.readouterr().out
    assert sorted(p.name for p in src.iterdir()) == outs
    # The same without -o: results go to a sibling folder, the input folder is not touched.
    assert main(["protect", str(src), *FAST]) == 0
    assert sorted(p.name for p in src.iterdir()) == outs
    assert sorted(p.name for p in (tmp_path / "photos_protected").iterdir()) == [
        "a.png",
        "b.png",
    ]


def test_existing_output_needs_overwrite(cli_tiny, tmp_path, capsys):
    src = _photo(tmp_path / "in" / "a.png")
    before = sha256(src)
    dest = tmp_path / "out" / "a.png"
    dest.parent.mkdir()
    dest.write_bytes(b"someone's older file")
    assert main(["protect", str(src), "-o", str(dest.parent), *FAST]) == 0
    out = capsys.readouterr().out
    assert "0 protected, 1 skipped" in out and "--overwrite" in out
    assert dest.read_bytes() == b"someone's older file"

    assert main(["protect", str(src), "-o", str(dest.parent), "--overwrite", *FAST]) == 0
    assert "1 protected" in capsys.readouterr().out
    with Image.open(dest) as im:
        assert im.size == (64, 48)
    assert sha256(src) == before
    assert not leftovers(tmp_path)


def test_disk_full_while_writing(monkeypatch, tiny_encoder, tmp_path):
    """The 2nd save hits a full disk after writing part of the file: only it fails."""
    src = tmp_path / "in"
    for i in range(3):
        _photo(src / f"p{i}.png")
    before = _digests(src)
    monkeypatch.setattr(Image.Image, "save", disk_full_save(2))
    cfg = _fast_config()
    jobs, refused = plan([src], tmp_path / "out", cfg)
    results, _ = _drain(run_batch(jobs, cfg, [tiny_encoder]))
    assert [r.status for r in results] == ["protected", "failed", "protected"]
    assert "p1.png" in results[1].message and "disk full" in results[1].message
    assert "free space and rerun" in results[1].message
    assert not (tmp_path / "out" / "p1.png").exists()
    assert not leftovers(tmp_path)
    assert _digests(src) == before


def test_crash_inside_the_attack(tiny_encoder, tmp_path):
    """The encoder raises on one photo's size: that photo fails, the others are protected."""
    crash_on_width(tiny_encoder, 40)
    src = tmp_path / "in"
    _photo(src / "a.png")
    _photo(src / "b.png", 40, 40)
    _photo(src / "c.png")
    before = _digests(src)
    cfg = _fast_config()
    jobs, _ = plan([src], tmp_path / "out", cfg)
    results, _ = _drain(run_batch(jobs, cfg, [tiny_encoder]))
    assert [r.status for r in results] == ["protected", "failed", "protected"]
    msg = results[1].message
    assert "b.png" in msg and "internal error" in msg and "kernel exploded" in msg
    assert "report" in msg
    assert not (tmp_path / "out" / "b.png").exists()
    assert not leftovers(tmp_path)
    assert _digests(src) == before


def test_crash_inside_the_attack_through_cli(cli_tiny, tmp_path, capsys):
    crash_on_width(cli_tiny, 40)
    _photo(tmp_path / "in" / "a.png")
    _photo(tmp_path / "in" / "b.png", 40, 40)
    # Without transformations the attack encodes the 40 px photo as it is (with them, every
    # step sees it resized to an attacker's size, which the crash does not match).
    args = ["protect", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--no-eot", *FAST]
    code = main(args)
    text = capsys.readouterr()
    assert code == 1
    assert "b.png: internal error (RuntimeError: kernel exploded)" in text.err
    assert "1 protected, 0 skipped, 1 failed" in text.out


def test_cancel_mid_batch_then_resume(tiny_encoder, tmp_path):
    """Cancel during the 2nd photo: the 1st is kept whole, nothing else is written."""
    src = tmp_path / "in"
    for i in range(4):
        _photo(src / f"p{i}.png")
    before = _digests(src)
    cfg = _fast_config(steps=3)
    jobs, _ = plan([src], tmp_path / "out", cfg)
    state = {"cancel": False}
    events = []

    def watch(ev):
        events.append(ev)
        if ev.index == 1 and ev.progress is not None and ev.progress.step >= 1:
            state["cancel"] = True

    results = run_to_end(
        run_batch(jobs, cfg, [tiny_encoder], cancel=lambda: state["cancel"]), watch
    )
    assert [r.status for r in results] == ["protected"]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["p0.png"]
    with Image.open(out / "p0.png") as im:
        im.load()
        assert im.size == (64, 48)
    assert not leftovers(tmp_path)

    results, _ = _drain(run_batch(jobs, cfg, [tiny_encoder]))
    assert [r.status for r in results] == ["skipped", "protected", "protected", "protected"]
    assert _digests(src) == before


def test_keyboard_interrupt_while_saving_leaves_no_temp(monkeypatch, tiny_encoder, tmp_path):
    """Ctrl+C in the middle of writing a photo: no temp file, no half-written output."""
    src = tmp_path / "in"
    _photo(src / "a.png")
    _photo(src / "b.png")
    real_save = Image.Image.save
    calls = []

    def interrupted(self, fp, *args, **kwargs):
        if not isinstance(fp, (str, os.PathLike)):
            calls.append(fp)
            if len(calls) == 2:
                fp.write(b"\x89PNG half")
                raise KeyboardInterrupt
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", interrupted)
    cfg = _fast_config()
    jobs, _ = plan([src], tmp_path / "out", cfg)
    with pytest.raises(KeyboardInterrupt):
        _drain(run_batch(jobs, cfg, [tiny_encoder]))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]
    assert not leftovers(tmp_path)


def test_job_for_a_file_deleted_after_planning(tiny_encoder, tmp_path):
    src = _photo(tmp_path / "a.png")
    good = _photo(tmp_path / "b.png")
    cfg = _fast_config()
    jobs = [PhotoJob(src, tmp_path / "out" / "a.png"), PhotoJob(good, tmp_path / "out" / "b.png")]
    src.unlink()
    results, _ = _drain(run_batch(jobs, cfg, [tiny_encoder]))
    assert [r.status for r in results] == ["failed", "protected"]
    assert "a.png" in results[0].message and "does not exist" in results[0].message


def test_unreadable_nan_from_the_engine_is_refused(monkeypatch, tiny_encoder, tmp_path):
    """An engine bug producing NaN pixels fails that photo, nothing is written."""
    import cloak.jobs as jobs_mod

    real_quantize = jobs_mod.quantize
    monkeypatch.setattr(jobs_mod, "quantize", lambda t: real_quantize(t) * float("nan"))
    _photo(tmp_path / "in" / "a.png")
    cfg = _fast_config()
    jobs, _ = plan([tmp_path / "in"], tmp_path / "out", cfg)
    results, _ = _drain(run_batch(jobs, cfg, [tiny_encoder]))
    assert results[0].status == "failed"
    assert "a.png" in results[0].message and "report" in results[0].message
    assert not (tmp_path / "out" / "a.png").exists()
    assert not leftovers(tmp_path)


def test_plan_never_targets_an_original(tmp_path):
    """Planning with every output placement: no destination is ever a source file."""
    src = tmp_path / "p"
    for name in ("a.png", "a_protected.png", "b.jpeg", "c.gif", "d.tiff"):
        _photo(src / name)
    cfg = _fast_config()
    for out in (None, src, tmp_path / "o"):
        jobs, refused = plan([src], out, cfg)
        assert not refused
        sources = {j.source.resolve() for j in jobs}
        assert all(j.dest.resolve() not in sources for j in jobs)
        dests = [j.dest.resolve() for j in jobs]
        assert len(dests) == len(set(dests)), dests


def test_same_stem_different_types_get_their_own_outputs(cli_tiny, tmp_path, capsys):
    """a.bmp and a.gif both become PNG: neither is skipped as done nor overwrites the other."""
    src = tmp_path / "in"
    _photo(src / "a.bmp")
    _photo(src / "a.gif")
    out = tmp_path / "out"
    assert main(["protect", str(src), "-o", str(out), *FAST]) == 0
    assert "2 protected, 0 skipped" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["a-gif.png", "a.png"]
    assert main(["protect", str(src), "-o", str(out), *FAST]) == 0
    assert "0 protected, 2 skipped" in capsys.readouterr().out
    assert main(["protect", str(src), "-o", str(src), *FAST]) == 0
    assert sorted(p.name for p in src.iterdir()) == [
        "a-gif_protected.png",
        "a.bmp",
        "a.gif",
        "a_protected.png",
    ]


def test_make_distinct_for_jobs_built_by_hand(tmp_path):
    """The GUI builds its jobs itself; make_distinct gives them distinct outputs too."""
    from cloak.jobs import make_distinct, output_path

    cfg = _fast_config()
    sources = [tmp_path / "a.bmp", tmp_path / "a.gif", tmp_path / "a.png"]
    jobs = [PhotoJob(s, output_path(s, None, cfg, None)) for s in sources]
    assert len({j.dest for j in jobs}) == 1
    make_distinct(jobs)
    assert [j.dest.name for j in jobs] == [
        "a_protected.png",
        "a-gif_protected.png",
        "a-png_protected.png",
    ]
