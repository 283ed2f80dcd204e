"""Downloads through the real huggingface_hub client against a loopback hub; digest checks."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from support import models_fixtures as mf

from cloak import models
from cloak.models import weights
from cloak.models.registry import REGISTRY

FakeHub = mf.FakeHub
fake_hub = mf.fake_hub


TAEF2 = REGISTRY["taef2"]


def _serve_taef2(hub: FakeHub, wd: Path, corrupt: bool = False) -> None:
    for wf in TAEF2.files:
        data = (wd / "taef2" / wf.filename).read_bytes()
        if corrupt:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        hub.files[(TAEF2.repo_id, wf.filename)] = data


def test_download_lands_in_cache_with_pinned_sha(fake_hub: FakeHub, models_dir: Path) -> None:
    _serve_taef2(fake_hub, models_dir)
    paths = models.download("taef2", progress=False)
    cache = weights.user_models_dir()
    assert [p.parent for p in paths] == [cache / "taef2"] * 2
    for p, wf in zip(paths, TAEF2.files, strict=True):
        assert hashlib.sha256(p.read_bytes()).hexdigest() == wf.sha256
    assert fake_hub.hits > 0
    # Loading now works offline from the cache, and no temporary folder is left behind.
    enc = models.load_encoder("taef2", offline=True)
    assert enc.has_decoder
    assert sorted(x.name for x in (cache / "taef2").iterdir()) == sorted(
        wf.filename for wf in TAEF2.files
    )


def test_wrong_file_from_server_is_refused_and_removed(fake_hub: FakeHub, models_dir: Path) -> None:
    _serve_taef2(fake_hub, models_dir, corrupt=True)
    with pytest.raises(models.WeightsError, match="taef2_encoder.pth"):
        models.download("taef2", progress=False)
    target = weights.user_models_dir() / "taef2"
    assert not target.exists() or list(target.iterdir()) == []


def test_trust_on_first_use_records_sidecar(fake_hub: FakeHub) -> None:
    spec = REGISTRY["taesd"]
    payload = {wf.filename: f"fake {wf.filename}".encode() for wf in spec.files}
    for name, data in payload.items():
        fake_hub.files[(spec.repo_id, name)] = data
    paths = models.download("taesd", progress=False)
    for p in paths:
        side = weights.sidecar(p)
        assert side.read_text().split()[0] == hashlib.sha256(payload[p.name]).hexdigest()
    rows = {r.file: r.status for r in models.verify() if r.name == "taesd"}
    assert set(rows.values()) == {"ok"}
    # Later tampering is caught through the sidecar.
    paths[0].write_bytes(b"tampered")
    rows = {r.file: r.status for r in models.verify() if r.name == "taesd"}
    assert rows[paths[0].name] == "corrupt"


def test_offline_never_connects(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(models.WeightsError):
        models.load_encoder("taef1", offline=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.WeightsError):
        models.load_encoder("taesd")
    with pytest.raises(models.WeightsError) as info:
        models.load_ensemble(["taesd", "taef1"])
    assert "- taesd:" in str(info.value) and "- taef1:" in str(info.value)
    with pytest.raises(models.WeightsError, match="offline"):
        models.download("taesd", progress=False)
    assert fake_hub.hits == 0


def test_missing_weight_message(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty_models"
    empty.mkdir()
    with pytest.raises(models.WeightsError) as info:
        models.load_encoder("TAEF1", models_dir=empty, offline=True)
    msg = str(info.value)
    assert "taef1_encoder.safetensors" in msg
    assert str(empty / "taef1") in msg
    assert str(weights.user_models_dir() / "taef1") in msg
    assert "cloak models download taef1" in msg


def test_missing_on_server_is_weights_error(fake_hub: FakeHub) -> None:
    with pytest.raises(models.WeightsError, match="cloak models download taef1"):
        models.load_encoder("taef1")
    assert fake_hub.hits > 0


def test_ensemble_reports_missing_and_loads_rest(fake_hub: FakeHub, models_dir: Path) -> None:
    loaded, missing = models.load_ensemble(["taef2", "taesd"], models_dir=models_dir, offline=True)
    assert [e.name for e in loaded] == ["taef2"]
    assert set(missing) == {"taesd"}
    assert "cloak models download taesd" in missing["taesd"]


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
