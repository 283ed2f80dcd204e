"""Downloads through the real clients against loopback servers; digest checks before loading.

Two sources, two real clients:

- the TAESD family through pooch from a loopback server laid out like
  ``raw.githubusercontent.com/<owner>/<repo>/<commit>/<file>`` (``$CLOAK_WEIGHTS_URL``), serving
  the real TAEF2 bytes, a tampered copy, a 404 or a transfer cut off mid-body;
- the full VAEs through huggingface_hub from a loopback hub (``$HF_ENDPOINT``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support import models_fixtures as mf

from cloak import models
from cloak.cli import main
from cloak.models import registry, weights
from cloak.models.base import WeightFile
from cloak.models.registry import REGISTRY, TAESD_COMMIT

FakeHub = mf.FakeHub
fake_hub = mf.fake_hub

TAEF2 = REGISTRY["taef2"]


class FakeGitHub:
    """A loopback server answering like ``raw.githubusercontent.com``.

    ``files`` maps ``"<owner>/<repo>/<commit>/<file>"`` to bytes; ``cut`` is how many of the
    next GETs are cut off after half their body (with the full ``Content-Length`` announced);
    ``requests`` lists every path asked for.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut = 0
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                path = self.path.split("?")[0].lstrip("/")
                server.requests.append(path)
                data = server.files.get(path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if server.cut > 0:
                    server.cut -= 1
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, spec_name: str, filename: str, data: bytes) -> None:
        spec = REGISTRY[spec_name]
        self.files[f"{spec.repo_id}/{spec.revision}/{filename}"] = data

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def github(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    """A running :class:`FakeGitHub` behind ``$CLOAK_WEIGHTS_URL`` (cache in tmp_path, online)."""
    gh = FakeGitHub()
    monkeypatch.setenv("CLOAK_WEIGHTS_URL", gh.url)
    try:
        yield gh
    finally:
        gh.close()


def _real_bytes(wd: Path, filename: str) -> bytes:
    return (wd / "taef2" / filename).read_bytes()


def _serve_taef2(gh: FakeGitHub, wd: Path, tamper: bool = False) -> None:
    for wf in TAEF2.files:
        data = _real_bytes(wd, wf.filename)
        if tamper:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        gh.serve("taef2", wf.filename, data)


def _blob_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register taef2 pinned by git blob id and size only, as the other TAESD files are."""
    files = {
        wf.filename: WeightFile(wf.filename, None, wf.size, git_blob=wf.git_blob)
        for wf in TAEF2.files
    }
    spec = dataclasses.replace(
        TAEF2,
        encoder_file=files["taef2_encoder.pth"],
        decoder_file=files["taef2_decoder.pth"],
    )
    monkeypatch.setitem(registry.REGISTRY, "taef2", spec)


def _cache_entries() -> list[str]:
    folder = weights.user_models_dir() / "taef2"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_default_set_is_pinned_and_from_the_fixed_commit() -> None:
    for name in models.DEFAULT_ENSEMBLE:
        spec = REGISTRY[name]
        assert spec.source == "github" and spec.revision == TAESD_COMMIT
        for wf in spec.files:
            assert wf.filename.endswith(".pth")
            assert wf.sha256 or (wf.git_blob and len(wf.git_blob) == 40)
    for name in ("taesd", "taesdxl", "taesd3", "taef1", "taef2", "taesana"):
        assert all(wf.git_blob for wf in REGISTRY[name].files), name


def test_git_blob_id_matches_git(models_dir: Path) -> None:
    path = models_dir / "taef2" / "taef2_encoder.pth"
    data = path.read_bytes()
    want = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    assert weights.git_blob_of(path) == want == TAEF2.encoder_file.git_blob


def test_github_download_pinned_sha256_then_loads(github: FakeGitHub, models_dir: Path) -> None:
    _serve_taef2(github, models_dir)
    paths = models.download("taef2", progress=False)
    cache = weights.user_models_dir()
    assert [p.parent for p in paths] == [cache / "taef2"] * 2
    for p, wf in zip(paths, TAEF2.files, strict=True):
        assert hashlib.sha256(p.read_bytes()).hexdigest() == wf.sha256
    assert github.requests == [
        f"madebyollin/taesd/{TAESD_COMMIT}/{wf.filename}" for wf in TAEF2.files
    ]
    # Loading now works offline from the cache, and no temporary folder is left behind.
    enc = models.load_encoder("taef2", offline=True)
    assert enc.has_decoder
    assert _cache_entries() == sorted(wf.filename for wf in TAEF2.files)


def test_github_download_verified_by_git_blob_records_sha256(
    github: FakeGitHub, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _blob_only(monkeypatch)
    _serve_taef2(github, models_dir)
    enc = models.load_encoder("taef2")  # missing locally: downloads, checks, then loads
    assert enc.has_decoder
    for wf in TAEF2.files:
        final = weights.user_models_dir() / "taef2" / wf.filename
        recorded = weights.sidecar(final).read_text().split()[0]
        assert recorded == wf.sha256  # the real sha256, seen at download time
    rows = {r.file: (r.status, r.detail) for r in models.verify() if r.name == "taef2"}
    assert {s for s, _ in rows.values()} == {"ok"}
    assert all("git blob id" in d and "sha256" in d for _, d in rows.values())


def test_tampered_download_refused_before_loading(
    github: FakeGitHub, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _blob_only(monkeypatch)
    _serve_taef2(github, models_dir, tamper=True)
    from cloak.models import taesd

    reads: list[Path] = []
    real_read = taesd.read_state_dict
    monkeypatch.setattr(taesd, "read_state_dict", lambda p: reads.append(p) or real_read(p))
    with pytest.raises(models.WeightsError) as info:
        models.load_encoder("taef2")
    msg = str(info.value)
    assert "taef2_encoder.pth" in msg and "not the pinned file" in msg and "git blob id" in msg
    assert reads == []  # nothing was unpickled
    assert _cache_entries() == []  # no file, no sidecar, no temporary folder


def test_tampered_download_with_pinned_sha256_refused(github: FakeGitHub, models_dir: Path) -> None:
    _serve_taef2(github, models_dir, tamper=True)
    with pytest.raises(models.WeightsError, match=r"taef2_encoder\.pth.*not the pinned file"):
        models.download("taef2", progress=False)
    assert _cache_entries() == []


def test_interrupted_download_leaves_nothing_and_retry_works(
    github: FakeGitHub, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(weights, "DOWNLOAD_RETRIES", 1)
    _serve_taef2(github, models_dir)
    github.cut = 10  # every attempt is cut off mid-body
    with pytest.raises(models.WeightsError, match="taef2_encoder.pth") as info:
        models.download("taef2", progress=False)
    assert github.url in str(info.value)
    assert len(github.requests) == 2  # the first attempt and pooch's one retry
    assert _cache_entries() == []
    # The same call again, with the connection healthy, completes and checks out.
    github.cut = 0
    paths = models.download("taef2", progress=False)
    assert [weights.check_file(p, wf)[0] for p, wf in zip(paths, TAEF2.files, strict=True)] == [
        "ok",
        "ok",
    ]


def test_one_cut_transfer_is_retried_within_one_call(github: FakeGitHub, models_dir: Path) -> None:
    _serve_taef2(github, models_dir)
    github.cut = 1
    paths = models.download("taef2", progress=False)
    assert len(github.requests) == 3  # encoder twice (cut, then whole), decoder once
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths] == [
        wf.sha256 for wf in TAEF2.files
    ]


def test_missing_on_server_is_weights_error(github: FakeGitHub) -> None:
    with pytest.raises(models.WeightsError) as info:
        models.load_encoder("taef1")
    msg = str(info.value)
    assert "cloak models download taef1" in msg
    assert f"{github.url}/madebyollin/taesd/{TAESD_COMMIT}/taef1_encoder.pth" in msg
    assert github.requests


def test_cli_download_all_fetches_default_set(
    github: FakeGitHub, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve_taef2(github, models_dir)
    assert main(["models", "download", "--all"]) == 0
    out = capsys.readouterr().out
    cache = weights.user_models_dir()
    for name in models.DEFAULT_ENSEMBLE:
        for wf in REGISTRY[name].files:
            assert f"{name}: {cache / name / wf.filename}" in out
    assert main(["models", "list"]) == 0
    row = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("taef2 "))
    assert row.split()[:5] == ["taef2", "yes", "yes", "sha256", "yes"]
    assert main(["models", "download"]) == 2
    assert "--all" in capsys.readouterr().err


def test_trust_on_first_use_records_sidecar(fake_hub: FakeHub) -> None:
    """The opt-in full VAEs have no published digest: their first download records one."""
    spec = REGISTRY["sd-vae"]
    payload = {wf.filename: f"fake {wf.filename}".encode() for wf in spec.files}
    for name, data in payload.items():
        fake_hub.files[(spec.repo_id, name)] = data
    paths = models.download("sd-vae", progress=False)
    for p in paths:
        side = weights.sidecar(p)
        assert side.read_text().split()[0] == hashlib.sha256(payload[p.name]).hexdigest()
    rows = {r.file: r.status for r in models.verify() if r.name == "sd-vae"}
    assert set(rows.values()) == {"ok"}
    # Later tampering is caught through the sidecar.
    paths[0].write_bytes(b"tampered")
    rows = {r.file: r.status for r in models.verify() if r.name == "sd-vae"}
    assert rows[paths[0].name] == "corrupt"


def test_offline_never_connects(
    github: FakeGitHub, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(models.WeightsError):
        models.load_encoder("taef1", offline=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.WeightsError):
        models.load_encoder("taesd")
    with pytest.raises(models.WeightsError) as info:
        models.load_ensemble(["taesd", "sd-vae"])
    assert "- taesd:" in str(info.value) and "- sd-vae:" in str(info.value)
    with pytest.raises(models.WeightsError, match="offline"):
        models.download("taesd", progress=False)
    assert fake_hub.hits == 0 and github.requests == []


def test_missing_weight_message(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty_models"
    empty.mkdir()
    with pytest.raises(models.WeightsError) as info:
        models.load_encoder("TAEF1", models_dir=empty, offline=True)
    msg = str(info.value)
    assert "taef1_encoder.pth" in msg
    assert str(empty / "taef1") in msg
    assert str(weights.user_models_dir() / "taef1") in msg
    assert "cloak models download taef1" in msg


def test_ensemble_reports_missing_and_loads_rest(fake_hub: FakeHub, models_dir: Path) -> None:
    loaded, missing = models.load_ensemble(["taef2", "taesd"], models_dir=models_dir, offline=True)
    assert [e.name for e in loaded] == ["taef2"]
    assert set(missing) == {"taesd"}
    assert "cloak models download taesd" in missing["taesd"]


def test_copy_without_sidecar_is_verified_by_git_blob(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file copied in by hand is checked against its git blob id, not trusted blindly."""
    _blob_only(monkeypatch)
    dst = tmp_path / "models" / "taef2"
    shutil.copytree(models_dir / "taef2", dst)
    statuses = {r.file: r.status for r in models.verify(tmp_path / "models") if r.name == "taef2"}
    assert statuses == {"taef2_encoder.pth": "ok", "taef2_decoder.pth": "ok"}
    victim = dst / "taef2_decoder.pth"
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[100] ^= 0x01
    victim.write_bytes(bytes(data))
    with pytest.raises(models.WeightsError, match="git blob id"):
        models.load_encoder("taef2", models_dir=tmp_path / "models", offline=True)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_tampered_copy_is_refused(tmp_path: Path, models_dir: Path, damage: str) -> None:
    dst = tmp_path / "models" / "taef2"
    dst.mkdir(parents=True)
    for wf in TAEF2.files:
        shutil.copy(models_dir / "taef2" / wf.filename, dst / wf.filename)
    victim = dst / "taef2_encoder.pth"
    data = bytearray(victim.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    else:
        data = data[: len(data) // 2]
    victim.write_bytes(bytes(data))
    with pytest.raises(models.WeightsError) as info:
        models.load_encoder("taef2", models_dir=tmp_path / "models", offline=True)
    assert "taef2_encoder.pth" in str(info.value)
    assert "download it again" in str(info.value)
    statuses = {r.file: r.status for r in models.verify(tmp_path / "models") if r.name == "taef2"}
    assert statuses == {"taef2_encoder.pth": "corrupt", "taef2_decoder.pth": "ok"}
